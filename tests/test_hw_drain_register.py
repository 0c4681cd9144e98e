"""hw/core/drain_register.py: sums move in only with their tag and into an empty register,
row 0 and column 0 through random row and column shifts, ``end`` and the cycle after it,
tags in order, ``busy`` (Amaranth simulator)."""

import random

import pytest
from amaranth.hdl import signed
from amaranth.lib import data
from amaranth.sim import Simulator

from hw.core.drain_register import DrainRegister

SBITS = 12
TAG = data.StructLayout({"outer": 4, "mid": 4})


def _run(dut, tb):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


def _sum(rng, rows, cols):
    return [[rng.randint(-(1 << (SBITS - 1)), (1 << (SBITS - 1)) - 1) for _ in range(cols)]
            for _ in range(rows)]


def _set_sum(ctx, dut, s):
    cols = dut.cols
    for r, row in enumerate(s):
        for q, v in enumerate(row):
            ctx.set(dut.sums.payload[r * cols + q], v)


@pytest.mark.parametrize("registered,announced,row_stage",
                         [(False, False, False), (True, False, False), (True, True, False),
                          (True, False, True), (True, True, True)],
                         ids=["comb", "registered", "registered-announced", "row-stage",
                              "row-stage-announced"])
@pytest.mark.parametrize("rows,cols,count,seed", [(1, 1, 20, 1), (2, 3, 30, 2), (4, 4, 40, 3),
                                                  (3, 1, 20, 4)])
