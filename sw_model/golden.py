"""The bit-exact fixed-point golden model of local-error learning: the executable spec.

Each function here is one step of docs/ARITHMETIC.md, named as there. Integers are held in
``float64`` arrays (see :mod:`sw_model.fixedpoint`), activations are ``batch x neurons``.
Weights are stored transposed, ``fan_in x neurons``, in float32 when that holds them exactly;
the two large products use float32 where it is provably exact (:mod:`sw_model.exact_float32`)
and the update is arranged in :mod:`sw_model.golden_update`, which says why.
:attr:`FixedPointNet.weights` shows the weights as ``neurons x fan_in``.
"""

import numpy as np

from contract.config import INIT_CHUNK_BITS, ConfigError, softmax_table

from .fixedpoint import (saturate_signed, saturate_unsigned, shift_rne, shift_stochastic,
                         signed_range)
from .exact_float32 import column_l1, forward_product, weight_dtype
from .golden_batch_norm import BatchNormState, back_deltas, normalise, scale_update
from .golden_update import bias_chunks, saturate_checked, update_l1_bound, update_weights
from .lfsr import LfsrStream, chunks, classifier_weights, feedback_weights

__all__ = ["FixedPointNet", "initial_weights", "initial_integers", "memory_order", "hinge_errors",
           "predict"]


def initial_weights(cfg, i):
    """Layer i's initial integer weights ``(neurons x fan_in)`` (ARITHMETIC.md, "What is
    drawn")."""
    return initial_integers(cfg, i, cfg.neurons(i), cfg.fan_in(i))


def initial_integers(cfg, index, rows, cols):
    """16-bit chunks from the init stream of layer ``index`` in weight-memory order, each
    ``(u >> (16 - I)) - 2**(I - 1)`` with ``I = init_bits_for(cols)``.

    With ``P = cfg.array_rows``, chunk ``(t*cols + j)*P + p`` is for ``[t*P + p, j]``; rows past
    ``rows`` are drawn and discarded. ``I`` above the 16-bit chunk is refused: such weights are
    undefined (the config refuses it for its layers; this also covers the float references'
    extra matrices, whose fan-in is no layer's).
    """
    bits = cfg.init_bits_for(cols)
    if bits > INIT_CHUNK_BITS:
        raise ConfigError(f"config: field 'weight_frac' makes initial weights of fan-in {cols} "
                          f"{bits} bits wide, more than the {INIT_CHUNK_BITS}-bit chunk of the "
                          "init stream")
    u = chunks(cfg.lfsr_width, cfg.stream_seed("init", index), INIT_CHUNK_BITS,
               tile_rows(rows, cfg.array_rows) * cols).astype(np.int64)
    u = memory_order(u, rows, cols, cfg.array_rows)
    return (u >> (INIT_CHUNK_BITS - bits)) - (1 << (bits - 1))


