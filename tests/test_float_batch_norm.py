"""Batch normalisation in the float reference (sw_model/float_ref.py, FloatNet).

The expectations are computed here by a small NumPy implementation of the rules (written out
again, not taken from the class), so a change to a rule in either place fails a test."""

import numpy as np
import pytest

from contract.config import NetConfig
from sw_model.float_ref import FloatNet, softmax_ce, square_hinge

LOSSES = {"square-hinge": square_hinge, "softmax-ce": softmax_ce}


def bn_cfg(**kw):
    base = dict(arch=(16, 12, 10), classes=5, batch=8, batch_norm=True)
    base.update(kw)
    return NetConfig.from_dict(base)


def data(cfg, n=8, seed=3):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, cfg.arch[0])), rng.integers(0, cfg.classes, n)


def jitter(net, seed=0, sd=0.05):
    """Move every parameter off its initial value (the scales too), so that ReLUs, hinges and
    scales are in varied states."""
    rng = np.random.default_rng(seed)
    for p in net.parameters().values():
        p += rng.normal(0, sd, p.shape).astype(p.dtype)


# ---- an independent reference ------------------------------------------------------------
def ref_forward(cfg, params, x, running=None):
    """Layer outputs ``z`` and batch statistics ``(mu, var)`` per layer, from plain dicts of
    arrays; ``running`` = ``(means, vars)`` normalises by those instead of the batch's."""
    eps = 2.0 ** -cfg.bn_eps_shift
    h = np.asarray(x, dtype=np.float64) / 2.0 ** cfg.input_frac
    outs, stats = [], []
    for i in range(cfg.layers):
        a = np.maximum(h @ params[f"w{i}"].T + params[f"b{i}"], 0)
        if cfg.batch_norm:
            if running is None:
                mu = a.sum(axis=0) / len(a)
                var = ((a - mu) ** 2).sum(axis=0) / len(a)
            else:
                mu, var = running[0][i], running[1][i]
            stats.append((mu, var))
            a = params[f"g{i}"] * (a - mu) / np.sqrt(var + eps)
        outs.append(a)
        h = a
    return outs, stats


def layer_loss(net, x, y, layer):
    """Layer ``layer``'s local loss, summed over the batch, with batch statistics."""
    params = net.parameters()
    outs, _ = ref_forward(net.cfg, params, x)
    return net.loss(outs[layer] @ net.classifiers[layer].T, y)[0]


# ---- gradients ---------------------------------------------------------------------------
@pytest.mark.parametrize("algo,loss", [("lel", "square-hinge"), ("lel", "softmax-ce"),
                                       ("lel-train", "square-hinge")])
