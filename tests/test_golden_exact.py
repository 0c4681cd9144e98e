"""The golden model's shortcuts stay exact: float32 products only where a bound proves them exact
(and float64 just past it), zero input columns left out, weights stored in float32.

The float32 limit is 2**24: the tests put sums exactly at it (float32 must be taken and is
exact) and one past it (where a float32 product would round, so float64 must be taken); a bound
check off by one either way turns one of them red.
"""

import numpy as np
import pytest

import sw_model.exact_float32 as exact_float32
import sw_model.golden as golden
import sw_model.golden_update as golden_update
from sw_model.exact_float32 import (FLOAT32_EXACT, column_l1, float32_exact, forward_product,
                                    gradient_bound, live_columns, weight_dtype)
from sw_model.golden import FixedPointNet
from sw_model.golden_update import update_l1_bound, update_weights
from tests.scalar_reference import ScalarNet, sr
from tests.test_golden import batches, tiny

LIMIT = 1 << 24


def test_float32_limit():
    assert FLOAT32_EXACT == LIMIT
    assert float(np.float32(LIMIT)) == LIMIT and float(np.float32(LIMIT + 1)) != LIMIT + 1
    assert float32_exact(LIMIT) and not float32_exact(LIMIT + 1)


def exact_update(d, x, shift, r=0, rbits=16):
    """``-sr(G, shift, r)`` (ARITHMETIC.md) in Python integers, ``G = d.T @ x`` transposed; with
    ``shift = 0`` it is ``-G``, which is also ``-rne(G, 0)``."""
    g = [[sum(int(d[b, n]) * int(x[b, j]) for b in range(len(x))) for n in range(d.shape[1])]
         for j in range(x.shape[1])]
    return [[-sr(v, shift, r, rbits) for v in row] for row in g]


@pytest.mark.parametrize("top,want_dtype", [(LIMIT, np.float32), (LIMIT + 1, np.float64)])
def test_gradient_at_and_one_past_the_float32_limit(top, want_dtype):
    """G = (top - 1) * 1 + 1 * 1 (no rounding: shift 0, nearest-even). At 2**24 float32 is
    exact; at 2**24 + 1 a float32 product gives 2**24, so float64 must be taken."""
    x = np.array([[1.0], [1.0]])
    d = np.array([[float(top - 1)], [1.0]])
    assert gradient_bound(x, d) == top
    wt = np.zeros((1, 1))
    assert update_weights(wt, x, d, 0) == want_dtype
    assert wt.tolist() == [[-top]] == exact_update(d, x, 0)


@pytest.mark.parametrize("g,want_dtype", [(LIMIT - 3, np.float32), (LIMIT - 2, np.float64),
                                          (LIMIT, np.float64)])
def test_stochastic_rounding_addend_counts_in_the_bound(g, want_dtype):
    """Shift 2, R = 16, every chunk 0xFFFF: the sum formed is G + (r >> 14) = G + 3, and the
    bound is G + 2**2 - 1. At G = 2**24 - 3 it is 2**24 (float32, exact); one more and it is
    past (float64). At G = 2**24 the gradient alone fits float32 but G + 3 does not: float32
    would round 2**24 + 3 up to 2**24 + 4 and move the floor to 2**22 + 1, so the addend must
    send it to float64 (result 2**22)."""
    x = np.array([[1.0], [1.0]])
    d = np.array([[float(g - 1)], [1.0]])
    chunks = np.full(2, 0xFFFF, dtype=np.uint16)          # the weight's and the bias's
    wt = np.zeros((1, 1))
    assert update_weights(wt, x, d, 2, chunks, 16, 1) == want_dtype
    assert wt.tolist() == exact_update(d, x, 2, 0xFFFF) == [[-((g + 3) >> 2)]]


@pytest.mark.parametrize("second,exact32", [(1, True), (2, False)])
def test_forward_at_and_one_past_the_float32_limit(second, exact32):
    """x = [1, 1], w = [2**24 - 1, second]: the sum is 2**24 (float32 holds it) or 2**24 + 1
    (float32 does not): the split float32 product must refuse the second, and the net's forward
    product falls back to float64 and stays exact."""
    cfg = tiny(arch=(2, 1), classes=2, weight_bits=25, classifier_exp=(1,))
    assert weight_dtype(cfg) == np.float32
    wt = np.array([[LIMIT - 1.0], [float(second)]], dtype=np.float32)
    x = np.array([[1.0, 1.0]])
    l1 = float(column_l1(wt).max())
    assert l1 == LIMIT - 1 + second
    got = forward_product(x, wt, 4, l1)
    assert (got is not None) == exact32
    if exact32:
        assert got.tolist() == [[LIMIT]]
    net = FixedPointNet(cfg)
    net.weights = [wt.T]
    assert net._forward_product(0, x).tolist() == [[LIMIT - 1 + second]]


