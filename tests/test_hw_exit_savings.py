"""hw/core/exit_savings.py: the beats early exit saves against the docstring's formulas, for
random sizes: skipped groups of the forward pass and of the scores, and skipped layers
(Amaranth simulator)."""

import random

import pytest
from amaranth.sim import Simulator

from hw.core.exit_savings import ExitSavings
from hw.core.sequencer import Phase

WIDTH = 8


def _sizes(rng, extreme=False):
    top = (1 << WIDTH) - 1
    if extreme:
        return {"tiles": top, "fan_in": top, "neurons": top, "groups": 255}
    return {name: rng.randrange(256 if name == "groups" else 1 << WIDTH)
            for name in ("tiles", "fan_in", "neurons", "groups")}


@pytest.mark.parametrize("class_tiles,seed,registered", [(1, 1, True), (2, 2, True),
                                                         (3, 3, True), (4, 4, True),
                                                         (3, 5, False)])
def test_savings_follow_the_formulas(class_tiles, seed, registered):
    dut = ExitSavings(WIDTH, class_tiles, registered_sizes=registered)
    rng = random.Random(seed)
    stats = {"forward": 0, "score": 0, "layers": 0}

    async def tb(ctx):
        expect = 0                                  # ``skipped`` this cycle

        def set_sizes(sizes):
            for name, value in sizes.items():
                ctx.set(getattr(dut, name), value)

        async def step(skip=0, skip_layer=0, begin=None):
            nonlocal expect
            ctx.set(dut.skip, skip)
            ctx.set(dut.skip_layer, skip_layer)
            ctx.set(dut.begin_forward, begin == Phase.FWD)
            ctx.set(dut.begin_scores, begin == Phase.SCORE)
            await ctx.delay(0)
            assert ctx.get(dut.skipped) == expect
            done = ctx.get(dut.skipped_layer)
            await ctx.tick()
            return done

        for layer in range(12):
            sizes = _sizes(rng, extreme=layer == 5)
            t, j, n, g = sizes["tiles"], sizes["fan_in"], sizes["neurons"], sizes["groups"]
            set_sizes(sizes)
            if rng.random() < 0.4:
                # A skipped layer: skip_layer until skipped_layer, then its savings.
                for cycles in range(1, 10):
                    done = await step(skip_layer=1)
                    expect = 0
                    if registered:
                        set_sizes(_sizes(rng))      # sampled in the first cycle only
                    if done:
                        break
                assert done and cycles == (5 if registered else 3)
                expect = g * (t * (j + 1) + n * class_tiles)
                stats["layers"] += 1
                set_sizes(sizes)
                await step()
                expect = 0
                continue
            for phase, per_skip in ((Phase.FWD, j + 1), (Phase.SCORE, n * class_tiles)):
                await step(begin=phase)
                expect = 0
                # The sizes may change once the phase has begun.
                set_sizes(_sizes(rng))
                for _ in range(rng.randrange(1, 12)):
                    skip = rng.random() < 0.5
                    await step(skip=skip)
                    expect = per_skip if skip else 0
                    stats["forward" if phase == Phase.FWD else "score"] += skip
                set_sizes(sizes)
            await step()
            expect = 0

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert all(stats.values()), stats
