"""hw/local_error.py against its per-cycle model, on Verilator and Icarus."""

import pytest

from hw.local_error import LocalErrorUnit
from tests.rtl_sweep import cycles, run_case, sweep

CASES = {
    "c2-s4f1-e4": dict(classes=2, score_bits=4, score_frac=1, error_bits=4),
    "c3-s8f4-e8": dict(classes=3, score_bits=8, score_frac=4, error_bits=8),
    "c10-s16f10-e16": dict(classes=10, score_bits=16, score_frac=10, error_bits=16),
    "c16-s24f12-e20": dict(classes=16, score_bits=24, score_frac=12, error_bits=20),
}


def run(tmp_path_factory, name, sim, cycles, **extra):
    p = dict(CASES[name], cycles=cycles, idle=0.3, stall=0.3, seed=5)
    p.update(extra)
    unit = LocalErrorUnit(p["classes"], p["score_bits"], p["score_frac"], p["error_bits"])
    run_case(tmp_path_factory, unit, "local_error", p, sim, name)


FAST = ["c10-s16f10-e16", "c2-s4f1-e4"]


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST))
def test_local_error(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim, cycles=cycles())


def test_perturbed_margin_is_caught(tmp_path_factory):
    run(tmp_path_factory, "c10-s16f10-e16", "verilator", cycles=2_000, mutate="margin")
