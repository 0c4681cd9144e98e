"""hw/weight_memory.py: random bursts with random stalls return what was written (Amaranth sim)."""

import gc
import random

import pytest
from amaranth.hdl import Const, Fragment
from amaranth.sim import Simulator

from hw.weight_memory import OnChipWeightMemory, SinglePortRam, SinglePortWeightMemory



class BankedOnChipWeightMemory(OnChipWeightMemory):
    """The block-RAM memory in banks of 16 words: the tests' memories span several."""
    BANK_WORDS = 16


MEMORIES = [OnChipWeightMemory, BankedOnChipWeightMemory, SinglePortWeightMemory]


async def command(ctx, stream, addr, n):
    ctx.set(stream.payload.addr, addr)
    ctx.set(stream.payload.len, n)
    ctx.set(stream.valid, 1)
    while not ctx.get(stream.ready):
        await ctx.tick()
    await ctx.tick()
    ctx.set(stream.valid, 0)


def simulate(dut, *benches):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for bench in benches:
        sim.add_testbench(bench)
    sim.run()


async def fill(ctx, bus, depth, first):
    """Word ``addr`` = ``first + addr`` at every address, a one-word burst each."""
    for addr in range(depth):
        await command(ctx, bus.aw, addr, 1)
        ctx.set(bus.w.payload, first + addr)
        ctx.set(bus.w.valid, 1)
        await ctx.tick()
        ctx.set(bus.w.valid, 0)


async def read_words(ctx, bus, n, rng, ready_p, out):
    """Take ``n`` words from ``bus.r`` into ``out``, ready with probability ``ready_p``; a
    word that never comes (lost in the memory's buffer) fails the test, not hangs it."""
    for _ in range(50 * n + 100):
        if len(out) == n:
            break
        ready = rng.random() < ready_p
        ctx.set(bus.r.ready, ready)
        if ready and ctx.get(bus.r.valid):
            out.append(ctx.get(bus.r.payload))
        await ctx.tick()
    assert len(out) == n, f"{n - len(out)} of {n} words never read"
    ctx.set(bus.r.ready, 0)


@pytest.mark.parametrize("memory", MEMORIES, ids=lambda c: c.__name__)
def test_bursts_with_stalls(memory):
    rng = random.Random(5)
    depth, word_bits = 64, 24
    dut = memory(8, word_bits, depth)
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
                await command(ctx, bus.ar, addr, n)
                got = []
                await read_words(ctx, bus, n, rng, 0.6, got)
                if got != model[addr:addr + n]:
                    errors.append((addr, n, got, model[addr:addr + n]))

    simulate(dut, tb)
    assert not errors, errors[:3]


@pytest.mark.parametrize("memory", MEMORIES, ids=lambda c: c.__name__)
def test_read_modify_write_bursts_run_concurrently(memory):
    """The gradient phase's pattern: a read burst and a write burst over the same words in
    flight together, each word written (its value + 1) after it was read, with random stalls
    on both sides; then everything reads back."""
    rng = random.Random(9)
    depth, word_bits, n = 48, 16, 40
    dut = memory(6, word_bits, depth)
    bus = dut.bus
    read_values, errors = [], []

    async def writer(ctx):
        for k in range(depth):                               # initial contents: 3k
            await command(ctx, bus.aw, k, 1)
            ctx.set(bus.w.payload, 3 * k)
            ctx.set(bus.w.valid, 1)
            while not ctx.get(bus.w.ready):
                await ctx.tick()
            await ctx.tick()
            ctx.set(bus.w.valid, 0)
        await command(ctx, bus.aw, 4, n)
        for k in range(n):
            while len(read_values) <= k or rng.random() < 0.3:
                ctx.set(bus.w.valid, 0)
                await ctx.tick()
            ctx.set(bus.w.payload, read_values[k] + 1)
            ctx.set(bus.w.valid, 1)
            while not ctx.get(bus.w.ready):
                await ctx.tick()
            await ctx.tick()
        ctx.set(bus.w.valid, 0)
        for _ in range(8):
            await ctx.tick()
        await command(ctx, bus.ar, 0, depth)
        got = []
        await read_words(ctx, bus, depth, rng, 1.0, got)
        want = [3 * k + (1 if 4 <= k < 4 + n else 0) for k in range(depth)]
        if got != want:
            errors.append((got, want))

    async def reader(ctx):
        while ctx.get(bus.aw.payload.len) != n:              # the update's bursts start
            await ctx.tick()
        await command(ctx, bus.ar, 4, n)
        await read_words(ctx, bus, n, rng, 0.7, read_values)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(writer)
    sim.add_testbench(reader)
    sim.run()
    assert read_values == [3 * k for k in range(4, 4 + n)]
    assert not errors, errors[0]


