"""hw/core/feedback_registers.py: rows of random feedback matrices streamed in, a tile
moving in only when the beats ask for it and no stalled beat reads the old one, the column of
a class equal to the matrix's, ``enable`` and ``start`` (Amaranth simulator)."""

import random

import pytest
from amaranth.hdl import signed
from amaranth.sim import Simulator

from hw.core.feedback_registers import FeedbackRegisters

WBITS, WIDTH = 5, 4


def _run(dut, tb):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


def _matrices(rng, tiles, rows, classes):
    lo, hi = -(1 << (WBITS - 1)), (1 << (WBITS - 1)) - 1
    return [[[rng.randint(lo, hi) for _ in range(classes)] for _ in range(rows)]
            for _ in range(tiles)]


class _Bench:
    """Drives a layer: the row stream with random gaps, beats over the tiles in order with
    random stalls and ``enable`` low, and checks each cycle against a model of the two
    buffers written from the docstring."""

    def __init__(self, dut, rng, p_stall=0.3, p_off=0.15):
        self.dut, self.rng, self.p_stall, self.p_off = dut, rng, p_stall, p_off
        self.registered = dut.registered_move
        self.stats = {"moves": 0, "stalled_reads": 0, "columns": 0, "refused_rows": 0}

    async def layer(self, ctx, K, beats_per_tile, stop_after_tile=None):
        dut, rng = self.dut, self.rng
        P, C = dut.rows, dut.classes
        T = len(K)
        ctx.set(dut.enable, 0)
        ctx.set(dut.start, 1)
        ctx.set(dut.tiles, T)
        await ctx.tick()
        ctx.set(dut.start, 0)
        taken, following, current = 0, None, None   # the model: rows in, the two buffers
        tile, beats = 0, 0
        moving = False                              # registered: the move is made this cycle
        for cycle in range(200 * T * (P + beats_per_tile) + 100):
            if tile == T or tile == stop_after_tile:
                break
            enable = rng.random() >= self.p_off
            stall = rng.random() < self.p_stall
            valid = taken < T * P and rng.random() < 0.7
            c = rng.randrange(C)
            ctx.set(dut.enable, enable)
            ctx.set(dut.stall, stall)
            ctx.set(dut.tile, tile)
            ctx.set(dut.class_index, c)
            ctx.set(dut.weights.valid, valid)
            row = K[taken // P][taken % P] if taken < T * P else [0] * C
            for k in range(C):
                ctx.set(dut.weights.payload[k], row[k] if valid else rng.randint(-16, 15))
            await ctx.delay(0)
            want_wready = enable and following is None and taken < T * P
            assert ctx.get(dut.weights.ready) == want_wready, (cycle, taken, following)
            self.stats["refused_rows"] += valid and not want_wready
            ready = ctx.get(dut.ready)
            assert ready == (current == tile), (cycle, tile, current)
            if ready:
                # Column c of the current tile, stalled or not.
                assert [ctx.get(dut.column[r]) for r in range(P)] == \
                    [K[tile][r][c] for r in range(P)], (cycle, tile, c)
                self.stats["columns"] += 1
                self.stats["stalled_reads"] += stall
            # The next tile moves in when asked for, enabled and no stalled beat reads.
            move = enable and not stall and following is not None and following == tile \
                and current != tile
            if self.registered:
                move, moving = moving, move and not moving
            await ctx.tick()
            if valid and want_wready:
                taken += 1
                if taken % P == 0:
                    following = taken // P - 1
            if move:
                current, following = following, None
                self.stats["moves"] += 1
            if ready and not stall:
                beats += 1
                if beats == beats_per_tile:
                    tile, beats = tile + 1, 0
        assert tile == (T if stop_after_tile is None else stop_after_tile)
        return taken


@pytest.mark.parametrize("registered", [False, True], ids=["comb", "registered"])
@pytest.mark.parametrize("rows,classes,tiles,seed", [
    (1, 1, 1, 1), (3, 4, 3, 2), (4, 10, 5, 3), (2, 3, 6, 4)])
def test_tiles_in_order_with_columns_of_their_matrix(rows, classes, tiles, seed, registered):
    dut = FeedbackRegisters(rows, classes, signed(WBITS), WIDTH, registered_move=registered)
    rng = random.Random(seed)
    bench = _Bench(dut, rng)

    async def tb(ctx):
        for _ in range(2):                          # two layers, the second after a start
            K = _matrices(rng, tiles, rows, classes)
            taken = await bench.layer(ctx, K, beats_per_tile=rng.randint(1, 2 * classes))
            assert taken == tiles * rows
        # Done: the beats leave the last tile; nothing more is taken.
        ctx.set(dut.weights.valid, 1)
        ctx.set(dut.enable, 1)
        ctx.set(dut.tile, tiles)
        for _ in range(5):
            await ctx.delay(0)
            assert not ctx.get(dut.weights.ready) and not ctx.get(dut.ready)
            await ctx.tick()

    _run(dut, tb)
    assert bench.stats["moves"] == 2 * tiles
    if tiles > 1:
        assert bench.stats["stalled_reads"] and bench.stats["refused_rows"]


@pytest.mark.parametrize("registered", [False, True], ids=["comb", "registered"])
def test_start_in_mid_layer_empties_both_buffers(registered):
    rows, classes, tiles = 2, 3, 4
    dut = FeedbackRegisters(rows, classes, signed(WBITS), WIDTH, registered_move=registered)
    rng = random.Random(9)
    bench = _Bench(dut, rng)

    async def tb(ctx):
        first = _matrices(rng, tiles, rows, classes)
        # Stop with tile 1 current and tile 2 filling or full.
        await bench.layer(ctx, first, beats_per_tile=3, stop_after_tile=2)
        second = _matrices(rng, tiles, rows, classes)
        await bench.layer(ctx, second, beats_per_tile=3)

    _run(dut, tb)


def test_enable_low_takes_no_row_and_moves_no_tile():
    rows, classes = 2, 2
    dut = FeedbackRegisters(rows, classes, signed(WBITS), WIDTH)
    log = []

    async def tb(ctx):
        ctx.set(dut.start, 1)
        ctx.set(dut.tiles, 2)
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.weights.valid, 1)
        ctx.set(dut.tile, 0)
        for k, v in enumerate((3, -4)):
            ctx.set(dut.weights.payload[k], v)
        for _ in range(4):                          # disabled: nothing happens
            await ctx.delay(0)
            log.append((ctx.get(dut.weights.ready), ctx.get(dut.ready)))
            await ctx.tick()
        ctx.set(dut.enable, 1)
        for _ in range(2):                          # tile 0's two rows
            await ctx.delay(0)
            log.append((ctx.get(dut.weights.ready), ctx.get(dut.ready)))
            await ctx.tick()
        ctx.set(dut.enable, 0)
        for _ in range(3):                          # full, asked for, but disabled
            await ctx.delay(0)
            log.append((ctx.get(dut.weights.ready), ctx.get(dut.ready)))
            await ctx.tick()
        ctx.set(dut.enable, 1)
        ctx.set(dut.stall, 1)                       # asked for, stalled
        await ctx.delay(0)
        log.append((ctx.get(dut.weights.ready), ctx.get(dut.ready)))
        await ctx.tick()
        ctx.set(dut.stall, 0)
        await ctx.delay(0)
        log.append((ctx.get(dut.weights.ready), ctx.get(dut.ready)))
        await ctx.tick()
        await ctx.delay(0)
        log.append((ctx.get(dut.weights.ready), ctx.get(dut.ready)))
        ctx.set(dut.class_index, 1)
        await ctx.delay(0)
        log.append([ctx.get(dut.column[r]) for r in range(rows)])

    _run(dut, tb)
    assert log == [(0, 0)] * 4 + [(1, 0)] * 2 + [(0, 0)] * 3 + [(0, 0), (0, 0), (1, 1),
                                                               [-4, -4]]
