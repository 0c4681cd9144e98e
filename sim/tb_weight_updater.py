"""cocotb testbench of hw/core/weight_updater.py against sw_model/units/weight_updater.py:
random idle cycles on both input streams, backpressure on the output, the rounding switched at
run time; every output compared every cycle."""

import random

import cocotb
from cocotb.clock import Clock

from amaranth.hdl import signed

from hw.core.weight_updater import WeightUpdater
from sim import params as tb_params
from sim.packing import pack
from sim.stream_bench import (Checker, Monitor, PackedModel, StreamDriver, StreamSink, reset,
                              run_checked)
from sw_model.units.weight_updater import WeightUpdaterModel


@cocotb.test()
async def weight_updater_matches_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    lanes, wbits, gbits, rbits = p["lanes"], p["weight_bits"], p["grad_bits"], p["round_bits"]
    registered = p.get("registered", False)
    unit = WeightUpdater(lanes, signed(gbits), wbits, rbits, registered_input=registered)
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start(start_high=False))
    for name in ("i__valid", "i__payload", "old__valid", "old__payload", "new__ready",
                 "stochastic"):
        getattr(dut, name).value = 0
    await reset(dut)
    gmax, wmax = (1 << (gbits - 1)) - 1, (1 << (wbits - 1)) - 1

    def grad(shift):
        r = rng.random()
        if r < 0.1:
            return rng.choice([-gmax - 1, gmax])                 # saturate at both ends
        if r < 0.3 and shift:                                    # exact ties
            v = (2 * rng.randint(-64, 64) + 1) << (shift - 1)
        elif r < 0.5:
            v = rng.randint(-(4 << shift), 4 << shift)           # around one LSB
        elif r < 0.6:                                            # around the saturation
            v = rng.randint(-(4 * wmax) << shift, (4 * wmax) << shift)
        else:
            return rng.randint(-gmax - 1, gmax)
        return max(-gmax - 1, min(gmax, v))

    def beat():
        shift = rng.randint(*p["shifts"])
        return pack({"grad": [grad(shift) for _ in range(lanes)], "shift": shift,
                     "rand": [rng.randrange(1 << rbits) for _ in range(lanes)]}, unit.in_layout)

    def old_word():
        return pack([rng.choice([-wmax - 1, wmax]) if rng.random() < 0.1 else
                     rng.randint(-wmax - 1, wmax) for _ in range(lanes)], unit.word_layout)

    beats = StreamDriver("i", beat, idle=p["idle"], rng=rng)
    olds = StreamDriver("old", old_word, idle=p["idle"], rng=rng)
    sink = StreamSink("new", stall=p["stall"], rng=rng)
    # Perturbations: ``mutate`` a rounding (the model's whatever ``stochastic`` says), or
    # "timing" (the model with the input register the unit lacks, or without the one it has).
    mutate = p.get("mutate")
    model = WeightUpdaterModel(lanes, wbits, rbits,
                               rounding=None if mutate == "timing" else mutate,
                               registered_input=registered != (mutate == "timing"))
    packed = PackedModel(model, {"i__payload": unit.in_layout, "old__payload": unit.word_layout},
                         {"new__payload": unit.word_layout})
    monitor = Monitor(dut, ["i__ready", "old__ready", "new__valid", "new__payload", "busy"])

    def inputs():
        return {**beats.inputs(), **olds.inputs(), **sink.inputs(),
                "stochastic": int(rng.random() < 0.5)}

    def after_edge(applied, got):
        beats.after_edge(applied["i__valid"] and got["i__ready"])
        olds.after_edge(applied["old__valid"] and got["old__ready"])

    await run_checked(dut, p, inputs, packed, monitor, Checker(), after_edge)
    if not mutate:                     # a perturbed run stops at its first mismatch
        dut._log.info(f"coverage: {model.coverage}")
        assert all(model.coverage.values()), model.coverage
