"""Float32 where it is provably exact, for the golden model's two large matrix products.

The golden model's numbers are integers (ARITHMETIC.md), held in floating point so that matrix
products run on BLAS. A product or sum of integers is exact in a floating-point format as long as
every value formed, every partial sum in whatever order the BLAS adds, is an integer the format
holds; float32 holds every integer of magnitude up to ``2**24`` (and ``2**24 + 1`` is the first it
does not). Each partial sum of ``sum_k a[k] * b[k]`` is at most ``sum_k |a[k]| * |b[k]|`` in
magnitude, so a bound on that decides, before the product, whether float32 is exact; otherwise
float64 is, since the config keeps every value below ``2**53`` (``NetConfig.max_abs_bits``).
Scaling by a power of two, ``floor`` and ``rint`` are exact in either format.

Float32 halves the bytes the model moves and, for the gradient, the BLAS work:

* Weights are stored in float32 when ``weight_bits <= 25`` (every weight has magnitude
  ``<= 2**24``). A value past the range before saturation may round, but only to a value still
  past it, which saturation then clamps exactly as it would the exact one.
* Forward ``x @ wt``: a weight sum ``sum_j |w[n, j]|`` reaches ``10**6`` while pixels and
  activations reach 255, so the products' sums pass ``2**24``. The inputs are split into halves of
  ``h = ceil(act_bits / 2)`` bits, ``x = xh * 2**h + xl``, and both halves go through one float32
  product (twice the rows: the same arithmetic as one float64 product, half the weight bytes);
  it is exact when ``max(xh, xl) * max_n sum_j |w[n, j]| <= 2**24``.
* Gradient ``x.T @ d``: see :func:`gradient_bound`.

Zero inputs. Hidden activations are mostly zero (clipped ReLU), and often a whole input column
``j`` is zero for every sample of the mini-batch (at 784-1000-1000-1000 on Fashion-MNIST, about
60 % of layer 2's and 80 % of layer 3's). Such a column adds exactly zero to every forward sum
and every gradient, so :func:`live_columns` lets both products leave it out: the sums are the
same integers, formed exactly either way.
"""

import numpy as np

__all__ = ["FLOAT32_EXACT", "float32_exact", "weight_dtype", "column_l1", "live_columns",
           "split_inputs", "forward_product", "gradient_bound"]

#: Leave zero input columns out of the products when at most this share of columns is non-zero
#: (gathering the rest of the weights costs about as much as the work it saves above it).
LIVE_SHARE = 0.5

#: Every integer of magnitude up to this is a float32 number (24-bit significand).
FLOAT32_EXACT = 1 << 24


def float32_exact(bound):
    """Whether a computation whose every value is an integer of magnitude at most ``bound`` is
    exact in float32."""
    return bound <= FLOAT32_EXACT


def weight_dtype(cfg):
    """The dtype the golden model stores weights in: float32 when every weight
    (``|w| <= 2**(weight_bits - 1)``) is a float32 integer, else float64."""
    return np.float32 if float32_exact(1 << (cfg.weight_bits - 1)) else np.float64


def column_l1(wt):
    """``sum_j |wt[j, n]|`` for each ``n``: exact (integers summed in float64)."""
    return np.abs(wt).sum(axis=0, dtype=np.float64)


def live_columns(x):
    """The indices of the input columns that are non-zero in some sample of ``x`` (``B x J``),
    or None when that is more than :data:`LIVE_SHARE` of them (then the products take all)."""
    live = np.flatnonzero(x.any(axis=0))
    return live if len(live) <= LIVE_SHARE * x.shape[1] else None


def split_inputs(x, bits):
    """Split integer inputs ``x`` (``B x J``) into ``[xh; xl]`` (``2B x J``, float32) with
    ``x = xh * 2**bits + xl`` and ``0 <= xl < 2**bits``; returns ``(parts, largest |part|)``, or
    ``(None, None)`` when ``x`` holds a non-integer (then only float64 is exact)."""
    xh = np.floor(x * 2.0 ** -bits)
    xl = x - xh * 2.0 ** bits
    if not np.array_equal(xl, np.floor(xl)):
        return None, None
    parts = np.concatenate([xh, xl]).astype(np.float32)
    top = float(np.abs(parts).max(initial=0.0))
    return parts, top


def forward_product(x, wt, bits, l1max):
    """``x @ wt`` exactly, in float64: through the split float32 product when ``wt`` is float32
    and ``max|part| * l1max <= 2**24`` (``l1max`` a bound on ``max_n sum_j |wt[j, n]|``,
    ``bits`` the split), else in float64. Returns ``None`` when only a smaller ``l1max`` could
    allow float32 (the caller may compute the exact one and ask again)."""
    live = live_columns(x)
    if live is not None:                      # exact: the columns left out are all zero
        x, wt = x[:, live], wt[live]
    if wt.dtype == np.float64:
        return x @ wt
    parts, top = split_inputs(x, bits)
    if parts is not None and float32_exact(top * l1max):     # l1max bounds the subset too
        a = parts @ wt
        n = len(x)
        acc = a[:n].astype(np.float64)
        acc *= 2.0 ** bits
        acc += a[n:]
        return acc
    return None


def gradient_bound(x, d):
    """A bound on the magnitude of every partial sum of ``d.T @ x`` over the batch (any order,
    any subset of samples): ``max_n sum_b |d[b, n]| * max_j |x[b, j]|``, an integer (float64
    holds it exactly: it is below the config's ``2**53`` bound). One ``B x N`` pass."""
    if not d.size or not x.size:
        return 0.0
    # Not a BLAS matrix-vector product: that may wake BLAS threads for this small work.
    return float((np.abs(d) * np.abs(x).max(axis=1)[:, None]).sum(axis=0).max())
