"""Convolutional layers in the bit-exact golden model (docs/ARITHMETIC.md, "Convolutional
layers").

A convolution is the fully connected rule applied to patches: im2col turns each output position
of each sample into a row of ``J = K*K*C`` inputs (zero outside the map), so the forward sum,
the gradient and the update are :class:`~sw_model.golden.FixedPointNet`'s, on ``B*H*W`` rows
instead of ``B``. Pooling keeps its winners for the backward step; the layer's output, what its
local classifier and the next layer see, is the pooled map flattened channel by channel, row by
row. Integers are held in float64 as in the fully connected model.
"""

import numpy as np

from contract.architecture import POOL, Conv
from contract.config import ConfigError, ceil_log2

from .golden import FixedPointNet, initial_integers

__all__ = ["FixedPointConvNet", "im2col", "max_pool"]


def im2col(x, shape, kernel, padding):
    """Patches of ``x`` (``B x C*H*W``, channel-major) for a ``kernel x kernel`` convolution of
    stride 1: ``(B*Ho*Wo) x (C*K*K)`` with rows in (sample, row, column) order and columns
    ``(c*K + kh)*K + kw``; zero outside the map ("same" pads ``(K-1)/2`` each side)."""
    c, h, w = shape
    pad = (kernel - 1) // 2 if padding == "same" else 0
    maps = np.asarray(x, dtype=np.float64).reshape(-1, c, h, w)
    if pad:
        maps = np.pad(maps, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(maps, (kernel, kernel), axis=(2, 3))
    # win: B x C x Ho x Wo x K x K -> B x Ho x Wo x C x K x K
    b, _, ho, wo = win.shape[:4]
    return np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(b * ho * wo, -1)


def max_pool(y, active):
    """2 x 2 max pooling of stride 2 of ``y`` (``B x F x H x W``): the first element of each
    window in row-major order ((0,0), (0,1), (1,0), (1,1)) with the largest value wins. Returns
    the pooled ``y``, the winner's ``active`` and the winner's index 0..3 per window."""
    b, f, h, w = y.shape
    win = y.reshape(b, f, h // POOL, POOL, w // POOL, POOL).transpose(0, 1, 2, 4, 3, 5)
    win = win.reshape(b, f, h // POOL, w // POOL, POOL * POOL)
    winner = win.argmax(axis=-1)                  # argmax returns the first of equal maxima
    act = active.reshape(b, f, h // POOL, POOL, w // POOL, POOL).transpose(0, 1, 2, 4, 3, 5)
    act = act.reshape(b, f, h // POOL, w // POOL, POOL * POOL)
    take = winner[..., None]
    return (np.take_along_axis(win, take, -1)[..., 0],
            np.take_along_axis(act, take, -1)[..., 0], winner)


def unpool(d, winner):
    """The pooled deltas ``d`` (``B x F x H/2 x W/2``) sent to each window's winner; zero
    elsewhere (``B x F x H x W``)."""
    b, f, hp, wp = d.shape
    full = np.zeros((b, f, hp, wp, POOL * POOL))
    np.put_along_axis(full, winner[..., None], d[..., None], -1)
    full = full.reshape(b, f, hp, wp, POOL, POOL).transpose(0, 1, 2, 4, 3, 5)
    return full.reshape(b, f, hp * POOL, wp * POOL)


class FixedPointConvNet(FixedPointNet):
    """:class:`~sw_model.golden.FixedPointNet` with convolutional layers.

    Parameters
    ----------
    cfg : contract.config.NetConfig
        Formats, shifts and seeds; its ``arch`` must be ``arch.sizes()`` (the flattened sizes:
        layer ``i``'s ``neurons(i)`` is its output, its local classifier's width).
    arch : contract.architecture.Architecture
    """

    def __init__(self, cfg, arch):
        if tuple(cfg.arch) != arch.sizes():
            raise ConfigError(f"config: field 'arch' must be the flattened sizes "
                              f"{list(arch.sizes())} of {arch.text}")
        if cfg.batch_norm and arch.convolutional:
            raise ConfigError("config: field 'batch_norm' is not defined for convolutional "
                              "layers yet")
        self.arch = arch
        super().__init__(cfg)

    # ---- shapes and bounds ---------------------------------------------------------------
    def _exact_bits(self, cfg):
        """The fully connected bound (taking a convolution's fan-in as its whole input map,
        more than ``K*K*C``), and for every convolution its gradient summed over ``B*Ho*Wo``
        rows with the stochastic rounding addend: the update forms
        ``G * 2**(e - u) + r`` (``e = min(u, round_bits)``), whose bits span ``2**(e - u)`` to
        ``2**max(grad, e)``, at most ``max(grad, u) + 1`` bits (ARITHMETIC.md, "Exactness"),
        plus one."""
        worst = cfg.max_abs_bits()
        for i, layer in enumerate(self.arch.layers):
            if isinstance(layer, Conv):
                rows = cfg.batch * layer.conv_shape[1] * layer.conv_shape[2]
                grad = cfg.delta_bits + cfg.act_bits + ceil_log2(rows + 1)
                worst = max(worst, max(grad, cfg.update_shift(i) + 1) + 1)
        return worst

    def _initial_weights(self, i):
        layer = self.arch.layers[i]
        return initial_integers(self.cfg, i, layer.rows, layer.fan_in)

    # ---- a convolution's steps -----------------------------------------------------------
    def _forward_product(self, i, x):
        """A convolution's patches times its filters in float64: exact (every partial sum is
        below ``2**acc_bits``, which the config keeps under ``2**53``), and with only ``K*K*C``
        columns as fast as the split float32 product, whose split of the large patch matrix
        costs more than the product itself."""
        if isinstance(self.arch.layers[i], Conv):
            return x @ self._wt[i].astype(np.float64)
        return super()._forward_product(i, x)

    def _layer_forward(self, i, x, training):
        layer = self.arch.layers[i]
        if not isinstance(layer, Conv):
            return super()._layer_forward(i, x, training)
        batch = len(x)
        patches = im2col(x, layer.in_shape, layer.kernel, layer.padding)
        y, active = self.forward(i, patches)                  # (B*Ho*Wo) x F
        f, ho, wo = layer.conv_shape
        y = y.reshape(batch, ho, wo, f).transpose(0, 3, 1, 2)
        active = active.reshape(batch, ho, wo, f).transpose(0, 3, 1, 2)
        winner = None
        if layer.pool:
            y, active, winner = max_pool(y, active)
        y, active = y.reshape(batch, -1), active.reshape(batch, -1)
        if training:
            y, keep = self.conv_dropout(y, layer.out_shape)
            if keep is not None:
                active &= keep
        return y, active, (patches, winner)

    def conv_dropout(self, y, shape):
        """Dropout on a convolution's (pooled) output ``y`` (``B x F*S``, ``S`` positions per
        channel): chunk ``(((t*G + g)*S + s)*P + p)*Q + q`` is channel ``t*P + p``, position
        ``s``, sample ``g*Q + q``; fully connected dropout is the case ``S = 1``."""
        cfg = self.cfg
        if not cfg.dropout:
            return y, None
        samples = len(y)
        f, s = shape[0], shape[1] * shape[2]
        p, q = cfg.array_rows, cfg.array_cols
        tiles, groups = -(-f // p), -(-samples // q)
        u = self.dropout_stream.draw(tiles * groups * s * p * q).reshape(tiles, groups, s, p, q)
        u = u.transpose(1, 4, 0, 3, 2).reshape(groups * q, tiles * p, s)[:samples, :f]
        return self.apply_dropout(y, u.reshape(samples, -1))

    def _layer_update(self, i, x, d, context, scale_grad=None):
        layer = self.arch.layers[i]
        if not isinstance(layer, Conv):
            return super()._layer_update(i, x, d, context, scale_grad)
        patches, winner = context
        batch = len(d)
        f, ho, wo = layer.conv_shape
        d = d.reshape((batch,) + layer.out_shape)
        if layer.pool:
            d = unpool(d, winner)
        rows = d.transpose(0, 2, 3, 1).reshape(batch * ho * wo, f)
        self.update(i, patches, rows)
