import os
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from contract.lfsr_taps import TAPS
from hw.lfsr_prng import leap_forward
from sw_model.lfsr import (LfsrStream, chunks, classifier_weights, feedback_weights,
                           lfsr_bits_reference)
from tests.gf2 import is_primitive

DOC = os.path.join(os.path.dirname(__file__), "..", "docs", "ARITHMETIC.md")


def doc_lags():
    text = open(DOC).read()
    table = text[text.index("| W | lags |"):]
    rows = re.findall(r"^\| (\d+) \| ([\d, ]+) \|$", table, flags=re.M)
    return {int(w): tuple(int(t) for t in lags.split(",")) for w, lags in rows}


def test_taps_are_the_documented_ones():
    assert doc_lags() == TAPS


@pytest.mark.parametrize("width", sorted(TAPS))
def test_every_polynomial_is_primitive(width):
    poly = 1 << width
    for t in TAPS[width]:
        poly |= 1 << (width - t)
    assert is_primitive(poly, width)


def naive_bits(width, seed, count):
    """The recurrence of ARITHMETIC.md, written out directly."""
    b = [(seed >> n) & 1 for n in range(width)]
    while len(b) < count:
        n = len(b)
        v = 0
        for t in TAPS[width]:
            v ^= b[n - t]
        b.append(v)
    return b[:count]


@pytest.mark.parametrize("width", range(3, 17))
def test_full_period_small_widths(width):
    """The bit-serial register visits every non-zero state once per 2**W - 1 steps."""
    period = (1 << width) - 1
    bits = np.array(lfsr_bits_reference(width, 1, period + width), dtype=np.uint8)
    states = sum(bits[k:k + period].astype(np.int64) << k for k in range(width))
    assert len(np.unique(states)) == period
    assert (bits[period:] == bits[:width]).all()


def test_full_period_16_bit_stream():
    """The vectorised stream repeats after exactly 2**16 - 1 chunks of one bit and no sooner."""
    period = (1 << 16) - 1
    b = LfsrStream(16, 0xACE1, 1).draw(2 * period)
    assert (b[:period] == b[period:]).all()
    windows = sum(b[k:k + period].astype(np.int64) << k for k in range(16))
    assert len(np.unique(windows)) == period


@pytest.mark.parametrize("width", [5, 16, 31, 32, 64])
def test_register_matches_recurrence(width):
    seed = (0x9E3779B97F4A7C15 >> (64 - width)) | 1
    assert lfsr_bits_reference(width, seed, 500) == naive_bits(width, seed, 500)


@settings(max_examples=40, deadline=None)
@given(width=st.sampled_from([7, 16, 31, 32]), chunk_bits=st.sampled_from([1, 2, 4, 8, 16, 32]),
       seed=st.integers(1, 2 ** 64), draws=st.lists(st.integers(0, 700), max_size=6))
def test_stream_matches_bit_serial_reference(width, chunk_bits, seed, draws):
    seed = seed % ((1 << width) - 1) + 1
    total = sum(draws)
    bits = lfsr_bits_reference(width, seed, total * chunk_bits)
    want = [sum(bits[c * chunk_bits + r] << r for r in range(chunk_bits)) for c in range(total)]
    stream = LfsrStream(width, seed, chunk_bits)
    got = np.concatenate([stream.draw(n) for n in draws] + [np.zeros(0, np.uint32)])
    assert got.tolist() == want
    assert stream.position == total


def test_long_draw_matches_short_draws_and_restore():
    a = LfsrStream(31, 12345, 16).draw(3_000_000)
    s = LfsrStream(31, 12345, 16)
    parts = [s.draw(n) for n in (1, 999_999, 1_000_000)]
    snap = s.state()
    parts.append(s.draw(500_000))
    r = LfsrStream(31, 12345, 16)
    r.restore(snap)
    parts.append(r.draw(500_000))
    assert (np.concatenate(parts[:4]) == a[:2_500_000]).all()
    assert (parts[4] == a[2_000_000:2_500_000]).all()


def test_classifier_weights_order_and_format():
    c, n, k = 10, 37, 4
    u = chunks(31, 77, k, c * n).astype(int)
    m = classifier_weights(31, 77, c, n, k)
    assert m.shape == (c, n)
    for cls in range(c):
        for j in range(n):
            assert m[cls, j] == 2 * u[j * c + cls] - 15
    assert set(np.unique(m)) <= set(range(-15, 16, 2))


def test_sign_concordant_feedback():
    m = classifier_weights(31, 77, 10, 50, 4)
    k = feedback_weights(m, 31, 99, 4)
    assert (np.sign(k) == np.sign(m)).all()
    mag = np.abs(classifier_weights(31, 99, 10, 50, 4))
    assert (np.abs(k) == mag).all()
    assert (np.abs(k) != np.abs(m)).any()


@pytest.mark.parametrize("bad", [
    dict(width=2, seed=1), dict(width=65, seed=1), dict(width=16, seed=0),
    dict(width=16, seed=1 << 16), dict(width=16, seed=1, chunk_bits=3),
    dict(width=16, seed=1, chunk_bits=64)])
def test_bad_parameters_are_refused(bad):
    with pytest.raises(ValueError):
        LfsrStream(bad["width"], bad["seed"], bad.get("chunk_bits", 1))


def test_register_continues_the_stream():
    """A stream reseeded with register() at any position draws what the original draws next."""
    from sw_model.lfsr import LfsrStream
    for chunk in (4, 8, 16):
        a = LfsrStream(31, 12345, chunk)
        a.draw(37)
        b = LfsrStream(31, a.register(), chunk)
        assert list(b.draw(500)) == list(a.draw(500))


@pytest.mark.parametrize("width,step", [(3, 1), (3, 7), (16, 40), (31, 64), (64, 5)])
def test_leap_forward_masks_give_the_next_bits_and_register(width, step):
    """hw/lfsr_prng.py's leap-forward: exactly ``step`` output masks and ``width`` register masks
    (the RTL only uses as many as its port is wide, so the unit's bench cannot count them); as
    parities of the register they are the sequence's next ``step`` bits, then the register
    ``step`` bits on."""
    out, nxt = leap_forward(width, step)
    assert (len(out), len(nxt)) == (step, width)
    rng = np.random.default_rng(width * 1000 + step)
    for seed in (1, (1 << width) - 1, int(rng.integers(1, 1 << min(width, 62)))):
        bits = lfsr_bits_reference(width, seed, step + width)
        parities = [[(mask & seed).bit_count() & 1 for mask in masks] for masks in (out, nxt)]
        assert parities == [bits[:step], bits[step:]]
