"""hw/core/sequencer.py: the (layer, phase) events of INIT, TRAIN and INFER commands of 1..3
layers against their documented order, with the register copy, the datapath's ``phase_done``
and the skipped-layer accounting answered after random delays; ``busy``, ``done``, early exit,
and starts that come while busy (Amaranth simulator)."""

import random

import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from hw.core.sequencer import Op, Phase, Sequencer

PHASES = {Op.INIT: [Phase.INIT],
          Op.TRAIN: [Phase.FWD, Phase.SCORE, Phase.BACK, Phase.GRAD],
          Op.INFER: [Phase.FWD, Phase.SCORE]}
#: With batch normalisation: NORM after FWD, NORM_BACK after BACK.
NORMALISED = {Op.INIT: [Phase.INIT],
              Op.TRAIN: [Phase.FWD, Phase.NORM, Phase.SCORE, Phase.BACK, Phase.NORM_BACK,
                         Phase.GRAD],
              Op.INFER: [Phase.FWD, Phase.NORM, Phase.SCORE]}


def _expected(op, layers, exited, frozen=None, normalise=False):
    """A frozen layer of a TRAIN runs its forward pass only (and, normalised, its NORM: its
    running statistics move)."""
    frozen = frozen or [False] * layers
    phases = (NORMALISED if normalise else PHASES)[op]
    forward = 2 if normalise else 1
    return [(layer, phase) for layer in range(layers) if not exited[layer]
            for phase in (phases[:forward] if op == Op.TRAIN and frozen[layer] else phases)]


def _set_command(ctx, dut, op, batch, early_exit, threshold):
    ctx.set(dut.command.op, op)
    ctx.set(dut.command.batch, batch)
    ctx.set(dut.command.early_exit, early_exit)
    ctx.set(dut.command.threshold, threshold)


