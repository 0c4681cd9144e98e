import numpy as np
import pytest

from contract.config import ConfigError, NetConfig
from sw_model.golden import FixedPointNet, initial_integers, initial_weights
from sw_model.lfsr import chunks
from tests.scalar_reference import ScalarNet, sr


def tiny(**kw):
    base = dict(arch=(7, 6, 5), classes=3, batch=4, array_rows=4, array_cols=3, lr_shift=2,
                score_frac=8, delta_frac=8, weight_frac=10, classifier_exp=(2, 2), seed=5)
    base.update(kw)
    return NetConfig.from_dict(base)


def batches(cfg, count, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        x = rng.integers(0, 1 << cfg.act_bits, (cfg.batch, cfg.arch[0]))
        yield x, rng.integers(0, cfg.classes, cfg.batch)


@pytest.mark.parametrize("kw", [
    {},
    dict(rounding="nearest-even"),
    dict(feedback="sign"),
    dict(dropout=64),
    dict(dropout=200, feedback="sign", lr_shift=0, weight_frac=8),
    dict(weight_bits=8, weight_frac=6, act_bits=4, input_frac=4, act_frac=4, delta_bits=8, delta_frac=6, round_bits=4,
         score_bits=10, error_bits=10, score_frac=6, classifier_bits=2, lfsr_width=16),
    dict(arch=(9, 11, 4, 7), classifier_exp=(3, 2, 4), array_rows=5, array_cols=2,
         round_bits=8, lfsr_width=63),
    dict(loss="softmax-ce"),
    dict(loss="softmax-ce", softmax_lut_bits=3, score_frac=5, delta_frac=5, feedback="sign",
         weight_frac=6, classifier_exp=(3, 3)),
    dict(arch=(8, 13, 6), batch=7, dropout=96, lr_shift=5),
    dict(layer_lr_shift=(0, 3), dropout=30),
], ids=["default", "rne", "sign", "dropout", "dropout-sign-lr1", "narrow", "deep-odd-tiles",
        "softmax", "softmax-coarse", "dropout-odd-edges", "per-layer-rates"])
def test_golden_matches_scalar_reference(kw):
    cfg = tiny(**kw)
    fast, slow = FixedPointNet(cfg), ScalarNet(cfg)
    for x, y in batches(cfg, 6):
        fast.train_batch(x, y)
        slow.train_batch(x, y)
        for i in range(cfg.layers):
            assert fast.weights[i].astype(int).tolist() == slow.w[i]
            assert fast.biases[i].astype(int).tolist() == slow.b[i]
    x, _ = next(batches(cfg, 1, seed=9))
    preds = np.array(fast.predict(x)).T.tolist()
    assert preds == [slow.predict(row) for row in x]


def test_saturation_is_reached_and_respected():
    """Huge learning rate: weights pin at both ends of their range, never beyond."""
    cfg = tiny(lr_shift=0, weight_bits=6, weight_frac=4, delta_frac=4, delta_bits=8)
    fast, slow = FixedPointNet(cfg), ScalarNet(cfg)
    for x, y in batches(cfg, 5):
        fast.train_batch(x, y)
        slow.train_batch(x, y)
    w = np.concatenate([v.ravel() for v in fast.weights])
    assert w.min() == -32 and w.max() == 31
    assert [v.astype(int).tolist() for v in fast.weights] == slow.w


def test_draws_follow_the_weight_memory_and_forward_tile_order():
    """Init, rounding and dropout chunks, placed by hand from the chunk-index formulas of
    ARITHMETIC.md ("What is drawn"): 13 neurons in tiles of P = 4, 5 samples in groups of Q = 3."""
    cfg = tiny(arch=(5, 13, 6), batch=7, array_rows=4, array_cols=3, dropout=96, lr_shift=6)
    P, Q, W = cfg.array_rows, cfg.array_cols, cfg.lfsr_width
    net = FixedPointNet(cfg)
    for i in range(cfg.layers):                                     # initial weights
        N, J, bits = cfg.neurons(i), cfg.fan_in(i), cfg.init_bits(i)
        u = chunks(W, cfg.stream_seed("init", i), 16, -(-N // P) * J * P)
        want = [[(int(u[(n // P * J + j) * P + n % P]) >> (16 - bits)) - (1 << (bits - 1))
                 for j in range(J)] for n in range(N)]
        assert net.weights[i].astype(int).tolist() == want

    B, N = 5, cfg.neurons(0)                                        # dropout
    T, G = -(-N // P), -(-B // Q)
    u = chunks(W, cfg.stream_seed("dropout"), 8, 2 * T * G * P * Q)
    for offset in (0, T * G * P * Q):                               # two layers' worth
        _, keep = net.dropout(np.full((B, N), 100.0))
        want = [[bool(u[offset + ((n // P * G + b // Q) * P + n % P) * Q + b % Q] >= cfg.dropout)
                 for n in range(N)] for b in range(B)]
        assert keep.tolist() == want

    rng = np.random.default_rng(1)                                  # stochastic rounding
    start, rbits = 0, cfg.round_bits
    u = chunks(W, cfg.stream_seed("round"), rbits, 4096)
    for i in range(cfg.layers):
        N, J = cfg.neurons(i), cfg.fan_in(i)
        x = rng.integers(0, 1 << cfg.act_bits, (B, J))
        d = rng.integers(-(1 << 10), 1 << 10, (B, N))
        net.weights[i][:] = 0
        net.biases[i][:] = 0
        net.update(i, x.astype(float), d.astype(float))
        r = [[int(u[start + (n // P * (J + 1) + j) * P + n % P]) for j in range(J + 1)]
             for n in range(N)]
        grad, bias = d.T @ x, d.sum(axis=0)
        want_w = [[-sr(int(grad[n, j]), cfg.update_shift(i), r[n][j], rbits) for j in range(J)]
                  for n in range(N)]
        want_b = [-sr(int(bias[n]), cfg.bias_update_shift(), r[n][J], rbits) for n in range(N)]
        assert net.weights[i].astype(int).tolist() == want_w
        assert net.biases[i].astype(int).tolist() == want_b
        start += -(-N // P) * P * (J + 1)


def test_resume_from_state_is_exact():
    cfg = tiny(dropout=32)
    a = FixedPointNet(cfg)
    data = list(batches(cfg, 8))
    for x, y in data:
        a.train_batch(x, y)
    b = FixedPointNet(cfg)
    for x, y in data[:3]:
        b.train_batch(x, y)
    c = FixedPointNet(cfg)
    c.restore(b.state())
    for x, y in data[3:]:
        c.train_batch(x, y)
    assert a.weight_hash() == c.weight_hash()


def test_oversized_batch_is_refused():
    cfg = tiny()
    net = FixedPointNet(cfg)
    with pytest.raises(ValueError, match="exceeds"):
        net.train_batch(np.zeros((cfg.batch + 1, 7)), np.zeros(cfg.batch + 1, int))


@pytest.mark.parametrize("arch", [(784, 1000, 1000), (7, 6, 5)])
def test_accumulator_width_bounds_the_extremes(arch):
    """Most negative weights and biases times the largest inputs still fit acc_bits, and the
    whole computation stays exact in float64."""
    cfg = tiny(arch=arch, classifier_exp=())
    net = FixedPointNet(cfg)
    lo = -(1 << (cfg.weight_bits - 1))
    for i in range(cfg.layers):
        x = np.full((1, cfg.fan_in(i)), (1 << cfg.act_bits) - 1, dtype=np.float64)
        acc = x @ np.full((cfg.fan_in(i), 1), float(lo)) + lo * 2.0 ** cfg.in_frac(i)
        assert -(2 ** (cfg.acc_bits(i) - 1)) <= acc.min()
        assert cfg.acc_bits(i) <= cfg.max_abs_bits() < 53
    net.weights = [np.full_like(w, lo) for w in net.weights]
    net.biases = [np.full_like(b, lo) for b in net.biases]
    y, active = net.forward(0, np.full((2, arch[0]), 255.0))
    assert (y == 0).all() and not active.any()


def test_unexact_config_is_refused_by_the_model():
    cfg = tiny()
    object.__setattr__(cfg, "round_bits", 32)
    object.__setattr__(cfg, "batch", 4096)
    with pytest.raises(ValueError, match="2\\*\\*53|exact"):
        FixedPointNet(cfg)


def test_initial_weights_wider_than_the_init_chunk_are_refused_by_the_model():
    """I = 16 takes the whole 16-bit chunk; I = 17 would need bits the chunk does not have: the
    model refuses it for a matrix the config does not cover (the float references' extra
    matrices) and for a config that bypassed validation."""
    cfg = tiny(weight_bits=24, weight_frac=16, lr_shift=8)        # fan-in 7 and 6: a = 1, I = 16
    assert [cfg.init_bits(0), cfg.init_bits(1)] == [16, 16]
    u = chunks(cfg.lfsr_width, cfg.stream_seed("init", 0), 16, 2 * 7 * 4).astype(np.int64)
    want = u.reshape(2, 7, 4).transpose(0, 2, 1).reshape(8, 7)[:6] - (1 << 15)
    assert (initial_weights(cfg, 0) == want).all()
    assert initial_weights(cfg, 0).min() < -(1 << 14) and initial_weights(cfg, 0).max() >= 1 << 14
    with pytest.raises(ConfigError, match="'weight_frac'.*fan-in 1 17 bits"):
        initial_integers(cfg, 100, 3, 1)                          # fan-in 1: I = 17
    object.__setattr__(cfg, "weight_frac", 17)                    # past validation: I = 17
    with pytest.raises(ConfigError, match="'weight_frac'"):
        FixedPointNet(cfg)


def test_early_exit_inference():
    from sw_model.data import load_dataset
    d = load_dataset("digits")
    cfg = NetConfig.from_dict(dict(arch=(64, 32, 32, 32), classes=10, batch=32))
    net = FixedPointNet(cfg)
    for k in range(0, 640, 32):
        net.train_batch(d.x_train[k:k + 32], d.y_train[k:k + 32])
    x = d.x_test[:100]
    per_layer = net.predict(x)
    pred, layer = net.infer_early_exit(x, threshold=0)
    assert (layer == 0).all() and (pred == per_layer[0]).all()
    pred, layer = net.infer_early_exit(x, threshold=1 << 30)
    assert (layer == cfg.layers - 1).all() and (pred == per_layer[-1]).all()
    scores = net.infer(x)
    t = float(np.median(np.diff(np.sort(scores[0], axis=1)[:, -2:], axis=1)))
    pred, layer = net.infer_early_exit(x, threshold=t)
    for n in range(len(x)):
        margins = [np.diff(np.sort(s[n])[-2:])[0] for s in scores]
        first = next((i for i, m in enumerate(margins[:-1]) if m >= t), cfg.layers - 1)
        assert layer[n] == first and pred[n] == per_layer[first][n]
    assert 0 < (layer == 0).sum() < len(x)


@pytest.mark.parametrize("kw", [
    dict(batch_norm=True),
    dict(batch_norm=True, rounding="nearest-even", feedback="sign"),
    dict(batch_norm=True, arch=(9, 11, 4, 7), classifier_exp=(3, 2, 4), array_rows=5,
         array_cols=2, round_bits=8, batch=7, bn_momentum_shift=1, bn_stat_frac=3),
    dict(batch_norm=True, weight_bits=8, weight_frac=6, act_bits=4, input_frac=4, act_frac=4,
         delta_bits=8, delta_frac=6, round_bits=4, score_bits=10, error_bits=10, score_frac=6,
         classifier_bits=2, lfsr_width=16, bn_eps_shift=0),
    dict(batch_norm=True, loss="softmax-ce", bn_eps_shift=14, bn_momentum_shift=0),
], ids=["bn", "bn-rne-sign", "bn-deep-odd", "bn-narrow", "bn-softmax-eps-lsb"])
def test_batch_norm_matches_scalar_reference(kw):
    """Batch normalisation (ARITHMETIC.md): the scales, running statistics, weights and
    inference with running statistics of the vectorised model against the literal one."""
    cfg = tiny(**kw)
    fast, slow = FixedPointNet(cfg), ScalarNet(cfg)
    moved = False
    for x, y in batches(cfg, 6):
        fast.train_batch(x, y)
        slow.train_batch(x, y)
        for i in range(cfg.layers):
            bn = fast.batch_norm[i]
            assert fast.weights[i].astype(int).tolist() == slow.w[i]
            assert fast.biases[i].astype(int).tolist() == slow.b[i]
            assert bn.gamma.tolist() == slow.g[i]
            assert bn.mean.tolist() == slow.mean[i] and bn.var.tolist() == slow.var[i]
            moved |= bool((bn.gamma != 1 << (cfg.weight_frac - 1)).any())
    assert moved, "no scale moved: the test would not see the scale's update"
    x, _ = next(batches(cfg, 1, seed=9))
    preds = np.array(fast.predict(x)).T.tolist()
    assert preds == [slow.predict(row) for row in x]
