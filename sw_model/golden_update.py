"""The weight update of the golden model (docs/ARITHMETIC.md, steps 6-7), arranged for speed.

Layout. The golden model keeps each layer's weights transposed, ``wt[j, n] = w[n, j]``
(``fan_in x neurons``, C order). The rounding stream visits the weight memory word by word, a
word being the ``P`` rows ``tP .. tP+P-1`` of one column ``j``; in ``wt`` those ``P`` values are
again adjacent (``wt[j, tP:tP+P]``), so laying the stream over the weights moves whole words,
``T x J`` records of ``P`` chunks, which NumPy copies as fixed-size records. Over row-major ``w``
every chunk would move on its own, about five times slower. BLAS takes either layout at the same
speed (``x @ wt`` forward, ``x.T @ d`` for the gradient).

Float32. The gradient product is formed in float32 when :func:`~sw_model.exact_float32.
gradient_bound` plus the largest random addend (below ``2**u``, ``u = update_shift``) is at most
``2**24``, and in float64 otherwise (see :mod:`sw_model.exact_float32`).
"""

import numpy as np

from .exact_float32 import float32_exact, gradient_bound, live_columns

__all__ = ["bias_chunks", "update_weights", "update_l1_bound", "saturate_checked"]


def bias_chunks(chunks, rows, cols, p):
    """The rounding chunks of one layer's biases: ``b[tP+p]`` is chunk ``(t*(J+1) + J)*P + p``
    of the layer's ``T*(J+1)*P`` (ARITHMETIC.md, "What is drawn")."""
    return chunks.reshape(-1, cols + 1, p)[:, cols].reshape(-1)[:rows]


def weight_chunks_t(chunks, rows, cols, p, live=None):
    """The rounding chunks of one layer's weights laid out like ``wt``: ``r[j, n]`` is the chunk
    of ``w[n, j]``, chunk ``(t*(J+1) + j)*P + p`` for ``n = tP + p`` (a fresh, writable
    ``cols x rows`` array, or only the rows ``live``). Moves whole memory words (``P`` chunks)
    as records."""
    tiles = -(-rows // p)
    chunks = np.ascontiguousarray(chunks)
    words = chunks.view(np.dtype((np.void, p * chunks.itemsize))).reshape(tiles, cols + 1)
    words = words[:, :cols] if live is None else words[:, live]
    return words.T.copy().view(chunks.dtype)[:, :rows]


def update_weights(wt, x, d, shift, chunks=None, rand_bits=0, p=1):
    """``w -= R(G, shift)`` in place on transposed weights ``wt``, ``G = d.T @ x`` (integers),
    without saturation (see :func:`saturate_checked`). Returns the dtype ``G`` was formed in.

    ``R`` is stochastic rounding ``floor(G / 2**shift + r / 2**R)`` with ``R = rand_bits`` and
    the layer's rounding chunks ``chunks`` in weight-memory order (``w[tP+p, j]`` is chunk
    ``(t*(J+1) + j)*P + p``), or round-to-nearest-even when ``chunks`` is None. The stochastic
    sum is formed in integers as in ARITHMETIC.md: with ``e = min(shift, R)``,
    ``S = G * 2**(e - shift) + (r >> (R - e))`` and the result ``floor(S / 2**e)``: for
    ``shift <= R`` only the top ``shift`` bits of ``r`` can move the floor, for ``shift > R`` the
    sum is ``G / 2**(shift - R) + r`` exactly. In units of ``2**(e - shift)`` every value formed
    is an integer of magnitude at most ``bound + 2**shift - 1``, hence the float32 test.

    An input column ``j`` that is zero in every sample has ``G[:, j] = 0``, so ``S < 2**e`` and
    its weights do not move: when most columns are such, only the others are updated
    (:func:`~sw_model.exact_float32.live_columns`).
    """
    cols, rows = wt.shape
    live = live_columns(x)
    stochastic = chunks is not None
    e = min(shift, rand_bits) if stochastic else shift
    addend = (1 << shift) - 1 if stochastic else 0
    dtype = np.float32 if float32_exact(gradient_bound(x, d) + addend) else np.float64
    scale = 2.0 ** ((e if stochastic else 0) - shift)              # exact: a power of two
    g = (x if live is None else x[:, live]).T.astype(dtype) @ (d * scale).astype(dtype)
    if stochastic:
        r = weight_chunks_t(chunks, rows, cols, p, live)
        if rand_bits > e:
            np.right_shift(r, rand_bits - e, out=r)
        np.add(g, r, out=g, dtype=dtype)
        g *= 2.0 ** -e
        np.floor(g, out=g)
    else:
        np.rint(g, out=g)
    if live is None:
        np.subtract(wt, g, out=wt)
    else:
        wt[live] -= g
    return dtype


def update_l1_bound(l1, x, d, shift):
    """Raise ``l1`` (a bound on ``sum_j |w[n, j]|`` per neuron ``n``) in place by what one update
    can add: ``|R(G, shift)| <= |G| / 2**shift + 1`` and ``sum_j |G[n, j]| <=
    sum_b |d[b, n]| * sum_j |x[b, j]|``. Saturation only shrinks magnitudes. One ``B x N`` pass.
    """
    grow = (np.abs(d) * np.abs(x).sum(axis=1)[:, None]).sum(axis=0)  # integers: exact
    grow *= 2.0 ** -shift
    np.ceil(grow, out=grow)
    l1 += grow
    l1 += x.shape[1]


def saturate_checked(wt, bits):
    """Clamp ``wt`` to the signed ``bits`` range in place; return the largest magnitude left
    (a fresh bound for the next skipped checks)."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    mn, mx = float(wt.min(initial=0.0)), float(wt.max(initial=0.0))
    if mn < lo or mx > hi:
        np.clip(wt, lo, hi, out=wt)
    return max(-max(mn, lo), min(mx, hi), 0.0)