def _run_commands(dut, rng, commands):
    """Runs ``commands`` ((op, layers, exited[, frozen]) each) one after another with a random
    environment; returns per command what the sequencer did."""
    results = []

    async def tb(ctx):
        for op, layers, exited, *rest in commands:
            frozen = rest[0] if rest else [False] * layers
            if dut.batch_norm:
                ctx.set(dut.normalise, rest[1] if len(rest) > 1 else 0)
            res = {"events": [], "copies": [], "skips": [], "done": 0}
            results.append(res)
            ctx.set(dut.layers, layers)
            batch, threshold = rng.randrange(256), rng.randrange(1 << 16)
            # Idle for a while first: nothing starts, with every input at random.
            for _ in range(rng.randrange(1, 5)):
                ctx.set(dut.phase_done, rng.random() < 0.5)
                ctx.set(dut.all_exited, rng.random() < 0.5)
                await ctx.delay(0)
                assert not ctx.get(dut.busy) and not ctx.get(dut.copy)
                ctx.set(dut.copied, rng.random() < 0.5)
                ctx.set(dut.skipped, rng.random() < 0.5)
                await ctx.delay(0)
                assert not ctx.get(dut.begin) and not ctx.get(dut.done)
                assert not ctx.get(dut.skip_layer) and not ctx.get(dut.running)
                await ctx.tick()
            ctx.set(dut.copied, 0)
            ctx.set(dut.skipped, 0)
            ctx.set(dut.start, 1)
            _set_command(ctx, dut, op, batch, 1, threshold)
            await ctx.delay(0)
            assert ctx.get(dut.accept)
            await ctx.tick()
            copy_wait = skip_wait = None
            done_phase = 0                          # cycles left of the datapath's work
            first_begin_due = None                  # registered: begin after copied
            for cycle in range(2000):
                # A start while busy, with another command, is ignored.
                other = rng.random() < 0.2
                ctx.set(dut.start, other)
                _set_command(ctx, dut, rng.choice(list(Op)), rng.randrange(256), 0, 0)
                ctx.set(dut.phase_done, done_phase == 0)
                ctx.set(dut.all_exited, rng.random() < 0.5)
                ctx.set(dut.copied, 0)
                ctx.set(dut.skipped, 0)
                await ctx.delay(0)
                assert ctx.get(dut.busy), cycle
                assert not ctx.get(dut.accept)
                assert ctx.get(dut.cmd.op) == op.value and ctx.get(dut.cmd.batch) == batch
                assert ctx.get(dut.cmd.threshold) == threshold
                layer = ctx.get(dut.layer)
                ctx.set(dut.frozen, frozen[layer] if layer < layers else rng.random() < 0.5)
                copy, skip_layer = ctx.get(dut.copy), ctx.get(dut.skip_layer)
                assert not (copy and skip_layer)
                if copy or skip_layer:
                    assert not ctx.get(dut.running)
                # The copy: answered after a random delay; all_exited at its end.
                copied = False
                if copy:
                    if copy_wait is None:
                        copy_wait = rng.randrange(4)
                    if copy_wait == 0:
                        ctx.set(dut.copied, 1)
                        ctx.set(dut.all_exited, exited[layer])
                        res["copies"].append(layer)
                        copied, copy_wait = True, None
                    else:
                        copy_wait -= 1
                else:
                    assert copy_wait is None, "copy dropped before copied"
                skipped = False
                if skip_layer:
                    if skip_wait is None:
                        skip_wait = rng.randrange(4)
                    if skip_wait == 0:
                        ctx.set(dut.skipped, 1)
                        res["skips"].append(layer)
                        skipped, skip_wait = True, None
                    else:
                        skip_wait -= 1
                else:
                    assert skip_wait is None, "skip_layer dropped before skipped"
                await ctx.delay(0)
                begin, done = ctx.get(dut.begin), ctx.get(dut.done)
                assert not (begin and (skip_layer or done))
                # The layer's first phase begins with the copy's last cycle (registered, the
                # cycle after, with the last layer's phase idle), unless exited.
                first_begin = copied and not (dut.early_exit and exited[layer])
                if dut.registered_begin:
                    if copy:
                        assert not begin, cycle
                    if first_begin_due is not None:
                        assert begin == first_begin_due, cycle
                    first_begin_due = first_begin if copied else None
                elif copy:
                    assert begin == first_begin, cycle
                # One strobe per phase, the begun phase's only.
                assert {ph for ph in dut.phases if ctx.get(dut.begins[ph.name.lower()])} == (
                    {Phase(ctx.get(dut.begin_phase))} if begin else set())
                if begin:
                    phase = Phase(ctx.get(dut.begin_phase))
                    res["events"].append((layer, phase))
                done_phase = max(0, done_phase - 1)
                await ctx.tick()
                if begin:
                    done_phase = rng.randrange(5)   # the datapath works a while
                    await ctx.delay(0)
                    assert Phase(ctx.get(dut.phase)) == phase and ctx.get(dut.running)
                    assert [ph for ph in dut.phases
                            if ctx.get(dut.phase_is[ph.name.lower()])] == [phase]
                if done:
                    res["done"] += 1
                    break
            ctx.set(dut.start, 0)
            # busy low from the cycle after done; done was one cycle.
            await ctx.delay(0)
            assert not ctx.get(dut.busy) and not ctx.get(dut.done)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return results


@pytest.mark.parametrize("registered", [False, True])
@pytest.mark.parametrize("op", list(Op))
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_phases_in_documented_order(op, layers, registered):
    dut = Sequencer(early_exit=True, registered_begin=registered)
    rng = random.Random(layers * 7 + op.value)
    commands = [(op, layers, [False] * layers), (op, layers, [False] * layers)]
    results = _run_commands(dut, rng, commands)
    for res in results:
        assert res["events"] == _expected(op, layers, [False] * layers)
        assert res["copies"] == list(range(layers)) and res["skips"] == []
        assert res["done"] == 1


