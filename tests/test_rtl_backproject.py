"""hw/backproject.py against its per-cycle model, on Verilator and Icarus."""

import pytest

from hw.backproject import BackProjection
from tests.rtl_sweep import cycles, run_case, sweep

CASES = {
    "c2-l1-k1-sym": dict(classes=2, lanes=1, error_bits=4, classifier_bits=1, delta_shift=0,
                         delta_bits=4, feedback="symmetric"),
    "c3-l2-k2-sign": dict(classes=3, lanes=2, error_bits=8, classifier_bits=2, delta_shift=1,
                          delta_bits=6, feedback="sign"),
    "c10-l4-k4-sym": dict(classes=10, lanes=4, error_bits=16, classifier_bits=4, delta_shift=3,
                          delta_bits=16, feedback="symmetric"),
    "c16-l8-k8-sign": dict(classes=16, lanes=8, error_bits=20, classifier_bits=8,
                           delta_shift=9, delta_bits=16, feedback="sign"),
}


def run(tmp_path_factory, name, sim, cycles, **extra):
    p = dict(CASES[name], cycles=cycles, idle=0.3, stall=0.3, seed=3)
    p.update(extra)
    unit = BackProjection(p["classes"], p["lanes"], p["error_bits"], p["classifier_bits"],
                          p["delta_shift"], p["delta_bits"], p["feedback"])
    run_case(tmp_path_factory, unit, "backproject", p, sim, name)


FAST = ["c3-l2-k2-sign", "c10-l4-k4-sym"]


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST))
def test_backproject(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim, cycles=cycles())


def test_perturbed_rounding_is_caught(tmp_path_factory):
    """The model rounds half up instead of half to even: the checker must notice."""
    run(tmp_path_factory, "c10-l4-k4-sym", "verilator", cycles=3_000, mutate="rounding")
