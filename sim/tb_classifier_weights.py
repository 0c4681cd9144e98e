"""cocotb testbench of hw/core/classifier_weights.py against
sw_model/units/classifier_weights.py."""

import random

import cocotb
from amaranth.hdl import signed
from amaranth.lib import data
from cocotb.clock import Clock

from sim import params as tb_params
from sim.stream_bench import Checker, Monitor, PackedModel, StreamSink, reset, run_checked
from sw_model.units.classifier_weights import ClassifierWeightsModel


@cocotb.test()
async def classifier_weights_match_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    width, classes, bits, sign_feedback = p["width"], p["classes"], p["bits"], p["sign_feedback"]
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start(start_high=False))
    dut.load.value = 0
    dut.seed.value = 0
    dut.o__ready.value = 0
    if sign_feedback:
        dut.feedback_seed.value = 0
        dut.sign.value = 0
    await reset(dut)
    weights = data.ArrayLayout(signed(bits + 1), classes)
    model = PackedModel(
        ClassifierWeightsModel(width, classes, bits, sign_feedback,
                               odd=p.get("mutate") != "offset"),
        {}, {"o__payload": data.StructLayout({"m": weights, "k": weights})})
    sink = StreamSink("o", stall=p["stall"], rng=rng)
    seeds = [rng.randrange(0, 1 << width) for _ in range(16)] + [0]

    def inputs():
        load = int(rng.random() < p["load_rate"])
        beat = {"load": load, "seed": rng.choice(seeds) if load else 0, **sink.inputs()}
        if sign_feedback:
            # The feedback mode is a run-time register: switched at random, and so seen with
            # every weight and every stall.
            beat.update(feedback_seed=rng.choice(seeds) if load else 0,
                        sign=int(rng.random() < 0.5))
        return beat

    monitor = Monitor(dut, ["o__valid", "o__payload"])
    checker = Checker()
    await run_checked(dut, p, inputs, model, monitor, checker)
    dut._log.info(f"{checker.cycles} cycles match")