def test_weights_written_through_the_view_drop_the_bounds():
    """Writing large weights through ``net.weights`` after training: the forward product still
    sees the new sums (the property access dropped the running bound), so it falls back to
    float64 and stays exact."""
    cfg = tiny(weight_bits=25)
    net = FixedPointNet(cfg)
    for x, y in batches(cfg, 2):
        net.train_batch(x, y)
    x = np.full((2, cfg.arch[0]), 255.0)
    net.forward(0, x)
    net.weights[0][:] = LIMIT - 1
    want = [[sum(255 * (LIMIT - 1) for _ in range(cfg.arch[0]))] * cfg.neurons(0)] * 2
    assert net._forward_product(0, x).tolist() == want


@pytest.mark.parametrize("rounding", ["stochastic", "nearest-even"])
def test_running_weight_sum_bound_covers_the_updated_weights(rounding):
    """The bound on ``sum_j |w[n, j]|`` that lets the forward product use float32 is raised by
    every update and must stay at or above the exact sums (the weights are never read through
    the property here, which would recompute it)."""
    cfg = tiny(arch=(16, 12, 10), batch=8, delta_frac=10, classes=6, lr_shift=0,
               rounding=rounding)
    net = FixedPointNet(cfg)
    grew = False
    for x, y in zero_columns(cfg, 6, keep=range(0, 16, 2)):
        before = [column_l1(wt) for wt in net._wt]
        net.train_batch(x, y)
        for i, wt in enumerate(net._wt):
            exact = column_l1(wt)
            assert net._l1[i] is not None and (net._l1[i] >= exact).all()
            grew |= bool((exact > before[i]).any())
    assert grew


def test_weight_sum_bound_counts_every_round_up():
    """Tiny gradients (G = 1 at shift 16) all rounded up by the largest chunk: each of the 8
    weights moves by 1 although sum |G| / 2**16 is far below 1, so the bound must add one per
    input column."""
    x, d = np.ones((1, 8)), np.ones((1, 1))
    wt, l1 = np.zeros((8, 1)), np.zeros(1)
    update_weights(wt, x, d, 16, np.full(9, 0xFFFF, dtype=np.uint16), 16, 1)
    update_l1_bound(l1, x, d, 16)
    assert wt.ravel().tolist() == [-1.0] * 8 and column_l1(wt).tolist() == [8.0] <= l1.tolist()


def test_live_columns():
    x = np.zeros((3, 8))
    x[1, 2] = x[0, 5] = 7
    assert live_columns(x).tolist() == [2, 5]
    x[2, :4] = 1                                  # 5 of 8 columns live: over the share
    assert live_columns(x) is None


def zero_columns(cfg, count, keep, seed=0):
    """Mini-batches whose pixels are zero outside the columns ``keep``."""
    for x, y in batches(cfg, count, seed):
        x[:, [j for j in range(cfg.arch[0]) if j not in keep]] = 0
        yield x, y


@pytest.mark.parametrize("kw", [{}, dict(rounding="nearest-even"), dict(dropout=64),
                                dict(weight_bits=26, weight_frac=12, lr_shift=4)],
                         ids=["stochastic", "rne", "dropout", "float64-weights"])
def test_zero_columns_and_both_products_match_the_scalar_reference(kw, monkeypatch):
    """Pixels zero outside 5 of 16 columns, so the products leave columns out; deltas large
    enough (delta shift 0, 6 classes, batch 8) that gradient bounds fall on both sides of 2**24,
    so the gradient takes float32 and float64 both. Every weight matches the integer
    reference after every mini-batch (reading them drops the model's bounds; a second model,
    read only at the end, runs on its running bounds)."""
    cfg = tiny(arch=(16, 12, 10), batch=8, delta_frac=10, classes=6, **kw)
    seen, live = set(), []
    update = golden.update_weights

    def recording(*args, **kwargs):
        dtype = update(*args, **kwargs)
        seen.add(dtype)
        return dtype

    monkeypatch.setattr(golden, "update_weights", recording)
    count = live_columns

    def counting(x):
        got = count(x)
        live.append(got is not None)
        return got

    monkeypatch.setattr(exact_float32, "live_columns", counting)
    monkeypatch.setattr(golden_update, "live_columns", counting)
    fast, slow = FixedPointNet(cfg), ScalarNet(cfg)
    quiet = FixedPointNet(cfg)             # weights read only at the end: running bounds
    for x, y in zero_columns(cfg, 8, keep=(1, 4, 6, 11, 13)):
        fast.train_batch(x, y)
        slow.train_batch(x, y)
        quiet.train_batch(x, y)
        for i in range(cfg.layers):
            assert fast.weights[i].astype(int).tolist() == slow.w[i]
            assert fast.biases[i].astype(int).tolist() == slow.b[i]
    assert quiet.weight_hash() == fast.weight_hash()
    assert any(live)
    assert seen == {np.float32, np.float64}
    assert fast._wt[0].dtype == weight_dtype(cfg)
