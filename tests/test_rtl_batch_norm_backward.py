"""hw/core/batch_norm_backward.py against its per-cycle model, on Verilator and Icarus."""

import pytest

from tests.rtl_sweep import cycles, run_case, sweep

CASES = {
    "p4-d16": dict(lanes=4, delta_bits=16, max_batch=32, tag_bits=6, idle=0.2),
    "p2-d20": dict(lanes=2, delta_bits=20, max_batch=255, tag_bits=3, idle=0.1),
    "p8-d10": dict(lanes=8, delta_bits=10, max_batch=17, tag_bits=1, idle=0.3),
}


def run(tmp_path_factory, name, sim, cycles, **extra):
    from sim.tb_batch_norm_backward import build
    p = dict(CASES[name], cycles=cycles, seed=13)
    p.update(extra)
    run_case(tmp_path_factory, build(p), "batch_norm_backward", p, sim, name)


FAST = ["p4-d16", "p2-d20"]


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST))
def test_batch_norm_backward(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim, cycles=cycles())


@pytest.mark.parametrize("mutate", ["m1-round", "no-m2", "d-unmasked"])
def test_perturbed_model_is_caught(tmp_path_factory, mutate):
    """One rule of the model changed: the checker must notice."""
    run(tmp_path_factory, "p4-d16", "verilator", cycles=2_000, mutate=mutate)
