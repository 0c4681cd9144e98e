"""hw/mac_array.py against its per-cycle model, on Verilator and Icarus."""

import gc

import pytest
from amaranth.hdl import Fragment, signed, unsigned

from hw.mac_array import MacArray
from tests.rtl_sweep import cycles, run_case, sweep

CASES = {
    "1x1-s2xu1-d2": dict(rows=1, cols=1, a_shape=("s", 2), b_shape=("u", 1), depth=2),
    "2x3-u8xs16-d32": dict(rows=2, cols=3, a_shape=("u", 8), b_shape=("s", 16), depth=32),
    "4x4-s16xs16-d1000": dict(rows=4, cols=4, a_shape=("s", 16), b_shape=("s", 16), depth=1000),
    "8x8-s18xs18-d4096": dict(rows=8, cols=8, a_shape=("s", 18), b_shape=("s", 18), depth=4096),
    # With each lane's operands registered in front of the products (the ULX3S's cores).
    "2x3-u8xs16-d32-operands": dict(rows=2, cols=3, a_shape=("u", 8), b_shape=("s", 16),
                                    depth=32, operand_stage=True),
    "4x4-s16xs16-d1000-operands": dict(rows=4, cols=4, a_shape=("s", 16), b_shape=("s", 16),
                                       depth=1000, operand_stage=True),
    "1x1-s2xu1-d2-operands": dict(rows=1, cols=1, a_shape=("s", 2), b_shape=("u", 1), depth=2,
                                  operand_stage=True),
    # Showing the sums from the accumulators, without a register of their own (the 8 x 8
    # ULX3S core's).
    "2x3-u8xs16-d32-accumulators": dict(rows=2, cols=3, a_shape=("u", 8), b_shape=("s", 16),
                                        depth=32, operand_stage=True, sum_register=False),
    "1x1-s2xu1-d2-accumulators": dict(rows=1, cols=1, a_shape=("s", 2), b_shape=("u", 1),
                                      depth=2, operand_stage=True, sum_register=False),
    "2x2-s4xs4-d3-accumulators-unstaged": dict(rows=2, cols=2, a_shape=("s", 4),
                                               b_shape=("s", 4), depth=3, sum_register=False),
    "2x3-u8xs16-d32-ahead": dict(rows=2, cols=3, a_shape=("u", 8), b_shape=("s", 16), depth=32,
                                 operand_stage=True, sum_register=False, ready_ahead=True),
    # Each row of lanes taking beats by its own copy of ``i.valid`` (the 8 x 8 ULX3S core's).
    "2x3-u8xs16-d32-rows": dict(rows=2, cols=3, a_shape=("u", 8), b_shape=("s", 16), depth=32,
                                operand_stage=True, sum_register=False, ready_ahead=True,
                                row_valids=True),
    # The lanes' operand registers and multipliers ECP5 blocks (sim/primitives/MULT18X18D.v;
    # the 8 x 8 ULX3S core's).
    "2x3-u8xs16-d32-rows-ecp5": dict(rows=2, cols=3, a_shape=("u", 8), b_shape=("s", 16),
                                     depth=32, operand_stage=True, sum_register=False,
                                     ready_ahead=True, row_valids=True, multiplier="ecp5"),
    "1x1-s2xu1-d2-ahead": dict(rows=1, cols=1, a_shape=("s", 2), b_shape=("u", 1), depth=2,
                               sum_register=False, ready_ahead=True),
    "8x8-s18xs18-d4096-accumulators": dict(rows=8, cols=8, a_shape=("s", 18), b_shape=("s", 18),
                                           depth=4096, operand_stage=True, sum_register=False),
    # Without the products' register (the iCEBreaker's lean core).
    "2x3-u8xs16-d32-one-stage": dict(rows=2, cols=3, a_shape=("u", 8), b_shape=("s", 16),
                                     depth=32, pipelined=False),
}


def shape(spec):
    kind, width = spec
    return signed(width) if kind == "s" else unsigned(width)


