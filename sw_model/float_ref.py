"""Float references on the same data, initialisation and schedule as the golden model.

Algorithms: ``lel`` (local errors, fixed random classifiers, symmetric feedback), ``lel-sign``
(sign-concordant feedback), ``lel-train`` (trainable local classifiers), ``bp`` (backprop through
a trainable output layer), ``fa`` (feedback alignment). The loss is half the one-vs-all square
hinge, ``0.5 * sum(max(0, 1 - t*s)**2)``, so ``e = -t * max(0, 1 - t*s)`` is its exact gradient.
Weights and local classifiers start from the same integers as the fixed-point model, scaled.

With ``cfg.batch_norm`` every hidden layer normalises its output over the mini-batch, after the
non-linearity: ``a = relu(x @ w.T + b)``, ``xhat = (a - mu) / sqrt(var + eps)`` with the batch's
mean and biased variance per neuron (the running statistics at inference),
``eps = 2**-cfg.bn_eps_shift`` (the config's epsilon in value units, as in the golden model), and
``z = gamma * xhat`` with a learnable per-neuron scale ``gamma`` (initially 0.5, no shift). ``z``
is the next layer's input and the input of the layer's local classifier. Only the local-error
algorithms train it: the scale and the layer below by the layer's own local loss, through the
batch statistics (``bn_backward="full"``, the exact gradient, the rule of the golden model) or
with the statistics held constant (``"const"``). After every training batch the running
statistics move ``2**-bn_momentum_shift`` of the way to the batch's (from mean 0, variance 1).
The golden model's products see the same centred ``z`` (it stores ``z + H`` and takes ``H`` off
again); unlike it, ``z`` here is not clipped to the activation range.
"""

import numpy as np

from sw_model.golden import initial_integers, initial_weights
from sw_model.lfsr import classifier_weights, feedback_weights

__all__ = ["ALGORITHMS", "FloatModel", "FloatNet", "square_hinge", "softmax_ce", "layer_rate",
           "apply_gradients"]

ALGORITHMS = ("lel", "lel-sign", "lel-train", "bp", "fa")
BN_BACKWARDS = ("full", "const")


def square_hinge(s, labels):
    """Return ``(loss, dloss/ds)`` of the half square hinge, summed over the batch."""
    t = -np.ones_like(s)
    t[np.arange(len(labels)), labels] = 1
    h = np.maximum(0, 1 - t * s)
    return 0.5 * float((h * h).sum()), -t * h


def softmax_ce(s, labels):
    """Return ``(loss, dloss/ds)`` of base-2 softmax cross-entropy, summed over the batch:
    ``p = 2**s / sum(2**s)``, ``loss = -log2(p[label])``, so ``dloss/ds = p - onehot``."""
    z = s - s.max(axis=1, keepdims=True)
    p = np.exp2(z)
    p /= p.sum(axis=1, keepdims=True)
    idx = np.arange(len(labels))
    loss = -float(np.log2(p[idx, labels] + 1e-300).sum())
    p[idx, labels] -= 1
    return loss, p


_LOSSES = {"square-hinge": square_hinge, "softmax-ce": softmax_ce}


def layer_rate(cfg, name):
    """The factor of a parameter's learning rate: ``2**-layer_lr_shift[i]`` for layer ``i``'s
    ``w{i}``, ``b{i}``, ``m{i}`` and ``g{i}`` (ARITHMETIC.md, "Derived per-layer constants"), 1
    for the output layer of bp and fa."""
    if not cfg.layer_lr_shift or not name[1:].isdigit():
        return 1.0
    return 2.0 ** -cfg.layer_lr_shift[int(name[1:])]


def apply_gradients(model, grads):
    """``p -= lr * layer_rate * g`` for every parameter ``p`` of ``model`` with a gradient
    ``g`` in ``grads`` (the gradients are scaled in place)."""
    params = model.parameters()
    for name, g in grads.items():
        g *= model.dtype(model.lr * layer_rate(model.cfg, name))
        params[name] -= g.astype(model.dtype, copy=False)


