"""hw/core/beat_operands.py: for random words in each phase, the MAC beat's ``a`` and ``b`` lanes
and its ``first``/``last`` against the docstring's table (Amaranth simulator, combinational):
FWD weights x inputs (the bias beat's b = ``2**in_frac``); SCORE the classifier weights of class
tile ``m`` rebuilt from their odd parts (docs/ARITHMETIC.md: ``m = 2u - (2**k - 1)``, odd) x the
outputs, 0 past the last class; BACK the feedback column x the errors; GRAD the deltas x the
inputs of columns ``m * cols + q``, 0 at or past ``fan_in``. Several array shapes and widths."""

import random
from pathlib import Path

import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data
from amaranth.sim import Simulator

from contract.config import load_config
from hw.arith import classifier_weight
from hw.core.beat_operands import BeatOperands
from hw.core.classifier_weights import odd_part
from hw.core.sequencer import Phase
from hw.params import CoreParams

WIDTH = 6
DIGITS = Path(__file__).resolve().parent.parent / "configs" / "digits.toml"
PHASES = [Phase.FWD, Phase.SCORE, Phase.BACK, Phase.GRAD]


def _params(rows, cols, classes, **widths):
    return CoreParams.from_config(load_config(DIGITS), rows=rows, cols=cols, classes=classes,
                                  **widths)


def _signed(rng, bits):
    return rng.randrange(-(1 << (bits - 1)), 1 << (bits - 1))


def _classifier_weight(u, k):
    """docs/ARITHMETIC.md: a ``k``-bit chunk ``u`` gives the odd weight ``2u - (2**k - 1)``."""
    return 2 * u - ((1 << k) - 1)


def _odd_part(weight, k):
    """The weight in two's complement of ``k + 1`` bits, without its low bit (always 1)."""
    assert weight % 2 == 1 and -(1 << k) < weight < (1 << k)
    return (weight % (1 << (k + 1))) >> 1


def _dut(p, registered=False):
    # The MAC array's input beat (hw/mac_array.py), at the core's operand shapes.
    beat_layout = data.StructLayout({"a": data.ArrayLayout(p.a_shape, p.rows),
                                     "b": data.ArrayLayout(p.b_shape, p.cols),
                                     "first": 1, "last": 1})
    return BeatOperands(p.rows, p.cols, p.classes, beat_layout, p.act_bits, p.weight_bits,
                        p.error_bits, p.delta_bits, p.classifier_bits,
                        signed(p.classifier_bits + 1), WIDTH, registered=registered)


