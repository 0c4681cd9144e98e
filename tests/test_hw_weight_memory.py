"""hw/weight_memory.py: random bursts with random stalls return what was written (Amaranth sim)."""

import random

from amaranth.sim import Simulator

from hw.weight_memory import OnChipWeightMemory


def test_bursts_with_stalls():
    rng = random.Random(5)
    depth, word_bits = 64, 24
    dut = OnChipWeightMemory(8, word_bits, depth)
    model = [0] * depth
    errors = []

    async def tb(ctx):
        bus = dut.bus
        for _ in range(40):
            addr = rng.randrange(depth - 8)
            n = rng.randint(1, 8)
            if rng.random() < 0.5:
                ctx.set(bus.aw.payload.addr, addr)
                ctx.set(bus.aw.payload.len, n)
                ctx.set(bus.aw.valid, 1)
                while not ctx.get(bus.aw.ready):
                    await ctx.tick()
                await ctx.tick()
                ctx.set(bus.aw.valid, 0)
                for k in range(n):
                    while rng.random() < 0.3:
                        ctx.set(bus.w.valid, 0)
                        await ctx.tick()
                    value = rng.randrange(1 << word_bits)
                    ctx.set(bus.w.payload, value)
                    ctx.set(bus.w.valid, 1)
                    while not ctx.get(bus.w.ready):
                        await ctx.tick()
                    await ctx.tick()
                    model[addr + k] = value
                ctx.set(bus.w.valid, 0)
            else:
                ctx.set(bus.ar.payload.addr, addr)
                ctx.set(bus.ar.payload.len, n)
                ctx.set(bus.ar.valid, 1)
                while not ctx.get(bus.ar.ready):
                    await ctx.tick()
                await ctx.tick()
                ctx.set(bus.ar.valid, 0)
                got = []
                while len(got) < n:
                    ready = rng.random() < 0.6
                    ctx.set(bus.r.ready, ready)
                    if ready and ctx.get(bus.r.valid):
                        got.append(ctx.get(bus.r.payload))
                    await ctx.tick()
                ctx.set(bus.r.ready, 0)
                if got != model[addr:addr + n]:
                    errors.append((addr, n, got, model[addr:addr + n]))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert not errors, errors[:3]