def test_full_backward_matches_finite_differences(algo, loss):
    cfg = bn_cfg(loss=loss)
    net = FloatNet(cfg, algo, loss=loss, dtype=np.float64)
    jitter(net)
    x, y = data(cfg)
    _, grads = net.gradients(x, y)
    assert {f"g{i}" for i in range(cfg.layers)} <= set(grads)
    params = net.parameters()
    h = 1e-6
    checked = {}
    for name, g in grads.items():
        layer = int(name[1:])
        p = params[name]
        assert g.shape == p.shape
        for idx in list(np.ndindex(p.shape))[:: max(1, p.size // 10)]:
            old = p[idx]
            p[idx] = old + h
            up = layer_loss(net, x, y, layer)
            p[idx] = old - h
            down = layer_loss(net, x, y, layer)
            p[idx] = old
            numeric = (up - down) / (2 * h)
            assert g[idx] == pytest.approx(numeric, rel=1e-4, abs=1e-6), (name, idx)
            checked[name[0]] = checked.get(name[0], 0) + 1
    assert checked["w"] > 10 and checked["b"] > 10 and checked["g"] > 10
    # the gradients are not trivially zero
    assert all(np.abs(grads[f"g{i}"]).max() > 1e-3 for i in range(cfg.layers))


def test_const_backward_treats_the_statistics_as_constants():
    cfg = bn_cfg()
    full = FloatNet(cfg, "lel", dtype=np.float64)
    jitter(full)
    const = FloatNet(cfg, "lel", dtype=np.float64, bn_backward="const")
    const.restore(full.state())
    x, y = data(cfg)
    _, gf = full.gradients(x, y)
    _, gc = const.gradients(x, y)
    assert set(gf) == set(gc)
    params = full.parameters()
    outs, stats = ref_forward(cfg, params, x)
    xin = np.asarray(x) / 2.0 ** cfg.input_frac
    for i in range(cfg.layers):
        # the scale's gradient does not depend on the backward through the statistics
        assert np.allclose(gf[f"g{i}"], gc[f"g{i}"], rtol=1e-12, atol=1e-14)
        assert not np.allclose(gf[f"w{i}"], gc[f"w{i}"], rtol=1e-3)
        # const: dL/da = gamma * p / sigma, then the ReLU's derivative
        _, e = square_hinge(outs[i] @ full.classifiers[i].T, y)
        p = e @ full.feedbacks[i]
        h_in = xin if i == 0 else outs[i - 1]
        pre = h_in @ params[f"w{i}"].T + params[f"b{i}"]
        mu, var = stats[i]
        d = params[f"g{i}"] * p / np.sqrt(var + 2.0 ** -cfg.bn_eps_shift) * (pre > 0)
        assert np.allclose(gc[f"w{i}"], d.T @ h_in, rtol=1e-10, atol=1e-12)
        assert np.allclose(gc[f"b{i}"], d.sum(axis=0), rtol=1e-10, atol=1e-12)
        xhat = (np.maximum(pre, 0) - mu) / np.sqrt(var + 2.0 ** -cfg.bn_eps_shift)
        assert np.allclose(gc[f"g{i}"], (p * xhat).sum(axis=0), rtol=1e-10, atol=1e-12)


def test_bad_bn_backward_is_refused():
    with pytest.raises(ValueError, match="batch-norm backward"):
        FloatNet(bn_cfg(), "lel", bn_backward="exact")


@pytest.mark.parametrize("algo", ["bp", "fa"])
def test_backprop_and_feedback_alignment_refuse_batch_norm(algo):
    with pytest.raises(ValueError) as info:
        FloatNet(bn_cfg(), algo)
    msg = str(info.value)
    assert msg == (f"batch normalisation is trained by local errors: algorithm '{algo}' does "
                   "not support it")
    assert "\n" not in msg
    FloatNet(bn_cfg(batch_norm=False), algo)          # without batch norm they build


# ---- running statistics and inference ----------------------------------------------------
@pytest.mark.parametrize("shift", [3, 1])
def test_running_statistics_after_two_batches(shift):
    cfg = bn_cfg(bn_momentum_shift=shift)
    net = FloatNet(cfg, "lel", dtype=np.float64)
    assert all((m == 0).all() for m in net.run_means)
    assert all((v == 1).all() for v in net.run_vars)
    (x1, y1), (x2, y2) = data(cfg, seed=5), data(cfg, seed=6)
    rate = 2.0 ** -shift
    means = [np.zeros(cfg.neurons(i)) for i in range(cfg.layers)]
    variances = [np.ones(cfg.neurons(i)) for i in range(cfg.layers)]
    for x, y in ((x1, y1), (x2, y2)):
        _, stats = ref_forward(cfg, net.state(), x)      # the parameters before the step
        net.train_batch(x, y)
        for i, (mu, var) in enumerate(stats):
            means[i] = means[i] + (mu - means[i]) * rate
            variances[i] = variances[i] + (var - variances[i]) * rate
    for i in range(cfg.layers):
        assert np.allclose(net.run_means[i], means[i], rtol=1e-12, atol=1e-15)
        assert np.allclose(net.run_vars[i], variances[i], rtol=1e-12, atol=1e-15)
        assert not np.allclose(net.run_vars[i], 1.0)
    state = net.state()
    for i in range(cfg.layers):
        assert np.allclose(state[f"rm{i}"], means[i])
        assert np.allclose(state[f"rv{i}"], variances[i])
    # the statistics are not parameters: the learning rate never moves them
    assert not any(name.startswith("r") for name in net.parameters())
    assert not any(name.startswith("r") for name in net.gradients(x1, y1)[1])


def test_a_fresh_net_scales_by_one_half():
    cfg = bn_cfg()
    net = FloatNet(cfg, "lel", dtype=np.float64)
    x, y = data(cfg)
    params = {k: v for k, v in net.parameters().items() if k[0] in "wb"}
    params.update({f"g{i}": np.full(cfg.neurons(i), 0.5) for i in range(cfg.layers)})
    outs, _ = ref_forward(cfg, params, x)
    scores = []
    net.gradients(x, y, scores)              # training: the batch statistics
    for i in range(cfg.layers):
        assert np.allclose(scores[i], outs[i] @ net.classifiers[i].T, rtol=1e-12, atol=1e-12)


def test_gradients_do_not_move_the_running_statistics():
    cfg = bn_cfg()
    net = FloatNet(cfg, "lel", dtype=np.float64)
    before = net.state()
    net.gradients(*data(cfg))
    after = net.state()
    assert all(np.array_equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("eps_shift", [8, 14])
def test_inference_uses_the_running_statistics(eps_shift):
    cfg = bn_cfg(bn_eps_shift=eps_shift)
    net = FloatNet(cfg, "lel", dtype=np.float64)
    jitter(net)
    rng = np.random.default_rng(9)
    for i in range(cfg.layers):
        net.run_means[i][...] = rng.uniform(0, 0.5, cfg.neurons(i))
        net.run_vars[i][...] = rng.uniform(0.01, 0.3, cfg.neurons(i))
    x, _ = data(cfg)
    running = ([m.copy() for m in net.run_means], [v.copy() for v in net.run_vars])
    outs, _ = ref_forward(cfg, net.parameters(), x, running)
    scores = net.infer(x)
    for i in range(cfg.layers):
        assert np.allclose(scores[i], outs[i] @ net.classifiers[i].T, rtol=1e-12, atol=1e-12)
    # a sample's scores do not depend on the rest of the batch
    assert all(np.allclose(s[:1], t) for s, t in zip(scores, net.infer(x[:1])))
    assert [p.tolist() for p in net.predict(x)] == [np.argmax(s, 1).tolist() for s in scores]
    # moving a running mean changes that layer's scores (and the next one's)
    net.run_means[0] += 0.25
    moved = net.infer(x)
    assert all(not np.allclose(a, b) for a, b in zip(scores, moved))
    net.run_means[0] -= 0.25
    net.run_vars[1] *= 4
    moved = net.infer(x)
    assert np.allclose(moved[0], scores[0]) and not np.allclose(moved[1], scores[1])


def test_state_round_trip_carries_scales_and_statistics():
    cfg = bn_cfg()
    net = FloatNet(cfg, "lel-train", dtype=np.float64)
    x, y = data(cfg)
    for _ in range(3):
        net.train_batch(x, y)
    state = net.state()
    names = {f"{k}{i}" for k in ("w", "b", "m", "g", "rm", "rv") for i in range(cfg.layers)}
    assert set(state) == names
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert not np.allclose(state["g0"], 0.5)                  # the scale was trained
    other = FloatNet(cfg, "lel-train", dtype=np.float64)
    other.restore(state)
    assert all(np.array_equal(a, b) for a, b in zip(net.infer(x), other.infer(x)))
    net.train_batch(x, y)
    other.train_batch(x, y)
    a, b = net.state(), other.state()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    # restore copies into the net's own arrays
    state["rm0"][...] = 123
    assert not (net.run_means[0] == 123).any()


@pytest.mark.parametrize("algo", ["lel", "lel-sign", "lel-train"])
def test_float32_stays_float32_and_trains(algo):
    cfg = bn_cfg()
    net = FloatNet(cfg, algo, dtype=np.float32)
    x, y = data(cfg)
    for _ in range(3):
        net.train_batch(x, y)
    assert net.finite
    assert all(v.dtype == np.float32 for v in net.state().values())
    assert all(s.dtype == np.float32 for s in net.infer(x))
    _, grads = net.gradients(x, y)
    assert all(g.dtype == np.float32 for g in grads.values())


def test_local_error_training_with_batch_norm_learns():
    cfg = bn_cfg()
    net = FloatNet(cfg, "lel", lr=2.0 ** -5, dtype=np.float64)
    x, y = data(cfg, n=8, seed=11)
    first = net.train_batch(x, y)
    for _ in range(60):
        last = net.train_batch(x, y)
    assert net.finite and sum(last) > sum(first) and max(last) >= 7


# ---- without batch normalisation nothing changes -------------------------------------------
def plain_lel_step(cfg, params, classifiers, x, labels, lr, train_classifiers):
    """One step of local-error learning written out: the half square hinge, symmetric
    feedback, updates ``lr`` times the gradient summed over the batch."""
    h = np.asarray(x, dtype=np.float64) / 2.0 ** cfg.input_frac
    new = {k: v.copy() for k, v in params.items()}
    new_m = [m.copy() for m in classifiers]
    for i in range(cfg.layers):
        pre = h @ params[f"w{i}"].T + params[f"b{i}"]
        out = np.maximum(pre, 0)
        s = out @ classifiers[i].T
        t = -np.ones_like(s)
        t[np.arange(len(labels)), labels] = 1
        e = -t * np.maximum(0, 1 - t * s)
        d = (e @ classifiers[i]) * (pre > 0)
        new[f"w{i}"] -= lr * d.T @ h
        new[f"b{i}"] -= lr * d.sum(axis=0)
        if train_classifiers:
            new_m[i] -= lr * e.T @ out
        h = out
    return new, new_m


@pytest.mark.parametrize("algo", ["lel", "lel-train"])
def test_without_batch_norm_nothing_changes(algo):
    cfg = bn_cfg(batch_norm=False)
    lr = 2.0 ** -6
    net = FloatNet(cfg, algo, lr=lr, dtype=np.float64, bn_backward="const")
    assert net.gammas is None
    names = {f"{k}{i}" for k in ("w", "b") for i in range(cfg.layers)}
    if algo == "lel-train":
        names |= {f"m{i}" for i in range(cfg.layers)}
    assert set(net.state()) == names
    params = {k: v.copy() for k, v in net.parameters().items() if k[0] in "wb"}
    classifiers = [m.copy() for m in net.classifiers]
    batches = [data(cfg, seed=s) for s in (21, 22)]
    for x, y in batches:
        params, classifiers = plain_lel_step(cfg, params, classifiers, x, y, lr,
                                             algo == "lel-train")
        net.train_batch(x, y)
    for name, value in params.items():
        assert np.allclose(net.parameters()[name], value, rtol=1e-12, atol=1e-15), name
    for m, want in zip(net.classifiers, classifiers):
        assert np.allclose(m, want, rtol=1e-12, atol=1e-15)
    assert not np.allclose(params["w0"], FloatNet(cfg, algo).weights[0])   # it moved
    # inference is the plain forward pass, sample by sample
    x, _ = batches[0]
    h = np.asarray(x) / 2.0 ** cfg.input_frac
    for i, s in enumerate(net.infer(x)):
        h = np.maximum(h @ params[f"w{i}"].T + params[f"b{i}"], 0)
        assert np.allclose(s, h @ classifiers[i].T, rtol=1e-12, atol=1e-12)
