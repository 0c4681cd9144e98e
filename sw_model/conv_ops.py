"""Convolution and pooling steps of the float convolutional references (sw_model.float_conv).

Feature maps are held batch x height x width x channels ("NHWC") between the steps, so that a
convolution is one matrix product of the im2col patches (one row per output position, the
columns in (channel, kernel row, kernel column) order, the order of a filter's weights) with
the filter matrix. A layer's output is flattened channel by channel, row by row ("NCHW"), the
order of its local classifier's and the next fully connected layer's columns.

Pooling is 2 x 2 max pooling of stride 2. An equal maximum goes to the first element of the
window in row-major order: top left, top right, bottom left, bottom right; only that element
gets the window's gradient.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["im2col", "col2im", "maxpool2", "unpool2", "to_flat", "from_flat"]

#: The four elements of a 2 x 2 window in row-major order: the tie order of max pooling.
_WINDOW = ((0, 0), (0, 1), (1, 0), (1, 1))


def _pad(kernel, padding):
    return (kernel - 1) // 2 if padding == "same" else 0


def im2col(x, kernel, padding):
    """The patches of ``x`` (``B x H x W x C``) under a ``kernel x kernel`` window of stride 1:
    a ``(B * Ho * Wo) x (C * kernel * kernel)`` array, rows in (sample, row, column) order,
    columns in (channel, kernel row, kernel column) order; and ``(Ho, Wo)``. ``padding``
    "same" pads ``(kernel - 1) / 2`` zeros on every side, "valid" none."""
    p = _pad(kernel, padding)
    if p:
        x = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    view = sliding_window_view(x, (kernel, kernel), axis=(1, 2))    # B Ho Wo C K K
    b, ho, wo = view.shape[:3]
    return view.reshape(b * ho * wo, -1), (ho, wo)


def col2im(dcols, shape, kernel, padding):
    """The adjoint of :func:`im2col`: sum the patch gradients ``dcols`` back onto the input
    positions they were copied from; ``shape`` is the input's ``(B, H, W, C)``."""
    b, h, w, c = shape
    p = _pad(kernel, padding)
    ho, wo = h + 2 * p - kernel + 1, w + 2 * p - kernel + 1
    d = dcols.reshape(b, ho, wo, c, kernel, kernel)
    dx = np.zeros((b, h + 2 * p, w + 2 * p, c), dcols.dtype)
    for r in range(kernel):
        for s in range(kernel):
            dx[:, r:r + ho, s:s + wo, :] += d[:, :, :, :, r, s]
    return dx[:, p:p + h, p:p + w, :] if p else dx


def maxpool2(z):
    """2 x 2 max pooling of stride 2 of ``z`` (``B x H x W x C``, ``H`` and ``W`` even): the
    pooled maps and, per window, the index (0..3, row-major) of the element that won, the first
    of equal maxima."""
    b, h, w, c = z.shape
    v = z.reshape(b, h // 2, 2, w // 2, 2, c)
    parts = [v[:, :, r, :, s, :] for r, s in _WINDOW]
    top = np.maximum(np.maximum(parts[0], parts[1]), np.maximum(parts[2], parts[3]))
    winner = np.where(parts[2] == top, np.int8(2), np.int8(3))
    for k in (1, 0):                          # the first of equal maxima wins: k = 0 last
        winner = np.where(parts[k] == top, np.int8(k), winner)
    return top, winner


def unpool2(g, winner):
    """The adjoint of :func:`maxpool2`: each window's gradient ``g`` to the element that won."""
    b, ho, wo, c = g.shape
    dz = np.zeros((b, ho, 2, wo, 2, c), g.dtype)
    for k, (r, s) in enumerate(_WINDOW):
        np.multiply(g, winner == k, out=dz[:, :, r, :, s, :])
    return dz.reshape(b, 2 * ho, 2 * wo, c)


def to_flat(y):
    """``B x H x W x C`` maps flattened channel by channel, row by row: ``B x (C * H * W)``."""
    return y.transpose(0, 3, 1, 2).reshape(len(y), -1)


def from_flat(g, shape):
    """The inverse of :func:`to_flat` for maps of ``shape`` ``(C, H, W)``."""
    c, h, w = shape
    return g.reshape(len(g), c, h, w).transpose(0, 2, 3, 1)