def _vector(rng, p, phase):
    """Random words and a random beat of ``phase`` (its counters in the phase's range)."""
    P, Q, C, k = p.rows, p.cols, p.classes, p.classifier_bits
    fan_in = rng.randrange(1, min(6 * Q, (1 << WIDTH) - 1) + 1)
    input_tiles = -(-fan_in // Q)
    if phase == Phase.SCORE:
        m = rng.randrange(-(-C // P))
    elif phase == Phase.GRAD:
        # The last input tile often; now and then one past it (all its columns past fan_in).
        m = rng.choice([rng.randrange(input_tiles), input_tiles - 1, input_tiles - 1,
                        min(input_tiles, ((1 << WIDTH) - 1) // Q - 1)])
    else:
        m = rng.randrange(1 << WIDTH)
    weights = [_classifier_weight(rng.randrange(1 << k), k) for _ in range(C)]
    return {
        "phase": phase,
        "first": rng.randrange(2), "last": rng.randrange(2), "bias": rng.random() < 0.3,
        "k": rng.randrange(1 << WIDTH), "m": m,
        "weights": [_signed(rng, p.weight_bits) for _ in range(P)],
        "deltas": [_signed(rng, p.delta_bits) for _ in range(P)],
        "inputs": [rng.randrange(1 << p.act_bits) for _ in range(Q)],
        "outputs": [rng.randrange(1 << p.act_bits) for _ in range(Q)],
        "errors": [_signed(rng, p.error_bits) for _ in range(Q)],
        "class_weights": weights,
        "classifier": [_odd_part(w, k) for w in weights],
        "feedback": [_signed(rng, k + 1) for _ in range(P)],
        "in_frac": rng.randrange(p.act_bits + 1),    # up to act_bits (16 at most)
        "fan_in": fan_in,
    }


def _expected(p, v):
    """(a lanes, b lanes) from the docstring's table."""
    P, Q, C = p.rows, p.cols, p.classes
    phase = v["phase"]
    if phase == Phase.FWD:
        b = [1 << v["in_frac"]] * Q if v["bias"] else v["inputs"]
        return v["weights"], b
    if phase == Phase.SCORE:
        classes = [v["m"] * P + r for r in range(P)]
        return [v["class_weights"][c] if c < C else 0 for c in classes], v["outputs"]
    if phase == Phase.BACK:
        return v["feedback"], v["errors"]
    columns = [v["m"] * Q + q for q in range(Q)]
    return v["deltas"], [x if j < v["fan_in"] else 0 for x, j in zip(v["inputs"], columns)]


def _check(p, vectors, registered=False, seed=0):
    """Each vector's words offered and its operands compared: at once, or (``registered``) in
    the cycle after it was offered with ``stall`` low, after some cycles of other words
    offered with ``stall`` high."""
    dut = _dut(p, registered)
    seen = []
    rng = random.Random(seed)

    def offer(ctx, v):
        for name in ("first", "last", "bias", "k", "m"):
            ctx.set(getattr(dut.beat, name), v[name])
        for name in ("weights", "deltas", "inputs", "outputs", "errors", "classifier",
                     "feedback"):
            port = getattr(dut, name)
            for i, x in enumerate(v[name]):
                ctx.set(port[i], x)

    async def tb(ctx):
        for v in vectors:
            ctx.set(dut.phase, v["phase"])
            offer(ctx, v)
            ctx.set(dut.in_frac, v["in_frac"])
            ctx.set(dut.fan_in, v["fan_in"])
            if registered:
                ctx.set(dut.stall, 0)              # every word's bit alike
                await ctx.tick()
                ctx.set(dut.stall, (1 << len(dut.held_words)) - 1)
                for _ in range(rng.randrange(3)):
                    offer(ctx, rng.choice(vectors))
                    await ctx.tick()
                offer(ctx, rng.choice(vectors))
            await ctx.delay(1e-6)
            a = [ctx.get(dut.o.a[r]) for r in range(p.rows)]
            b = [ctx.get(dut.o.b[q]) for q in range(p.cols)]
            want_a, want_b = _expected(p, v)
            where = {key: v[key] for key in ("phase", "bias", "m", "fan_in", "in_frac")}
            assert a == want_a, where
            assert b == want_b, where
            assert (ctx.get(dut.o.first), ctx.get(dut.o.last)) == (v["first"], v["last"])
            seen.append(v)

    sim = Simulator(dut)
    if registered:
        sim.add_clock(1e-5)
    sim.add_testbench(tb)
    sim.run()
    assert len(seen) == len(vectors)


# (rows, cols, classes, width overrides): 1 x 1; classes below, at, above and not a multiple of
# rows; the digits core; other operand widths and every classifier_bits.
SHAPES = [
    (1, 1, 2, {}),
    (1, 1, 3, {"classifier_bits": 1}),
    (2, 1, 3, {"classifier_bits": 2}),
    (1, 4, 5, {}),
    (4, 2, 10, {}),
    (2, 4, 2, {"classifier_bits": 8}),
    (8, 2, 3, {}),
    (4, 4, 7, {"act_bits": 12, "weight_bits": 8, "error_bits": 20, "delta_bits": 10,
               "classifier_bits": 8}),
    (8, 8, 10, {}),
    (2, 2, 4, {"act_bits": 16, "error_bits": 16}),   # in_frac up to 16: a 5-bit shift
]


@pytest.mark.parametrize("rows,cols,classes,widths", SHAPES)
def test_operands_follow_the_phase_table(rows, cols, classes, widths):
    p = _params(rows, cols, classes, **widths)
    rng = random.Random(rows * 1000 + cols * 100 + classes)
    vectors = [_vector(rng, p, phase) for _ in range(40) for phase in PHASES]
    rng.shuffle(vectors)
    _check(p, vectors)
    # The runs reach the cases the table names.
    assert any(v["phase"] == Phase.FWD and v["bias"] for v in vectors)
    assert any(v["phase"] == Phase.GRAD and v["m"] * cols + cols > v["fan_in"]
               for v in vectors)
    if classes % rows:
        assert any(v["phase"] == Phase.SCORE and (v["m"] + 1) * rows > classes
                   for v in vectors)


@pytest.mark.parametrize("rows,cols,classes,widths", [SHAPES[0], SHAPES[4], SHAPES[8]])
def test_registered_operands_are_the_last_words_taken(rows, cols, classes, widths):
    """With ``registered`` (the pipelined cores), the operands are the table's function of the
    words offered in the last cycle ``stall`` was low, whatever is offered while it is high."""
    p = _params(rows, cols, classes, **widths)
    rng = random.Random(rows + cols + classes)
    vectors = [_vector(rng, p, phase) for _ in range(15) for phase in PHASES]
    rng.shuffle(vectors)
    _check(p, vectors, registered=True, seed=rows)


@pytest.mark.parametrize("rows,cols,classes,widths", [SHAPES[0], SHAPES[4], SHAPES[7]])
def test_every_classifier_weight_and_edge_value(rows, cols, classes, widths):
    """Every odd weight of ``classifier_bits`` in every class lane, and the extremes of the
    other words (the most negative weight, delta and error, the largest input and output)."""
    p = _params(rows, cols, classes, **widths)
    k = p.classifier_bits
    rng = random.Random(7)
    vectors = []
    # SCORE with every chunk u (class c gets u + c: every weight in every lane), then each
    # phase a few times.
    runs = [(u, Phase.SCORE) for u in range(1 << k)] + [(u, ph) for u in range(8)
                                                        for ph in PHASES]
    for u, phase in runs:
        v = _vector(rng, p, phase)
        v["class_weights"] = [_classifier_weight((u + c) % (1 << k), k) for c in range(classes)]
        v["classifier"] = [_odd_part(w, k) for w in v["class_weights"]]
        low = rng.randrange(2)

        def extreme(bits):
            return -(1 << (bits - 1)) if low else (1 << (bits - 1)) - 1

        v["weights"] = [extreme(p.weight_bits)] * rows
        v["deltas"] = [extreme(p.delta_bits)] * rows
        v["errors"] = [extreme(p.error_bits)] * cols
        v["feedback"] = [extreme(k + 1)] * rows
        v["inputs"] = [(1 << p.act_bits) - 1] * cols
        v["outputs"] = [(1 << p.act_bits) - 1] * cols
        if phase == Phase.FWD and u % 2:
            v["bias"], v["in_frac"] = 1, p.act_bits
        vectors.append(v)
    _check(p, vectors)


@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_odd_part_encoding_is_the_cores(k):
    """The test's odd parts are what the core registers for the beat: hw/core's ``odd_part``
    of hw/arith.py's ``classifier_weight`` of every chunk ``u``."""
    chunk = Signal(k)
    part = Signal(k)
    m = Module()
    m.d.comb += part.eq(odd_part(classifier_weight(chunk, k)))
    got = []

    async def tb(ctx):
        for u in range(1 << k):
            ctx.set(chunk, u)
            await ctx.delay(1e-6)
            got.append(ctx.get(part))

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
    assert got == [_odd_part(_classifier_weight(u, k), k) for u in range(1 << k)]
    assert sorted(got) == list(range(1 << k))
