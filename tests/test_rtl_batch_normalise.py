"""hw/core/batch_normalise.py against its per-cycle model, on Verilator and Icarus."""

import pytest

from tests.rtl_sweep import cycles, run_case, sweep

CASES = {
    "q4-a8-w16": dict(lanes=4, act_bits=8, weight_bits=16, max_batch=32, j_bits=5, tag_bits=6,
                      idle=0.2),
    "q2-a12-w16": dict(lanes=2, act_bits=12, weight_bits=16, max_batch=255, j_bits=5,
                       tag_bits=3, idle=0.1,
                       rare=["top_edge"]),      # one output level of 4096, seldom drawn
    # |c * R| < 64 * 15 * 2**12 and the shift is at least 8: xhat never saturates.
    "q8-a4-w8": dict(lanes=8, act_bits=4, weight_bits=8, max_batch=64, j_bits=4, tag_bits=1,
                     idle=0.3, rare=["xhat_saturated"]),
}


def run(tmp_path_factory, name, sim, cycles, **extra):
    from sim.tb_batch_normalise import build
    p = dict(CASES[name], cycles=cycles, seed=12)
    p.update(extra)
    run_case(tmp_path_factory, build(p), "batch_normalise", p, sim, name)


FAST = ["q4-a8-w16", "q2-a12-w16"]


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST))
def test_batch_normalise(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim, cycles=cycles())


@pytest.mark.parametrize("mutate", ["active-top", "xhat-floor"])
def test_perturbed_model_is_caught(tmp_path_factory, mutate):
    """One rule of the model changed: the checker must notice."""
    run(tmp_path_factory, "q4-a8-w16", "verilator", cycles=2_000, mutate=mutate)
