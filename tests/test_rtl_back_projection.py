"""hw/core/back_projection.py against its per-cycle model, on Verilator and Icarus."""

import pytest
from amaranth.hdl import Fragment, Shape, signed

from hw.core.back_projection import BackProjection
from tests.rtl_sweep import cycles, run_case, sweep

CASES = {
    "l1-c1-d4": dict(lanes=1, columns=1, sum_bits=8, delta_bits=4, grad_bias_bits=6,
                     tile_bits=2),
    "l2-c4-d6": dict(lanes=2, columns=4, sum_bits=12, delta_bits=6, grad_bias_bits=9,
                     tile_bits=3),
    "l4-c4-d16": dict(lanes=4, columns=4, sum_bits=27, delta_bits=16, grad_bias_bits=20,
                      tile_bits=5),
    "l8-c2-d16": dict(lanes=8, columns=2, sum_bits=34, delta_bits=16, grad_bias_bits=24,
                      tile_bits=8),
    # The pipelined cores': the rounded sums as their quotients and rounding bits.
    "l4-c4-d16-parts": dict(lanes=4, columns=4, sum_bits=27, delta_bits=16, grad_bias_bits=20,
                            tile_bits=5, rounding_parts=True),
    "l2-c4-d6-parts": dict(lanes=2, columns=4, sum_bits=12, delta_bits=6, grad_bias_bits=9,
                           tile_bits=3, rounding_parts=True),
}


def run(tmp_path_factory, name, sim, cycles, **extra):
    p = dict(CASES[name], cycles=cycles, idle=0.3, seed=3)
    p.update(extra)
    unit = BackProjection(p["lanes"], p["columns"], signed(p["sum_bits"]), p["delta_bits"],
                          p["grad_bias_bits"], p["tile_bits"],
                          rounding_parts=p.get("rounding_parts", False))
    run_case(tmp_path_factory, unit, "back_projection", p, sim, name)


FAST = ["l2-c4-d6", "l4-c4-d16", "l4-c4-d16-parts"]


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST))
def test_back_projection(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim, cycles=cycles())


def test_perturbed_saturation_is_caught(tmp_path_factory):
    """The model saturates one bit narrower than the deltas: the checker must notice."""
    run(tmp_path_factory, "l4-c4-d16", "verilator", cycles=2_000, mutate="saturate")


def test_port_widths():
    """The ports the core wires to: the beat's fields and ``clear`` exactly as wide as the core
    drives them (a wider field would pass every bench that drives only 0 and 1)."""
    unit = BackProjection(4, 4, signed(20), 16, 20, 3)
    members = unit.signature.members
    beat = members["i"].signature.members["payload"].shape
    assert [(name, Shape.cast(field.shape).width) for name, field in beat] == [
        ("sample", 8), ("tile", 3), ("last", 1)]
    assert Shape.cast(members["clear"].shape).width == 1
    assert Shape.cast(members["rounded"].shape.elem_shape).width == 20
    assert members["delta"].signature.members["data"].shape.elem_shape == signed(16)
    assert members["bias_grad"].signature.members["data"].shape.elem_shape == signed(20)
    Fragment.get(unit, None)                 # and it elaborates with them
