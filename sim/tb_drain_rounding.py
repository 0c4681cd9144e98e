"""cocotb testbench of hw/core/drain_rounding.py against sw_model/units/drain_rounding.py: new
sums and shifts every cycle (ties, extremes, shifts beyond the sum's width), every output
compared every cycle."""

import random

import cocotb
import numpy as np
from cocotb.clock import Clock

from amaranth.hdl import signed

from hw.core.drain_rounding import DrainRounding
from sim import params as tb_params
from sim.packing import pack, unpack
from sim.stream_bench import Checker, Monitor, reset, run_checked
from sw_model.units.drain_rounding import DrainRoundingModel


@cocotb.test()
async def drain_rounding_matches_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    registered = p.get("registered_shift", False)
    unit = DrainRounding(p["lanes"], signed(p["sum_bits"]), registered_shift=registered)
    sums_layout, out_layout = unit.sums.shape(), unit.rounded.shape()
    quotient_layout = unit.quotient.shape()
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start(start_high=False))
    dut.sums.value = 0
    dut.shift.value = 0
    await reset(dut)
    smax = (1 << (p["sum_bits"] - 1)) - 1

    def one(shift):
        r = rng.random()
        if r < 0.1:
            return rng.choice([-smax - 1, smax, 0, -1])
        if r < 0.4 and shift:                                    # exact ties
            v = (2 * rng.randint(-1000, 1000) + 1) << (shift - 1)
        elif r < 0.6:
            v = rng.randint(-(8 << shift), 8 << shift)
        else:
            return rng.randint(-smax - 1, smax)
        return max(-smax - 1, min(smax, v))

    def inputs():
        shift = rng.randint(0, 31) if rng.random() < 0.2 else rng.randint(0, p["max_shift"])
        return {"shift": shift, "sums": pack([one(shift) for _ in range(p["lanes"])],
                                             sums_layout)}

    rounding = {}
    if p.get("mutate") == "half-up":
        rounding["rounding"] = lambda x, s: np.floor(np.asarray(x) * 2.0 ** -s + 0.5)
    # "timing": a registered shift checked as if it were not (or the reverse).
    model = DrainRoundingModel(p["lanes"], **rounding,
                               registered_shift=registered != (p.get("mutate") == "timing"))

    class Packed:
        def outputs(self, values):
            out = model.outputs(values)
            return {"rounded": pack(out["rounded"], out_layout),
                    "quotient": pack(out["quotient"], quotient_layout),
                    "round_up": sum(u << k for k, u in enumerate(out["round_up"]))}

        def step(self, values):
            model.step({**values, "sums": unpack(values["sums"], sums_layout)})

    await run_checked(dut, p, inputs, Packed(),
                      Monitor(dut, ["rounded", "quotient", "round_up"]), Checker())
    if not p.get("mutate"):            # a perturbed run stops at its first mismatch
        dut._log.info(f"coverage: {model.coverage}")
        assert all(model.coverage.values()), model.coverage
