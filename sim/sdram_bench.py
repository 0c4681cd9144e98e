"""An Amaranth-simulator bench of hw/sdram_controller.py against sim/sdram_model.py: a weight-bus
master issuing read and write bursts (random idle cycles on ``w``, random backpressure on ``r``),
a plain array as the reference, the device model on the pins (docs/SDRAM.md).

:func:`run_bursts` runs a list of bursts ``("r" | "w", addr, len)`` in order: a write burst's
words come from the bench's RNG, a read burst's are checked against the array when they arrive.
A read is only issued once the writes before it are accepted (the bus's rule for the core). It
returns a :class:`BenchResult` with the words read, the mismatches, the cycles and the device's
command counts; a timing rule broken raises the model's :class:`SdramTimingError`.
"""

import random
from dataclasses import dataclass, field

from amaranth.sim import Simulator

from contract.sdram import MT48LC16M16A2_6A
from hw.sdram_controller import SdramController
from sim.sdram_model import SdramModel, run_model

__all__ = ["BenchResult", "make_pair", "run_bursts", "run_phases"]


@dataclass
class BenchResult:
    mismatches: list = field(default_factory=list)
    words_read: int = 0
    words_written: int = 0
    cycles: int = 0             # from the first command to the last word
    start_cycle: int = 0        # the cycle the controller was ready
    model: object = None
    written: dict = field(default_factory=dict)     # addr -> the last word written there
    phase_cycles: list = field(default_factory=list)  # cycles each phase took
    phase_beats: list = field(default_factory=list)   # READ + WRITE commands in each phase
    phase_counts: list = field(default_factory=list)  # the model's command counts, each phase


def make_pair(timing, addr_bits=20, word_bits=64, max_postponed=0, part=MT48LC16M16A2_6A,
              **controller_args):
    """A controller and a device model for ``timing`` (its shortened power-up in both)."""
    dut = SdramController(addr_bits, word_bits, timing=timing, part=part, **controller_args)
    model = SdramModel(part, clock_hz=timing.clock_hz,
                       powerup_ns=timing.powerup * 1e9 / timing.clock_hz,
                       max_postponed=max_postponed)
    return dut, model


def run_bursts(dut, model, bursts, seed=0, w_idle=0.2, r_stall=0.2, max_cycles=200_000,
               idle_after=0):
    """Run ``bursts`` one after the other (see the module's doc)."""
    phases = [([b], []) if b[0] == "w" else ([], [b]) for b in bursts]
    return run_phases(dut, model, phases, seed, w_idle, r_stall, max_cycles, idle_after)


