"""hw/core/loop_nest.py: the beats a nest issues against a Python triple loop, under random
stalls and operands not ready; the end-of-iteration pulses; skips of dead iterations; the end
of the nest and its restart (Amaranth simulator)."""

import random

import pytest
from amaranth.sim import Simulator

from hw.core.loop_nest import LoopNest

WIDTH = 4


def _run(dut, tb):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


def _start(ctx, dut, limits):
    ctx.set(dut.start, 1)
    ctx.set(dut.limits.outer, limits[0])
    ctx.set(dut.limits.mid, limits[1])
    ctx.set(dut.limits.inner, limits[2])


def _beat(ctx, dut):
    return (ctx.get(dut.outer), ctx.get(dut.mid), ctx.get(dut.inner))


def _expected(limits, dead=None, skip_outer=0):
    """The beats of a plain triple loop; a dead iteration's beats never issue."""
    lo, lm, li = limits
    beats, skips = [], []
    for o in range(lo + 1):
        if skip_outer and dead is not None and dead(o, 0):
            skips.append((o, 0))
            continue
        for m in range(lm + 1):
            if not skip_outer and dead is not None and dead(o, m):
                skips.append((o, m))
                continue
            for i in range(li + 1):
                beats.append((o, m, i))
    return beats, skips


def _drive(limits, seed, dead=None, skip_outer=0, p_stall=0.3, p_ready=0.6):
    """Run one nest to its end with random stall/ready; return what it did, cycle by cycle
    checks done inline."""
    dut = LoopNest(WIDTH)
    rng = random.Random(seed)
    got = {"beats": [], "skips": [], "mid_done": [], "outer_done": [], "inner_last": []}

    async def tb(ctx):
        await ctx.delay(0)
        assert not ctx.get(dut.active)              # nothing before the first start
        _start(ctx, dut, limits)
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.skip_outer, skip_outer)
        total = 40 * (limits[0] + 1) * (limits[1] + 1) * (limits[2] + 1) + 50
        ended = None
        for cycle in range(total):
            # The limits are latched at start: whatever the input says now is ignored.
            ctx.set(dut.limits.outer, rng.randrange(1 << WIDTH))
            ctx.set(dut.limits.mid, rng.randrange(1 << WIDTH))
            ctx.set(dut.limits.inner, rng.randrange(1 << WIDTH))
            stall = rng.random() < p_stall
            ready = rng.random() < p_ready
            ctx.set(dut.stall, stall)
            ctx.set(dut.ready, ready)
            await ctx.delay(0)
            beat = _beat(ctx, dut)
            is_dead = dead is not None and dead(beat[0], 0 if skip_outer else beat[1])
            ctx.set(dut.dead, is_dead)
            await ctx.delay(0)
            active = ctx.get(dut.active)
            assert (ctx.get(dut.last.outer), ctx.get(dut.last.mid),
                    ctx.get(dut.last.inner)) == tuple(limits)
            issue, skip = ctx.get(dut.issue), ctx.get(dut.skip)
            assert issue == (active and not stall and ready and not is_dead), (cycle, beat)
            assert skip == (active and not stall and is_dead), (cycle, beat)
            if active:
                assert ctx.get(dut.inner_last) == (beat[2] == limits[2])
            mid_done, outer_done = ctx.get(dut.mid_done), ctx.get(dut.outer_done)
            # An iteration ends by its last beat or by a skip, never otherwise.
            last_of_mid = issue and beat[2] == limits[2]
            last_of_outer = last_of_mid and beat[1] == limits[1]
            if skip and not skip_outer:
                assert mid_done and outer_done == (beat[1] == limits[1])
            elif skip and skip_outer:
                assert outer_done
            else:
                assert mid_done == last_of_mid and outer_done == last_of_outer, (cycle, beat)
            if issue:
                got["beats"].append(beat)
                got["inner_last"].append(ctx.get(dut.inner_last))
            if skip:
                got["skips"].append(beat)
            if mid_done:
                got["mid_done"].append(beat)
            if outer_done:
                got["outer_done"].append(beat)
            if not active and ended is None:
                ended = len(got["beats"])
            if ended is not None:
                assert not active                   # stays inactive until a start
            await ctx.tick()
            if not active:
                # A few idle cycles after the end are enough.
                if cycle > 0 and rng.random() < 0.2:
                    break
        assert ended is not None, "the nest never ended"

    _run(dut, tb)
    return got


