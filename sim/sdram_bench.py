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

__all__ = ["BenchResult", "make_pair", "run_bursts"]


@dataclass
class BenchResult:
    mismatches: list = field(default_factory=list)
    words_read: int = 0
    words_written: int = 0
    cycles: int = 0             # from the first command to the last word
    start_cycle: int = 0        # the cycle the controller was ready
    model: object = None
    busy_cycles: int = 0        # cycles with a burst outstanding


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
    """Run ``bursts`` through ``dut`` with ``model`` on its pins (see the module's doc);
    ``idle_after`` extra cycles run after the last word (refresh with nothing to do)."""
    rng = random.Random(seed)
    word_bits = dut.word_bits
    array = {}
    res = BenchResult(model=model)
    bus = dut.bus
    state = {"done": False}
    rng_dev = random.Random(seed + 1)

    async def master(ctx):
        # Wait for the initialisation.
        while not ctx.get(dut.ready):
            await ctx.tick()
        res.start_cycle = model.cycle
        for kind, addr, n in bursts:
            if kind == "w":
                ctx.set(bus.aw.payload.addr, addr)
                ctx.set(bus.aw.payload.len, n)
                ctx.set(bus.aw.valid, 1)
                await ctx.tick().until(bus.aw.ready)
                ctx.set(bus.aw.valid, 0)
                for k in range(n):
                    while rng.random() < w_idle:
                        ctx.set(bus.w.valid, 0)
                        await ctx.tick()
                    value = rng.getrandbits(word_bits)
                    ctx.set(bus.w.payload, value)
                    ctx.set(bus.w.valid, 1)
                    await ctx.tick().until(bus.w.ready)
                    array[addr + k] = value
                    res.words_written += 1
                ctx.set(bus.w.valid, 0)
            else:
                ctx.set(bus.ar.payload.addr, addr)
                ctx.set(bus.ar.payload.len, n)
                ctx.set(bus.ar.valid, 1)
                await ctx.tick().until(bus.ar.ready)
                ctx.set(bus.ar.valid, 0)
                got = 0
                while got < n:
                    ready = rng.random() >= r_stall
                    ctx.set(bus.r.ready, ready)
                    *_, valid, payload = await ctx.tick().sample(bus.r.valid, bus.r.payload)
                    if ready and valid:
                        want = array.get(addr + got)
                        if want is not None and payload != want:
                            res.mismatches.append((addr + got, payload, want))
                        got += 1
                        res.words_read += 1
                ctx.set(bus.r.ready, 0)
        res.cycles = model.cycle - res.start_cycle
        if idle_after:
            await ctx.tick().repeat(idle_after)
        state["done"] = True

    sim = Simulator(dut)
    sim.add_clock(1e9 / dut.timing.clock_hz * 1e-9)
    sim.add_testbench(run_model(model, dut.sdram, rng_dev, max_cycles), background=True)
    sim.add_testbench(master)
    sim.run()
    assert state["done"]
    return res