def run(tmp_path_factory, name, sim, cycles, **extra):
    case = CASES[name]
    p = dict(rows=case["rows"], cols=case["cols"], a_shape=shape(case["a_shape"]),
             b_shape=shape(case["b_shape"]), depth=case["depth"],
             pipelined=case.get("pipelined", True),
             operand_stage=case.get("operand_stage", False),
             sum_register=case.get("sum_register", True),
             ready_ahead=case.get("ready_ahead", False),
             row_valids=case.get("row_valids", False),
             multiplier=case.get("multiplier", "inferred"))
    unit = MacArray(**p)
    params = dict(p, a_shape=case["a_shape"], b_shape=case["b_shape"], cycles=cycles, idle=0.3,
                  stall=0.3, seed=11, extreme=False)
    params.update(extra)
    run_case(tmp_path_factory, unit, "mac_array", params, sim, name)


FAST = ["2x3-u8xs16-d32", "1x1-s2xu1-d2", "2x3-u8xs16-d32-one-stage", "2x3-u8xs16-d32-operands",
        "1x1-s2xu1-d2-operands", "2x3-u8xs16-d32-accumulators", "1x1-s2xu1-d2-accumulators",
        "2x2-s4xs4-d3-accumulators-unstaged", "2x3-u8xs16-d32-ahead", "1x1-s2xu1-d2-ahead",
        "2x3-u8xs16-d32-rows", "2x3-u8xs16-d32-rows-ecp5"]


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST, icarus=True))
def test_mac_array(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim, cycles=cycles())


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n in FAST else pytest.mark.slow)
                                  for n in CASES])
def test_mac_array_extreme_operands(tmp_path_factory, name):
    """Most negative x most negative over the deepest sum the array is sized for."""
    depth = CASES[name]["depth"]
    run(tmp_path_factory, name, "verilator", cycles=min(3 * depth + 50, 20_000), extreme=True,
        idle=0.0, stall=0.0)


def test_perturbed_signedness_is_caught(tmp_path_factory):
    run(tmp_path_factory, "4x4-s16xs16-d1000", "verilator", cycles=2_000, mutate="sign")


@pytest.mark.parametrize("name", ["2x3-u8xs16-d32", "2x3-u8xs16-d32-operands",
                                  "2x3-u8xs16-d32-rows-ecp5"])
def test_operand_stage_timing_is_checked(tmp_path_factory, name):
    """Each array checked against the model with the operand stage the other way: the
    checker must notice."""
    run(tmp_path_factory, name, "verilator", cycles=2_000, mutate="stage")


@pytest.mark.parametrize("name", ["2x3-u8xs16-d32-operands", "2x3-u8xs16-d32-accumulators",
                                  "2x2-s4xs4-d3-accumulators-unstaged", "1x1-s2xu1-d2-ahead"])
def test_sum_register_is_checked(tmp_path_factory, name):
    """Each array checked against the model with the sum register the other way (its sums
    shown a cycle apart, the products held for a different wait): the checker must notice."""
    run(tmp_path_factory, name, "verilator", cycles=2_000, mutate="sums")


def test_operand_stage_needs_the_pipelined_array():
    with pytest.raises(ValueError, match="pipelined"):
        MacArray(2, 2, signed(4), signed(4), 4, pipelined=False, operand_stage=True)


def test_block_multipliers_need_the_operand_stage():
    with pytest.raises(ValueError, match="operand stage"):
        MacArray(2, 2, signed(4), signed(4), 4, multiplier="ecp5")
    with pytest.raises(ValueError, match="must be one of"):
        MacArray(2, 2, signed(4), signed(4), 4, operand_stage=True, multiplier="dsp48")


def test_ready_ahead_needs_the_accumulators_shown():
    with pytest.raises(ValueError, match="sum register"):
        MacArray(2, 2, signed(4), signed(4), 4, ready_ahead=True)


def test_accumulator_sums_need_the_pipelined_array():
    with pytest.raises(ValueError, match="pipelined"):
        MacArray(2, 2, signed(4), signed(4), 4, pipelined=False, sum_register=False)


# A refused constructor leaves a half-built component, collected here under the filter.
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("rows,cols,depth", [(0, 1, 1), (1, 0, 1), (1, 1, 0), (-1, 2, 2)])
def test_sizes_must_be_positive(rows, cols, depth):
    with pytest.raises(ValueError, match="positive") as refused:
        MacArray(rows, cols, signed(4), signed(4), depth)
    del refused
    gc.collect()


def test_smallest_sizes_are_accepted():
    """1 x 1 lanes summing 1 beat: the bound of the check above."""
    unit = MacArray(1, 1, signed(4), unsigned(3), 1)
    assert unit.acc_shape == signed(7)
    Fragment.get(unit, None)
