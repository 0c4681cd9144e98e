"""The float convolutional references (sw_model/float_conv.py, sw_model/conv_ops.py): exact
gradients, the pooling tie rule, feedback alignment's fixed filters, FloatNet's semantics on
fully connected networks, checkpoints and learning."""

import numpy as np
import pytest

from contract.architecture import parse_arch
from contract.config import NetConfig
from sw_model.conv_ops import col2im, im2col, maxpool2, unpool2
from sw_model.float_conv import FloatConvNet, memory_bytes
from sw_model.float_ref import ALGORITHMS, FloatNet

#: Same padding with pooling and a dense layer after; valid padding, a 1 x 1 kernel, a
#: convolution without pooling and two convolutions; a convolution on top (no dense layer).
ARCHS = ("2x6x4-c3k3-p2-f5", "1x6x6-c2k3v-c3k1-p2-f4", "2x4x6-c3k3-c2k3v-p2")


def config(arch, **kw):
    return NetConfig.from_dict(dict(arch=parse_arch(arch).sizes(), **{
        "classes": 3, "batch": 4, **kw}))


def samples(cfg, n=4, seed=3):
    rng = np.random.default_rng(seed)
    return rng.integers(1, 256, (n, cfg.arch[0])), rng.integers(0, cfg.classes, n)


def perturbed(cfg, arch, algo, **kw):
    """A net moved away from its initial point, so that ReLUs and hinges are in varied
    states and no pooling window ties."""
    net = FloatConvNet(cfg, arch, algo, dtype=np.float64, **kw)
    rng = np.random.default_rng(0)
    for p in net.parameters().values():
        p += rng.normal(0, 0.1, p.shape)
    return net


def loss_of(net, x, y, layer):
    """Layer ``layer``'s local loss (or the output's) as the net's loss function returns it."""
    acts, _ = net._forward(net._input(x))
    if net.output is not None:
        return net.loss(acts[-1] @ net.output.T + net.output_bias, y)[0]
    return net.loss(acts[layer + 1] @ net.classifiers[layer].T, y)[0]


def check_finite_differences(net, x, y, eps=1e-6):
    _, grads = net.gradients(x, y)
    params = net.parameters()
    assert set(grads) == set(params)
    checked = 0
    for name, g in grads.items():
        layer = int(name[1:]) if name[0] in "wbm" and name[1:].isdigit() else None
        p = params[name]
        assert g.shape == p.shape
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + eps
            up = loss_of(net, x, y, layer)
            p[idx] = old - eps
            down = loss_of(net, x, y, layer)
            p[idx] = old
            assert g[idx] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-7), \
                (name, idx)
            checked += 1
    return checked


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("algo,loss", [("lel", "square-hinge"), ("lel", "softmax-ce"),
                                       ("lel-train", "square-hinge")])
def test_local_gradients_are_each_layers_own_loss(arch, algo, loss):
    """Every layer's weights and bias (and, lel-train, its classifier) get the exact gradient of
    that layer's local loss, as the loss function returns it (summed over the batch)."""
    cfg = config(arch)
    net = perturbed(cfg, arch, algo, loss=loss)
    assert check_finite_differences(net, *samples(cfg)) > 40


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("loss", ["square-hinge", "softmax-ce"])
def test_backprop_gradients_are_exact(arch, loss):
    """bp: the output loss's gradient through dense, pooling and convolution layers."""
    cfg = config(arch)
    net = perturbed(cfg, arch, "bp", loss=loss)
    assert check_finite_differences(net, *samples(cfg)) > 40


def test_sign_concordant_feedback_replaces_the_classifier():
    arch = ARCHS[0]
    cfg = config(arch)
    sign, lel = FloatConvNet(cfg, arch, "lel-sign"), FloatConvNet(cfg, arch, "lel")
    for m, k in zip(sign.classifiers, sign.feedbacks):
        assert (np.sign(m) == np.sign(k)).all() and not np.allclose(m, k)
    x, y = samples(cfg)
    assert not np.allclose(sign.gradients(x, y)[1]["w0"], lel.gradients(x, y)[1]["w0"])
    lel.feedbacks = sign.feedbacks          # the same net, with lel-sign's feedback
    for name, g in sign.gradients(x, y)[1].items():
        assert np.array_equal(g, lel.gradients(x, y)[1][name])


def test_pooling_tie_goes_to_the_first_element_in_row_major_order():
    windows = {0: [[3, 3], [1, 3]], 1: [[1, 3], [3, 3]], 2: [[0, 0], [2, 2]], 3: [[1, 2], [0, 5]]}
    z = np.array([windows[k] for k in range(4)], float).transpose(1, 2, 0)[None]   # 1 2 2 4
    top, winner = maxpool2(z)
    assert top.ravel().tolist() == [3, 3, 2, 5]
    assert winner.ravel().tolist() == [0, 1, 2, 3]
    dz = unpool2(np.ones_like(top), winner)[0].transpose(2, 0, 1)
    for k in range(4):
        expected = np.zeros((2, 2))
        expected[divmod(k, 2)] = 1
        assert np.array_equal(dz[k], expected)


