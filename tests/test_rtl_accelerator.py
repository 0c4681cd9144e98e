"""The whole accelerator (lela_accelerator) under cocotb, driven by the host driver, bit-exact
with the golden model (sim/tb_accelerator.py, running the scenarios of sim/scenarios.py that
tests/test_accelerator.py runs on the fast Verilator harness).

``make test`` runs one tiny network on Verilator with 0.3 stalls on every channel: three mode
variants, the error-frame test and a perturbed golden model that must be caught, all in one
build and simulation. ``-m slow`` / ``make regress`` adds Icarus, more variants (run-time sizes
and seeds too), a deeper network and other bus timings; ``LELA_REGRESS=1`` trains more
mini-batches per case.
"""

import pytest

from hw.accelerator import Accelerator
from hw.params import CoreParams
from contract.config import NetConfig
from sim.runner import run_unit
from tests.rtl_sweep import REGRESS

FRAME_TIMEOUT = 2000

TINY = dict(arch=(13, 11, 7), classes=4, batch=8, array_rows=4, array_cols=4, lr_shift=4)
DEEP = dict(arch=(20, 24, 24, 16), classes=4, batch=8, array_rows=4, array_cols=4, lr_shift=4)

#: Modes, seeds and sizes are run-time registers: one build runs every variant.
#: Names are identifiers of at most 10 characters, so cocotb shows them in its test names.
VARIANTS = {
    "base": {},
    "sign_drop": dict(feedback="sign", dropout=64),
    "rne": dict(rounding="nearest-even"),
}
MORE_VARIANTS = {
    "mixed_s5": dict(feedback="sign", dropout=32, rounding="nearest-even", seed=5),
    "drop128_s9": dict(dropout=128, seed=9),
}

BUS = dict(stall=0.3, read_latency=5, rx_stall=0.3, tx_stall=0.3)

#: A core built with convolutions and the convolutional network it trains (its variants set
#: the network's flattened sizes: tests/test_conv_core.py trains more on the fast harness).
CONV = dict(arch=(96, 72, 30, 18), classes=4, batch=8, array_rows=4, array_cols=4, lr_shift=4,
            conv=True)
CONV_ARCH = "2x6x8-c5k3v-p2-c3k1-f6"

CASES = {
    # name: (config, simulator, variants, bus timing, error-frame test, slow)
    "tiny-verilator": (TINY, "verilator", VARIANTS, BUS, True, False),
    "tiny-icarus": (TINY, "icarus", {"base": {}}, BUS, True, True),
    "tiny-more-variants": (TINY, "verilator", {**MORE_VARIANTS, "smaller": dict(arch=(10, 9, 6))},
                           BUS, False, True),
    "tiny-no-stalls": (TINY, "verilator", {"base": {}, "sign_drop": VARIANTS["sign_drop"]},
                       dict(stall=0.0, read_latency=0, rx_stall=0.0, tx_stall=0.0), False, True),
    "tiny-heavy-stalls": (TINY, "verilator", {"sign_drop": VARIANTS["sign_drop"]},
                          dict(stall=0.7, read_latency=20, rx_stall=0.6, tx_stall=0.7), True,
                          True),
    "conv-verilator": (CONV, "verilator",
                       {"conv": dict(arch=(96, 30, 18, 6)),
                        "conv_sign": dict(arch=(96, 30, 18, 6), feedback="sign", dropout=64)},
                       BUS, False, True),
    "deep-verilator": (DEEP, "verilator",
                       {"base": {}, **MORE_VARIANTS, "two_layers": dict(arch=(17, 24, 12))},
                       BUS, False, True),
}


def run(tmp_path_factory, name):
    config, sim, variants, bus, error_frames, _ = CASES[name]
    cfg = NetConfig(**config)
    core = CoreParams.from_config(cfg, frame_timeout=FRAME_TIMEOUT, scramble_collisions=True)
    batches = [8, 5, 8, 3, 8, 1, 8, 7] if REGRESS else [8, 5, 8, 3]
    params = dict(config=config, variants=variants, batches=batches, infer_samples=11, seed=7,
                  frame_timeout=FRAME_TIMEOUT, addr_bits=core.addr_bits,
                  error_frames=error_frames, **bus)
    if config.get("conv"):
        params["arch"] = CONV_ARCH
    if name == "tiny-verilator":
        # The device rounds stochastically, this golden model to nearest even: the checks must
        # catch it (a third cocotb test in the same simulation).
        params["perturbed"] = dict(rounding="nearest-even")
    build = tmp_path_factory.mktemp(f"accelerator-{name}")
    # run_unit makes only the top level's ports VPI-visible: the testbench needs no more.
    run_unit(Accelerator(core), "lela_accelerator", "tb_accelerator", params, sim, str(build))


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow if c[-1] else ())
                                  for n, c in CASES.items()])
def test_accelerator_matches_golden_model(tmp_path_factory, name):
    run(tmp_path_factory, name)