@pytest.mark.parametrize("registered", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_mixed_commands_back_to_back(seed, registered):
    dut = Sequencer(early_exit=False, registered_begin=registered)
    rng = random.Random(100 + seed)
    commands = []
    for _ in range(4):
        layers = rng.randint(1, 3)
        # Without early exit all_exited is ignored.
        commands.append((rng.choice(list(Op)), layers, [rng.random() < 0.5] * layers))
    results = _run_commands(dut, rng, commands)
    for (op, layers, _), res in zip(commands, results):
        assert res["events"] == _expected(op, layers, [False] * layers)
        assert res["copies"] == list(range(layers)) and res["skips"] == []


@pytest.mark.parametrize("registered", [False, True])
@pytest.mark.parametrize("exited", [[True], [False, True], [True, False, True],
                                    [True, True, True], [False, True, False]])
def test_exited_layers_are_skipped(exited, registered):
    dut = Sequencer(early_exit=True, registered_begin=registered)
    rng = random.Random(len(exited) + 10 * sum(exited))
    layers = len(exited)
    results = _run_commands(dut, rng, [(Op.INFER, layers, exited), (Op.TRAIN, layers, exited)])
    for op, res in zip((Op.INFER, Op.TRAIN), results):
        assert res["events"] == _expected(op, layers, exited)
        assert res["copies"] == list(range(layers))
        assert res["skips"] == [k for k in range(layers) if exited[k]]
        assert res["done"] == 1



@pytest.mark.parametrize("registered", [False, True])
@pytest.mark.parametrize("frozen", [[True], [True, False], [False, True, True], [True] * 3])
def test_frozen_layers_train_forward_only(frozen, registered):
    """TRAIN runs a frozen layer's FWD and nothing else; INFER and INIT ignore the mask."""
    dut = Sequencer(early_exit=True, registered_begin=registered)
    rng = random.Random(sum(2 ** k for k, f in enumerate(frozen)) + 50)
    layers = len(frozen)
    commands = [(op, layers, [False] * layers, frozen) for op in (Op.TRAIN, Op.INFER, Op.INIT,
                                                                  Op.TRAIN)]
    results = _run_commands(dut, rng, commands)
    for (op, *_), res in zip(commands, results):
        assert res["events"] == _expected(op, layers, [False] * layers, frozen)
        assert res["copies"] == list(range(layers)) and res["done"] == 1


@pytest.mark.parametrize("registered", [False, True])
@pytest.mark.parametrize("normalise", [False, True])
@pytest.mark.parametrize("frozen", [[False, False], [True, False], [False, True, True]])
def test_normalised_layers_run_norm_phases(normalise, frozen, registered):
    """A core built with batch normalisation: with ``normalise`` NORM follows FWD (a frozen
    layer's too, and then nothing else) and NORM_BACK follows BACK; without, the phases of a
    core built without it."""
    dut = Sequencer(early_exit=True, batch_norm=True, registered_begin=registered)
    rng = random.Random(len(frozen) + 3 * normalise + 7 * sum(frozen))
    layers = len(frozen)
    commands = [(op, layers, [False] * layers, frozen, normalise)
                for op in (Op.TRAIN, Op.INFER, Op.INIT, Op.TRAIN)]
    results = _run_commands(dut, rng, commands)
    for (op, *_), res in zip(commands, results):
        assert res["events"] == _expected(op, layers, [False] * layers, frozen, normalise)
        assert res["done"] == 1


def test_phases_a_core_without_batch_norm_announces():
    """Only a core built with batch normalisation has NORM strobes (and a ``normalise``)."""
    plain, normalising = Sequencer(), Sequencer(batch_norm=True)
    assert Phase.NORM not in plain.phases and "normalise" not in plain.signature.members
    assert {Phase.NORM, Phase.NORM_BACK} <= set(normalising.phases)
    for dut in (plain, normalising):                 # and both elaborate
        Fragment.get(dut, None)