LIMITS = [(0, 0, 0), (0, 0, 3), (2, 0, 0), (0, 3, 0), (1, 2, 3), (3, 1, 0), (2, 2, 1)]


@pytest.mark.parametrize("limits", LIMITS)
def test_beats_follow_a_triple_loop_under_stalls(limits):
    got = _drive(limits, seed=hash(limits) & 0xFFFF)
    beats, _ = _expected(limits)
    assert got["beats"] == beats
    assert got["skips"] == []
    lo, lm, li = limits
    assert got["inner_last"] == [b[2] == li for b in beats]
    assert got["mid_done"] == [b for b in beats if b[2] == li]
    assert got["outer_done"] == [b for b in beats if b[2] == li and b[1] == lm]


@pytest.mark.parametrize("limits", LIMITS)
def test_never_stalled_issues_a_beat_every_cycle(limits):
    got = _drive(limits, seed=1, p_stall=0.0, p_ready=1.0)
    assert got["beats"] == _expected(limits)[0]


@pytest.mark.parametrize("limits,seed", [((2, 3, 2), 1), ((3, 2, 0), 2), ((1, 4, 3), 3),
                                         ((0, 2, 1), 4)])
def test_dead_mid_iterations_are_skipped(limits, seed):
    rng = random.Random(seed)
    dead_set = {(o, m) for o in range(limits[0] + 1) for m in range(limits[1] + 1)
                if rng.random() < 0.4}

    def dead(o, m):
        return (o, m) in dead_set

    got = _drive(limits, seed, dead=dead, skip_outer=0)
    beats, skips = _expected(limits, dead, 0)
    assert got["beats"] == beats
    # Each dead iteration skipped once, at its first beat (inner untouched: 0).
    assert got["skips"] == [(o, m, 0) for o, m in skips]


@pytest.mark.parametrize("limits,seed", [((3, 2, 2), 5), ((4, 1, 0), 6), ((2, 0, 3), 7)])
def test_dead_outer_iterations_are_skipped_with_mid_reset(limits, seed):
    rng = random.Random(seed)
    dead_outer = {o for o in range(limits[0] + 1) if rng.random() < 0.5}

    def dead(o, m):
        return o in dead_outer

    got = _drive(limits, seed, dead=dead, skip_outer=1)
    beats, skips = _expected(limits, dead, 1)
    assert got["beats"] == beats
    assert got["skips"] == [(o, 0, 0) for o, _ in skips]
    assert [b[0] for b in got["outer_done"]] == list(range(limits[0] + 1))


def test_a_skip_leaves_inner_and_resets_mid_with_skip_outer():
    dut = LoopNest(WIDTH)
    seen = []

    async def tb(ctx):
        _start(ctx, dut, (3, 3, 3))
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.ready, 1)
        for _ in range(6):                          # (0,0,0..3), (0,1,0..1) issue
            await ctx.tick()
        await ctx.delay(0)
        seen.append(_beat(ctx, dut))                # (0, 1, 2)
        ctx.set(dut.dead, 1)                        # a mid skip: mid steps, inner stays
        await ctx.tick()
        await ctx.delay(0)
        seen.append(_beat(ctx, dut))
        ctx.set(dut.skip_outer, 1)                  # an outer skip: mid back to 0
        await ctx.tick()
        await ctx.delay(0)
        seen.append(_beat(ctx, dut))
        ctx.set(dut.dead, 0)
        ctx.set(dut.stall, 1)                       # a stalled dead beat skips nothing
        ctx.set(dut.dead, 1)
        await ctx.tick()
        await ctx.delay(0)
        seen.append(_beat(ctx, dut))

    _run(dut, tb)
    assert seen == [(0, 1, 2), (0, 2, 2), (1, 0, 2), (1, 0, 2)]


