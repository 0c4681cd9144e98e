"""Batch normalisation in the golden model (docs/ARITHMETIC.md, "Batch normalisation").

Every value here is an integer held in ``int64`` (the largest, the scale's gradient times the
batch reciprocal, stays below ``2**62``; ARITHMETIC.md, "Exactness", bounds it), so the rules
are written as the document writes them, with no float64 exactness argument. Arrays are ``batch x neurons``.
"""

import numpy as np

from contract.batch_norm import BACK_BITS, BACK_FRAC, RECIP_BITS, TABLE_BITS, TABLE_FRAC, \
    XHAT_BITS, batch_reciprocal, inv_sqrt_table

__all__ = ["BatchNormState", "rne_int", "sat_s_int", "inv_sqrt_parts", "normalise",
           "scale_update"]

_TABLE = np.array(inv_sqrt_table(), dtype=np.int64)


def rne_int(x, shift):
    """``rne(x, shift)`` of ARITHMETIC.md, "Rounding", on int64 arrays (``shift`` a scalar or an
    array, ``>= 0``)."""
    if isinstance(x, int) and isinstance(shift, int):
        return _rne_python(x, shift)
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    q = x >> shift
    r = x - (q << shift)
    half = np.where(shift > 0, np.left_shift(1, np.maximum(shift - 1, 0)), 1)
    up = (r > half) | ((r == half) & ((q & 1) == 1))
    return np.where(shift > 0, q + up, x)


def _rne_python(x, shift):
    """The same rule on one Python integer, of any size (the per-cycle unit models feed
    values beyond int64 that the hardware's widths allow)."""
    if shift <= 0:
        return x
    q, r = x >> shift, x & ((1 << shift) - 1)
    half = 1 << (shift - 1)
    return q + (r > half or (r == half and q & 1))


