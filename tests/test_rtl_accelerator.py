"""The whole accelerator (lela_accelerator) under cocotb, driven by the host driver, bit-exact
with the golden model (sim/tb_accelerator.py).

``make test`` runs one tiny network on Verilator with 0.3 stalls on every channel (three mode
variants of one build, plus the error-frame test); ``-m slow`` / ``make regress`` adds Icarus,
more variants and bus timings. ``LELA_REGRESS=1`` trains more mini-batches per case.
"""

import pytest

from sim import runner as sim_runner
from gen.verilog import verilator_waiver_args
from hw.accelerator import Accelerator
from hw.params import CoreParams
from lela.config import NetConfig
from sim.harness import EXTRA_WAIVERS
from sim.runner import run_unit
from tests.rtl_sweep import REGRESS

FRAME_TIMEOUT = 2000

TINY = dict(arch=(13, 11, 7), classes=4, batch=8, array_rows=4, array_cols=4, lr_shift=4)
DEEP = dict(arch=(20, 24, 24, 16), classes=4, batch=8, array_rows=4, array_cols=4, lr_shift=4)

#: Modes, seeds and sizes are run-time registers: one build runs every variant.
VARIANTS = {
    "base": {},
    "sign-dropout": dict(feedback="sign", dropout=64),
    "nearest-even": dict(rounding="nearest-even"),
}
MORE_VARIANTS = {
    "softmax": dict(loss="softmax-ce"),
    "sign-dropout-rne-seed5": dict(feedback="sign", dropout=32, rounding="nearest-even", seed=5),
}

BUS = dict(stall=0.3, read_latency=5, rx_stall=0.3, tx_stall=0.3)

CASES = {
    # name: (config, simulator, variants, bus timing, error-frame test, slow)
    "tiny-verilator": (TINY, "verilator", VARIANTS, BUS, True, False),
    "tiny-icarus": (TINY, "icarus", {"base": {}}, BUS, True, True),
    "tiny-more-variants": (TINY, "verilator", MORE_VARIANTS, BUS, False, True),
    "tiny-no-stalls": (TINY, "verilator", {"base": {}, "sign-dropout": VARIANTS["sign-dropout"]},
                       dict(stall=0.0, read_latency=0, rx_stall=0.0, tx_stall=0.0), False, True),
    "tiny-heavy-stalls": (TINY, "verilator", {"sign-dropout": VARIANTS["sign-dropout"]},
                          dict(stall=0.7, read_latency=20, rx_stall=0.6, tx_stall=0.7), True,
                          True),
    "deep-verilator": (DEEP, "verilator", {"base": {}, **MORE_VARIANTS}, BUS, False, True),
}


def run(tmp_path_factory, monkeypatch, name):
    config, sim, variants, bus, error_frames, _ = CASES[name]
    cfg = NetConfig(**config)
    core = CoreParams.from_config(cfg, frame_timeout=FRAME_TIMEOUT)
    batches = [8, 5, 8, 3, 8, 1] if REGRESS else [8, 5, 3]
    if sim == "icarus" and not REGRESS:
        batches = [8, 3]
    params = dict(config=config, variants=variants, batches=batches, infer_samples=11, seed=7,
                  frame_timeout=FRAME_TIMEOUT, addr_bits=core.addr_bits,
                  error_frames=error_frames, **bus)
    build = tmp_path_factory.mktemp(f"accelerator-{name}")
    # A whole design has Amaranth FSMs, whose `casez` lacks a default arm: Verilator's
    # CASEINCOMPLETE, waived for the C++ harness (sim.harness.EXTRA_WAIVERS) but not by
    # run_unit, which takes no extra build arguments (see the report: runner change wanted).
    monkeypatch.setattr(sim_runner, "verilator_waiver_args",
                        lambda: verilator_waiver_args() + EXTRA_WAIVERS)
    run_unit(Accelerator(core), "lela_accelerator", "tb_accelerator", params, sim, str(build))


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow if c[-1] else ())
                                  for n, c in CASES.items()])
def test_accelerator_matches_golden_model(tmp_path_factory, monkeypatch, name):
    run(tmp_path_factory, monkeypatch, name)