class FloatModel:
    """What every float reference shares: its parameters by name (``w{i}``, ``b{i}``; ``m{i}``
    when the classifiers train, ``g{i}`` with batch normalisation, ``out``/``out_b`` for bp and
    fa), predictions, the learning-rate schedule and the state a checkpoint holds. A model sets
    ``cfg``, ``algo``, ``weights``, ``biases``, ``classifiers``, ``gammas`` (or None),
    ``run_means``/``run_vars``, ``output``/``output_bias`` (or None) and fa's ``backward_fa``,
    ``loss``, ``dtype``, ``lr`` and ``base_lr``."""

    def predict(self, x):
        return [np.argmax(s, axis=1) for s in self.infer(x)]

    def _input(self, x):
        """Pixels as values, ``x / 2**input_frac``, in the model's dtype."""
        return (np.asarray(x) * (2.0 ** -self.cfg.input_frac)).astype(self.dtype)

    def _output_layer(self, top, labels, scores, losses, grads):
        """bp and fa: the output layer's scores, loss and gradients on the top layer's output
        ``top``; returns the error it sends down (through its weights, or fa's fixed matrix)."""
        s = top @ self.output.T + self.output_bias
        scores.append(s)
        loss, e = self.loss(s, labels)
        losses.append(loss)
        grads["out"] = e.T @ top
        grads["out_b"] = e.sum(axis=0)
        return e @ (self.output if self.algo == "bp" else self.backward_fa[-1])

    def parameters(self):
        p = {}
        for i in range(self.cfg.layers):
            p[f"w{i}"], p[f"b{i}"] = self.weights[i], self.biases[i]
            if self.algo == "lel-train":
                p[f"m{i}"] = self.classifiers[i]
            if self.gammas is not None:
                p[f"g{i}"] = self.gammas[i]
        if self.output is not None:
            p["out"], p["out_b"] = self.output, self.output_bias
        return p

    def set_epoch(self, epoch):
        """Train with epoch ``epoch``'s learning rate: ``lr`` halved every ``lr_decay_epochs``
        epochs of the config, as the fixed-point shift grows (ARITHMETIC.md, "Learning-rate
        decay")."""
        self.lr = self.base_lr * 2.0 ** (self.cfg.lr_shift - self.cfg.lr_shift_at(epoch))

    # ---- state ------------------------------------------------------------------------
    def _arrays(self):
        """The parameters and, with batch normalisation, the running statistics ``rm{i}``
        (mean) and ``rv{i}`` (variance) of every layer."""
        arrays = self.parameters()
        for i in range(self.cfg.layers if self.gammas is not None else 0):
            arrays[f"rm{i}"], arrays[f"rv{i}"] = self.run_means[i], self.run_vars[i]
        return arrays

    def state(self):
        return {name: p.copy() for name, p in self._arrays().items()}

    def restore(self, state):
        arrays = self._arrays()
        for name, value in state.items():
            arrays[name][...] = value


