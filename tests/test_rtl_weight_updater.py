"""hw/core/weight_updater.py against its per-cycle model, on Verilator and Icarus."""

import pytest
from amaranth.hdl import signed

from hw.core.weight_updater import WeightUpdater
from tests.rtl_sweep import cycles, run_case, sweep

# Gradients and draws within the golden model's exactness bound (docs/ARITHMETIC.md):
# grad_bits + max(0, round_bits - smallest shift) <= 52.
CASES = {
    "p1-w4-g8-r1": dict(lanes=1, weight_bits=4, grad_bits=8, round_bits=1, shifts=(0, 9)),
    "p4-w8-g16-r4": dict(lanes=4, weight_bits=8, grad_bits=16, round_bits=4, shifts=(0, 18)),
    "p2-w16-g36-r16": dict(lanes=2, weight_bits=16, grad_bits=36, round_bits=16,
                           shifts=(0, 31)),
    "p8-w16-g41-r16": dict(lanes=8, weight_bits=16, grad_bits=41, round_bits=16,
                           shifts=(6, 31)),
    # The pipelined cores' updater: the beat registered before the shifter.
    "p4-w8-g16-r4-reg": dict(lanes=4, weight_bits=8, grad_bits=16, round_bits=4,
                             shifts=(0, 18), registered=True),
    "p8-w16-g41-r16-reg": dict(lanes=8, weight_bits=16, grad_bits=41, round_bits=16,
                               shifts=(6, 31), registered=True),
}


def run(tmp_path_factory, name, sim, cycles, **extra):
    p = dict(CASES[name], cycles=cycles, idle=0.3, stall=0.3, seed=9)
    p.update(extra)
    unit = WeightUpdater(p["lanes"], signed(p["grad_bits"]), p["weight_bits"], p["round_bits"],
                         registered_input=p.get("registered", False))
    run_case(tmp_path_factory, unit, "weight_updater", p, sim, name)


FAST = ["p4-w8-g16-r4", "p2-w16-g36-r16", "p4-w8-g16-r4-reg"]


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST))
def test_weight_updater(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim, cycles=cycles())


@pytest.mark.parametrize("rounding", ["stochastic", "nearest-even"])
@pytest.mark.parametrize("name", ["p2-w16-g36-r16", "p8-w16-g41-r16-reg"])
def test_perturbed_rounding_is_caught(tmp_path_factory, rounding, name):
    """The model rounds one way whatever ``stochastic`` says: the bench must notice (the
    registered updater forms the rounding bit a stage after the shifter)."""
    run(tmp_path_factory, name, "verilator", cycles=2_000, mutate=rounding)


@pytest.mark.parametrize("registered", [False, True])
def test_the_other_timing_is_caught(tmp_path_factory, registered):
    """The model with (without) the input register against the unit without (with) it."""
    run(tmp_path_factory, "p4-w8-g16-r4", "verilator", cycles=2_000, registered=registered,
        mutate="timing")
