import numpy as np
import pytest

from contract.config import NetConfig
from sw_model.float_ref import FloatNet, softmax_ce, square_hinge
from sw_model.golden import FixedPointNet


def small_cfg(**kw):
    base = dict(arch=(12, 9, 7), classes=4, batch=5)
    base.update(kw)
    return NetConfig.from_dict(base)


def data(cfg, n=5, seed=3):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, cfg.arch[0])), rng.integers(0, cfg.classes, n)


def total_loss(net, x, y, layer=None):
    xs = net._input(x)
    acts, _ = net._forward(xs)
    if net.output is not None:
        return net.loss(acts[-1] @ net.output.T + net.output_bias, y)[0]
    return net.loss(acts[layer + 1] @ net.classifiers[layer].T, y)[0]


@pytest.mark.parametrize("algo,loss", [("lel", "square-hinge"), ("lel-train", "square-hinge"),
                                       ("bp", "square-hinge"), ("bp", "softmax-ce"),
                                       ("lel", "softmax-ce")])
def test_gradients_match_finite_differences(algo, loss):
    cfg = small_cfg()
    net = FloatNet(cfg, algo, loss=loss, dtype=np.float64)
    # Move away from the initial point so hinges and ReLUs are in varied states.
    rng = np.random.default_rng(0)
    for p in net.parameters().values():
        p += rng.normal(0, 0.05, p.shape)
    x, y = data(cfg)
    _, grads = net.gradients(x, y)
    params = net.parameters()
    eps = 1e-6
    checked = 0
    for name, g in grads.items():
        layer = int(name[1:]) if name[0] in "wbm" and name[1:].isdigit() else None
        p = params[name]
        for idx in list(np.ndindex(p.shape))[:: max(1, p.size // 12)]:
            old = p[idx]
            p[idx] = old + eps
            up = total_loss(net, x, y, layer)
            p[idx] = old - eps
            down = total_loss(net, x, y, layer)
            p[idx] = old
            numeric = (up - down) / (2 * eps)
            assert g[idx] == pytest.approx(numeric, rel=1e-4, abs=1e-6), (name, idx)
            checked += 1
    assert checked > 20


def test_loss_gradients_are_the_documented_formulas():
    s = np.array([[0.5, -2.0, 1.5], [0.0, 0.2, -0.3]])
    y = np.array([0, 2])
    loss, e = square_hinge(s, y)
    t = np.array([[1, -1, -1], [-1, -1, 1]])
    h = np.maximum(0, 1 - t * s)
    assert loss == pytest.approx(0.5 * (h ** 2).sum())
    assert np.allclose(e, -t * h)
    _, g = softmax_ce(s, y)
    assert np.allclose(g.sum(axis=1), 0)


def test_feedback_alignment_uses_fixed_random_feedback():
    cfg = small_cfg()
    net = FloatNet(cfg, "fa", dtype=np.float64)
    before = [b.copy() for b in net.backward_fa]
    x, y = data(cfg)
    for _ in range(3):
        net.train_batch(x, y)
    assert all((a == b).all() for a, b in zip(before, net.backward_fa))
    bp = FloatNet(cfg, "bp", dtype=np.float64)
    assert not np.allclose(bp.gradients(x, y)[1]["w0"], net.gradients(x, y)[1]["w0"])


def test_sign_concordant_feedback_shares_signs():
    cfg = small_cfg()
    net = FloatNet(cfg, "lel-sign", dtype=np.float64)
    for m, k in zip(net.classifiers, net.feedbacks):
        assert (np.sign(m) == np.sign(k)).all() and not np.allclose(m, k)


def test_fixed_point_step_agrees_with_float():
    """One step of the golden model tracks the float reference to within its resolution."""
    cfg = NetConfig.from_dict(dict(arch=(64, 32, 32), classes=10, batch=16,
                                   rounding="nearest-even", lr_shift=6))
    fx, fl = FixedPointNet(cfg), FloatNet(cfg, "lel", lr=2.0 ** -6, dtype=np.float64)
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 120, (16, 64)), rng.integers(0, 10, 16)
    sfx = [s / 2 ** cfg.score_frac for s in fx.infer(x)]
    sfl = fl.infer(x)
    assert np.abs(sfx[0] - sfl[0]).max() < 0.02
    assert np.abs(sfx[1] - sfl[1]).max() < 0.03
    w0 = [w.copy() for w in fx.weights]
    fx.train_batch(x, y)
    fl.train_batch(x, y)
    for i in range(cfg.layers):
        dfx = (fx.weights[i] - w0[i]) / 2 ** cfg.weight_frac
        dfl = fl.weights[i] - (w0[i] / 2 ** cfg.weight_frac)
        assert np.abs(dfl).max() > 50 * 2 ** -cfg.weight_frac     # the step is not trivial
        assert np.abs(dfx - dfl).max() < 0.05 * np.abs(dfl).max()


def test_fixed_and_float_train_alike_on_digits():
    from sw_model.data import load_dataset
    d = load_dataset("digits")
    cfg = NetConfig.from_dict(dict(arch=(64, 64, 64), classes=10, batch=32))
    fx, fl = FixedPointNet(cfg), FloatNet(cfg, "lel", lr=2.0 ** -7, dtype=np.float64)
    rng = np.random.default_rng(0)
    for _ in range(6):
        order = rng.permutation(len(d.x_train))
        for k in range(0, len(order), 32):
            idx = order[k:k + 32]
            fx.train_batch(d.x_train[idx], d.y_train[idx])
            fl.train_batch(d.x_train[idx], d.y_train[idx])
    err = lambda net: [float((p != d.y_test).mean()) for p in net.predict(d.x_test)]
    efx, efl = err(fx), err(fl)
    assert max(efx) < 0.1 and max(efl) < 0.1
    assert all(abs(a - b) < 0.03 for a, b in zip(efx, efl))


def test_fixed_softmax_errors_track_float():
    cfg = NetConfig.from_dict(dict(arch=(64, 32), classes=10, batch=64, loss="softmax-ce"))
    fx = FixedPointNet(cfg)
    rng = np.random.default_rng(4)
    s = rng.integers(-6 << cfg.score_frac, 6 << cfg.score_frac, (64, 10)).astype(float)
    s[:4] = s[:4, :1]                              # ties
    s[4] = [20 << cfg.score_frac] + [-(20 << cfg.score_frac)] * 9   # far beyond the table
    labels = rng.integers(0, 10, 64)
    e_fixed = fx.errors(s, labels) / 2 ** cfg.score_frac
    _, e_float = softmax_ce(s / 2 ** cfg.score_frac, labels)
    # table step 2**(1/64) - 1 ~ 1.1 % relative, plus the final floor division
    assert np.abs(e_fixed - e_float).max() < 0.012
    assert (np.abs(e_fixed.sum(axis=1)) <= 10 * 2.0 ** -cfg.score_frac).all()


@pytest.mark.parametrize("algo", ["lel", "lel-train", "bp"])
def test_layer_rates_scale_each_layers_step(algo):
    """layer_lr_shift = (0, 2): layer 1 moves as without it, layer 2 a quarter as far (its
    classifier too), bp's output layer at the base rate."""
    from contract.config import NetConfig
    from sw_model.float_ref import FloatNet
    base = NetConfig.from_dict(dict(arch=(12, 9, 7), classes=4, batch=6, seed=3))
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (6, 12)), rng.integers(0, 4, 6)
    moves = []
    for cfg in (base, base.replace(layer_lr_shift=(0, 2))):
        net = FloatNet(cfg, algo, lr=2.0 ** -6)
        before = {k: v.copy() for k, v in net.parameters().items()}
        net.train_batch(x, y)
        moves.append({k: v - before[k] for k, v in net.parameters().items()})
    plain, scaled = moves
    for name in plain:
        factor = 0.25 if name[1:] == "1" else 1.0
        assert np.allclose(scaled[name], factor * plain[name], rtol=1e-12, atol=0), name
        assert np.abs(plain[name]).max() > 0, name