def test_start_restarts_and_wins_over_a_step():
    dut = LoopNest(WIDTH)
    seen = []

    async def tb(ctx):
        _start(ctx, dut, (0, 0, 1))
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.ready, 1)
        await ctx.tick()                            # (0,0,0) issued
        await ctx.delay(0)
        assert ctx.get(dut.issue) and ctx.get(dut.outer_done)   # the last beat
        await ctx.tick()
        for _ in range(3):
            await ctx.delay(0)
            assert not ctx.get(dut.active) and not ctx.get(dut.issue)
            await ctx.tick()
        # A restart with new limits.
        _start(ctx, dut, (1, 1, 1))
        await ctx.tick()
        ctx.set(dut.start, 0)
        await ctx.delay(0)
        assert ctx.get(dut.active)
        for _ in range(3):                          # (0,0,0), (0,0,1), (0,1,0) issue
            await ctx.tick()
        await ctx.delay(0)
        seen.append(_beat(ctx, dut))                # (0, 1, 1), the last of outer 0
        assert ctx.get(dut.issue) and ctx.get(dut.outer_done)
        _start(ctx, dut, (2, 2, 2))                 # start in the cycle of a step
        await ctx.tick()
        ctx.set(dut.start, 0)
        await ctx.delay(0)
        seen.append(_beat(ctx, dut))
        seen.append((ctx.get(dut.last.outer), ctx.get(dut.last.mid), ctx.get(dut.last.inner)))
        # The last beat of a nest and a start together: the new nest runs.
        ctx.set(dut.ready, 0)
        await ctx.delay(0)
        assert ctx.get(dut.active)

    _run(dut, tb)
    assert seen == [(0, 1, 1), (0, 0, 0), (2, 2, 2)]


def test_start_on_the_last_beat_keeps_the_nest_active():
    dut = LoopNest(WIDTH)
    got = []

    async def tb(ctx):
        _start(ctx, dut, (0, 0, 0))
        await ctx.tick()
        ctx.set(dut.ready, 1)
        _start(ctx, dut, (0, 0, 1))                 # the only beat issues as a start comes
        await ctx.delay(0)
        assert ctx.get(dut.issue) and ctx.get(dut.outer_done)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for _ in range(4):
            await ctx.delay(0)
            if ctx.get(dut.issue):
                got.append(_beat(ctx, dut))
            await ctx.tick()

    _run(dut, tb)
    assert got == [(0, 0, 0), (0, 0, 1)]


@pytest.mark.parametrize("seed,limits,positions", [(1, (1, 2, 3), 3), (2, (0, 0, 0), 4),
                                                   (3, (2, 1, 0), 1), (4, (1, 1, 2), 2)])
def test_a_position_loop_between_mid_and_inner(seed, limits, positions):
    """With ``positions``, a walk of ``positions`` output positions (kept by the testbench,
    as hw/core/patch_walker.py keeps it) runs between ``mid`` and ``inner``: ``mid`` moves on
    only after the last position's last beat."""
    dut = LoopNest(WIDTH, positions=True)
    rng = random.Random(seed)
    got, ends = [], []

    async def tb(ctx):
        _start(ctx, dut, limits)
        await ctx.tick()
        ctx.set(dut.start, 0)
        position = 0
        for _ in range(60 * (limits[0] + 1) * (limits[1] + 1) * (limits[2] + 1) * positions):
            ctx.set(dut.stall, rng.random() < 0.3)
            ctx.set(dut.ready, rng.random() < 0.7)
            ctx.set(dut.position_last, position == positions - 1)
            await ctx.delay(0)
            if not ctx.get(dut.active):
                break
            outer, mid, inner = _beat(ctx, dut)
            if ctx.get(dut.issue):
                got.append((outer, mid, position, inner))
                if ctx.get(dut.inner_last):
                    position = (position + 1) % positions
            if ctx.get(dut.mid_done):
                ends.append((outer, mid))
            await ctx.tick()

    _run(dut, tb)
    lo, lm, li = limits
    assert got == [(o, m, s, i) for o in range(lo + 1) for m in range(lm + 1)
                   for s in range(positions) for i in range(li + 1)]
    assert ends == [(o, m) for o in range(lo + 1) for m in range(lm + 1)]
