"""hw/mac_array.py reset while its lanes hold beats (Amaranth simulator): the pipelined array's
lanes clear their copies of its valid bits a cycle after the reset, and take no beat in that
cycle; the next sum is exactly the next beats' products, whatever was in flight."""

import random

import pytest
from amaranth.hdl import Module, ResetInserter, Signal, signed
from amaranth.sim import Simulator

from hw.mac_array import MacArray

ROWS, COLS = 2, 3


def _beat(ctx, dut, a, b, first, last):
    for p in range(ROWS):
        ctx.set(dut.i.payload.a[p], a[p])
    for q in range(COLS):
        ctx.set(dut.i.payload.b[q], b[q])
    ctx.set(dut.i.payload.first, first)
    ctx.set(dut.i.payload.last, last)


@pytest.mark.parametrize("operand_stage", [False, True])
@pytest.mark.parametrize("reset_at", [1, 2, 3, 4])
def test_a_reset_drops_the_beats_in_flight(operand_stage, reset_at):
    """A sum of one beat, which the consumer refuses, then beats of the next that pile up
    behind it; ``reset_at`` cycles in, the array is reset, and the new sum's three beats are
    offered from the next cycle. Its sum is those beats' products only (not the stale beats'
    the lanes' copies held), the array takes no beat the cycle after the reset, and the
    accumulators (shown on ``o``) keep their values until the new sum's first beat."""
    mac = MacArray(ROWS, COLS, signed(8), signed(8), 16, operand_stage=operand_stage,
                   sum_register=False, ready_ahead=True)
    clear = Signal()
    m = Module()
    m.submodules.mac = ResetInserter(clear)(mac)
    rng = random.Random(reset_at * 2 + operand_stage)
    new = [([rng.randint(-128, 127) for _ in range(ROWS)],
            [rng.randint(-128, 127) for _ in range(COLS)]) for _ in range(3)]
    expected = [sum(a[p] * b[q] for a, b in new) for p in range(ROWS) for q in range(COLS)]
    log = {"ready_after_reset": None, "sum": None, "changed_early": 0}

    async def tb(ctx):
        await ctx.tick()                           # (the cycle after power-on)
        for cycle in range(reset_at + 1):          # a sum of one beat, then an unfinished one
            ctx.set(mac.i.valid, 1)
            _beat(ctx, mac, [rng.randint(-128, 127) for _ in range(ROWS)],
                  [rng.randint(-128, 127) for _ in range(COLS)], cycle <= 1, cycle == 0)
            await ctx.tick()
        ctx.set(mac.i.valid, 0)
        ctx.set(clear, 1)
        await ctx.tick()
        ctx.set(clear, 0)
        kept = [ctx.get(mac.o.payload[k]) for k in range(ROWS * COLS)]
        adding = 2 if operand_stage else 1         # cycles from taking a beat to adding it
        # The new sum's beats, offered from the cycle after the reset.
        sent = 0
        for _ in range(30):
            ctx.set(mac.i.valid, sent < len(new))
            if sent < len(new):
                _beat(ctx, mac, *new[sent], sent == 0, sent == len(new) - 1)
            ctx.set(mac.o.ready, 1)
            ctx.set(mac.ready_next, 1)
            await ctx.delay(0)
            if log["ready_after_reset"] is None:
                log["ready_after_reset"] = ctx.get(mac.i.ready)
            if ctx.get(mac.o.valid):
                log["sum"] = [ctx.get(mac.o.payload[k]) for k in range(ROWS * COLS)]
                break
            if sent == 0 or adding:                # the new sum's first beat not added yet
                now = [ctx.get(mac.o.payload[k]) for k in range(ROWS * COLS)]
                log["changed_early"] += now != kept
            if sent:
                adding = max(0, adding - 1)
            sent += sent < len(new) and ctx.get(mac.i.ready)
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert log["ready_after_reset"] == 0
    assert not log["changed_early"]
    assert log["sum"] == expected
