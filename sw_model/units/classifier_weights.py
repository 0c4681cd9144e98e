"""Per-cycle model of hw/core/classifier_weights.py."""

from sw_model.lfsr import LfsrStream

__all__ = ["ClassifierWeightsModel"]


class ClassifierWeightsModel:
    """Beats of the local classifier's column ``m[:, j]`` and the feedback's ``k[:, j]``, one
    neuron ``j`` a transfer; ``load`` restarts both streams from their seeds (neuron 0 again).

    A ``bits``-bit chunk ``u`` is the weight ``2u - (2**bits - 1)`` (docs/ARITHMETIC.md, "What is
    drawn"); ``k`` is ``m``, or with ``sign`` high ``sign(m) * |m'|``, ``m'`` drawn like ``m``
    from ``feedback_seed``. Outputs are Python values (``{"m": [...], "k": [...]}``)."""

    def __init__(self, width, classes, bits, sign_feedback=False, odd=True):
        """``odd=False`` draws ``2u - 2**bits`` (only to show that tests notice)."""
        self.width, self.classes, self.bits = width, classes, bits
        self.sign_feedback, self.offset = sign_feedback, (1 << bits) - (1 if odd else 0)
        self._restart(1, 1)

    def _restart(self, seed, feedback_seed):
        self.streams = [LfsrStream(self.width, seed or 1, self.bits)]
        if self.sign_feedback:
            self.streams.append(LfsrStream(self.width, feedback_seed or 1, self.bits))
        self._draw()

    def _draw(self):
        self.beats = [[2 * int(u) - self.offset for u in stream.draw(self.classes)]
                      for stream in self.streams]

    def outputs(self, inputs):
        m = self.beats[0]
        k = m
        if self.sign_feedback and inputs["sign"]:
            k = [(-abs(f) if w < 0 else abs(f)) for w, f in zip(m, self.beats[1])]
        return {"o__valid": 1, "o__payload": {"m": m, "k": k}}

    def step(self, inputs):
        if inputs["load"]:
            self._restart(inputs["seed"], inputs.get("feedback_seed", 1))
        elif inputs["o__ready"]:
            self._draw()
