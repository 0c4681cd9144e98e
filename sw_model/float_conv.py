"""Float references for convolutional networks (contract.architecture), as sw_model.float_ref
is for fully connected ones: the same interface, algorithms, losses, initial integers and local
classifiers; a fully connected architecture trains exactly as :class:`FloatNet`.

A convolution layer is: the convolution (stride 1; "same" padding: ``(K - 1) / 2`` zeros each
side), a bias per filter, ReLU and, with ``p2``, 2 x 2 max pooling of stride 2. Its output,
flattened channel by channel and row by row, is its local classifier's input and the next
fully connected layer's. Pooling is applied before the ReLU, which it commutes with: a window's
gradient goes to its largest pre-activation, and through the ReLU only where that is positive.
An equal maximum goes to the first element of the window in row-major order (top left, top
right, bottom left, bottom right), which alone gets the window's gradient
(sw_model.conv_ops).

The filter matrix of layer ``i`` is ``filters x (C * K * K)`` in (channel, kernel row, kernel
column) order, drawn as ``initial_integers(cfg, i, filters, C * K * K)``: the real fan-in sets
the initial scale. The config's ``arch`` is :meth:`Architecture.sizes`, the flattened sizes,
so that ``cfg.neurons(i)`` is layer ``i``'s output (its local classifier's fan-in).

Algorithms (:data:`sw_model.float_ref.ALGORITHMS`): ``lel``, ``lel-sign``, ``lel-train``:
every layer gets the exact gradient of its own local loss (symmetric feedback; the feedback
``K`` for lel-sign), its input taken as a constant. ``bp``: exact backprop from an output layer
through fully connected, pooling and convolution layers. ``fa``: feedback alignment, fixed
random matrices in place of the fully connected layers' transposed weights and fixed random
filters of the convolutions' shape in place of theirs, drawn from the init stream of a virtual
layer ``100 + i``.
"""

import numpy as np

from contract.architecture import Architecture, Conv, parse_arch
from sw_model.conv_ops import col2im, from_flat, im2col, maxpool2, to_flat, unpool2
from sw_model.float_ref import _LOSSES, ALGORITHMS, FloatModel, _init_like, apply_gradients
from sw_model.golden import initial_integers, initial_weights
from sw_model.lfsr import classifier_weights, feedback_weights

__all__ = ["FloatConvNet", "CHUNK_ELEMENTS", "memory_bytes"]

#: The im2col patches of at most this many values are formed at once: a larger mini-batch (or
#: an evaluation chunk) is split into sub-batches, whose gradients are summed.
CHUNK_ELEMENTS = 1 << 22