@pytest.mark.parametrize("depth,addr_bits", [(1, 1), (2, 1), (3, 2), (64, 6), (1 << 14, 14)])
def test_single_port_ram_ports(depth, addr_bits):
    """The address is exactly a word index wide (a bit at least, for one word): the
    simulations, driving it in range, cannot tell a wider port."""
    ram = SinglePortRam(24, depth)
    assert [len(p) for p in (ram.addr, ram.wdata, ram.we, ram.re, ram.rdata)] == \
        [addr_bits, 24, 1, 1, 24]
    Fragment.get(ram, None)


class _Ice40:
    family = "iCE40"


def test_single_port_ram_is_spram_primitives_on_ice40():
    """On an iCE40 the RAM is SB_SPRAM256KA primitives, 16 bits of the word each: always
    selected, awake and powered (POWEROFF is active low), every nibble written (MASKWREN has a
    bit a nibble). The Amaranth simulation never builds them (no platform): check the
    instances' ports."""
    ram = SinglePortRam(32, 1 << 14)
    parts = {name: sub for sub, name, *_ in Fragment.get(ram, _Ice40()).subfragments}
    assert sorted(parts) == ["spram_0", "spram_1"]
    for k in range(2):
        spram = parts[f"spram_{k}"]
        assert spram.type == "SB_SPRAM256KA"
        ports = {name: value for name, (value, _) in spram.ports.items()}
        constants = {name: Const.cast(ports[name]).value
                     for name in ("MASKWREN", "CHIPSELECT", "STANDBY", "SLEEP", "POWEROFF")}
        assert constants == {"MASKWREN": 0b1111, "CHIPSELECT": 1, "STANDBY": 0, "SLEEP": 0,
                             "POWEROFF": 1}
        assert ports["ADDRESS"] is ram.addr and ports["WREN"] is ram.we
        for name, word in (("DATAIN", ram.wdata), ("DATAOUT", ram.rdata)):
            lanes = ports[name]
            assert (lanes.value, lanes.start, lanes.stop) == (word, 16 * k, 16 * k + 16)


# A refused size raises inside elaborate(), leaving its half-built Module unused.
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("width,depth,fits", [(32, 1 << 14, True), (16, 100, True),
                                              (24, 16, False), (16, (1 << 14) + 1, False)])
def test_single_port_ram_on_ice40_takes_whole_sprams_only(width, depth, fits):
    ram = SinglePortRam(width, depth)
    if fits:
        Fragment.get(ram, _Ice40())
    else:
        with pytest.raises(ValueError, match="SPRAM") as refused:
            Fragment.get(ram, _Ice40())
        del refused
        gc.collect()            # the half-built Module goes here, under the filter above


def test_block_ram_reads_a_word_a_cycle_behind_its_buffer():
    """A burst read with ``r.ready`` held high: the first word six cycles after the burst is
    taken (its read issued, the banked RAM's four-cycle read, written into the read buffer,
    the buffer's output register), then one word every cycle, in order."""
    depth = 64
    dut = OnChipWeightMemory(8, 16, depth)
    seen = []

    async def tb(ctx):
        bus = dut.bus
        await fill(ctx, bus, depth, 1000)
        ctx.set(bus.r.ready, 1)
        await command(ctx, bus.ar, 10, 20)
        for cycle in range(30):
            if ctx.get(bus.r.valid):
                seen.append((cycle, ctx.get(bus.r.payload)))
            await ctx.tick()

    simulate(dut, tb)
    assert [word for _, word in seen] == list(range(1010, 1030))
    cycles = [cycle for cycle, _ in seen]
    assert cycles == list(range(cycles[0], cycles[0] + 20)) and cycles[0] == 6


@pytest.mark.parametrize("memory", MEMORIES, ids=lambda c: c.__name__)
def test_a_stalled_reader_loses_no_word(memory):
    """A burst longer than the read buffer while ``r.ready`` stays low for a while: the reads
    on their way through the RAM must fit the buffer (a read is issued only with room for
    every read still in flight), so every word arrives, in order."""
    depth = 48
    dut = memory(6, 16, depth)
    got = []

    async def tb(ctx):
        bus = dut.bus
        await fill(ctx, bus, depth, 500)
        ctx.set(bus.r.ready, 0)
        await command(ctx, bus.ar, 3, 40)
        for _ in range(30):                              # the reader stalls
            await ctx.tick()
        await read_words(ctx, bus, 40, random.Random(2), 0.5, got)

    simulate(dut, tb)
    assert got == list(range(503, 543))