def run_phases(dut, model, phases, seed=0, w_idle=0.2, r_stall=0.2, max_cycles=200_000,
               idle_after=0, trail=None, max_skew=None):
    """Run ``phases``, each ``(write bursts, read bursts)`` whose two lists run concurrently
    (each list in order; four testbenches: write commands, write data, read commands, read
    data, each command issued as soon as the controller takes it); all start a phase when all
    have finished the previous one. A word read is checked against the last value written to its
    address in an earlier phase (a word its own phase writes is not checked: either value is
    right). ``trail``: the writer of a phase holds each word until the reader has taken
    ``trail`` more words than were written (the core's update: its writes follow its reads of
    the same words). ``max_skew``: the reader stops taking words while it is that many words
    ahead of the writer (the core's FIFOs between its reads and its writes are full)."""
    rng = random.Random(seed)
    rng_dev = random.Random(seed + 1)
    word_bits = dut.word_bits
    array = {}                  # addr -> (phase, value)
    res = BenchResult(model=model)
    bus = dut.bus
    names = ("aw", "w", "ar", "r")
    st = {"phase": -1, "reads": 0, "writes": 0, "reads_left": 0, "writes_left": 0,
          "start": None, "aw_q": [], "ar_q": [], **{n: -1 for n in names}}

    async def start(ctx, i):
        """Wait until every testbench has finished phase ``i - 1``; the first to start phase
        ``i`` sets its counts up."""
        while any(st[n] < i - 1 for n in names):
            await ctx.tick()
        if st["start"] is None:
            while not ctx.get(dut.ready):
                await ctx.tick()
            st["start"] = model.cycle
        if st["phase"] < i:
            writes, reads = phases[i]
            st.update(phase=i, reads=0, writes=0, aw_q=[], ar_q=[],
                      reads_left=sum(n for _, _, n in reads),
                      writes_left=sum(n for _, _, n in writes))

    async def command(ctx, stream, bursts, queue):
        for _, addr, n in bursts:
            ctx.set(stream.payload.addr, addr)
            ctx.set(stream.payload.len, n)
            ctx.set(stream.valid, 1)
            await ctx.tick().until(stream.ready)
            ctx.set(stream.valid, 0)
            st[queue].append((addr, n))

    async def aw_issuer(ctx):
        for i, (writes, reads) in enumerate(phases):
            await start(ctx, i)
            await command(ctx, bus.aw, writes, "aw_q")
            st["aw"] = i

    async def ar_issuer(ctx):
        for i, (writes, reads) in enumerate(phases):
            await start(ctx, i)
            await command(ctx, bus.ar, reads, "ar_q")
            st["ar"] = i

    async def writer(ctx):
        for i, (writes, reads) in enumerate(phases):
            await start(ctx, i)
            for b in range(len(writes)):
                while len(st["aw_q"]) <= b:
                    await ctx.tick()
                addr, n = st["aw_q"][b]
                for k in range(n):
                    while rng.random() < w_idle or (
                            trail is not None and st["reads_left"] > 0
                            and st["reads"] < st["writes"] + trail):
                        ctx.set(bus.w.valid, 0)
                        await ctx.tick()
                    value = rng.getrandbits(word_bits)
                    ctx.set(bus.w.payload, value)
                    ctx.set(bus.w.valid, 1)
                    await ctx.tick().until(bus.w.ready)
                    array[addr + k] = (i, value)
                    res.written[addr + k] = value
                    res.words_written += 1
                    st["writes"] += 1
                    st["writes_left"] -= 1
                ctx.set(bus.w.valid, 0)
            st["w"] = i

    async def reader(ctx):
        for i, (writes, reads) in enumerate(phases):
            await start(ctx, i)
            for b in range(len(reads)):
                while len(st["ar_q"]) <= b:
                    await ctx.tick()
                addr, n = st["ar_q"][b]
                got = 0
                while got < n:
                    ready = rng.random() >= r_stall and not (
                        max_skew is not None and st["reads"] - st["writes"] >= max_skew
                        and st["writes_left"] > 0)
                    ctx.set(bus.r.ready, ready)
                    *_, valid, payload = await ctx.tick().sample(bus.r.valid, bus.r.payload)
                    if ready and valid:
                        phase, want = array.get(addr + got, (i, None))
                        if phase < i and payload != want:
                            res.mismatches.append((addr + got, payload, want))
                        got += 1
                        res.words_read += 1
                        st["reads"] += 1
                        st["reads_left"] -= 1
                ctx.set(bus.r.ready, 0)
            st["r"] = i

    async def master(ctx):
        while st["start"] is None:
            await ctx.tick()
        cycle, beats, counts = st["start"], model.beats, dict(model.counts)
        for i in range(len(phases)):
            while any(st[n] < i for n in names):
                await ctx.tick()
            res.phase_cycles.append(model.cycle - cycle)
            res.phase_beats.append(model.beats - beats)
            res.phase_counts.append({k: v - counts[k] for k, v in model.counts.items()})
            cycle, beats, counts = model.cycle, model.beats, dict(model.counts)
        res.start_cycle = st["start"]
        res.cycles = model.cycle - res.start_cycle
        if idle_after:
            await ctx.tick().repeat(idle_after)

    sim = Simulator(dut)
    sim.add_clock(1 / dut.timing.clock_hz)
    sim.add_testbench(run_model(model, dut.sdram, rng_dev, max_cycles), background=True)
    for testbench in (aw_issuer, writer, ar_issuer, reader):
        sim.add_testbench(testbench, background=True)
    sim.add_testbench(master)
    sim.run()
    return res
