"""hw/core/weight_slab.py: tiles of words streamed in with random gaps land in banks 0, 1,
0, ...; a full bank takes no word until released; a reader with random delays sees every
tile's words in order, a cycle after each read; ``start`` resets (Amaranth simulator)."""

import random

import pytest
from amaranth.sim import Simulator

from hw.core.weight_slab import WeightSlab

WORD, ABITS, WIDTH = 16, 4, 6


def _run(dut, tb):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


@pytest.mark.parametrize("tiles,fan_in,scramble,seed", [
    (1, 0, False, 1), (2, 3, True, 2), (5, 2, True, 3), (4, 15, False, 4), (7, 1, True, 5)])
def test_tiles_fill_alternate_banks_and_reader_sees_them_in_order(tiles, fan_in, scramble,
                                                                  seed):
    dut = WeightSlab(WORD, ABITS, WIDTH, scramble)
    rng = random.Random(seed)
    n = fan_in + 1
    words = [rng.getrandbits(WORD) for _ in range(tiles * n)]
    got = []                                        # per tile, the words the reader saw
    checks = {"full_refusals": 0, "reads_held": 0}

    async def tb(ctx):
        ctx.set(dut.start, 1)
        ctx.set(dut.tiles, tiles)
        ctx.set(dut.fan_in, fan_in)
        await ctx.tick()
        ctx.set(dut.start, 0)
        full = [False, False]                       # the model's banks
        sent = 0                                    # words accepted
        # Reader: its tile, the next address to read, the read in flight, delay to release.
        r_tile, r_next, pending, seen, release_wait = 0, 0, None, [], None
        last_data = None
        for cycle in range(60 * len(words) + 200):
            # ---- writer: a word with a random gap
            valid = sent < len(words) and rng.random() < 0.6
            ctx.set(dut.words.valid, valid)
            ctx.set(dut.words.payload, words[sent] if valid else rng.getrandbits(WORD))
            # ---- reader
            bank = r_tile % 2
            ctx.set(dut.read_bank, bank)
            ctx.set(dut.release, 0)
            ctx.set(dut.read_en, 0)
            ctx.set(dut.read_addr, rng.randrange(1 << ABITS))
            await ctx.delay(0)
            # The data of last cycle's read (or of the last read, held).
            if pending is not None:
                data = ctx.get(dut.read_data)
                seen.append(data)
                last_data = data
                pending = None
            elif last_data is not None:
                assert ctx.get(dut.read_data) == last_data
                checks["reads_held"] += 1
            # Tiles stop the filling; a full bank takes nothing.
            filled = sent // n
            want_ready = filled < tiles and not full[filled % 2]
            assert ctx.get(dut.words.ready) == want_ready, (cycle, sent, full)
            checks["full_refusals"] += filled < tiles and full[filled % 2]
            assert ctx.get(dut.read_ready) == full[bank], (cycle, bank, full)
            release = False
            if r_tile < tiles and full[bank]:
                if r_next < n:
                    if rng.random() < 0.6:
                        ctx.set(dut.read_en, 1)
                        ctx.set(dut.read_addr, r_next)
                        pending = r_next
                        r_next += 1
                elif pending is None and len(seen) == n:
                    if release_wait is None:
                        release_wait = rng.randrange(4)
                    if release_wait == 0:
                        ctx.set(dut.release, 1)
                        release = True
                    release_wait -= 1
            accepted = valid and want_ready
            await ctx.tick()
            if accepted:
                sent += 1
                if sent % n == 0:
                    full[(sent // n - 1) % 2] = True
            if release:
                full[bank] = False
                got.append(seen)
                r_tile, r_next, seen, release_wait = r_tile + 1, 0, [], None
        assert sent == len(words) and r_tile == tiles
        # Every bank released and the tiles all in: no more words taken.
        ctx.set(dut.words.valid, 1)
        for _ in range(5):
            await ctx.delay(0)
            assert not ctx.get(dut.words.ready)
            assert not ctx.get(dut.read_ready)
            await ctx.tick()

    _run(dut, tb)
    assert got == [words[t * n:(t + 1) * n] for t in range(tiles)]
    if tiles > 2:
        assert checks["full_refusals"]
    assert checks["reads_held"]


def _fill(ctx, dut, payloads):
    """Stream ``payloads`` in, one a cycle, each while ``words.ready``."""
    async def go():
        for w in payloads:
            ctx.set(dut.words.valid, 1)
            ctx.set(dut.words.payload, w)
            await ctx.delay(0)
            assert ctx.get(dut.words.ready)
            await ctx.tick()
        ctx.set(dut.words.valid, 0)
    return go()


async def _read(ctx, dut, bank, addr):
    ctx.set(dut.read_bank, bank)
    ctx.set(dut.read_en, 1)
    ctx.set(dut.read_addr, addr)
    await ctx.tick()
    ctx.set(dut.read_en, 0)
    await ctx.delay(0)
    return ctx.get(dut.read_data)


def test_bank_full_from_its_last_word_and_release_frees_it():
    dut = WeightSlab(WORD, ABITS, WIDTH)
    log = []

    async def tb(ctx):
        ctx.set(dut.start, 1)
        ctx.set(dut.tiles, 3)
        ctx.set(dut.fan_in, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        await _fill(ctx, dut, [10, 11])
        await ctx.delay(0)
        ctx.set(dut.read_bank, 0)
        await ctx.delay(0)
        log.append(ctx.get(dut.read_ready))         # bank 0 full
        ctx.set(dut.read_bank, 1)
        await ctx.delay(0)
        log.append(ctx.get(dut.read_ready))         # bank 1 not yet
        await _fill(ctx, dut, [20, 21])
        log.append(ctx.get(dut.read_ready))         # bank 1 full
        ctx.set(dut.words.valid, 1)
        ctx.set(dut.words.payload, 30)
        await ctx.delay(0)
        log.append(ctx.get(dut.words.ready))        # both full: tile 2 waits
        log.append([await _read(ctx, dut, b, a) for b in (0, 1) for a in (0, 1)])
        ctx.set(dut.read_bank, 1)                   # releasing bank 1 does not free bank 0
        ctx.set(dut.release, 1)
        await ctx.tick()
        ctx.set(dut.release, 0)
        await ctx.delay(0)
        log.append(ctx.get(dut.words.ready))
        ctx.set(dut.read_bank, 0)
        ctx.set(dut.release, 1)
        await ctx.tick()
        ctx.set(dut.release, 0)
        await ctx.delay(0)
        log.append(ctx.get(dut.words.ready))        # bank 0 free: tile 2 goes in
        log.append(ctx.get(dut.read_ready))
        await _fill(ctx, dut, [30, 31])
        log.append(ctx.get(dut.read_ready))
        log.append([await _read(ctx, dut, 0, a) for a in (0, 1)])

    _run(dut, tb)
    assert log == [1, 0, 1, 0, [10, 11, 20, 21], 0, 1, 0, 1, [30, 31]]


def test_start_resets_a_partial_fill():
    dut = WeightSlab(WORD, ABITS, WIDTH)
    log = []

    async def tb(ctx):
        ctx.set(dut.start, 1)
        ctx.set(dut.tiles, 4)
        ctx.set(dut.fan_in, 2)
        await ctx.tick()
        ctx.set(dut.start, 0)
        await _fill(ctx, dut, [1, 2, 3, 4])          # bank 0 full, a word into bank 1
        ctx.set(dut.start, 1)                       # restart: 1 tile of 2 words
        ctx.set(dut.tiles, 1)
        ctx.set(dut.fan_in, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for b in (0, 1):
            ctx.set(dut.read_bank, b)
            await ctx.delay(0)
            log.append(ctx.get(dut.read_ready))     # both banks empty again
        await _fill(ctx, dut, [50, 51])             # word 0 of bank 0 again
        ctx.set(dut.read_bank, 0)
        await ctx.delay(0)
        log.append(ctx.get(dut.read_ready))
        ctx.set(dut.read_bank, 1)
        await ctx.delay(0)
        log.append(ctx.get(dut.read_ready))
        ctx.set(dut.words.valid, 1)
        await ctx.delay(0)
        log.append(ctx.get(dut.words.ready))        # one tile only
        log.append([await _read(ctx, dut, 0, a) for a in (0, 1)])

    _run(dut, tb)
    assert log == [0, 0, 1, 0, 0, [50, 51]]
