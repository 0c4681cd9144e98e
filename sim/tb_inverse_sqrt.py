"""cocotb testbench of hw/core/inverse_sqrt.py against sw_model/units/inverse_sqrt.py: arguments
of every bit length, at the edges of the power-of-four windows (``2**k - 1``, ``2**k``,
``2**k + 1``) and random, valid on random cycles; every output compared every cycle."""

import random

import cocotb
from cocotb.clock import Clock

from hw.core.inverse_sqrt import InverseSqrt
from sim import params as tb_params
from sim.packing import pack
from sim.stream_bench import Checker, FieldMonitor, reset, run_checked, struct_fields
from sw_model.units.inverse_sqrt import InverseSqrtModel


@cocotb.test()
async def inverse_sqrt_matches_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    unit = InverseSqrt(p["arg_bits"])
    in_layout, out_layout = unit.i.shape(), unit.o.shape()
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start(start_high=False))
    dut.i.value = 0
    await reset(dut)
    top = (1 << p["arg_bits"]) - 1

    def argument():
        bits = rng.randint(1, p["arg_bits"])
        r = rng.random()
        if r < 0.3:
            a = (1 << bits) + rng.choice([-1, 0, 1])
        elif r < 0.4:
            a = rng.randint(1, 1 << 10)
        else:
            a = rng.randint(1 << (bits - 1), (1 << bits) - 1)
        return max(1, min(top, a))

    def inputs():
        return {"i": pack({"valid": int(rng.random() >= p["idle"]), "a": argument()},
                          in_layout)}

    options = {}
    if p.get("mutate") == "floor-j":             # j = floor((bits - 8) / 2) instead of ceil
        def floor_split(a):
            j = max(0, (a.bit_length() - 8) // 2)
            u = a >> (2 * j)
            return InverseSqrtModel().parts(u if u < 256 else a)[0], j
        options["parts"] = floor_split
    model = InverseSqrtModel(**options)

    class Unpacking:
        def outputs(self, values):
            return struct_fields(model.outputs(values)["o"], out_layout, "o")

        def step(self, values):
            from sim.packing import unpack
            model.step({"i": unpack(values["i"], in_layout)})

    await run_checked(dut, p, inputs, Unpacking(), FieldMonitor(dut, {"o": out_layout}),
                      Checker())
    if not p.get("mutate"):
        dut._log.info(f"coverage: {model.coverage}")
        wanted = dict(model.coverage)
        if p["arg_bits"] <= 40:
            assert wanted.pop("wide") == 0
        assert all(wanted.values()), model.coverage