def test_pooling_tie_in_a_network():
    """Equal pixels under a 1 x 1 convolution: each window's gradient reaches the weight once,
    from its top-left position, not four times."""
    arch = "1x4x4-c2k1-p2"
    cfg = config(arch, classes=2)
    net = FloatConvNet(cfg, arch, "lel")
    net.weights[0][...] = 1.0
    x, y = np.full((1, 16), 100), np.array([0])
    _, e = net.loss(net.infer(x)[0], y)
    p = (e @ net.feedbacks[0]).reshape(2, 4)            # per filter, per window
    pixel = 100 * 2.0 ** -cfg.input_frac
    _, grads = net.gradients(x, y)
    assert np.allclose(grads["w0"][:, 0], p.sum(axis=1) * pixel)
    assert np.allclose(grads["b0"], p.sum(axis=1))
    _, caches = net._forward(net._input(x))
    assert (caches[0]["winner"] == 0).all()


def test_im2col_and_col2im_are_adjoint():
    rng = np.random.default_rng(5)
    for kernel, padding in ((3, "same"), (1, "same"), (3, "valid"), (2, "valid")):
        x = rng.normal(size=(2, 5, 4, 3))
        cols, (ho, wo) = im2col(x, kernel, padding)
        assert cols.shape == (2 * ho * wo, 3 * kernel * kernel)
        d = rng.normal(size=cols.shape)
        assert np.sum(cols * d) == pytest.approx(np.sum(x * col2im(d, x.shape, kernel, padding)))


def test_convolution_matches_a_direct_sum():
    """Filter columns in (channel, kernel row, kernel column) order; same padding centres."""
    arch = "2x5x4-c3k3"
    cfg = config(arch)
    net = FloatConvNet(cfg, arch, "lel")
    net.biases[0][...] = [0.5, -0.25, 0.0]
    x = np.random.default_rng(2).integers(0, 256, (2, 40))
    img = net._input(x).reshape(2, 2, 5, 4)
    pad = np.pad(img, ((0, 0), (0, 0), (1, 1), (1, 1)))
    w = net.weights[0].reshape(3, 2, 3, 3)
    direct = np.zeros((2, 3, 5, 4))
    for r in range(5):
        for c in range(4):
            direct[:, :, r, c] = np.einsum("nckl,fckl->nf", pad[:, :, r:r + 3, c:c + 3], w)
    direct = np.maximum(direct + net.biases[0][None, :, None, None], 0)
    acts, _ = net._forward(net._input(x))
    assert np.allclose(acts[1], direct.reshape(2, -1))


def test_feedback_alignment_uses_fixed_random_filters():
    arch = "1x6x6-c2k3-c3k3-p2-f5"
    cfg = config(arch)
    fa = FloatConvNet(cfg, arch, "fa")
    assert [b.shape for b in fa.backward_fa] == [w.shape for w in fa.weights[1:]] + \
        [fa.output.shape]
    before = [b.copy() for b in fa.backward_fa]
    x, y = samples(cfg, n=6)
    bp = FloatConvNet(cfg, arch, "bp")
    g_fa, g_bp = fa.gradients(x, y)[1], bp.gradients(x, y)[1]
    assert np.array_equal(g_fa["out"], g_bp["out"])
    for i in range(3):
        assert not np.allclose(g_fa[f"w{i}"], g_bp[f"w{i}"])
    for _ in range(3):
        fa.train_batch(x, y)
    assert all(np.array_equal(a, b) for a, b in zip(before, fa.backward_fa))
    # With the weights themselves as the stand-ins, feedback alignment is backprop.
    fa = FloatConvNet(cfg, arch, "fa")
    fa.backward_fa = [w.copy() for w in fa.weights[1:]] + [fa.output.copy()]
    for name, g in fa.gradients(x, y)[1].items():
        assert np.allclose(g, g_bp[name], rtol=1e-12, atol=0), name


@pytest.mark.parametrize("algo", ALGORITHMS)
@pytest.mark.parametrize("loss", ["square-hinge", "softmax-ce"])
def test_fully_connected_architecture_is_floatnet(algo, loss):
    cfg = NetConfig.from_dict(dict(arch=(12, 9, 7), classes=4, batch=5))
    ref = FloatNet(cfg, algo, lr=2.0 ** -5, loss=loss)
    net = FloatConvNet(cfg, "12-f9-f7", algo, lr=2.0 ** -5, loss=loss)
    rng = np.random.default_rng(1)
    for _ in range(4):
        x, y = rng.integers(0, 256, (5, 12)), rng.integers(0, 4, 5)
        assert net.train_batch(x, y) == ref.train_batch(x, y)
    assert ref.parameters().keys() == net.parameters().keys()
    for name, p in ref.parameters().items():
        assert np.array_equal(p, net.parameters()[name]), name
    x = rng.integers(0, 256, (7, 12))
    assert all(np.array_equal(a, b) for a, b in zip(ref.infer(x), net.infer(x)))


