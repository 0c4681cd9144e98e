"""The constants and the inverse square root of batch normalisation (ARITHMETIC.md, "Batch
normalisation"), shared by the golden model and every later implementation.

The inverse square root is a table lookup after normalising the argument by a power of four:
``A = u * 4**j + (low bits)`` with ``u < 2**TABLE_BITS``, and ``1 / sqrt(A)`` is taken as
``R[u] / 2**(TABLE_FRAC + j)``. Everything here is integer arithmetic.
"""

__all__ = ["TABLE_BITS", "TABLE_FRAC", "XHAT_BITS", "BACK_FRAC", "BACK_BITS", "RECIP_BITS",
           "batch_reciprocal", "inv_sqrt_table", "inv_sqrt_split"]

#: The table is indexed by the top ``TABLE_BITS`` bits of the argument (an even-aligned
#: window, so ``u`` is in ``2**(TABLE_BITS-2) .. 2**TABLE_BITS - 1`` once ``j > 0``).
TABLE_BITS = 8
#: ``R[u]`` is ``2**TABLE_FRAC / sqrt(u)`` rounded to the nearest integer (``R[1] = 4096``).
TABLE_FRAC = 12
#: The normalised activation ``xhat`` is a signed ``XHAT_BITS``-bit integer with ``act_frac``
#: fraction bits.
XHAT_BITS = 16
#: The backward scale ``h = gamma / sigma`` is a signed ``BACK_BITS``-bit integer with
#: ``BACK_FRAC`` fraction bits.
BACK_FRAC = 12
BACK_BITS = 24
#: Means over the mini-batch multiply by ``ceil(2**RECIP_BITS / B)`` and shift, so that the
#: hardware divides once per command, not once per neuron.
RECIP_BITS = 20


def batch_reciprocal(batch):
    """``ceil(2**RECIP_BITS / batch)`` for a mini-batch of ``batch`` samples (1 .. 256)."""
    if not 1 <= batch <= 256:
        raise ValueError(f"a batch-normalised mini-batch has 1..256 samples, not {batch}")
    return ((1 << RECIP_BITS) + batch - 1) // batch


def _nearest_inv_sqrt(u):
    """The integer nearest ``2**TABLE_FRAC / sqrt(u)``, exactly: the largest ``r`` with
    ``r - 1/2 <= 2**TABLE_FRAC / sqrt(u)``, i.e. ``(2r - 1)**2 * u <= 2**(2 * TABLE_FRAC + 2)``.
    There is no tie: ``2**TABLE_FRAC / sqrt(u)`` is irrational unless ``u`` is a square ``k**2``,
    and then ``2**TABLE_FRAC / k`` is an integer or has an odd denominator ``> 1``."""
    limit = 1 << (2 * TABLE_FRAC + 2)
    r = 1 << TABLE_FRAC
    while (2 * r - 1) ** 2 * u > limit:
        r -= 1
    return r


def inv_sqrt_table():
    """``R[u]`` for ``u = 0 .. 2**TABLE_BITS - 1``; ``R[0]`` is never used (the argument is at
    least 1) and is set to ``R[1]``."""
    table = [_nearest_inv_sqrt(u) for u in range(1, 1 << TABLE_BITS)]
    return [table[0]] + table


def inv_sqrt_split(a):
    """For an integer ``a >= 1``: ``(u, j)`` with ``j = max(0, ceil((bit_length(a) -
    TABLE_BITS) / 2))`` and ``u = a >> 2j`` (floor), so ``1 / sqrt(a) ~ R[u] / 2**(TABLE_FRAC
    + j)``."""
    if a < 1:
        raise ValueError(f"inverse square root of {a}: the argument must be at least 1")
    j = max(0, (a.bit_length() - TABLE_BITS + 1) // 2)
    return a >> (2 * j), j