class FloatNet(FloatModel):
    """A float network trained by one of :data:`ALGORITHMS`.

    Parameters
    ----------
    cfg : contract.config.NetConfig
        Sizes and seeds (the number formats only set the initial scale of the weights).
    algo : str
    lr : float
        Step size; updates are ``lr`` times the gradient summed over the mini-batch.
    loss : str
        ``"square-hinge"`` or ``"softmax-ce"``.
    dtype : numpy dtype
    bn_backward : str
        With ``cfg.batch_norm``: ``"full"``, the exact gradient through the batch statistics, or
        ``"const"``, the statistics treated as constants (``dL/da = gamma * dL/dz / sigma``).
    """

    def __init__(self, cfg, algo="lel", lr=2.0 ** -7, loss="square-hinge", dtype=np.float64,
                 bn_backward="full"):
        if algo not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {algo!r}")
        if bn_backward not in BN_BACKWARDS:
            raise ValueError(f"unknown batch-norm backward {bn_backward!r} (one of "
                             f"{', '.join(BN_BACKWARDS)})")
        if cfg.batch_norm and algo in ("bp", "fa"):
            raise ValueError(f"batch normalisation is trained by local errors: algorithm "
                             f"{algo!r} does not support it")
        self.cfg, self.algo, self.lr, self.dtype = cfg, algo, lr, dtype
        self.bn_backward = bn_backward
        self.base_lr = lr
        self.finite = True
        self.loss = _LOSSES[loss]
        w = cfg.lfsr_width
        scale = 2.0 ** -cfg.weight_frac
        self.weights = [(initial_weights(cfg, i) * scale).astype(dtype)
                        for i in range(cfg.layers)]
        self.biases = [np.zeros(cfg.neurons(i), dtype) for i in range(cfg.layers)]
        self.classifiers, self.feedbacks = [], []
        for i in range(cfg.layers):
            m = classifier_weights(w, cfg.stream_seed("classifier", i), cfg.classes,
                                   cfg.neurons(i), cfg.classifier_bits)
            k = feedback_weights(m, w, cfg.stream_seed("feedback", i), cfg.classifier_bits) \
                if algo == "lel-sign" else m
            mscale = 2.0 ** -cfg.classifier_exponent(i)
            self.classifiers.append((m * mscale).astype(dtype))
            # Symmetric feedback is the classifier itself (the same array, also when trained).
            self.feedbacks.append((k * mscale).astype(dtype) if algo == "lel-sign"
                                  else self.classifiers[-1])
        self.output = self.output_bias = None
        self.backward_fa = []
        if algo in ("bp", "fa"):
            top = cfg.layers             # the output layer draws its init like a layer `top`
            n_in = cfg.neurons(top - 1)
            out = _init_like(cfg, top, cfg.classes, n_in)
            self.output = (out * scale).astype(dtype)
            self.output_bias = np.zeros(cfg.classes, dtype)
            if algo == "fa":
                for i in range(1, cfg.layers + 1):
                    rows = cfg.classes if i == cfg.layers else cfg.neurons(i)
                    b = _init_like(cfg, 100 + i, rows, cfg.neurons(i - 1))
                    self.backward_fa.append((b * scale).astype(dtype))
        # Batch normalisation: per layer the scale and the running mean and variance.
        self.gammas = self.run_means = self.run_vars = None
        if cfg.batch_norm:
            n = [cfg.neurons(i) for i in range(cfg.layers)]
            self.gammas = [np.full(k, 0.5, dtype) for k in n]
            self.run_means = [np.zeros(k, dtype) for k in n]
            self.run_vars = [np.ones(k, dtype) for k in n]
            self.bn_eps = dtype(2.0 ** -cfg.bn_eps_shift)

    # ---- passes -------------------------------------------------------------------------
    def _forward(self, x, stats=None):
        """Return ``(acts, pre)``: ``acts[0] = x``, ``acts[i + 1]`` layer i's output (``z``
        with batch normalisation) and ``pre[i]`` its pre-activation. With batch normalisation,
        ``stats`` a list: the batch statistics normalise, and ``(xhat, sigma, mu, var)`` of
        every layer is appended to it; ``stats`` None: the running statistics normalise."""
        acts, pre = [x], []
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            a = acts[-1] @ w.T + b
            pre.append(a)
            y = np.maximum(a, 0)
            if self.gammas is not None:
                if stats is None:
                    xhat = (y - self.run_means[i]) / np.sqrt(self.run_vars[i] + self.bn_eps)
                else:
                    mu, var = y.mean(axis=0), y.var(axis=0)
                    sigma = np.sqrt(var + self.bn_eps)
                    xhat = (y - mu) / sigma
                    stats.append((xhat, sigma, mu, var))
                y = self.gammas[i] * xhat
            acts.append(y)
        return acts, pre

    def infer(self, x):
        """Return the scores of every layer's classifier (only the output for bp/fa)."""
        acts, _ = self._forward(self._input(x))
        if self.output is not None:
            return [acts[-1] @ self.output.T + self.output_bias]
        return [y @ m.T for y, m in zip(acts[1:], self.classifiers)]

    def gradients(self, x, labels, scores=None):
        """Return ``(losses, grads)``; ``grads`` maps parameter names to update directions
        (exact loss gradients for lel, lel-train and bp, and with batch normalisation for lel
        and lel-train with ``bn_backward="full"``). Every classifier's scores are appended to
        the list ``scores`` if given."""
        return self._gradients(x, labels, scores)[:2]

    def _gradients(self, x, labels, scores=None):
        """:meth:`gradients`, and the batch statistics of every layer (empty without batch
        normalisation)."""
        x = self._input(x)
        stats = []
        acts, pre = self._forward(x, stats)
        grads, losses = {}, []
        scores = [] if scores is None else scores
        if self.output is None:
            for i in range(self.cfg.layers):
                y = acts[i + 1]
                s = y @ self.classifiers[i].T
                scores.append(s)
                loss, e = self.loss(s, labels)
                losses.append(loss)
                p = e @ self.feedbacks[i]                  # dL/dz (dL/dy without bn)
                if stats:
                    p = self._bn_backward(i, p, stats[i], grads)
                d = p * (pre[i] > 0)
                grads[f"w{i}"] = d.T @ acts[i]
                grads[f"b{i}"] = d.sum(axis=0)
                if self.algo == "lel-train":
                    grads[f"m{i}"] = e.T @ y
        else:
            g = self._output_layer(acts[-1], labels, scores, losses, grads)
            for i in reversed(range(self.cfg.layers)):
                d = g * (pre[i] > 0)
                grads[f"w{i}"] = d.T @ acts[i]
                grads[f"b{i}"] = d.sum(axis=0)
                if i:
                    back = self.weights[i] if self.algo == "bp" else self.backward_fa[i - 1]
                    g = d @ back
        return losses, grads, stats

    def _bn_backward(self, i, p, stat, grads):
        """dL/da of layer i from ``p = dL/dz``; the scale's gradient goes into ``grads``."""
        xhat, sigma = stat[0], stat[1]
        grads[f"g{i}"] = (p * xhat).sum(axis=0)
        dxhat = self.gammas[i] * p
        if self.bn_backward == "const":
            return dxhat / sigma
        return (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0)) / sigma

    def train_batch(self, x, labels):
        """One step; returns every classifier's correct count (before the update). ``finite``
        says afterwards whether every score of the step was finite (a diverging run's are
        not)."""
        labels = np.asarray(labels)
        scores = []
        _, grads, stats = self._gradients(x, labels, scores)
        self.finite = all(bool(np.isfinite(s).all()) for s in scores)
        apply_gradients(self, grads)
        if stats:
            momentum = self.dtype(2.0 ** -self.cfg.bn_momentum_shift)
            for i, (_, _, mu, var) in enumerate(stats):
                self.run_means[i] += (mu - self.run_means[i]) * momentum
                self.run_vars[i] += (var - self.run_vars[i]) * momentum
        return [int((np.argmax(s, axis=1) == labels).sum()) for s in scores]



def _init_like(cfg, index, rows, cols):
    """Initial integers for an extra matrix (bp/fa output layer, fa feedback), drawn like a
    hidden layer's from the init stream of a virtual layer ``index``."""
    return initial_integers(cfg, index, rows, cols)