def test_initial_weights_come_from_the_init_stream_at_the_real_fan_in():
    from sw_model.golden import initial_integers
    arch = "2x6x4-c3k3-p2-f5"
    cfg = config(arch)
    net = FloatConvNet(cfg, arch, "bp")
    assert net.weights[0].shape == (3, 18) and net.biases[0].shape == (3,)
    assert np.array_equal(net.weights[0] * 2.0 ** cfg.weight_frac,
                          initial_integers(cfg, 0, 3, 18))
    assert net.weights[1].shape == (5, 18) and net.classifiers[0].shape == (3, 18)
    assert net.output.shape == (3, 5)
    with pytest.raises(ValueError, match="sizes"):
        FloatConvNet(config("2x6x4-c3k3-p2-f6"), arch)


def test_state_restore_round_trip():
    arch = "1x6x6-c2k3v-c3k1-p2-f4"
    cfg = config(arch)
    x, y = samples(cfg, n=8)
    for algo in ("lel-train", "fa"):
        a = FloatConvNet(cfg, arch, algo, lr=2.0 ** -4)
        a.train_batch(x, y)
        saved = a.state()
        a.train_batch(x[:4], y[:4])
        b = FloatConvNet(cfg, arch, algo, lr=2.0 ** -4)
        b.restore(saved)
        assert not np.array_equal(saved["w0"], a.weights[0])   # a copy, not the live array
        b.train_batch(x[:4], y[:4])
        for name, p in a.state().items():
            assert np.array_equal(p, b.state()[name]), (algo, name)


def test_sub_batches_sum_to_the_batch_gradient():
    arch = ARCHS[0]
    cfg = config(arch)
    whole, split = perturbed(cfg, arch, "bp"), perturbed(cfg, arch, "bp")
    split.chunk = 3
    x, y = samples(cfg, n=8)
    lw, gw = whole.gradients(x, y)
    sw, ss = [], []
    ls, gs = split.gradients(x, y, ss)
    whole.gradients(x, y, sw)
    assert np.allclose(lw, ls)
    assert all(np.allclose(gw[k], gs[k]) for k in gw)
    assert all(np.allclose(a, b) for a, b in zip(sw, ss)) and len(ss[0]) == 8
    assert all(np.allclose(a, b) for a, b in zip(whole.infer(x), split.infer(x)))


def test_float32():
    arch = ARCHS[1]
    cfg = config(arch)
    x, y = samples(cfg, n=8)
    n32 = FloatConvNet(cfg, arch, "bp", dtype=np.float32)
    n64 = FloatConvNet(cfg, arch, "bp", dtype=np.float64)
    for _ in range(3):
        n32.train_batch(x, y)
        n64.train_batch(x, y)
    assert all(p.dtype == np.float32 for p in n32.parameters().values())
    assert n32.infer(x)[0].dtype == np.float32
    for name, p in n64.parameters().items():
        assert np.allclose(n32.parameters()[name], p, rtol=1e-3, atol=1e-5), name


def bars(n, rng):
    """8 x 8 images of one vertical (class 1) or horizontal (class 0) line on faint noise."""
    x = rng.integers(0, 40, (n, 8, 8))
    y = rng.integers(0, 2, n)
    where = rng.integers(0, 8, n)
    for k in range(n):
        if y[k]:
            x[k, :, where[k]] = rng.integers(180, 256, 8)
        else:
            x[k, where[k], :] = rng.integers(180, 256, 8)
    return x.reshape(n, 64), y


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_learns_bars(algo):
    """Every classifier (every layer's, or the output) tells vertical from horizontal lines
    after a few epochs of 512 images."""
    arch = "1x8x8-c8k3-p2-f16"
    cfg = NetConfig.from_dict(dict(arch=parse_arch(arch).sizes(), classes=2, batch=16))
    net = FloatConvNet(cfg, arch, algo, lr=2.0 ** -6, dtype=np.float32)
    rng = np.random.default_rng(7)
    x, y = bars(512, rng)
    xt, yt = bars(256, rng)
    for _ in range(6):
        for k in range(0, len(x), 16):
            net.train_batch(x[k:k + 16], y[k:k + 16])
    errors = [float((p != yt).mean()) for p in net.predict(xt)]
    assert max(errors) <= 0.03, errors


def test_memory_estimate_counts_filters_not_dense_matrices():
    arch = parse_arch("1x28x28-c32k5-p2-c64k5-p2-f512")
    need, weights = memory_bytes(arch, 10)
    assert weights == 32 * 26 + 64 * 801 + 512 * (64 * 49 + 1)
    assert 0 < need < 2 ** 30