def tile_rows(rows, p):
    """Rows rounded up to whole output tiles of ``p``."""
    return -(-rows // p) * p


def memory_order(values, rows, cols, p):
    """Arrange a stream drawn in weight-memory order into a ``rows x cols`` matrix.

    The stream visits output tiles of ``p`` rows, within each the columns in order, within each
    column the ``p`` rows (one memory word); rows past ``rows`` are drawn and discarded.
    """
    tiles = -(-rows // p)
    return values.reshape(tiles, cols, p).transpose(0, 2, 1).reshape(tiles * p, cols)[:rows]


class FixedPointNet:
    """A fully connected network trained with local errors in the contract's fixed point.

    Parameters
    ----------
    cfg : contract.config.NetConfig
        Sizes, formats, shifts and seeds.
    """

    def __init__(self, cfg):
        bits = self._exact_bits(cfg)
        if bits >= 53:
            raise ValueError(f"integers reach 2**{bits}: beyond float64's exact range (see "
                             "ARITHMETIC.md, Exactness)")
        self.cfg = self.base_cfg = cfg
        w = cfg.lfsr_width
        self.weights = [self._initial_weights(i) for i in range(cfg.layers)]
        self.biases = [np.zeros(len(wi)) for wi in self.weights]
        self.classifiers = []
        self.feedbacks = []
        for i in range(cfg.layers):
            m = classifier_weights(w, cfg.stream_seed("classifier", i), cfg.classes,
                                   cfg.neurons(i), cfg.classifier_bits)
            k = m if cfg.feedback == "symmetric" else feedback_weights(
                m, w, cfg.stream_seed("feedback", i), cfg.classifier_bits)
            self.classifiers.append(m.astype(np.float64))
            self.feedbacks.append(k.astype(np.float64))
        self.round_stream = LfsrStream(w, cfg.stream_seed("round"), cfg.round_bits)
        self.dropout_stream = LfsrStream(w, cfg.stream_seed("dropout"), 8)
        self.batches_trained = 0
        self.frozen = frozenset()       # layers trained forward only (layer-by-layer training)
        self.batch_norm = ([BatchNormState(cfg, cfg.neurons(i)) for i in range(cfg.layers)]
                           if cfg.batch_norm else None)

    def _exact_bits(self, cfg):
        """The bound on every integer the model forms (ARITHMETIC.md, Exactness)."""
        return cfg.max_abs_bits()

    def _initial_weights(self, i):
        return initial_weights(self.cfg, i)

    # ---- the steps of one layer ---------------------------------------------------------
    def _layer_forward(self, i, x, training):
        """Steps 1-2 of layer ``i`` (dropout when ``training``): ``(y, active, context)``, the
        context what the update needs besides ``x`` (None here)."""
        y, active = self.forward(i, x)
        if training:
            y, keep = self.dropout(y)
            if keep is not None:
                active &= keep
        return y, active, None

    def _layer_update(self, i, x, d, context, scale_grad=None):
        self.update(i, x, d, scale_grad=scale_grad)

    def forward(self, i, x):
        """Return ``(y, active)``: activations ``sat_u(rne(acc >> weight_frac))`` of layer i for
        inputs ``x`` and the derivative of that clipped ReLU, ``0 < y_unsaturated < 2**act_bits``
        (1 where the output neither clips at zero nor saturates)."""
        cfg = self.cfg
        acc = self._forward_product(i, x)
        acc += self.biases[i] * float(1 << cfg.in_frac(i))
        active = acc > 0
        y = shift_rne(acc, cfg.forward_shift(i), out=acc)
        active &= y <= (1 << cfg.act_bits) - 1
        return saturate_unsigned(y, cfg.act_bits, out=y), active

    def _forward_product(self, i, x):
        """``x @ w.T`` exactly, as float64. With float32 weights: the split float32 product
        when the weight sums allow it (:func:`~sw_model.exact_float32.forward_product`), tried
        with the running bound on the sums and, when that bound is too loose, with the exact
        sums; float64 otherwise."""
        wt = self._wt[i]
        if wt.dtype == np.float64:
            return x @ wt
        bits = (self.cfg.act_bits + 1) // 2
        if self._l1[i] is None:
            self._l1[i], self._l1_exact[i] = column_l1(wt), True
        acc = forward_product(x, wt, bits, float(self._l1[i].max(initial=0.0)))
        if acc is None and not self._l1_exact[i]:
            self._l1[i], self._l1_exact[i] = column_l1(wt), True
            acc = forward_product(x, wt, bits, float(self._l1[i].max(initial=0.0)))
        return x @ wt.astype(np.float64) if acc is None else acc

    def scores(self, i, y):
        """Local scores ``sat(rne(y @ m.T, score_shift))``; with batch normalisation ``y`` is
        the signed ``z - 2**(act_bits - 1)``."""
        cfg = self.cfg
        s = shift_rne(y @ self.classifiers[i].T, cfg.score_shift(i))
        return saturate_signed(s, cfg.score_bits, out=s)

    def errors(self, s, labels):
        """Error of the local loss: square hinge or base-2 softmax cross-entropy."""
        if self.cfg.loss == "softmax-ce":
            return self.softmax_errors(s, labels)
        return self.hinge_errors(s, labels)

    def hinge_errors(self, s, labels):
        return hinge_errors(s, labels, self.cfg.score_frac, self.cfg.error_bits)

    def softmax_errors(self, s, labels):
        """``p - onehot`` of the base-2 softmax ``p = 2**s / sum(2**s)``: ``z = max(s) - s``,
        ``q = table[(z mod 2**F) >> (F - L)] >> (z >> F)``, ``p = (q << F) // sum(q)``."""
        cfg = self.cfg
        frac = cfg.score_frac
        z = (s.max(axis=1, keepdims=True) - s).astype(np.int64)
        table = np.array(softmax_table(cfg.softmax_lut_bits), dtype=np.int64)
        q = table[(z & ((1 << frac) - 1)) >> (frac - cfg.softmax_lut_bits)]
        q >>= np.minimum(z >> frac, 62)
        p = (q << frac) // q.sum(axis=1, keepdims=True)
        p[np.arange(len(labels)), labels] -= 1 << frac
        return saturate_signed(p.astype(np.float64), cfg.error_bits)

    def deltas(self, i, e, active):
        """``sat(rne((e @ k) >> delta_shift)) * active``."""
        cfg = self.cfg
        d = shift_rne(e @ self.feedbacks[i], cfg.delta_shift(i))
        saturate_signed(d, cfg.delta_bits, out=d)
        d *= active
        return d

    def dropout(self, y):
        """Training-time dropout: keep where an 8-bit chunk >= ``dropout``, scaled by
        ``rne(y * keep_scale >> 8)`` with ``keep_scale = rne(2**16 / (256 - dropout))``.

        Chunks follow the core's forward order: output tiles of ``P`` neurons, within each the
        groups of ``Q`` samples, within each neuron-major (chunk ``((t*G + g)*P + p)*Q + q`` is
        neuron ``t*P + p`` of sample ``g*Q + q``); positions past the edges are discarded.
        """
        cfg = self.cfg
        if not cfg.dropout:
            return y, None
        samples, neurons = y.shape
        p, q = cfg.array_rows, cfg.array_cols
        tiles, groups = -(-neurons // p), -(-samples // q)
        u = self.dropout_stream.draw(tiles * groups * p * q).reshape(tiles, groups, p, q)
        u = u.transpose(1, 3, 0, 2).reshape(groups * q, tiles * p)[:samples, :neurons]
        return self.apply_dropout(y, u)

    def apply_dropout(self, y, u):
        """``keep = u >= dropout``; kept values scaled by ``keep_scale``, the others 0."""
        cfg = self.cfg
        keep = u >= cfg.dropout
        yd = shift_rne(y * float(cfg.keep_scale()), 8)
        saturate_unsigned(yd, cfg.act_bits, out=yd)
        yd *= keep
        return yd, keep

    def update(self, i, x, d, scale_grad=None):
        """In-place update of layer i from the batch gradient ``G = d.T @ x``:
        ``w = sat(w - R(G, update_shift))``, biases likewise with ``bias_update_shift``.

        The weights' rounding chunks are drawn (one per memory position, ``T*P x (J+1)``, biases
        in column ``J``) and rounded by :func:`~sw_model.golden_update.update_weights`.
        Saturation is only checked once a cheap bound on ``|w|`` could have crossed the range:
        ``|w - R(G)| <= |w| + sum_b max|d_b| * max x_b / 2**shift + 1``. The bound on the weight
        sums that lets the forward product use float32 grows likewise.
        """
        cfg = self.cfg
        wt, b = self._wt[i], self.biases[i]
        cols, rows = wt.shape
        shift, rbits = cfg.update_shift(i), cfg.round_bits
        self._wbound[i] += float(np.abs(d).max(axis=1) @ np.abs(x).max(axis=1)) * 2.0 ** -shift + 1
        gbias = d.sum(axis=0)
        scale_rand = None
        if cfg.rounding == "stochastic":
            p = cfg.array_rows
            extra = 2 if scale_grad is not None else 1
            rand = self.round_stream.draw(tile_rows(rows, p) * (cols + extra))
            if scale_grad is not None:
                words = rand.reshape(-1, cols + 2, p)
                scale_rand = words[:, cols + 1].reshape(-1)[:rows]
                rand = np.ascontiguousarray(words[:, :cols + 1]).reshape(-1)
            update_weights(wt, x, d, shift, rand, rbits, p)
            db = shift_stochastic(gbias, cfg.bias_update_shift(i), bias_chunks(rand, rows, cols, p),
                                  rbits)
        else:
            update_weights(wt, x, d, shift)
            db = shift_rne(gbias, cfg.bias_update_shift(i))
        if self._l1[i] is not None:
            update_l1_bound(self._l1[i], x, d, shift)
            self._l1_exact[i] = False
        if self._wbound[i] > signed_range(cfg.weight_bits)[1]:
            self._wbound[i] = saturate_checked(wt, cfg.weight_bits)
        b -= db
        saturate_signed(b, cfg.weight_bits, out=b)
        if scale_grad is not None:
            scale_update(cfg, i, self.batch_norm[i], scale_grad, rand=scale_rand)

    # ---- whole passes ---------------------------------------------------------------------
    def train_batch(self, x, labels):
        """Train on one mini-batch: pixels ``x`` (``B x arch[0]`` integers), ``labels``.

        Returns the number of correct local predictions per layer (before the update); a
        layer in ``frozen`` runs forward (dropout included) and nothing else, and counts 0.
        """
        x = np.asarray(x, dtype=np.float64)
        labels = np.asarray(labels)
        if len(x) > self.cfg.batch:
            raise ValueError(f"mini-batch of {len(x)} exceeds the configured batch "
                             f"{self.cfg.batch}")
        correct = []
        for i in range(self.cfg.layers):
            y, active, context = self._layer_forward(i, x, True)
            if self.batch_norm is not None:
                z, xhat, bn_active, h = normalise(self.cfg, self.batch_norm[i], y, True)
                y = z - float(1 << (self.cfg.act_bits - 1))
            if i in self.frozen:
                correct.append(0)
                x = y
                continue
            s = self.scores(i, y)
            correct.append(int((predict(s) == labels).sum()))
            e = self.errors(s, labels)
            if self.batch_norm is None:
                self._layer_update(i, x, self.deltas(i, e, active), context)
            else:
                d, scale_grad = back_deltas(self.cfg, i, e, self.feedbacks[i], h, active,
                                            bn_active, xhat)
                self._layer_update(i, x, d, context, scale_grad=scale_grad)
            x = y
        self.batches_trained += 1
        return correct

    def _inference(self, x):
        """Per layer, at inference: ``(stored, product)``, the output as the layer stores it
        (``y``, or ``z`` with batch normalisation) and as the products take it (``z - H``)."""
        x = np.asarray(x, dtype=np.float64)
        for i in range(self.cfg.layers):
            x = stored = self._layer_forward(i, x, False)[0]
            if self.batch_norm is not None:
                stored = normalise(self.cfg, self.batch_norm[i], x, False)[0]
                x = stored - float(1 << (self.cfg.act_bits - 1))
            yield stored, x

    def infer(self, x):
        """Return every layer's local scores (list of ``B x classes``) for pixels ``x``."""
        return [self.scores(i, product) for i, (_, product) in enumerate(self._inference(x))]

    def layer_outputs(self, x):
        """Every layer's output at inference, as the layer stores it (unsigned)."""
        return [stored for stored, _ in self._inference(x)]

    def predict(self, x):
        return [predict(s) for s in self.infer(x)]

    def infer_early_exit(self, x, threshold):
        """Early-exit inference: each sample stops at the first layer whose margin (its largest
        score minus its second largest, in score units) reaches ``threshold``, else at the top.

        Returns ``(predictions, exit_layer)`` (0-based layer index per sample). Layers past a
        sample's exit are still computed here; the hardware skips them.
        """
        scores = self.infer(x)
        n = len(scores[0])
        pred = predict(scores[-1]).copy()
        exit_layer = np.full(n, len(scores) - 1)
        pending = np.ones(n, dtype=bool)
        for i, s in enumerate(scores[:-1]):
            top2 = np.sort(s, axis=1)[:, -2:]
            done = pending & (top2[:, 1] - top2[:, 0] >= threshold)
            pred[done] = predict(s)[done]
            exit_layer[done] = i
            pending &= ~done
        return pred, exit_layer

    def set_frozen(self, layers):
        """Train the layers in ``layers`` forward only from now on (ARITHMETIC.md, "Frozen
        layers")."""
        self.frozen = frozenset(int(i) for i in layers)

    def set_epoch(self, epoch):
        """Train with epoch ``epoch``'s learning rate (ARITHMETIC.md, "Learning-rate decay"):
        only the update shifts change."""
        self.cfg = self.base_cfg.at_epoch(epoch)

    # ---- state ------------------------------------------------------------------------
    @property
    def weights(self):
        """Layer weights as ``neurons x fan_in`` integers (float32 or float64): views of the
        transposed store, so writing into them writes the weights. Reading this property
        therefore drops the bounds the model keeps on the weights (for saturation checks and
        float32 products); the next update and forward pass recompute them from the weights."""
        self._drop_bounds()
        return [wt.T for wt in self._wt]

    @weights.setter
    def weights(self, values):
        dtype = weight_dtype(self.cfg)
        self._wt = [np.ascontiguousarray(np.asarray(w).T, dtype=dtype) for w in values]
        self._drop_bounds()

    def _drop_bounds(self):
        """Forget the bounds on the weights: the saturation check runs at the next update (and
        finds the exact peak), the weight sums are recomputed at the next forward pass."""
        self._wbound = [np.inf] * len(self._wt)
        self._l1 = [None] * len(self._wt)
        self._l1_exact = [False] * len(self._wt)

    def state(self):
        return {"weights": [np.ascontiguousarray(wt.T, dtype=np.int64) for wt in self._wt],
                "biases": [b.astype(np.int64) for b in self.biases],
                "round_stream": self.round_stream.state(),
                "dropout_stream": self.dropout_stream.state(),
                "batches_trained": self.batches_trained,
                **({"batch_norm": [bn.state() for bn in self.batch_norm]}
                   if self.batch_norm is not None else {})}

    def restore(self, state):
        self.weights = state["weights"]
        self.biases = [np.asarray(b, dtype=np.float64) for b in state["biases"]]
        self.round_stream.restore(state["round_stream"])
        self.dropout_stream.restore(state["dropout_stream"])
        self.batches_trained = state["batches_trained"]
        if self.batch_norm is not None:
            for bn, saved in zip(self.batch_norm, state["batch_norm"]):
                bn.restore(saved)

    def weight_hash(self):
        import hashlib
        h = hashlib.sha256()
        for wt, b in zip(self._wt, self.biases):
            h.update(wt.T.astype("<i4").tobytes())
            h.update(b.astype("<i4").tobytes())
        for bn in self.batch_norm or ():
            h.update(bn.gamma.astype("<i4").tobytes())
        return h.hexdigest()


def hinge_errors(s, labels, score_frac, error_bits):
    """Square-hinge error ``sat(-t * max(0, 2**score_frac - t*s))``, ``t = +1`` for the label
    and ``-1`` otherwise (a label outside the classes marks none)."""
    s = np.asarray(s, dtype=np.float64)
    labels = np.asarray(labels)
    t = -np.ones_like(s)
    rows = np.arange(len(labels))
    inside = labels < s.shape[1]
    t[rows[inside], labels[inside]] = 1.0
    hinge = np.maximum(0.0, float(1 << score_frac) - t * s)
    return saturate_signed(-t * hinge, error_bits)


def predict(scores):
    """Argmax over classes; ties go to the lowest class index."""
    return np.argmax(scores, axis=1)
