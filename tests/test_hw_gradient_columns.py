"""hw/core/gradient_columns.py: the gradient drain's walk over a sum's columns against a model
drain written from the docstring (Amaranth simulator). Sums of random input tiles pop for layers
of random ``fan_in``; the test steps the drain's ``step`` counter as hw/core/training_core.py does
(``+1`` on ``advance``, 0 on ``end = advance & last`` and on ``begin``) and answers ``update``
with ``taken`` at random. Every cycle: columns past the layer's last input pass without an update
and at once, real columns wait for ``taken``, the last input tile's sum ends with one bias step
(``shift = bias_shift``), every other step's ``shift`` is ``update_shift``, ``last`` marks the
sum's last step, ``begin`` clears ``bias``. Per sum, the columns updated (input indices, then
"bias") are compared with the list the layer's sizes give."""

import random

import pytest
from amaranth.sim import Simulator

from hw.core.gradient_columns import GradientColumns

WIDTH = 8


def _run(dut, tb):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


def _tiles(fan_in, cols):
    return -(-fan_in // cols)


def _expected_updates(tile, fan_in, cols):
    """What the weight update sees for a sum of input tile ``tile``: input ``tile*cols + q`` for
    each of its columns that is one of the layer's ``fan_in`` inputs, then the biases if it is
    the layer's last input tile."""
    got = [tile * cols + q for q in range(cols) if tile * cols + q < fan_in]
    if tile == _tiles(fan_in, cols) - 1:
        got.append("bias")
    return got


class _Drain:
    """The testbench's side: the core's step counter and a model of the drain register (empty,
    a sum popping in, a sum held), with the steps the held sum must take."""

    def __init__(self, cols):
        self.cols = cols
        self.step = 0
        self.sum = None             # (tile, fan_in) of the held sum
        self.pos = 0                # the model's step within it: 0..cols-1, cols = the bias step

    def expect(self):
        """(update, bias, last, column) of the held sum's current step, from the docstring."""
        tile, fan_in = self.sum
        last_tile = _tiles(fan_in, self.cols) - 1
        if self.pos == self.cols:
            assert tile == last_tile
            return True, True, True, "bias"
        column = tile * self.cols + self.pos
        real = column < fan_in
        last = self.pos == self.cols - 1 and tile != last_tile
        return real, False, last, column


async def _gap(ctx, dut, rng, cycles, fan_in, last_tile, scramble):
    """Cycles with no sum held (``active`` low): nothing advances and ``bias`` stays low."""
    for _ in range(cycles):
        ctx.set(dut.popped, 0)
        ctx.set(dut.popped_tile, rng.randrange(1 << WIDTH))
        if scramble:
            ctx.set(dut.fan_in, rng.randrange(1 << WIDTH))
            ctx.set(dut.last_tile, rng.randrange(1 << WIDTH))
        else:
            ctx.set(dut.fan_in, fan_in)
            ctx.set(dut.last_tile, last_tile)
        ctx.set(dut.active, 0)
        ctx.set(dut.step, 0)
        ctx.set(dut.taken, 0)
        ctx.set(dut.end, 0)
        await ctx.delay(0)
        assert not ctx.get(dut.advance)
        assert not ctx.get(dut.bias)
        await ctx.tick()


async def _phase(ctx, dut, rng, drain, fan_in, tiles, shifts, scramble, p_taken, log):
    """One gradient phase of a layer: ``begin``, then a sum per entry of ``tiles``, each popped
    after a random gap and walked to its end; ``log`` gets each sum's updated columns."""
    cols = drain.cols
    last_tile = _tiles(fan_in, cols) - 1
    bias_shift, update_shift = shifts
    # The phase begins: the core's step counter back to 0 with it.
    ctx.set(dut.begin, 1)
    ctx.set(dut.bias_shift, bias_shift)
    ctx.set(dut.update_shift, update_shift)
    ctx.set(dut.active, 0)
    ctx.set(dut.taken, 0)
    ctx.set(dut.end, 0)
    ctx.set(dut.popped, 0)
    await ctx.tick()
    ctx.set(dut.begin, 0)
    drain.step = 0
    await ctx.delay(0)
    assert not ctx.get(dut.bias)
    for tile in tiles:
        await _gap(ctx, dut, rng, rng.randrange(3), fan_in, last_tile, scramble)
        # The sum moves into the drain register (step counter at 0 between sums).
        ctx.set(dut.popped, 1)
        ctx.set(dut.popped_tile, tile)
        ctx.set(dut.fan_in, fan_in)
        ctx.set(dut.last_tile, last_tile)
        ctx.set(dut.active, 0)
        ctx.set(dut.step, drain.step)
        await ctx.delay(0)
        assert not ctx.get(dut.advance) and not ctx.get(dut.bias)
        assert ctx.get(dut.shift) == update_shift
        await ctx.tick()
        ctx.set(dut.popped, 0)
        drain.sum, drain.pos = (tile, fan_in), 0
        updated = []
        for cycle in range(40 * (cols + 1) + 20):
            if scramble:
                ctx.set(dut.popped_tile, rng.randrange(1 << WIDTH))
                ctx.set(dut.fan_in, rng.randrange(1 << WIDTH))
                ctx.set(dut.last_tile, rng.randrange(1 << WIDTH))
            ctx.set(dut.active, 1)
            ctx.set(dut.step, drain.step)
            ctx.set(dut.taken, 0)
            ctx.set(dut.end, 0)
            await ctx.delay(0)
            want_update, want_bias, want_last, column = drain.expect()
            where = (tile, fan_in, drain.pos, cycle)
            assert drain.step == drain.pos, where
            assert ctx.get(dut.update) == want_update, where
            assert ctx.get(dut.bias) == want_bias, where
            assert ctx.get(dut.shift) == (bias_shift if want_bias else update_shift), where
            # The weight update answers a column it is offered, at random.
            taken = want_update and rng.random() < p_taken
            ctx.set(dut.taken, taken)
            await ctx.delay(0)
            advance = ctx.get(dut.advance)
            assert advance == (taken if want_update else 1), where
            assert ctx.get(dut.advance_column) == (advance and not want_bias), where
            assert ctx.get(dut.last) == want_last, where
            end = advance and want_last
            ctx.set(dut.end, end)
            await ctx.tick()
            if advance and want_update:
                updated.append(column)
            if end:
                drain.step, drain.sum = 0, None
                break
            if advance:
                drain.step += 1
                drain.pos += 1
        assert drain.sum is None, f"sum of tile {tile} never ended"
        log.append(updated)
    ctx.set(dut.active, 0)
    ctx.set(dut.end, 0)
    ctx.set(dut.taken, 0)
    ctx.set(dut.step, 0)
    await ctx.delay(0)
    # Between sums and after the last: update_shift, no bias.
    assert not ctx.get(dut.bias) and ctx.get(dut.shift) == update_shift


async def _other_phase(ctx, dut, rng, cycles):
    """Another phase uses the drain: sums pop with unrelated tags, the shared step counter runs
    and ends, ``active`` stays low; nothing advances, no bias step."""
    step = 0
    for _ in range(cycles):
        ctx.set(dut.popped, rng.random() < 0.2)
        ctx.set(dut.popped_tile, rng.randrange(1 << WIDTH))
        ctx.set(dut.fan_in, rng.randrange(1 << WIDTH))
        ctx.set(dut.last_tile, rng.randrange(1 << WIDTH))
        ctx.set(dut.active, 0)
        ctx.set(dut.taken, 0)
        ctx.set(dut.step, step)
        end = rng.random() < 0.2
        ctx.set(dut.end, end)
        await ctx.delay(0)
        assert not ctx.get(dut.advance) and not ctx.get(dut.bias)
        assert not ctx.get(dut.advance_column)
        await ctx.tick()
        step = 0 if end else (step + 1) % (1 << WIDTH)
    ctx.set(dut.end, 0)
    ctx.set(dut.popped, 0)


# (cols, fan_in of each layer): fan_in a multiple of cols, below cols, one above a multiple,
# a single input, many tiles.
LAYERS = [
    (1, [1, 5, 200]),
    (2, [1, 2, 7, 12]),
    (4, [3, 4, 9, 16, 22]),
    (8, [5, 8, 13, 64, 100, 1]),
]


def _tile_order(rng, fan_in, cols):
    """The gradient nest's order for two output tiles (every input tile in turn), then input
    tiles at random, the last one often."""
    n = _tiles(fan_in, cols)
    order = list(range(n)) * 2 if n <= 8 else list(range(n))[:4] + [n - 2, n - 1]
    order += [rng.choice([rng.randrange(n), n - 1]) for _ in range(6)]
    return order


def _drive(cols, layers, seed, scramble, p_taken):
    dut = GradientColumns(cols, WIDTH)
    rng = random.Random(seed)
    plan = []
    for fan_in in layers:
        plan.append((fan_in, _tile_order(rng, fan_in, cols),
                     (rng.randrange(32), rng.randrange(32))))
    logs = []

    async def tb(ctx):
        drain = _Drain(cols)
        await _other_phase(ctx, dut, rng, 5)
        for fan_in, tiles, shifts in plan:
            log = []
            await _phase(ctx, dut, rng, drain, fan_in, tiles, shifts, scramble, p_taken, log)
            logs.append(log)
            await _other_phase(ctx, dut, rng, rng.randrange(1, 8))

    _run(dut, tb)
    for (fan_in, tiles, _), log in zip(plan, logs):
        assert log == [_expected_updates(t, fan_in, cols) for t in tiles], fan_in
    return plan, logs


@pytest.mark.parametrize("cols,layers", LAYERS)
def test_column_walk_updates_real_inputs_then_the_bias(cols, layers):
    plan, logs = _drive(cols, layers, seed=cols * 7 + 1, scramble=False, p_taken=0.5)
    # The runs cover the cases the brief lists: sums with skipped columns, bias steps.
    steps = [c for log in logs for s in log for c in s]
    assert "bias" in steps
    if cols > 1:                            # some sum passed over columns past the last input
        assert any(len([c for c in s if c != "bias"]) < cols for log in logs for s in log)


@pytest.mark.parametrize("cols,layers", LAYERS)
def test_sizes_are_registered_as_the_sum_moves_in(cols, layers):
    """``popped_tile``, ``fan_in`` and ``last_tile`` only matter in the cycle a sum pops: the
    walk is the same with other values on them in every other cycle."""
    _drive(cols, layers, seed=cols * 11 + 3, scramble=True, p_taken=0.5)


@pytest.mark.parametrize("cols", [1, 2, 4, 8])
def test_never_stalled_update_takes_a_column_a_cycle(cols):
    _drive(cols, [cols, 3 * cols + 1, max(1, cols - 1)], seed=cols, scramble=False,
           p_taken=1.0)


def test_begin_clears_a_pending_bias_step():
    """A bias step left waiting for the update: ``begin`` clears ``bias``; the next sum walks
    as usual, with ``update_shift``."""
    cols, fan_in = 2, 3                     # input tiles 0 and 1; tile 1 has one real column
    dut = GradientColumns(cols, WIDTH)
    log = []

    async def tb(ctx):
        ctx.set(dut.begin, 1)
        ctx.set(dut.bias_shift, 9)
        ctx.set(dut.update_shift, 4)
        ctx.set(dut.fan_in, fan_in)
        ctx.set(dut.last_tile, 1)
        await ctx.tick()
        ctx.set(dut.begin, 0)
        ctx.set(dut.popped, 1)
        ctx.set(dut.popped_tile, 1)
        await ctx.tick()
        ctx.set(dut.popped, 0)
        ctx.set(dut.active, 1)
        for step, taken in ((0, 1), (1, 0)):          # column 2 updated, column 3 skipped
            ctx.set(dut.step, step)
            ctx.set(dut.taken, taken)
            await ctx.delay(0)
            log.append((ctx.get(dut.update), ctx.get(dut.advance), ctx.get(dut.last)))
            await ctx.tick()
        ctx.set(dut.step, 2)
        ctx.set(dut.taken, 0)
        for _ in range(2):                            # the bias step, stalled
            await ctx.delay(0)
            log.append((ctx.get(dut.bias), ctx.get(dut.update), ctx.get(dut.advance),
                        ctx.get(dut.last), ctx.get(dut.shift)))
            await ctx.tick()
        ctx.set(dut.active, 0)
        ctx.set(dut.begin, 1)
        ctx.set(dut.step, 0)
        await ctx.tick()
        ctx.set(dut.begin, 0)
        await ctx.delay(0)
        log.append(ctx.get(dut.bias))
        ctx.set(dut.popped, 1)
        ctx.set(dut.popped_tile, 0)
        await ctx.tick()
        ctx.set(dut.popped, 0)
        ctx.set(dut.active, 1)
        ctx.set(dut.taken, 1)
        for step in (0, 1):                           # tile 0: columns 0, 1, no bias
            ctx.set(dut.step, step)
            await ctx.delay(0)
            log.append((ctx.get(dut.bias), ctx.get(dut.update), ctx.get(dut.advance),
                        ctx.get(dut.last), ctx.get(dut.shift)))
            await ctx.tick()

    _run(dut, tb)
    assert log == [(1, 1, 0), (0, 1, 0),
                   (1, 1, 0, 1, 9), (1, 1, 0, 1, 9),
                   0,
                   (0, 1, 1, 0, 4), (0, 1, 1, 1, 4)]
