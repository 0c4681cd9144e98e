"""cocotb testbench of hw/registered_multiplier.py against sw_model/units/registered_multiplier.py,
every cycle, with random operands (the extremes often) and random loads."""

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from sim import params as tb_params
from sim.stream_bench import Checker, Monitor, run_checked
from sw_model.units.registered_multiplier import RegisteredMultiplierModel


def _operand(rng, bits, signed):
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return rng.choice([low, high, 0, -1 if signed else 1, rng.randint(low, high),
                       rng.randint(low, high)])


class _Packed:
    """The model on the ports' bit patterns: operands two's complement as their shapes say."""

    def __init__(self, model, p):
        self.model, self.p = model, p

    def _value(self, raw, bits, signed):
        return raw - (1 << bits) if signed and raw >> (bits - 1) else raw

    def _unpacked(self, inputs):
        p = self.p
        return {"load": inputs["load"],
                "a": self._value(inputs["a"], p["a_bits"], p["a_signed"]),
                "b": self._value(inputs["b"], p["b_bits"], p["b_signed"])}

    def outputs(self, inputs):
        product = self.model.outputs(self._unpacked(inputs))["product"]
        return {"product": product & ((1 << self.p["product_bits"]) - 1)}

    def step(self, inputs):
        self.model.step(self._unpacked(inputs))


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
    elif p.get("mutate") == "unsigned":             # the operands read without their signs
        p = {**p, "a_signed": False, "b_signed": False}

    def inputs():
        a = _operand(rng, p["a_bits"], p["a_signed"]) & ((1 << p["a_bits"]) - 1)
        b = _operand(rng, p["b_bits"], p["b_signed"]) & ((1 << p["b_bits"]) - 1)
        return {"a": a, "b": b, "load": int(rng.random() < p["load"])}

    monitor = Monitor(dut, ["product"])
    await run_checked(dut, p, inputs, _Packed(model, p), monitor, Checker())
