"""hw/core/drain_rounding.py against its per-cycle model, on Verilator and Icarus."""

import pytest
from amaranth.hdl import Fragment, signed

from hw.core.drain_rounding import DrainRounding
from tests.rtl_sweep import cycles, run_case, sweep

CASES = {
    "l1-s8": dict(lanes=1, sum_bits=8, max_shift=9),
    "l4-s27": dict(lanes=4, sum_bits=27, max_shift=20),
    "l2-s40": dict(lanes=2, sum_bits=40, max_shift=31),
    "l8-s33": dict(lanes=8, sum_bits=33, max_shift=16),
    "l4-s27-reg": dict(lanes=4, sum_bits=27, max_shift=20, registered_shift=True),
    "l8-s40-reg": dict(lanes=8, sum_bits=40, max_shift=31, registered_shift=True),
}


def run(tmp_path_factory, name, sim, cycles, **extra):
    p = dict(CASES[name], cycles=cycles, seed=5)
    p.update(extra)
    unit = DrainRounding(p["lanes"], signed(p["sum_bits"]),
                         registered_shift=p.get("registered_shift", False))
    run_case(tmp_path_factory, unit, "drain_rounding", p, sim, name)


FAST = ["l4-s27", "l2-s40", "l4-s27-reg"]


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST))
def test_drain_rounding(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim, cycles=cycles())


def test_perturbed_rounding_is_caught(tmp_path_factory):
    """The model rounds half up instead of half to even: the checker must notice."""
    run(tmp_path_factory, "l4-s27", "verilator", cycles=2_000, mutate="half-up")


@pytest.mark.parametrize("name", ["l4-s27", "l4-s27-reg"])
def test_shift_timing_is_checked(tmp_path_factory, name):
    """Each unit checked against the model of the other timing of its shift: the checker must
    notice."""
    run(tmp_path_factory, name, "verilator", cycles=2_000, mutate="timing")


def test_rounded_is_two_bits_wider_than_the_sums():
    """A rounded sum needs one bit for the shift's rounding carry and one more for the sign of
    the quotient plus the rounding bit; the drains saturate from exactly this width."""
    unit = DrainRounding(4, signed(20))
    rounded = unit.signature.members["rounded"].shape
    assert (rounded.length, rounded.elem_shape) == (4, signed(22))
    Fragment.get(unit, None)                 # and it elaborates with it
