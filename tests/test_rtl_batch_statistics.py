"""hw/core/batch_statistics.py against its per-cycle model, on Verilator and Icarus."""

import pytest

from hw.core.batch_statistics import BatchStatistics
from tests.rtl_sweep import cycles, run_case, sweep

CASES = {
    "q4-a8-w16": dict(lanes=4, act_bits=8, weight_bits=16, max_batch=32, idle=0.2),
    "q2-a12-w16": dict(lanes=2, act_bits=12, weight_bits=16, max_batch=255, idle=0.1),
    "q8-a4-w8": dict(lanes=8, act_bits=4, weight_bits=8, max_batch=64, idle=0.3),
}


def run(tmp_path_factory, name, sim, cycles, **extra):
    p = dict(CASES[name], cycles=cycles, seed=11)
    p.update(extra)
    unit = BatchStatistics(p["lanes"], p["act_bits"], p["weight_bits"])
    run_case(tmp_path_factory, unit, "batch_statistics", p, sim, name)


FAST = ["q4-a8-w16", "q2-a12-w16"]


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST))
def test_batch_statistics(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim, cycles=cycles())


@pytest.mark.parametrize("mutate", ["h-floor", "momentum", "var-once"])
def test_perturbed_model_is_caught(tmp_path_factory, mutate):
    """One rule of the model changed: the checker must notice."""
    run(tmp_path_factory, "q4-a8-w16", "verilator", cycles=2_000, mutate=mutate)
