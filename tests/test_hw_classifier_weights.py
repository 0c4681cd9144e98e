"""hw/classifier_weights.py regenerates exactly the golden model's M (Amaranth simulator)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.classifier_weights import ClassifierWeights
from sw_model.lfsr import classifier_weights, feedback_weights


@pytest.mark.parametrize("width,classes,bits,feedback", [
    (31, 10, 4, "symmetric"), (31, 10, 4, "sign"), (16, 3, 2, "sign"), (64, 2, 1, "symmetric"),
    (20, 7, 8, "sign")])
def test_regenerates_the_golden_classifier_and_replays(width, classes, bits, feedback):
    neurons, seed, fb_seed = 37, 0x2A5B1 % (1 << width) or 1, 0x1F00D % (1 << width) or 1
    want = classifier_weights(width, seed, classes, neurons, bits)
    if feedback == "sign":
        want = feedback_weights(want, width, fb_seed, bits)
    dut = ClassifierWeights(width, classes, bits, feedback)
    columns = []

    async def tb(ctx):
        ctx.set(dut.seed, seed)
        ctx.set(dut.feedback_seed, fb_seed)
        ctx.set(dut.load, 1)
        await ctx.tick()
        ctx.set(dut.load, 0)
        for j in range(neurons):
            ctx.set(dut.o.ready, j % 3 != 2)           # stall every third cycle
            await ctx.delay(0)
            if ctx.get(dut.o.ready):
                columns.append([ctx.get(dut.o.payload[c]) for c in range(classes)])
            await ctx.tick()
        ctx.set(dut.load, 1)                            # replay for the backward projection
        await ctx.tick()
        ctx.set(dut.load, 0)
        columns.append([ctx.get(dut.o.payload[c]) for c in range(classes)])

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    got = np.array(columns[:-1]).T
    assert (got == want[:, :got.shape[1]]).all()
    assert columns[-1] == want[:, 0].tolist()
