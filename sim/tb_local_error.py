"""cocotb testbench of hw/local_error.py against sw_model/units/local_error.py."""

import random

import cocotb
from cocotb.clock import Clock

from hw.local_error import LocalErrorUnit
from sim import params as tb_params
from sim.packing import pack
from sim.stream_bench import StreamDriver, StreamSink, check_stream_unit, reset
from sw_model.units.local_error import LocalErrorModel


@cocotb.test()
async def local_error_matches_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    unit = LocalErrorUnit(p["classes"], p["score_bits"], p["score_frac"], p["error_bits"])
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start(start_high=False))
    for name in ("i__valid", "i__payload", "o__ready", "clear"):
        getattr(dut, name).value = 0
    await reset(dut)
    smax = (1 << (p["score_bits"] - 1)) - 1
    one = 1 << p["score_frac"]

    def score():
        r = rng.random()
        if r < 0.15:
            return rng.choice([-smax - 1, smax])
        if r < 0.4:                       # around the margins, ties included
            return rng.choice([-one, one]) + rng.randint(-2, 2)
        if r < 0.5:
            return 0
        return rng.randint(-smax - 1, smax)

    def samples():
        """Each sample's beats, one class a beat, all with the sample's label (which may lie
        outside the classes: it then marks none)."""
        label_max = (1 << max(1, (p["classes"] - 1).bit_length())) - 1
        while True:
            scores = [score() for _ in range(p["classes"])]
            if rng.random() < 0.2:            # ties for the largest score
                scores[rng.randrange(p["classes"])] = max(scores)
            label = rng.randint(0, label_max)
            for s in scores:
                yield pack({"score": s, "label": label}, unit.in_layout)

    beats = samples()

    def source():
        return next(beats)

    driver = StreamDriver("i", source, idle=p["idle"], rng=rng)
    sink = StreamSink("o", stall=p["stall"], rng=rng)
    model = LocalErrorModel(p["classes"], p["score_bits"],
                            p["score_frac"] + (1 if p.get("mutate") else 0), p["error_bits"])
    await check_stream_unit(dut, p, model, unit.in_layout, unit.out_layout, driver, sink,
                            extra_outputs=["correct_count"],
                            extra_inputs=lambda: {"clear": int(rng.random() < 0.02)})
