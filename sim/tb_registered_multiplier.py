"""cocotb testbench of hw/registered_multiplier.py against sw_model/units/registered_multiplier.py,
every cycle, with random operands (the extremes often) and random loads."""

import random

import cocotb
from amaranth.hdl import signed, unsigned
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from sim import params as tb_params
from sim.packing import to_int
from sim.stream_bench import Checker, Monitor, PackedModel, run_checked
from sw_model.units.registered_multiplier import RegisteredMultiplierModel


def _operand(rng, shape):
    low = -(1 << (shape.width - 1)) if shape.signed else 0
    high = (1 << (shape.width - shape.signed)) - 1
    return rng.choice([low, high, 0, -1 if shape.signed else 1, rng.randint(low, high),
                       rng.randint(low, high)])


@cocotb.test()
async def registered_multiplier_matches_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start(start_high=False))
    dut.a.value = dut.b.value = dut.load.value = 0
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    model = RegisteredMultiplierModel()
    if p.get("mutate") == "unregistered":           # the product of the applied operands
        model.outputs = lambda inputs: {"product": inputs["a"] * inputs["b"]}
    elif p.get("mutate") == "always_load":          # the operands taken at every edge
        base_step = model.step
        model.step = lambda inputs: base_step({**inputs, "load": 1})
    shapes = {name: (signed if p[f"{name}_signed"] else unsigned)(p[f"{name}_bits"])
              for name in ("a", "b", "product")}
    # "unsigned": the model reads the operands (and so the product) without their signs.
    read_as = ({name: unsigned(shape.width) for name, shape in shapes.items()}
               if p.get("mutate") == "unsigned" else shapes)

    def inputs():
        a, b = (to_int(_operand(rng, shapes[name]), shapes[name]) for name in ("a", "b"))
        return {"a": a, "b": b, "load": int(rng.random() < p["load"])}

    monitor = Monitor(dut, ["product"])
    packed = PackedModel(model, {"a": read_as["a"], "b": read_as["b"]},
                         {"product": read_as["product"]})
    await run_checked(dut, p, inputs, packed, monitor, Checker())
