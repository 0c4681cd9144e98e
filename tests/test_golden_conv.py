"""Convolutional layers in the golden model against the literal reading of ARITHMETIC.md
(tests/scalar_conv.py), bit for bit, and the pieces at their edges."""

import numpy as np
import pytest

from contract.architecture import parse_arch
from contract.config import ConfigError, NetConfig
from sw_model.golden import FixedPointNet
from sw_model.golden_conv import FixedPointConvNet, im2col, max_pool, unpool
from tests.scalar_conv import ScalarConvNet


def make(text, **kw):
    arch = parse_arch(text)
    base = dict(arch=arch.sizes(), classes=3, batch=5, array_rows=4, array_cols=3, lr_shift=4,
                score_frac=8, delta_frac=8, weight_frac=10, seed=7)
    base.update(kw)
    return NetConfig.from_dict(base), arch


def batches(cfg, count, seed=0, top=256):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        x = rng.integers(0, top, (cfg.batch, cfg.arch[0]))
        yield x, rng.integers(0, cfg.classes, cfg.batch)


@pytest.mark.parametrize("text, kw", [
    ("1x6x6-c3k3-p2-f5", {}),
    ("2x5x7-c4k3v-c3k1-f4", dict(rounding="nearest-even", feedback="sign")),
    ("1x8x8-c5k3-p2-c3k3-p2", dict(dropout=90, array_rows=2, array_cols=2)),
    ("3x4x4-c2k4v-6", dict(dropout=40, batch=4, lr_shift=3, layer_lr_shift=(2, 0))),
], ids=["same-pool-dense", "valid-1x1-rne-sign", "two-convs-dropout", "valid-full-kernel"])
def test_conv_matches_scalar_reference(text, kw):
    cfg, arch = make(text, **kw)
    fast, slow = FixedPointConvNet(cfg, arch), ScalarConvNet(cfg, arch)
    for x, y in batches(cfg, 4, top=64):
        fast.train_batch(x, y)
        slow.train_batch(x, y)
        for i in range(cfg.layers):
            assert fast.weights[i].astype(int).tolist() == slow.w[i], i
            assert fast.biases[i].astype(int).tolist() == slow.b[i], i
    x, _ = next(batches(cfg, 1, seed=9, top=64))
    assert np.array(fast.predict(x)).T.tolist() == [slow.predict(row) for row in x]


def test_a_dense_architecture_is_the_fully_connected_model():
    cfg, arch = make("12-7-5", dropout=50)
    conv, dense = FixedPointConvNet(cfg, arch), FixedPointNet(cfg)
    for x, y in batches(cfg, 3):
        assert conv.train_batch(x, y) == dense.train_batch(x, y)
    assert conv.weight_hash() == dense.weight_hash()


def test_im2col_layout_and_padding():
    x = np.arange(2 * 3 * 4).reshape(1, 24)                  # 2 channels of 3 x 4
    p = im2col(x, (2, 3, 4), 3, "same")
    assert p.shape == (12, 18)
    # position (0, 0): channel 0 taps (kh, kw) with the zero border at row -1 and column -1
    assert p[0].tolist() == [0, 0, 0, 0, 0, 1, 0, 4, 5, 0, 0, 0, 0, 12, 13, 0, 16, 17]
    v = im2col(x, (2, 3, 4), 2, "valid")
    assert v.shape == (6, 8) and v[5].tolist() == [6, 7, 10, 11, 18, 19, 22, 23]


def test_pooling_ties_go_to_the_first_in_row_major_order():
    y = np.array([[[[5, 5], [5, 5]]], [[[1, 7], [7, 2]]], [[[0, 0], [3, 3]]]], float)
    y = y.reshape(3, 1, 2, 2)
    active = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]], bool).reshape(3, 1, 2, 2)
    pooled, act, winner = max_pool(y, active)
    assert winner.ravel().tolist() == [0, 1, 2]
    assert pooled.ravel().tolist() == [5, 7, 3] and act.ravel().tolist() == [True, True, False]
    back = unpool(np.array([9.0, 8.0, 6.0]).reshape(3, 1, 1, 1), winner)
    assert back.reshape(3, 4).tolist() == [[9, 0, 0, 0], [0, 8, 0, 0], [0, 0, 6, 0]]


def test_the_config_must_be_the_flattened_sizes():
    cfg, arch = make("1x6x6-c3k3-p2-f5")
    with pytest.raises(ConfigError, match="flattened sizes"):
        FixedPointConvNet(cfg.replace(arch=(36, 28, 5)), arch)