class FloatConvNet(FloatModel):
    """A float convolutional (or fully connected) network trained by one of ``ALGORITHMS``.

    Parameters
    ----------
    cfg : contract.config.NetConfig
        Its ``arch`` must be ``arch.sizes()``.
    arch : contract.architecture.Architecture or str
    algo, lr, loss, dtype :
        As for :class:`sw_model.float_ref.FloatNet`.
    """

    def __init__(self, cfg, arch, algo="lel", lr=2.0 ** -7, loss="square-hinge",
                 dtype=np.float64):
        if algo not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {algo!r}")
        arch = arch if isinstance(arch, Architecture) else parse_arch(arch)
        if tuple(cfg.arch) != arch.sizes():
            raise ValueError(f"config arch {tuple(cfg.arch)} is not the sizes {arch.sizes()} "
                             f"of {arch.text}")
        self.cfg, self.arch, self.algo, self.dtype = cfg, arch, algo, dtype
        self.lr = self.base_lr = lr
        self.finite = True
        self.loss = _LOSSES[loss]
        w = cfg.lfsr_width
        scale = 2.0 ** -cfg.weight_frac
        self.weights = [((initial_integers(cfg, i, layer.filters, layer.fan_in)
                          if isinstance(layer, Conv) else initial_weights(cfg, i))
                         * scale).astype(dtype) for i, layer in enumerate(arch.layers)]
        self.biases = [np.zeros(len(wi), dtype) for wi in self.weights]
        self.classifiers, self.feedbacks = [], []
        for i in range(cfg.layers):
            m = classifier_weights(w, cfg.stream_seed("classifier", i), cfg.classes,
                                   cfg.neurons(i), cfg.classifier_bits)
            mscale = 2.0 ** -cfg.classifier_exponent(i)
            self.classifiers.append((m * mscale).astype(dtype))
            if algo == "lel-sign":
                k = feedback_weights(m, w, cfg.stream_seed("feedback", i), cfg.classifier_bits)
                self.feedbacks.append((k * mscale).astype(dtype))
            else:                 # symmetric: the classifier itself, also when it is trained
                self.feedbacks.append(self.classifiers[-1])
        self.output = self.output_bias = None
        self.gammas = None                  # no batch normalisation of convolutions yet
        self.backward_fa = []
        if algo in ("bp", "fa"):
            top = cfg.layers
            self.output = (_init_like(cfg, top, cfg.classes, cfg.neurons(top - 1))
                           * scale).astype(dtype)
            self.output_bias = np.zeros(cfg.classes, dtype)
            if algo == "fa":      # backward_fa[i - 1] stands for layer i's (or out's) weights
                for i in range(1, cfg.layers + 1):
                    rows, cols = (cfg.classes, cfg.neurons(i - 1)) if i == cfg.layers \
                        else self.weights[i].shape
                    b = _init_like(cfg, 100 + i, rows, cols)
                    self.backward_fa.append((b * scale).astype(dtype))
        per_sample = max([c.conv_shape[1] * c.conv_shape[2] * c.fan_in
                          for c in arch.layers if isinstance(c, Conv)], default=0)
        self.chunk = max(1, CHUNK_ELEMENTS // per_sample) if per_sample else None

    # ---- passes -------------------------------------------------------------------------
    def _forward(self, x, keep=False):
        """Every layer's flattened output (``acts[0]`` the input) and per layer what the
        backward pass needs: pre-activations (after pooling), pooling winners and, with
        ``keep``, the im2col patches."""
        acts, caches = [x], []
        h = x
        if self.arch.convolutional:
            c, height, width = self.arch.input_shape
            h = x.reshape(len(x), c, height, width).transpose(0, 2, 3, 1)
        for layer, w, b in zip(self.arch.layers, self.weights, self.biases):
            if isinstance(layer, Conv):
                cols, (ho, wo) = im2col(h, layer.kernel, layer.padding)
                z = cols @ w.T
                z += b
                z = z.reshape(len(x), ho, wo, len(w))
                winner = None
                if layer.pool:
                    z, winner = maxpool2(z)
                caches.append({"pre": z, "winner": winner, "in_shape": h.shape,
                               "cols": cols if keep else None})
                h = np.maximum(z, 0)
                acts.append(to_flat(h))
            else:
                a = acts[-1] @ w.T + b
                caches.append({"pre": a})
                h = np.maximum(a, 0)
                acts.append(h)
        return acts, caches

    def infer(self, x):
        """Return the scores of every layer's classifier (only the output for bp/fa)."""
        x = self._input(x)
        parts = [self._scores(x[k:k + self._rows(x)]) for k in range(0, len(x), self._rows(x))]
        return [np.concatenate(s) for s in zip(*parts)] if len(parts) != 1 else parts[0]

    def _rows(self, x):
        return self.chunk or max(1, len(x))

    def _scores(self, x):
        acts, _ = self._forward(x)
        if self.output is not None:
            return [acts[-1] @ self.output.T + self.output_bias]
        return [y @ m.T for y, m in zip(acts[1:], self.classifiers)]

    def gradients(self, x, labels, scores=None):
        """Return ``(losses, grads)`` as :meth:`FloatNet.gradients` does: every layer's local
        loss (or the output's) and the update directions, summed over the mini-batch (over its
        sub-batches when its im2col patches would exceed :data:`CHUNK_ELEMENTS`)."""
        x, labels = self._input(x), np.asarray(labels)
        rows = self._rows(x)
        if len(x) <= rows:
            return self._gradients(x, labels, [] if scores is None else scores)
        losses = grads = parts = None
        for k in range(0, len(x), rows):
            part = []
            l, g = self._gradients(x[k:k + rows], labels[k:k + rows], part)
            if grads is None:
                losses, grads, parts = l, g, [[s] for s in part]
                continue
            losses = [a + c for a, c in zip(losses, l)]
            for name in grads:
                grads[name] += g[name]
            for acc, s in zip(parts, part):
                acc.append(s)
        if scores is not None:
            scores.extend(np.concatenate(p) for p in parts)
        return losses, grads

    def _gradients(self, x, labels, scores):
        acts, caches = self._forward(x, keep=True)
        grads, losses = {}, []
        if self.output is None:
            for i, layer in enumerate(self.arch.layers):
                y = acts[i + 1]
                s = y @ self.classifiers[i].T
                scores.append(s)
                loss, e = self.loss(s, labels)
                losses.append(loss)
                self._layer_grads(i, layer, e @ self.feedbacks[i], acts, caches, grads)
                if self.algo == "lel-train":
                    grads[f"m{i}"] = e.T @ y
            return losses, grads
        g = self._output_layer(acts[-1], labels, scores, losses, grads)
        for i in reversed(range(self.cfg.layers)):
            g = self._layer_grads(i, self.arch.layers[i], g, acts, caches, grads, below=i > 0)
        return losses, grads

    def _layer_grads(self, i, layer, g, acts, caches, grads, below=False):
        """Layer ``i``'s weight and bias gradients from ``g``, the loss gradient at its output
        (flattened, or NHWC maps); with ``below``, return the gradient at its input through
        its weights (bp) or their fixed stand-ins (fa)."""
        cache = caches[i]
        back = (self.weights[i] if self.algo == "bp" else self.backward_fa[i - 1]) \
            if below else None
        if not isinstance(layer, Conv):
            d = g * (cache["pre"] > 0)
            grads[f"w{i}"] = d.T @ acts[i]
            grads[f"b{i}"] = d.sum(axis=0)
            return d @ back if below else None
        if g.ndim == 2:
            g = from_flat(g, layer.out_shape)
        d = g * (cache["pre"] > 0)
        if layer.pool:
            d = unpool2(d, cache["winner"])
        d = d.reshape(-1, layer.filters)
        grads[f"w{i}"] = d.T @ cache["cols"]
        grads[f"b{i}"] = d.sum(axis=0)
        if below:
            return col2im(d @ back, cache["in_shape"], layer.kernel, layer.padding)
        return None

    def train_batch(self, x, labels):
        """One step; returns every classifier's correct count (before the update); ``finite``
        says afterwards whether every score of the step was finite."""
        labels = np.asarray(labels)
        scores = []
        _, grads = self.gradients(x, labels, scores)
        self.finite = all(bool(np.isfinite(s).all()) for s in scores)
        apply_gradients(self, grads)
        return [int((np.argmax(s, axis=1) == labels).sum()) for s in scores]


def memory_bytes(arch, classes, algo="lel", eval_rows=2000):
    """An estimate of the bytes training ``arch`` with ``algo`` needs, counted as
    lela.checks.model_bytes counts (32 bytes a trained value, 8 a fixed or working one), and
    the number of weights and biases: the matrices, and the activations, feature maps and
    im2col patches of one evaluation chunk of ``eval_rows`` samples (fewer when their patches
    would exceed :data:`CHUNK_ELEMENTS`)."""
    weights = sum((layer.fan_in + 1) * layer.rows for layer in arch.layers)
    sizes = arch.sizes()
    fixed = 2 * classes * sum(sizes[1:])                    # local classifiers and feedback
    if algo in ("bp", "fa"):
        weights += (sizes[-1] + 1) * classes
    if algo == "fa":
        fixed += weights
    convs = [c for c in arch.layers if isinstance(c, Conv)]
    maps = sum(c.conv_shape[0] * c.conv_shape[1] * c.conv_shape[2] for c in convs)
    patches = max([c.conv_shape[1] * c.conv_shape[2] * c.fan_in for c in convs], default=0)
    rows = min(eval_rows, max(1, CHUNK_ELEMENTS // patches)) if patches else eval_rows
    working = 3 * rows * (sum(sizes) + maps) + 2 * rows * patches
    return 32 * weights + 8 * (fixed + working), weights
