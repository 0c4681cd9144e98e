"""hw/core/weight_stream.py: the burst commands of a restart, and the words through both FIFOs
in order, under random bus and consumer stalls (Amaranth simulator)."""

import random

import pytest
from amaranth.sim import Simulator

from hw.core.weight_stream import WeightStream


@pytest.mark.parametrize("registered_write", [False, True])
@pytest.mark.parametrize("bursts,fan_in,base,w_rate", [(1, 0, 0, 0.5), (3, 4, 100, 0.5),
                                                       (5, 9, 2**12 - 7, 0.5),
                                                       (5, 9, 2**12 - 7, 0.1)])
def test_bursts_and_words_in_order(bursts, fan_in, base, w_rate, registered_write):
    """Bursts issued, words read and written in order, ``write_idle`` not before the last
    word is written; a slow bus (``w_rate``) fills the write FIFO."""
    dut = WeightStream(addr_bits=12, word_bits=16, count_bits=6,
                       registered_write=registered_write)
    rng = random.Random(bursts * 31 + fan_in)
    words = [rng.getrandbits(16) for _ in range(bursts * (fan_in + 1))]
    got = {"ar": [], "aw": [], "rd": [], "w": [], "idle_early": 0, "refused": 0}

    async def tb(ctx):
        ctx.set(dut.fan_in, fan_in)
        ctx.set(dut.start.bursts, bursts)
        ctx.set(dut.start.base, base)
        ctx.set(dut.start.read, 1)
        ctx.set(dut.start.write, 1)
        await ctx.tick()
        ctx.set(dut.start.read, 0)
        ctx.set(dut.start.write, 0)
        r_next = wr_next = 0
        for _ in range(40 * len(words) + 100):
            ar_ready, aw_ready = rng.random() < 0.5, rng.random() < 0.5
            r_valid = r_next < len(words) and rng.random() < 0.6
            ctx.set(dut.mem.ar.ready, ar_ready)
            ctx.set(dut.mem.aw.ready, aw_ready)
            ctx.set(dut.mem.r.valid, r_valid)
            ctx.set(dut.mem.r.payload, words[r_next] if r_valid else 0)
            ctx.set(dut.rd.ready, rng.random() < 0.5)
            wr_valid = wr_next < len(words) and rng.random() < 0.6
            ctx.set(dut.wr.valid, wr_valid)
            ctx.set(dut.wr.payload, words[wr_next] if wr_valid else 0)
            ctx.set(dut.mem.w.ready, rng.random() < w_rate)
            await ctx.delay(0)
            for name, port in (("ar", dut.mem.ar), ("aw", dut.mem.aw)):
                if ctx.get(port.valid) and ctx.get(port.ready):
                    got[name].append((ctx.get(port.payload.addr), ctx.get(port.payload.len)))
            if ctx.get(dut.rd.valid) and ctx.get(dut.rd.ready):
                got["rd"].append(ctx.get(dut.rd.payload))
            if ctx.get(dut.mem.w.valid) and ctx.get(dut.mem.w.ready):
                got["w"].append(ctx.get(dut.mem.w.payload))
            idle = ctx.get(dut.write_idle)
            got["idle_early"] += idle and (len(got["w"]) < wr_next or len(got["aw"]) < bursts)
            if r_valid and ctx.get(dut.mem.r.ready):
                r_next += 1
            if wr_valid and ctx.get(dut.wr.ready):
                wr_next += 1
            got["refused"] += wr_valid and not ctx.get(dut.wr.ready)
            await ctx.tick()
        await ctx.delay(0)
        assert ctx.get(dut.write_idle) and not ctx.get(dut.mem.ar.valid)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    commands = [((base + k * (fan_in + 1)) % 2**12, fan_in + 1) for k in range(bursts)]
    assert got["ar"] == commands and got["aw"] == commands
    assert got["rd"] == words and got["w"] == words
    assert not got["idle_early"]
    assert got["refused"] or w_rate > 0.2                  # a slow bus fills the FIFO


def test_a_restart_wins_over_an_issued_command():
    dut = WeightStream(addr_bits=10, word_bits=8, count_bits=4)
    seen = []

    async def tb(ctx):
        ctx.set(dut.fan_in, 2)
        ctx.set(dut.start.bursts, 2)
        ctx.set(dut.start.base, 10)
        ctx.set(dut.start.read, 1)
        await ctx.tick()
        ctx.set(dut.start.base, 40)
        ctx.set(dut.mem.ar.ready, 1)                 # a command issued as the restart comes
        await ctx.tick()
        ctx.set(dut.start.read, 0)
        for _ in range(4):
            await ctx.delay(0)
            if ctx.get(dut.mem.ar.valid):
                seen.append(ctx.get(dut.mem.ar.payload.addr))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert seen == [40, 43]
