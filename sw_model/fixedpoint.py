"""Integer rounding and saturation rules of docs/ARITHMETIC.md, section "Rounding".

Arrays hold integers in ``float64``: every value the golden model forms is an integer below
``2**53`` (``NetConfig.validate`` proves the bound), so additions, products, power-of-two scalings
and ``floor``/``rint`` are exact, and matrix products run on BLAS.
"""

import numpy as np

__all__ = ["signed_range", "saturate", "saturate_signed", "saturate_unsigned", "shift_rne",
           "shift_stochastic"]


def signed_range(bits):
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def saturate(x, lo, hi, out=None):
    return np.clip(x, lo, hi, out=out)


def saturate_signed(x, bits, out=None):
    lo, hi = signed_range(bits)
    y = np.maximum(x, lo, out=out)
    return np.minimum(y, hi, out=y)


def saturate_unsigned(x, bits, out=None):
    y = np.maximum(x, 0, out=out)
    return np.minimum(y, (1 << bits) - 1, out=y)


def shift_rne(x, shift, out=None):
    """``x / 2**shift`` rounded to the nearest integer, ties to even (``shift >= 0``)."""
    y = np.multiply(x, 2.0 ** -shift, out=out)
    return np.rint(y, out=y)


def shift_stochastic(x, shift, rand, rand_bits, out=None):
    """``floor(x / 2**shift + rand / 2**rand_bits)``: unbiased stochastic rounding.

    ``rand`` holds uniform ``rand_bits``-bit integers from the rounding LFSR stream. For
    ``shift >= rand_bits`` this is ``(x + (rand << (shift - rand_bits))) >> shift``; for smaller
    shifts only the top ``shift`` bits of ``rand`` matter. Exact while
    ``|x| * 2**max(0, rand_bits - shift) + 2**rand_bits < 2**53`` (ARITHMETIC.md, "Exactness of
    the golden model"; the configuration guarantees it).
    """
    scale = 2.0 ** (rand_bits - shift)
    if scale == 1.0:
        y = np.add(x, rand, out=out)
    else:
        y = np.multiply(x, scale, out=out)
        np.add(y, rand, out=y)
    y *= 2.0 ** -rand_bits
    return np.floor(y, out=y)
