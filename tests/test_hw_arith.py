"""hw/arith.py exhaustively against the golden model's rounding rules (Amaranth simulator)."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from hw.arith import (at_most_parts, classifier_weight, is_positive, rne_shift, rne_shift_any,
                     rne_shift_var, saturate, saturate_parts,
                     stochastic_shift, stochastic_shift_var)
from sw_model.fixedpoint import saturate_signed, shift_rne, shift_stochastic


def simulate(build, inputs, outputs, cases):
    """Drive every case through a combinational circuit; return the outputs."""
    m = Module()
    build(m)
    sim = Simulator(m)
    results = []

    async def tb(ctx):
        for case in cases:
            for sig, value in zip(inputs, case):
                ctx.set(sig, value)
            results.append(tuple(ctx.get(o) for o in outputs))

    sim.add_testbench(tb)
    sim.run()
    return results


@pytest.mark.parametrize("shift", [0, 1, 2, 3, 5])
def test_rne_shift_exhaustive_8_bit(shift):
    x = Signal(signed(8))
    y = Signal(signed(9))
    values = list(range(-128, 128))
    got = simulate(lambda m: m.d.comb.__iadd__(y.eq(rne_shift(x, shift))), [x], [y],
                   [(v,) for v in values])
    want = shift_rne(np.array(values, dtype=float), shift)
    assert [g[0] for g in got] == want.tolist()


@pytest.mark.parametrize("shift,rbits", [(0, 3), (2, 3), (3, 3), (5, 3), (6, 2)])
def test_stochastic_shift_exhaustive(shift, rbits):
    x, r = Signal(signed(7)), Signal(unsigned(rbits))
    y = Signal(signed(9))
    cases = [(v, u) for v in range(-64, 64) for u in range(1 << rbits)]
    got = simulate(lambda m: m.d.comb.__iadd__(y.eq(stochastic_shift(x, shift, r, rbits))),
                   [x, r], [y], cases)
    want = shift_stochastic(np.array([c[0] for c in cases], dtype=float), shift,
                            np.array([c[1] for c in cases]), rbits)
    assert [g[0] for g in got] == want.tolist()


@pytest.mark.parametrize("src,dst", [(signed(10), signed(6)), (signed(10), unsigned(6)),
                                     (unsigned(10), signed(6)), (unsigned(10), unsigned(6)),
                                     (signed(5), signed(6)), (unsigned(5), signed(6)),
                                     (signed(6), unsigned(6)), (unsigned(6), unsigned(6)),
                                     (unsigned(6), signed(6)), (signed(6), signed(6))])
def test_saturate_every_value(src, dst):
    x, y = Signal(src), Signal(dst)
    lo = -(1 << (src.width - 1)) if src.signed else 0
    values = range(lo, lo + (1 << src.width))
    got = simulate(lambda m: m.d.comb.__iadd__(y.eq(saturate(x, dst))), [x], [y],
                   [(v,) for v in values])
    dlo = -(1 << (dst.width - 1)) if dst.signed else 0
    dhi = dlo + (1 << dst.width) - 1
    assert [g[0] for g in got] == [min(max(v, dlo), dhi) for v in values]


@pytest.mark.parametrize("q_shape,dst", [(signed(8), signed(5)), (signed(8), unsigned(5)),
                                         (signed(4), signed(5)), (signed(4), unsigned(5)),
                                         (signed(5), signed(5)), (signed(6), unsigned(5)),
                                         (signed(8), signed(1)), (signed(8), unsigned(1))])
def test_saturate_parts_every_value(q_shape, dst):
    """``saturate_parts(q, up)`` is ``saturate(q + up)`` for every quotient and rounding bit,
    quotients narrower than, as wide as and wider than the target included."""
    q, up, y = Signal(q_shape), Signal(), Signal(dst)
    lo = -(1 << (q_shape.width - 1))
    cases = [(v, u) for v in range(lo, -lo) for u in (0, 1)]
    got = simulate(lambda m: m.d.comb.__iadd__(y.eq(saturate_parts(q, up, dst))), [q, up],
                   [y], cases)
    dlo = -(1 << (dst.width - 1)) if dst.signed else 0
    dhi = dlo + (1 << dst.width) - 1
    assert [g[0] for g in got] == [min(max(v + u, dlo), dhi) for v, u in cases]


@pytest.mark.parametrize("q_shape,width", [(signed(8), 4), (signed(4), 4), (signed(5), 4),
                                           (signed(8), 1)])
def test_at_most_parts_every_value(q_shape, width):
    q, up, y = Signal(q_shape), Signal(), Signal()
    lo = -(1 << (q_shape.width - 1))
    cases = [(v, u) for v in range(lo, -lo) for u in (0, 1)]
    got = simulate(lambda m: m.d.comb.__iadd__(y.eq(at_most_parts(q, up, width))), [q, up],
                   [y], cases)
    assert [g[0] for g in got] == [int(v + u < 0 or v + u <= (1 << width) - 1)
                                   for v, u in cases]


def test_is_positive():
    x, y = Signal(signed(7)), Signal()
    got = simulate(lambda m: m.d.comb.__iadd__(y.eq(is_positive(x))), [x], [y],
                   [(v,) for v in range(-64, 64)])
    assert [g[0] for g in got] == [int(v > 0) for v in range(-64, 64)]


def test_saturate_and_classifier_weight():
    x = Signal(signed(10))
    y = Signal(signed(6))
    got = simulate(lambda m: m.d.comb.__iadd__(y.eq(saturate(x, signed(6)))), [x], [y],
                   [(v,) for v in range(-512, 512)])
    assert [g[0] for g in got] == saturate_signed(np.arange(-512.0, 512), 6).tolist()
    for bits in range(1, 7):
        u = Signal(unsigned(bits))
        w = Signal(signed(bits + 3))
        got = simulate(lambda m: m.d.comb.__iadd__(w.eq(classifier_weight(u, bits))), [u],
                       [w], [(v,) for v in range(1 << bits)])
        assert [g[0] for g in got] == [2 * v - (1 << bits) + 1 for v in range(1 << bits)]


def test_rne_shift_var_exhaustive_8_bit():
    x, s = Signal(signed(8)), Signal(unsigned(3))
    y = Signal(signed(9))
    cases = [(v, k) for v in range(-128, 128) for k in range(8)]
    got = simulate(lambda m: m.d.comb.__iadd__(y.eq(rne_shift_var(x, s))), [x, s], [y], cases)
    want = [int(shift_rne(np.array([float(v)]), k)[0]) for v, k in cases]
    assert [g[0] for g in got] == want


def test_rne_shift_var_wide_values_all_shifts():
    """40-bit values at every shift 0..31: ties, the bit below the half and the sticky bits
    at every position (the rounding mask is decoded from the shift)."""
    rng = np.random.default_rng(7)
    x, s = Signal(signed(40)), Signal(unsigned(5))
    y = Signal(signed(41))
    values = [int(v) for v in rng.integers(-(1 << 39), 1 << 39, 200)]
    for k in range(1, 32):
        half = 1 << (k - 1)
        for base in (0, 3 << k, -(5 << k), (1 << 38) - (1 << k)):
            values += [base + half, base + half + 1, base + half - 1, base - half,
                       base + half + (1 << max(0, k - 2)), base + 1]
    cases = [(v, k) for v in values for k in range(32) if -(1 << 39) <= v < (1 << 39)]
    got = simulate(lambda m: m.d.comb.__iadd__(y.eq(rne_shift_var(x, s))), [x, s], [y], cases)
    want = [int(shift_rne(np.array([float(v)]), k)[0]) for v, k in cases]
    assert [g[0] for g in got] == want


def test_stochastic_shift_var_exhaustive():
    rbits = 3
    x, s, r = Signal(signed(7)), Signal(unsigned(3)), Signal(unsigned(rbits))
    y = Signal(signed(9))
    cases = [(v, k, u) for v in range(-64, 64) for k in range(8) for u in range(1 << rbits)]
    got = simulate(lambda m: m.d.comb.__iadd__(y.eq(stochastic_shift_var(x, s, r, rbits))),
                   [x, s, r], [y], cases)
    want = [int(shift_stochastic(np.array([float(v)]), k, np.array([u]), rbits)[0])
            for v, k, u in cases]
    assert [g[0] for g in got] == want


def test_stochastic_shift_var_wide_values_all_shifts():
    """37-bit values (the golden model is exact for them at every shift), a 16-bit draw,
    every shift 0..31 (shorter and longer than the draw): the carry of the remainder's top
    bits plus the draw is the whole effect of rounding."""
    rng = np.random.default_rng(11)
    rbits = 16
    x, s, r = Signal(signed(40)), Signal(unsigned(5)), Signal(unsigned(rbits))
    y = Signal(signed(41))
    cases = []
    for k in range(32):
        for v in rng.integers(-(1 << 36), 1 << 36, 60):
            cases.append((int(v), k, int(rng.integers(0, 1 << rbits))))
        for u in (0, 1, (1 << rbits) - 1, 1 << (rbits - 1)):       # draws at the edges
            for v in (0, -1, 1 << k, (1 << k) - 1, -(1 << k), (12345 << k) % (1 << 36)):
                cases.append((v, k, u))
    got = simulate(lambda m: m.d.comb.__iadd__(y.eq(stochastic_shift_var(x, s, r, rbits))),
                   [x, s, r], [y], cases)
    want = [int(shift_stochastic(np.array([float(v)]), k, np.array([u]), rbits)[0])
            for v, k, u in cases]
    assert [g[0] for g in got] == want


def test_rne_shift_any_exhaustive_8_bit_every_shift():
    """Every 8-bit value by every shift of a 4-bit amount (past the value's width too), against
    the golden model's integer rounding."""
    from sw_model.golden_batch_norm import rne_int
    x, s, y = Signal(signed(8)), Signal(unsigned(4)), Signal(signed(9))
    cases = [(v, k) for v in range(-128, 128) for k in range(16)]
    got = simulate(lambda m: m.d.comb.__iadd__(y.eq(rne_shift_any(x, s))), [x, s], [y], cases)
    assert [g[0] for g in got] == [int(rne_int(v, k)) for v, k in cases]


def test_rne_shift_any_wide_values_and_shifts():
    """62-bit values (ties, extremes, random) by shifts 0 .. 63."""
    from sw_model.golden_batch_norm import rne_int
    rng = np.random.default_rng(4)
    x, s, y = Signal(signed(62)), Signal(unsigned(6)), Signal(signed(63))
    top = (1 << 61) - 1
    cases = []
    for k in range(64):
        for v in (top, -top - 1, 0, -1, 1, (3 << k) >> 1 if k else 0, -((5 << k) >> 1),
                  *(int(r) for r in rng.integers(-top - 1, top, 6))):
            cases.append((max(-top - 1, min(top, v)), k))
    got = simulate(lambda m: m.d.comb.__iadd__(y.eq(rne_shift_any(x, s))), [x, s], [y], cases)
    assert [g[0] for g in got] == [int(rne_int(v, k)) for v, k in cases]
