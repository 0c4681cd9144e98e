"""Batch normalisation's pieces (ARITHMETIC.md, "Batch normalisation"): the inverse square root,
step 1b at its edges, and what the config refuses. The whole training step is compared with
the literal reference in tests/test_golden.py."""

from decimal import Decimal, getcontext

import numpy as np
import pytest

from contract.batch_norm import TABLE_BITS, inv_sqrt_split, inv_sqrt_table
from contract.config import ConfigError, NetConfig
from sw_model.golden_batch_norm import BatchNormState, inv_sqrt_parts, normalise
from tests import scalar_reference


def test_table_entries_are_the_nearest_integers():
    getcontext().prec = 50
    table = inv_sqrt_table()
    assert len(table) == 1 << TABLE_BITS and table[1] == 4096 and table[255] == 257
    for u in range(1, 1 << TABLE_BITS):
        exact = Decimal(4096) / Decimal(u).sqrt()
        assert abs(Decimal(table[u]) - exact) < Decimal("0.5"), u


@pytest.mark.parametrize("a", [1, 2, 127, 128, 255, 256, 257, 511, 512, 1023, 1024, 4095,
                               4096, 65535, 65536, 99991, (1 << 33) - 1, 1 << 33,
                               12345678901])
def test_split_matches_the_literal_reading(a):
    u, j = inv_sqrt_split(a)
    r, j2 = scalar_reference.inv_sqrt(a)
    assert (inv_sqrt_table()[u], j) == (r, j2)
    assert u < 1 << TABLE_BITS and (j == 0 or u >= 1 << (TABLE_BITS - 2))
    got_r, got_j = inv_sqrt_parts(np.array([a]))
    assert (int(got_r[0]), int(got_j[0])) == (r, j2)
    # within 0.8 % of 1/sqrt(a)
    assert abs(r / 2 ** (12 + j) * a ** 0.5 - 1) < 0.008


def test_split_refuses_zero():
    with pytest.raises(ValueError):
        inv_sqrt_split(0)
    with pytest.raises(ValueError):
        inv_sqrt_parts(np.array([3, 0]))


def cfg(**kw):
    base = dict(arch=(4, 6), classes=3, batch=8, batch_norm=True)
    base.update(kw)
    return NetConfig.from_dict(base)


def literal(c, bn, y, training):
    """The scalar reference's step 1b over every neuron, on copies of the statistics."""
    g, mean, var = bn.gamma.tolist(), bn.mean.tolist(), bn.var.tolist()
    ys = np.asarray(y, dtype=int).tolist()
    cols = [scalar_reference.normalise(c, g, mean, var, ys, n, training)
            for n in range(len(g))]
    z = np.array([col[0] for col in cols]).T
    xh = np.array([col[1] for col in cols]).T
    return z, xh, mean, var


@pytest.mark.parametrize("training", [True, False])
def test_normalise_at_the_edges(training):
    """Constant neurons, full-scale spread, scales at both ends of their range, and (inference)
    running statistics far from the batch: xhat saturates at XHAT_BITS (reachable only with an
    epsilon of one LSB squared: otherwise |xhat| <= 32) and the output clips."""
    c = cfg(bn_eps_shift=14)
    bn = BatchNormState(c, 6)
    bn.gamma[:] = [1 << 13, (1 << 15) - 1, -(1 << 15), 1 << 14, 0, 1 << 14]
    bn.mean[:] = [0, -(255 << 8), 100 << 8, 510 << 8, 7, 3 << 8]
    bn.var[:] = [0, 1, 1 << 22, 0, 0, 1 << 10]
    y = np.array([[0, 255, 3, 128, 0, 1],
                  [0, 0, 3, 129, 0, 2],
                  [0, 255, 3, 127, 255, 3],
                  [0, 0, 3, 128, 0, 4],
                  [0, 255, 3, 128, 0, 5]], dtype=np.float64)
    want_z, want_xh, want_mean, want_var = literal(c, bn, y, training)
    z, xh, active, _ = normalise(c, bn, y, training)
    assert z.astype(int).tolist() == want_z.tolist()
    assert xh.tolist() == want_xh.tolist()
    assert bn.mean.tolist() == want_mean and bn.var.tolist() == want_var
    if not training:
        assert xh.max() == (1 << 15) - 1 and xh.min() == -(1 << 15)
        assert (z == 0).any() and (z == 255).any() and not active.all()


@pytest.mark.parametrize("kw, field", [
    (dict(dropout=16), "batch_norm"),
    (dict(batch=257), "batch_norm"),
    (dict(act_bits=13, input_frac=8, act_frac=7), "batch_norm"),
    (dict(weight_frac=6, act_frac=7), "batch_norm"),
    (dict(delta_bits=21), "batch_norm"),
    (dict(weight_bits=17), "batch_norm"),
    (dict(bn_stat_frac=9, act_bits=12, input_frac=8, act_frac=7, weight_bits=16), "batch_norm"),
    (dict(bn_eps_shift=15), "bn_eps_shift"),
    (dict(bn_momentum_shift=17), "bn_momentum_shift"),
    (dict(bn_stat_frac=-1), "bn_stat_frac"),
    (dict(batch_norm=1), "batch_norm"),
    (dict(lr_shift=0, delta_frac=4, weight_frac=14), "lr_shift"),
])
def test_config_refusals_name_the_field(kw, field):
    with pytest.raises(ConfigError, match=f"field '{field}'"):
        cfg(**kw)


def test_batch_norm_off_needs_none_of_its_limits():
    NetConfig.from_dict(dict(arch=(4, 6), batch=300, dropout=16))


def test_batch_reciprocal():
    from contract.batch_norm import batch_reciprocal
    assert [batch_reciprocal(b) for b in (1, 2, 3, 7, 32, 255, 256)] == [
        1 << 20, 1 << 19, 349526, 149797, 1 << 15, 4113, 4096]
    for bad in (0, 257):
        with pytest.raises(ValueError):
            batch_reciprocal(bad)


def test_rne_int_python_integers_follow_the_int64_rule():
    """rne_int on one Python integer (the unit models' path, any size) equals the int64 path
    wherever both hold the value, ties included; beyond int64 it stays exact."""
    from sw_model.golden_batch_norm import rne_int, sat_s_int
    rng = np.random.default_rng(3)
    for x, s in zip(rng.integers(-2**40, 2**40, 5000), rng.integers(0, 45, 5000)):
        x, s = int(x), int(s)
        assert rne_int(x, s) == int(rne_int(np.int64(x), np.int64(s)))
        tie = (2 * (x >> 26) + 1) << s           # an exact tie at shift s + 1, within int64
        assert rne_int(tie, s + 1) == int(rne_int(np.int64(tie), np.int64(s + 1)))
    assert rne_int(5 << 70 | 1 << 69, 70) == 6 and rne_int(3 << 69, 70) == 2
    assert sat_s_int(1 << 80, 24) == (1 << 23) - 1 and sat_s_int(-(1 << 80), 24) == -(1 << 23)