def test_sums_in_order_with_their_tags_under_random_draining(rows, cols, count, seed,
                                                              registered, announced, row_stage):
    """Against a model of the register, every cycle: what moves in and when, ``holding``,
    row 0 and column 0 while holding, the tag, ``busy``. Registered, a sum is chosen a cycle
    before it moves in and a shift pauses the drain a cycle; the drain acts (randomly) only
    while holding, as the core's drains do, and a sum stays offered until taken. Announced,
    most sums are announced by ``sum_coming`` the cycle before they are first offered (as
    the MAC array's ``ending`` does), so that one can move in as it is first offered. With a
    row stage, a shift pauses the drain two cycles."""
    dut = DrainRegister(rows, cols, signed(SBITS), TAG, registered_moves=registered,
                        row_stage=row_stage)
    rng = random.Random(seed)
    sums = [_sum(rng, rows, cols) for _ in range(count)]
    tags = [(rng.randrange(16), rng.randrange(16)) for _ in range(count)]
    got = []
    stats = {"pops_after_end": 0, "waited_for_tag": 0, "row_and_col": 0, "paused": 0,
             "taken_as_offered": 0}

    async def tb(ctx):
        written = arrived = 0                       # tags written; of them, readable
        popped = 0
        holding, content, tag = False, None, None   # the model
        full = moving = False                       # registered: chosen; moving in now
        offered = False                             # a sum offered last cycle, not taken
        promised = coming = False                   # announced: offered from this cycle on
        ended_last = False                          # ``end`` emptied it last cycle
        pausing = 0                                 # cycles the drain pauses after a shift
        writes = []                                 # tags written, after each cycle
        for cycle in range(60 * count + 100):
            # Tags: at most tag_depth outstanding (as the core guarantees).
            tag_w = (written < count and written - popped < dut.tag_depth
                     and rng.random() < (0.15 if announced else 0.4))
            ctx.set(dut.tags.valid, tag_w)
            if tag_w:
                ctx.set(dut.tags.payload.outer, tags[written][0])
                ctx.set(dut.tags.payload.mid, tags[written][1])
            # The next sum, sometimes before its tag has arrived (registered: kept offered).
            if announced:
                s_valid = offered or promised
                # The next sum offered from the next cycle (announced, or now and then not),
                # once this one is taken; sparsely, so that some find the register empty.
                promised = (not (s_valid and not moving) and popped + moving < count
                            and rng.random() < 0.2)
                coming = promised and rng.random() < 0.8
                ctx.set(dut.sum_coming, coming)
            else:
                s_valid = popped < count and ((registered and offered) or rng.random() < 0.6)
            ctx.set(dut.sums.valid, s_valid)
            _set_sum(ctx, dut, sums[popped] if s_valid else _sum(rng, rows, cols))
            # The drain: one action a cycle (or none), rows and columns at random.
            action = rng.choice(["none", "none", "row", "col", "both", "end"])
            if registered and not holding:
                action = "none"
            ctx.set(dut.advance_row, action in ("row", "both"))
            ctx.set(dut.advance_col, action in ("col", "both"))
            ctx.set(dut.end, action == "end")
            await ctx.delay(0)
            if tag_w:
                assert ctx.get(dut.tags.ready)      # always taken
            assert ctx.get(dut.holding) == holding, cycle
            empty = full if registered else holding
            choose = (s_valid or coming) and not empty and arrived > popped
            stats["waited_for_tag"] += (s_valid or coming) and not empty and arrived == popped
            pop = moving if registered else choose
            if registered:
                assert ctx.get(dut.ready_next) == choose, cycle
            assert ctx.get(dut.popped.valid) == pop, (cycle, holding, arrived, popped)
            assert ctx.get(dut.sums.ready) == pop
            if pop:
                assert (ctx.get(dut.popped.tag.outer), ctx.get(dut.popped.tag.mid)) == \
                    tags[popped]
            stats["pops_after_end"] += choose and ended_last
            if holding:
                assert (ctx.get(dut.tag.outer), ctx.get(dut.tag.mid)) == tag
                for q in range(cols):
                    if content[0][q] is not None:
                        assert ctx.get(dut.row[q]) == content[0][q], (cycle, q)
                for r in range(rows):
                    if content[r][0] is not None:
                        assert ctx.get(dut.column[r]) == content[r][0], (cycle, r)
            # A sum is in, or a tag waits for its sum.
            if holding or full or written > popped:
                assert ctx.get(dut.busy)
            elif not tag_w:
                assert not ctx.get(dut.busy)
            await ctx.tick()
            ended_last = False
            if pop:
                stats["taken_as_offered"] += not offered
                holding, content, tag = True, [list(r) for r in sums[popped]], tags[popped]
                got.append((content[0][0], tag))
                popped += 1
            elif holding and action == "end":
                holding, ended_last, full = False, True, False
            elif holding and action != "none":
                stats["row_and_col"] += action == "both"
                if action in ("row", "both"):
                    content = content[1:] + [[None] * cols]
                else:
                    content = [row[1:] + [None] for row in content]
                holding = not registered            # registered: shifted next cycle
                pausing = 1 if row_stage else 0     # row stage: the cycle after
            elif full and not holding and pausing:
                pausing -= 1
                stats["paused"] += 1
            elif full and not holding:
                holding = True
                stats["paused"] += not pop
            if registered:
                full, moving = full or choose, choose
                offered = s_valid and not pop
            written += tag_w
            # A tag is readable the cycle after (registered: the buffered FIFO's, two).
            writes.append(written)
            arrived = ((writes[-2] if len(writes) > 1 else 0) if registered else written)
            if popped == count and not holding and not full:
                break
        assert popped == count

    _run(dut, tb)
    assert got == [(s[0][0], t) for s, t in zip(sums, tags)]
    assert stats["pops_after_end"] and stats["waited_for_tag"]
    assert stats["paused"] or not registered
    assert stats["taken_as_offered"] or not announced


