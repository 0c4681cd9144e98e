"""hw/host_link/conv_check.py against contract.limits.conv_problem: conv registers of real
architectures (good), each perturbed by one (a field, the filters, the fan-in), and random
words, every one judged alike after the check's latency (Amaranth simulator)."""

import random

from amaranth.sim import Simulator

from contract.architecture import parse_arch
from contract.limits import Limits, conv_problem
from contract.registers import CONV_FIELDS, conv_word
from hw.host_link.conv_check import CONV_CHECK_LATENCY, ConvCheck

LIMITS = Limits(rows=4, cols=4, classes=4, max_batch=8, max_layers=3, max_inputs=784,
                max_neurons=3136, act_bits=8, weight_bits=16, lfsr_width=31, weight_words=1 << 16,
                conv=True)
ARCHS = ["1x28x28-c16k5-p2-c32k5-p2-f10", "2x6x8-c5k3v-p2-c3k1-f6", "1x5x7-c2k5-f5",
         "3x8x8-c4k3-p2-f4", "1x4x4-c1k1-f2", "4x9x11-c3k3v-f5", "1x6x6-c4k3-p2-f8"]


def _cases(rng):
    cases = []
    for text in ARCHS:
        for layer in parse_arch(text).layers:
            if not hasattr(layer, "kernel"):
                continue
            word = conv_word(layer)
            cases.append((word, layer.filters, layer.fan_in))
            for name, (at, bits) in CONV_FIELDS.items():
                value = (word >> at) & ((1 << bits) - 1)
                for changed in (value - 1, value + 1):
                    if 0 <= changed < 1 << bits:
                        cases.append((word & ~(((1 << bits) - 1) << at) | changed << at,
                                      layer.filters, layer.fan_in))
            cases += [(word, layer.filters + 1, layer.fan_in),
                      (word, layer.filters, layer.fan_in + 1), (0, 7, 9)]
    for _ in range(400):
        k, c = rng.randrange(16), rng.randrange(5)
        word = (rng.randrange(1, 12) | rng.randrange(1, 12) << 8 | k << 16
                | rng.getrandbits(2) << 20 | c << 22)
        cases.append((word, rng.randrange(1, 64), k * k * c if rng.random() < 0.7
                      else rng.randrange(1, 800)))
    return cases


def test_the_rtl_judges_as_the_contract():
    rng = random.Random(5)
    cases = _cases(rng)
    want = [conv_problem(word, f, j, LIMITS) is not None for word, f, j in cases]
    assert 0.2 < sum(want) / len(want) < 0.8            # both verdicts are exercised
    dut = ConvCheck(LIMITS.max_inputs, LIMITS.max_neurons, 12, 10)
    got = []

    async def tb(ctx):
        for k in range(len(cases) + CONV_CHECK_LATENCY):
            if k >= CONV_CHECK_LATENCY:              # the verdict on the inputs set then
                got.append(bool(ctx.get(dut.bad)))
            if k < len(cases):
                word, filters, fan_in = cases[k]
                ctx.set(dut.value, word)
                ctx.set(dut.filters, filters)
                ctx.set(dut.fan_in, fan_in)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    mismatches = [(hex(cases[i][0]), cases[i][1:], conv_problem(cases[i][0], *cases[i][1:],
                                                                 LIMITS))
                  for i in range(len(cases)) if got[i] != want[i]]
    assert not mismatches, mismatches[:5]
