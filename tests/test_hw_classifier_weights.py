"""hw/core/classifier_weights.py regenerates exactly the golden model's M and K, cycle by cycle
(Amaranth simulator): stalls, replays, and the feedback mode switched at run time."""

import random

import numpy as np
import pytest
from amaranth.hdl import Const, Module, Signal, signed
from amaranth.sim import Simulator

from hw.core.classifier_weights import ClassifierWeights, from_odd_part, odd_part
from sw_model.lfsr import classifier_weights, feedback_weights


@pytest.mark.parametrize("width,classes,bits,sign_feedback", [
    (31, 10, 4, False), (31, 10, 4, True), (16, 3, 2, True), (64, 2, 1, False),
    (20, 7, 8, True), (17, 5, 1, True)])
def test_regenerates_the_golden_classifier_and_feedback(width, classes, bits, sign_feedback):
    neurons, seed, fb_seed = 37, 0x2A5B1 % (1 << width) or 1, 0x1F00D % (1 << width) or 1
    m_want = classifier_weights(width, seed, classes, neurons, bits)
    k_sign = feedback_weights(m_want, width, fb_seed, bits)
    dut = ClassifierWeights(width, classes, bits, sign_feedback)
    rng = random.Random(width * classes + bits)
    checked = {"beats": 0, "replays": 0, "sign": 0}

    async def tb(ctx):
        ctx.set(dut.seed, seed)
        if sign_feedback:
            ctx.set(dut.feedback_seed, fb_seed)
        ctx.set(dut.load, 1)
        await ctx.tick()
        j = 0                                           # the neuron the next beat must carry
        for _ in range(400):
            ready, load = rng.random() < 0.7, rng.random() < 0.05
            sign = sign_feedback and rng.random() < 0.5
            ctx.set(dut.o.ready, ready)
            ctx.set(dut.load, load)
            if sign_feedback:
                ctx.set(dut.sign, sign)
            await ctx.delay(0)
            assert ctx.get(dut.o.valid) == 1
            got_m = [ctx.get(dut.o.payload.m[c]) for c in range(classes)]
            got_k = [ctx.get(dut.o.payload.k[c]) for c in range(classes)]
            assert got_m == m_want[:, j].tolist(), j
            assert got_k == (k_sign if sign else m_want)[:, j].tolist(), (j, sign)
            checked["beats"] += 1
            checked["sign"] += sign
            await ctx.tick()
            if load:
                j, checked["replays"] = 0, checked["replays"] + 1
            elif ready:
                j += 1
            if j == neurons:                            # a layer's neurons: start over
                ctx.set(dut.load, 1)
                ctx.set(dut.o.ready, 0)
                await ctx.tick()
                j = 0

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert checked["replays"] and (checked["sign"] or not sign_feedback)


def test_odd_part_round_trip():
    for bits in range(1, 6):
        for w in range(-(1 << bits) + 1, 1 << bits, 2):
            value = from_odd_part(odd_part(Const(w, signed(bits + 1))))
            assert _evaluate(value) == w


def _evaluate(expr):
    out = Signal(expr.shape())
    m = Module()
    m.d.comb += out.eq(expr)
    result = []

    async def tb(ctx):
        result.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
    return result[0]