def test_next_sum_a_cycle_after_end_at_the_earliest():
    dut = DrainRegister(2, 2, signed(SBITS), TAG)
    log = []

    async def tb(ctx):
        for k, (o, m) in enumerate(((1, 2), (3, 4))):
            ctx.set(dut.tags.valid, 1)
            ctx.set(dut.tags.payload.outer, o)
            ctx.set(dut.tags.payload.mid, m)
            await ctx.tick()
        ctx.set(dut.tags.valid, 0)
        ctx.set(dut.sums.valid, 1)
        _set_sum(ctx, dut, [[1, 2], [3, 4]])
        await ctx.delay(0)
        log.append(ctx.get(dut.popped.valid))        # empty, tag present: moves in
        await ctx.tick()
        _set_sum(ctx, dut, [[5, 6], [7, 8]])
        ctx.set(dut.advance_col, 1)
        ctx.set(dut.advance_row, 1)                  # rows first
        await ctx.delay(0)
        log.append((ctx.get(dut.popped.valid), ctx.get(dut.holding), ctx.get(dut.busy)))
        await ctx.tick()
        ctx.set(dut.advance_row, 0)
        await ctx.delay(0)
        log.append([ctx.get(dut.row[q]) for q in range(2)])   # [3, 4]
        ctx.set(dut.advance_col, 0)
        ctx.set(dut.end, 1)
        await ctx.delay(0)
        log.append(ctx.get(dut.popped.valid))        # not while ending
        await ctx.tick()
        ctx.set(dut.end, 0)
        await ctx.delay(0)
        log.append((ctx.get(dut.holding), ctx.get(dut.popped.valid)))
        await ctx.tick()
        await ctx.delay(0)
        log.append([ctx.get(dut.row[q]) for q in range(2)] +
                   [ctx.get(dut.column[r]) for r in range(2)] +
                   [ctx.get(dut.tag.outer), ctx.get(dut.tag.mid)])
        ctx.set(dut.sums.valid, 0)
        ctx.set(dut.end, 1)
        await ctx.tick()
        ctx.set(dut.end, 0)
        await ctx.delay(0)
        log.append((ctx.get(dut.holding), ctx.get(dut.busy)))

    _run(dut, tb)
    assert log == [1, (0, 1, 1), [3, 4], 0, (0, 1), [5, 6, 5, 7, 3, 4], (0, 0)]


@pytest.mark.parametrize("shift", ["advance_row", "advance_col"])
@pytest.mark.parametrize("shift_with_end", [True, False])
def test_end_with_a_shift_empties_the_register(shift, shift_with_end):
    """A drain's last step raises ``end`` together with its shift: the register empties (the
    elements shift too, with ``shift_with_end``: nothing reads them before the next sum) and
    the next sum moves in a cycle later."""
    dut = DrainRegister(2, 2, signed(12), data.StructLayout({"outer": 4, "mid": 4}),
                        shift_with_end=shift_with_end)
    log = []

    async def tb(ctx):
        ctx.set(dut.tags.valid, 1)
        await ctx.tick()
        ctx.set(dut.sums.valid, 1)
        for k, v in enumerate((1, 2, 3, 4)):
            ctx.set(dut.sums.payload[k], v)
        await ctx.tick()
        ctx.set(dut.tags.valid, 0)
        for k, v in enumerate((5, 6, 7, 8)):
            ctx.set(dut.sums.payload[k], v)
        ctx.set(getattr(dut, shift), 1)
        ctx.set(dut.end, 1)
        await ctx.delay(0)
        log.append(ctx.get(dut.popped.valid))          # not while ending
        await ctx.tick()
        ctx.set(getattr(dut, shift), 0)
        ctx.set(dut.end, 0)
        ctx.set(dut.sums.valid, 0)
        await ctx.delay(0)
        log.append([ctx.get(dut.row[q]) for q in range(2)] +
                   [ctx.get(dut.column[r]) for r in range(2)])
        ctx.set(dut.sums.valid, 1)
        await ctx.delay(0)
        log.append((ctx.get(dut.holding), ctx.get(dut.popped.valid)))
        await ctx.tick()
        log.append([ctx.get(dut.row[q]) for q in range(2)] +
                   [ctx.get(dut.column[r]) for r in range(2)])

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    # Row 0 and column 0 of [[1, 2], [3, 4]] after the last step: shifted, or kept.
    shifted = [3, 4, 3, 3] if shift == "advance_row" else [2, 2, 2, 4]
    assert log == [0, shifted if shift_with_end else [1, 2, 1, 3], (0, 1), [5, 6, 5, 7]]
