"""hw/registered_multiplier.py against its per-cycle model, inferred and as an ECP5 MULT18X18D
(through sim/primitives/MULT18X18D.v), on Verilator and Icarus."""

import gc

import pytest
from amaranth.hdl import signed, unsigned

from hw.registered_multiplier import RegisteredMultiplier
from tests.rtl_sweep import cycles, run_case, sweep

CASES = {
    # The training core's lanes: two 16-bit signed operands.
    "ecp5-s16-s16": dict(primitive="ecp5", a=signed(16), b=signed(16)),
    "inferred-s16-s16": dict(primitive="inferred", a=signed(16), b=signed(16)),
    # The block's full width, and operands of either signedness.
    "ecp5-s18-u18": dict(primitive="ecp5", a=signed(18), b=unsigned(18)),
    "ecp5-u7-s5": dict(primitive="ecp5", a=unsigned(7), b=signed(5), load=0.9),
    "inferred-u7-s5": dict(primitive="inferred", a=unsigned(7), b=signed(5), load=0.1),
}
FAST = ["ecp5-s16-s16", "inferred-s16-s16", "ecp5-s18-u18", "ecp5-u7-s5"]


def run(tmp_path_factory, name, sim, cycles, **extra):
    case = CASES[name]
    unit = RegisteredMultiplier(case["a"], case["b"], primitive=case["primitive"])
    params = dict(a_bits=case["a"].width, a_signed=case["a"].signed, b_bits=case["b"].width,
                  b_signed=case["b"].signed, product_bits=unit.product_shape.width,
                  product_signed=unit.product_shape.signed,
                  load=case.get("load", 0.5), cycles=cycles, seed=11)
    params.update(extra)
    run_case(tmp_path_factory, unit, "registered_multiplier", params, sim, name)


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST, icarus=True))
def test_registered_multiplier(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim, cycles=cycles())


@pytest.mark.parametrize("mutate", ["unregistered", "always_load", "unsigned"])
def test_perturbed_model_is_caught(tmp_path_factory, mutate):
    """The model without the operand registers, with a register that ignores ``load``, or
    reading the operands unsigned: the bench of the ECP5 block must notice each."""
    run(tmp_path_factory, "ecp5-s18-u18", "verilator", cycles=500, mutate=mutate)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("a,b,primitive,match", [
    (signed(19), signed(8), "ecp5", "at most 18"),
    (signed(8), unsigned(20), "ecp5", "at most 18"),
    (signed(8), signed(8), "dsp48", "must be one of"),
])
def test_choices_are_checked(a, b, primitive, match):
    with pytest.raises(ValueError, match=match) as refused:
        RegisteredMultiplier(a, b, primitive=primitive)
    del refused
    gc.collect()


@pytest.mark.parametrize("overrides,match", [
    (dict(pipelined=False), "operand stage"),          # the iCEBreaker's lean core
    (dict(operand_stage=False), "operand stage"),
])
def test_core_refuses_block_multipliers_it_cannot_hold(overrides, match):
    from contract.config import ConfigError, NetConfig
    from hw.params import CoreParams
    cfg = NetConfig(arch=(64, 16), batch=4, multiplier="ecp5")
    with pytest.raises(ConfigError, match=match):
        CoreParams.from_config(cfg, **overrides)


def test_core_refuses_operands_wider_than_the_block():
    from contract.config import ConfigError, NetConfig
    from hw.params import CoreParams
    cfg = NetConfig(arch=(64, 16), batch=4, weight_bits=32, weight_frac=28, multiplier="ecp5")
    with pytest.raises(ConfigError, match="takes 18"):
        CoreParams.from_config(cfg)