def sat_s_int(x, bits):
    if isinstance(x, int):
        return max(-(1 << (bits - 1)), min((1 << (bits - 1)) - 1, x))
    return np.clip(x, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def inv_sqrt_parts(a):
    """``(R[u], j)`` per element of ``a >= 1`` (contract.batch_norm.inv_sqrt_split, vectorised):
    ``j = max(0, ceil((bit_length(a) - TABLE_BITS) / 2))``, ``u = a >> 2j``."""
    a = np.asarray(a, dtype=np.int64)
    if (a < 1).any():
        raise ValueError("inverse square root of an argument below 1")
    if (a >= 1 << 53).any():
        raise ValueError("inverse square root of an argument of 2**53 or more")
    bits = np.frexp(a.astype(np.float64))[1].astype(np.int64)   # exact below 2**53
    j = np.maximum(0, (bits - TABLE_BITS + 1) // 2)
    return _TABLE[a >> (2 * j)], j


class BatchNormState:
    """One layer's learnable scale ``g`` and running statistics ``M``, ``V`` (integers)."""

    def __init__(self, cfg, neurons):
        self.gamma = np.full(neurons, 1 << (cfg.weight_frac - 1), dtype=np.int64)
        self.mean = np.zeros(neurons, dtype=np.int64)
        self.var = np.full(neurons, 1 << (2 * cfg.act_frac + cfg.bn_stat_frac), dtype=np.int64)

    def state(self):
        return {"gamma": self.gamma.copy(), "mean": self.mean.copy(), "var": self.var.copy()}

    def restore(self, state):
        for name in ("gamma", "mean", "var"):
            setattr(self, name, np.asarray(state[name], dtype=np.int64).copy())


def normalise(cfg, bn, y, training):
    """Step 1b: the normalised, scaled and re-centred output of one layer.

    Returns ``(z, xhat, bn_active, h)``: ``z`` (float64 integers, the layer's output), ``xhat``
    and ``bn_active`` per sample and neuron, and the backward scale ``h`` per neuron (training
    only, else None). Training also moves the running statistics of ``bn``.
    """
    y = np.asarray(y).astype(np.int64)
    batch = len(y)
    rf = cfg.bn_stat_frac
    if training:
        s1, s2 = y.sum(axis=0), (y * y).sum(axis=0)
        q = batch * s2 - s1 * s1
        r, j = inv_sqrt_parts(q + batch * batch * cfg.bn_eps())
        c = batch * y - s1
    else:
        r, j = inv_sqrt_parts((bn.var + (cfg.bn_eps() << rf)) << rf)
        c = (y << rf) - bn.mean
    xhat = sat_s_int(rne_int(c * r, TABLE_FRAC + j - cfg.act_frac), XHAT_BITS)
    unclipped = rne_int(bn.gamma * xhat, cfg.weight_frac) + (1 << (cfg.act_bits - 1))
    top = (1 << cfg.act_bits) - 1
    bn_active = (unclipped >= 0) & (unclipped <= top)
    z = np.clip(unclipped, 0, top).astype(np.float64)
    h = None
    if training:
        h = sat_s_int(rne_int(bn.gamma * batch * r,
                              TABLE_FRAC + j + cfg.weight_frac - cfg.act_frac - BACK_FRAC),
                      BACK_BITS)
        inv_b = batch_reciprocal(batch)
        mean_b = (s1 * inv_b) >> (RECIP_BITS - rf)
        var_b = (((q * inv_b) >> RECIP_BITS) * inv_b) >> (RECIP_BITS - rf)
        bn.mean += (mean_b - bn.mean) >> cfg.bn_momentum_shift
        bn.var += (var_b - bn.var) >> cfg.bn_momentum_shift
    return z, xhat, bn_active, h


def back_deltas(cfg, i, e, feedback, h, active, bn_active, xhat):
    """Step 5 through the normalisation, with its batch statistics.

    ``pz = bn_active * sat_s(rne(e @ K, delta_shift), delta_bits)`` (dL/dz in delta units);
    per neuron ``P1 = sum_b pz``, ``P2 = sum_b pz * xhat`` (P2 is also the scale's gradient),
    ``m1 = (P1 * inv_b) >> (RECIP_BITS - act_frac)``, ``m2 = (P2 * inv_b) >> RECIP_BITS``;
    ``U = (pz << act_frac) - m1 - rne(xhat * m2, act_frac)``;
    ``d = active * sat_s(rne(U * h, act_frac + BACK_FRAC), delta_bits)``.
    Returns ``(d, P2)``.
    """
    af, batch = cfg.act_frac, len(e)
    p = np.asarray(e @ feedback).astype(np.int64)
    pz = sat_s_int(rne_int(p, cfg.delta_shift(i)), cfg.delta_bits) * bn_active
    p1, p2 = pz.sum(axis=0), (pz * xhat).sum(axis=0)
    inv_b = batch_reciprocal(batch)
    m1, m2 = (p1 * inv_b) >> (RECIP_BITS - af), (p2 * inv_b) >> RECIP_BITS
    u = (pz << af) - m1 - rne_int(xhat * m2, af)
    d = sat_s_int(rne_int(u * h, af + BACK_FRAC), cfg.delta_bits) * active
    return d.astype(np.float64), p2


def scale_update(cfg, i, bn, grad, rand=None):
    """Step 7 for the scale: ``g = sat_s(g - R(P2, gamma_shift), weight_bits)``; ``rand`` the
    scale's rounding chunks (stochastic rounding) or None (nearest-even)."""
    shift = cfg.gamma_shift(i)
    if rand is None:
        step = rne_int(grad, shift)
    else:
        rand = np.asarray(rand, dtype=np.int64)
        rbits = cfg.round_bits
        if shift >= rbits:
            step = (grad + (rand << (shift - rbits))) >> shift
        else:
            step = (grad + (rand >> (rbits - shift))) >> shift
    bn.gamma = sat_s_int(bn.gamma - step, cfg.weight_bits)
