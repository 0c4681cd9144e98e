"""cocotb testbench of hw/backproject.py against sw_model/units/backproject.py."""

import random

import cocotb
import numpy as np
from cocotb.clock import Clock

from hw.backproject import BackProjection
from sim import params as tb_params
from sim.packing import pack
from sim.stream_bench import StreamDriver, StreamSink, check_stream_unit, reset
from sw_model.units.backproject import BackProjectionModel


@cocotb.test()
async def backproject_matches_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    args = (p["classes"], p["lanes"], p["error_bits"], p["classifier_bits"], p["delta_shift"],
            p["delta_bits"], p["feedback"])
    unit = BackProjection(*args)
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start())
    for name in ("i__valid", "i__payload", "o__ready"):
        getattr(dut, name).value = 0
    await reset(dut)
    emax = (1 << (p["error_bits"] - 1)) - 1
    kmax = (1 << p["classifier_bits"]) - 1

    def error():
        return rng.choice([-emax - 1, emax]) if rng.random() < 0.2 else rng.randint(-emax - 1,
                                                                                     emax)

    def source():
        chunks = lambda: [[rng.choice([0, kmax]) if rng.random() < 0.2 else rng.randint(0, kmax)
                           for _ in range(p["classes"])] for _ in range(p["lanes"])]
        return pack({"errors": [error() for _ in range(p["classes"])], "m": chunks(),
                     "f": chunks(), "active": rng.randrange(1 << p["lanes"])}, unit.in_layout)

    driver = StreamDriver("i", source, idle=p["idle"], rng=rng)
    sink = StreamSink("o", stall=p["stall"], rng=rng)
    extra = {}
    if p.get("mutate") == "rounding":             # round half up instead of half to even
        extra["rounding"] = lambda x, s: np.floor(np.asarray(x) * 2.0 ** -s + 0.5)
    model = BackProjectionModel(p["classes"], p["lanes"], p["classifier_bits"], p["delta_shift"],
                                p["delta_bits"], p["feedback"], **extra)
    await check_stream_unit(dut, p, model, unit.in_layout, unit.o.payload.shape(), driver, sink)
