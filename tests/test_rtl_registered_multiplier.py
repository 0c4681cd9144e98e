"""hw/registered_multiplier.py against its per-cycle model, inferred and as an ECP5 MULT18X18D
(through sim/primitives/MULT18X18D.v), on Verilator and Icarus."""

import gc
import re

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


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_a_site_places_the_block():
    """A site reaches nextpnr as the block's ``BEL`` attribute; no site, no attribute; a site
    for a multiplier that is not a block is refused."""
    from amaranth.back import rtlil
    from hw.core.forward_drain import ForwardDrain
    from hw.mac_array import MacArray
    placed = RegisteredMultiplier(signed(16), signed(16), primitive="ecp5",
                                  site="X41/Y34/MULT18_1")
    text = rtlil.convert(placed)
    assert 'attribute \\BEL "X41/Y34/MULT18_1"\n  cell \\MULT18X18D' in text
    assert "\\BEL" not in rtlil.convert(RegisteredMultiplier(signed(16), signed(16),
                                                             primitive="ecp5"))
    with pytest.raises(ValueError, match="places an ECP5 block") as refused:
        RegisteredMultiplier(signed(16), signed(16), site="X41/Y34/MULT18_1")
    del refused
    gc.collect()
    with pytest.raises(ValueError, match="sites place each lane") as refused:
        ForwardDrain(2, signed(20), signed(12), 8, 8, 4, 1, multiplier="ecp5",
                     sites=["X41/Y34/MULT18_1"])
    del refused
    gc.collect()
    with pytest.raises(ValueError, match="sites place each lane") as refused:
        MacArray(2, 2, signed(16), signed(16), 8, operand_stage=True, multiplier="ecp5",
                 sites=["X41/Y34/MULT18_1"] * 3)
    del refused
    gc.collect()


def test_floorplans_name_distinct_multiplier_sites():
    from contract.config import DSP_FLOORPLANS
    from hw.dsp_floorplans import dsp_sites
    assert dsp_sites("none") == (None, None)
    for name, shape in DSP_FLOORPLANS.items():
        if shape is None:
            continue
        lanes, dropout = dsp_sites(name)
        assert len(lanes) == shape[0] * shape[1] and len(dropout) == shape[1]
        assert len(set(lanes + dropout)) == len(lanes) + len(dropout)
        # The ECP5-85F's DSP rows, and the MULT18X18D sites of a DSP tile (0, 1, 4 and 5; the
        # tile's other sites, ALU54_3 and ALU54_7 among them, take no multiplier).
        assert all(re.fullmatch(r"X\d+/Y(10|34|58)/MULT18_[0145]", s) for s in lanes + dropout)
    with pytest.raises(ValueError, match="DSP floorplan"):
        dsp_sites("lfe5u-25f")


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("overrides,match", [
    (dict(array_rows=4, array_cols=4), "lanes of a 8 x 8 array"),
    (dict(multiplier="inferred"), 'needs multiplier = "ecp5"'),
    (dict(dsp_floorplan="xc7"), "must be one of"),
])
def test_a_floorplan_the_build_cannot_use_is_refused(overrides, match):
    from contract.config import ConfigError, NetConfig
    fields = dict(arch=[64, 16], batch=4, multiplier="ecp5", dsp_floorplan="lfe5u-85f-8x8")
    NetConfig.from_dict(fields)
    with pytest.raises(ConfigError, match=match):
        NetConfig.from_dict({**fields, **overrides})


def placed_sites(text):
    """``{module name: [its BEL attributes]}`` of an RTLIL text, for modules that have one."""
    placed = {}
    for module in text.split("\nmodule ")[1:]:
        name = module.split("\n", 1)[0].strip()
        sites = re.findall(r'attribute \\BEL "([^"]+)"', module)
        if sites:
            placed[name] = sites
    return placed


def test_the_array_puts_each_lane_on_its_own_site():
    """Lane ``p * Q + q``'s block, and the forward drain's lane ``q``'s, on its own site."""
    from amaranth.back import rtlil
    from hw.core.forward_drain import ForwardDrain
    from hw.dsp_floorplans import dsp_sites
    from hw.mac_array import MacArray
    lanes, dropout = dsp_sites("lfe5u-85f-8x8")
    array = MacArray(8, 8, unsigned(8), signed(16), 64, operand_stage=True, sum_register=False,
                     multiplier="ecp5", sites=lanes)
    placed = placed_sites(rtlil.convert(array))
    assert len(placed) == 64
    for name, sites in placed.items():
        assert sites == [lanes[int(re.search(r"multiplier_(\d+)$", name).group(1))]], name
    drain = ForwardDrain(8, signed(30), signed(12), 8, 8, 4, 3, multiplier="ecp5",
                         sites=dropout)
    placed = placed_sites(rtlil.convert(drain))
    assert len(placed) == 8
    for name, sites in placed.items():
        assert sites == [dropout[int(re.search(r"multiplier_(\d+)$", name).group(1))]], name


@pytest.mark.slow
def test_the_ulx3s_8x8_puts_every_block_on_its_floorplan_site():
    """configs/ulx3s_8x8.toml's board top: each MAC lane's block and each dropout lane's block
    carries its own site of the floorplan, and no other block has one (the whole 8 x 8 top:
    about a minute, hence ``make regress``)."""
    from gen.bitstream import prepare
    from hw.dsp_floorplans import dsp_sites
    _, cfg, _, plan = prepare("ulx3s", "configs/ulx3s_8x8.toml", lut_mapping="abc")
    lanes, dropout = dsp_sites(cfg.dsp_floorplan)
    placed = placed_sites(plan.files["top.il"])
    expected = {**{f"mac.multiplier_{k}": site for k, site in enumerate(lanes)},
                **{f"forward_drain.dropout_multiplier_{q}": site
                   for q, site in enumerate(dropout)}}
    assert len(placed) == len(expected) == 72
    for name, sites in placed.items():
        lane = re.search(r"(mac\.multiplier_\d+|forward_drain\.dropout_multiplier_\d+)$", name)
        assert lane and sites == [expected[lane.group(1)]], name
