"""hw/lfsr_prng.py against its per-cycle model, on Verilator and Icarus."""

import pytest

from hw.lfsr_prng import LfsrPrng
from tests.rtl_sweep import cycles, run_case, sweep

CASES = {
    "w3-c1-l1": dict(width=3, chunk_bits=1, lanes=1),
    "w16-c4-l10": dict(width=16, chunk_bits=4, lanes=10),
    "w31-c16-l4": dict(width=31, chunk_bits=16, lanes=4),
    "w64-c8-l8": dict(width=64, chunk_bits=8, lanes=8),
    # The controls registered (the training core's classifier weights, pipelined): the same
    # output every cycle; loads often, so that loads meet steps and each other.
    "w3-c1-l1-registered": dict(width=3, chunk_bits=1, lanes=1, registered_controls=True,
                                load_rate=0.2),
    "w31-c4-l10-registered": dict(width=31, chunk_bits=4, lanes=10, registered_controls=True,
                                  load_rate=0.2),
}


def run(tmp_path_factory, name, sim, cycles, case=None, **extra):
    p = dict(dict(stall=0.3, load_rate=0.01, seed=7), **(case or CASES[name]), cycles=cycles,
             **extra)
    unit = LfsrPrng(p["width"], p["chunk_bits"], p["lanes"],
                    registered_controls=p.get("registered_controls", False))
    run_case(tmp_path_factory, unit, "lfsr_prng", p, sim, name)


FAST = ["w3-c1-l1", "w31-c16-l4", "w3-c1-l1-registered", "w31-c4-l10-registered"]


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST))
def test_lfsr_prng(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim, cycles=cycles())


@pytest.mark.slow        # 131 075 cycles; the per-cycle comparison runs in make test
def test_lfsr_prng_full_period_16(tmp_path_factory):
    run(tmp_path_factory, "w16-c1-l1", "verilator", cycles=2 * 65535 + 5, full_period=True,
        case=dict(width=16, chunk_bits=1, lanes=1))


@pytest.mark.parametrize("name", ["w31-c16-l4", "w31-c4-l10-registered"])
def test_perturbed_tap_is_caught(tmp_path_factory, name):
    run(tmp_path_factory, name, "verilator", cycles=2_000, mutate="tap")
