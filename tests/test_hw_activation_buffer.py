"""hw/activation_buffer.py: column and row reads see what column writes stored (Amaranth sim)."""

import random

import numpy as np
import pytest
from amaranth.hdl import Fragment, Value
from amaranth.sim import Simulator

from hw.activation_buffer import ActivationBuffer


@pytest.mark.parametrize("registered", [False, True], ids=["", "registered-write"])
@pytest.mark.parametrize("any_start", [False, True], ids=["aligned", "any-start"])
@pytest.mark.parametrize("lanes,groups,columns", [(4, 3, 10), (8, 2, 16), (1, 3, 5), (2, 2, 7), (8, 1, 3)])
def test_column_and_row_reads(lanes, groups, columns, any_start, registered):
    rng = random.Random(lanes * 100 + columns)
    dut = ActivationBuffer(lanes, groups, columns, 8, any_start=any_start,
                           registered_write=registered)
    ref = np.zeros((groups * lanes, columns), dtype=int)
    cols_padded = -(-columns // lanes) * lanes
    errors = []

    async def tb(ctx):
        for _ in range(groups * columns * 2):
            g, j = rng.randrange(groups), rng.randrange(columns)
            values = [rng.randrange(256) for _ in range(lanes)]
            mask = rng.randrange(1 << lanes)
            ctx.set(dut.wr_en, 1)
            ctx.set(dut.wr_group, g)
            ctx.set(dut.wr_col, j)
            ctx.set(dut.wr_mask, mask)
            for q in range(lanes):
                ctx.set(dut.wr_data[q], values[q])
                if mask >> q & 1:
                    ref[g * lanes + q, j] = values[q]
            await ctx.tick()
        ctx.set(dut.wr_en, 0)
        if registered:                  # the last write lands at the next edge
            await ctx.tick()
        ctx.set(dut.rd_en, 1)
        for g in range(groups):
            for j in range(columns):
                ctx.set(dut.rd_row, 0)
                ctx.set(dut.rd_group, g)
                ctx.set(dut.rd_col, j)
                await ctx.tick()
                got = [ctx.get(dut.rd_data[q]) for q in range(lanes)]
                if got != list(ref[g * lanes:(g + 1) * lanes, j]):
                    errors.append(("column", g, j, got))
        for b in range(groups * lanes):
            for j0 in range(0, columns, 1 if any_start else lanes):
                ctx.set(dut.rd_row, 1)
                ctx.set(dut.rd_group, b // lanes)
                ctx.set(dut.rd_lane, b % lanes)
                ctx.set(dut.rd_col, j0)
                await ctx.tick()
                got = [ctx.get(dut.rd_data[q]) for q in range(lanes)]
                want = [int(ref[b, j0 + q]) for q in range(lanes) if j0 + q < columns]
                if got[:len(want)] != want:
                    errors.append(("row", b, j0, got, want))
        # rd_en low holds the data
        ctx.set(dut.rd_en, 0)
        before = [ctx.get(dut.rd_data[q]) for q in range(lanes)]
        ctx.set(dut.rd_col, 0)
        await ctx.tick()
        assert [ctx.get(dut.rd_data[q]) for q in range(lanes)] == before

    assert cols_padded >= columns
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert not errors, errors[:5]


@pytest.mark.parametrize("lanes,groups,columns,widths", [
    # (rd_group, rd_lane, rd_col) bits: groups, lanes (at least 1), the column padded to lanes
    (4, 3, 10, (2, 2, 4)), (1, 3, 5, (2, 1, 3)), (8, 1, 3, (1, 3, 3)), (2, 5, 8, (3, 1, 3))])
def test_port_widths(lanes, groups, columns, widths):
    """The core drives these ports from its own counters: each is exactly as wide as its index
    (a port a bit too wide or narrow still passes the reads above when driven in range)."""
    dut = ActivationBuffer(lanes, groups, columns, 8)
    g, q, c = widths
    want = {"rd_en": 1, "rd_row": 1, "rd_group": g, "rd_lane": q, "rd_col": c,
            "rd_data": 8 * lanes, "wr_en": 1, "wr_group": g, "wr_col": c, "wr_data": 8 * lanes,
            "wr_mask": lanes}
    assert {name: len(Value.cast(getattr(dut, name))) for name in want} == want
    Fragment.get(dut, None)                    # and it elaborates at these sizes


@pytest.mark.parametrize("registered", [False, True])
def test_when_a_read_sees_a_write(registered):
    """A column read given the cycle after a write sees it, or (registered_write) only from
    the cycle after that: the write lands a cycle later."""
    dut = ActivationBuffer(4, 2, 8, 8, registered_write=registered)
    seen = []

    async def tb(ctx):
        ctx.set(dut.rd_en, 1)
        ctx.set(dut.rd_group, 1)
        ctx.set(dut.rd_col, 5)
        ctx.set(dut.wr_group, 1)
        ctx.set(dut.wr_col, 5)
        ctx.set(dut.wr_mask, 0b1111)
        for q in range(4):
            ctx.set(dut.wr_data[q], 10 + q)
        ctx.set(dut.wr_en, 1)
        await ctx.tick()                        # the write is given in this cycle
        ctx.set(dut.wr_en, 0)
        for _ in range(3):                      # reads given 1, 2, 3 cycles after it
            await ctx.tick()
            seen.append([ctx.get(dut.rd_data[q]) for q in range(4)])

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    new = [10, 11, 12, 13]
    assert (seen[0] == new) == (not registered)
    assert seen[1] == new and seen[2] == new


@pytest.mark.parametrize("lanes,any_start", [(4, False), (8, True), (1, False)])
def test_registered_reads_under_random_enables(lanes, any_start):
    """registered_read: ``rd_data`` is the read given at the last-but-one cycle with
    ``rd_en`` and ``rd_data_early`` the one at the last (as an unregistered buffer's
    ``rd_data``), with ``rd_en`` low at random: every cycle against the stored contents."""
    groups, columns = 2, 2 * lanes + 1
    rng = random.Random(lanes)
    dut = ActivationBuffer(lanes, groups, columns, 8, any_start=any_start,
                           registered_write=True, registered_read=True)
    ref = np.zeros((groups * lanes, -(-columns // lanes) * lanes), dtype=int)
    checked = []

    def expected(read):
        row, g, lane, col = read
        if not row:
            return [int(v) for v in ref[g * lanes:(g + 1) * lanes, col]]
        width = ref.shape[1]
        return [int(ref[g * lanes + lane, (col + q) % width]) if col + q < width else None
                for q in range(lanes)]

    async def tb(ctx):
        for g in range(groups):                 # fill every element
            for j in range(ref.shape[1]):
                values = [rng.randrange(256) for _ in range(lanes)]
                ctx.set(dut.wr_en, 1)
                ctx.set(dut.wr_group, g)
                ctx.set(dut.wr_col, j)
                ctx.set(dut.wr_mask, (1 << lanes) - 1)
                for q in range(lanes):
                    ctx.set(dut.wr_data[q], values[q])
                    ref[g * lanes + q, j] = values[q]
                await ctx.tick()
        ctx.set(dut.wr_en, 0)
        await ctx.tick()
        given = []                              # the reads given in cycles with rd_en
        for _ in range(300):
            en = rng.random() < 0.6
            row = rng.randrange(2)
            g, lane = rng.randrange(groups), rng.randrange(lanes)
            col = (rng.randrange(columns) if any_start or not row
                   else lanes * rng.randrange(-(-columns // lanes)))
            ctx.set(dut.rd_en, en)
            ctx.set(dut.rd_row, row)
            ctx.set(dut.rd_group, g)
            ctx.set(dut.rd_lane, lane)
            ctx.set(dut.rd_col, col)
            await ctx.delay(0)
            for port, back in ((dut.rd_data, 2), (dut.rd_data_early, 1)):
                if len(given) >= back:
                    want = expected(given[-back])
                    got = [ctx.get(port[q]) for q in range(lanes)]
                    assert [v for v, w in zip(got, want) if w is not None] == \
                        [w for w in want if w is not None], (port, given[-back])
                    checked.append(back)
            await ctx.tick()
            if en:
                given.append((row, g, lane, col))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert checked.count(2) > 100 and checked.count(1) > 100
