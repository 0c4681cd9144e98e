import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from sw_model.fixedpoint import (saturate_signed, saturate_unsigned, shift_rne,
                                 shift_stochastic, signed_range)

big = st.integers(-(2 ** 44), 2 ** 44)


def rne_int(x, s):
    """Round-to-nearest-even of x / 2**s with Python integers (ARITHMETIC.md)."""
    if s == 0:
        return x
    q, r = x >> s, x - ((x >> s) << s)
    h = 1 << (s - 1)
    return q + (r > h or (r == h and q % 2 == 1))


def sr_int(x, s, r, rbits):
    return (x + (r << (s - rbits))) >> s if s >= rbits else (x + (r >> (rbits - s))) >> s


@settings(max_examples=500)
@given(x=big, s=st.integers(0, 30))
def test_rne_matches_integer_definition(x, s):
    assert shift_rne(np.array([float(x)]), s)[0] == rne_int(x, s)


@pytest.mark.parametrize("x,s,want", [(1, 1, 0), (3, 1, 2), (5, 1, 2), (7, 1, 4), (-1, 1, 0),
                                      (-3, 1, -2), (-5, 1, -2), (6, 2, 2), (10, 2, 2),
                                      (-6, 2, -2), (-10, 2, -2), (2, 2, 0), (-2, 2, 0),
                                      (1, 0, 1), (-7, 0, -7)])
def test_rne_ties(x, s, want):
    assert shift_rne(np.array([float(x)]), s)[0] == want


@settings(max_examples=500)
@given(x=big, s=st.integers(0, 30), rbits=st.sampled_from([1, 2, 4, 8, 16]),
       r=st.integers(0, 2 ** 16 - 1))
def test_stochastic_matches_integer_definition(x, s, rbits, r):
    # The golden model forms x * 2**(rbits - s) + r: exact inside float64's 2**53 (the bound
    # NetConfig.max_abs_bits enforces for every use).
    assume(abs(x) * 2 ** max(0, rbits - s) + 2 ** rbits < 2 ** 53)
    r %= 1 << rbits
    got = shift_stochastic(np.array([float(x)]), s, np.array([r]), rbits)[0]
    assert got == sr_int(x, s, r, rbits)


@settings(max_examples=200)
@given(x=st.integers(-(2 ** 30), 2 ** 30), s=st.integers(0, 8))
def test_stochastic_rounding_is_unbiased(x, s):
    """Averaged over every random value, sr gives x / 2**s exactly (s <= round_bits)."""
    rbits = 8
    r = np.arange(1 << rbits)
    out = shift_stochastic(np.full(len(r), float(x)), s, r, rbits)
    assert out.sum() * (1 << s) == x * (1 << rbits)
    assert set(np.unique(out)) <= {x >> s, (x >> s) + 1}


def test_stochastic_extremes():
    x = np.array([5.0, 5.0, -5.0, -5.0])
    r = np.array([0, 255, 0, 255])
    assert shift_stochastic(x, 2, r, 8).tolist() == [1, 2, -2, -1]
    # Below one LSB: rounds up with probability x / 2**s.
    tiny = shift_stochastic(np.full(256, 3.0), 8, np.arange(256), 8)
    assert tiny.sum() == 3


@settings(max_examples=300)
@given(x=big, bits=st.integers(2, 32))
def test_saturation(x, bits):
    lo, hi = signed_range(bits)
    assert saturate_signed(np.array([float(x)]), bits)[0] == min(hi, max(lo, x))
    assert saturate_unsigned(np.array([float(x)]), bits)[0] == min((1 << bits) - 1, max(0, x))


def test_saturation_edges():
    v = np.array([-32769.0, -32768, -32767, 32766, 32767, 32768])
    assert saturate_signed(v, 16).tolist() == [-32768, -32768, -32767, 32766, 32767, 32767]
    assert saturate_unsigned(np.array([-1.0, 0, 255, 256]), 8).tolist() == [0, 0, 255, 255]
