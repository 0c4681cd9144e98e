"""Per-cycle model of hw/local_error.py; the arithmetic is the golden model's."""

import numpy as np

from sw_model.golden import hinge_errors, predict

from .registered_stage import RegisteredStage

__all__ = ["LocalErrorModel"]


class LocalErrorModel(RegisteredStage):
    """One class a beat, one register stage; ``correct_count`` counts a sample as its last
    beat enters the output."""

    def __init__(self, classes, score_bits, score_frac, error_bits, count_bits=32):
        super().__init__({"error": 0, "last": 0, "prediction": 0, "correct": 0, "margin": 0})
        self.classes, self.score_bits = classes, score_bits
        self.score_frac, self.error_bits, self.count_bits = score_frac, error_bits, count_bits
        self.scores = []                     # the current sample's scores so far
        self.count = 0

    def accept(self, beat):
        self.scores.append(beat["score"])
        s = np.array([self.scores], dtype=np.float64)
        c = len(self.scores) - 1
        e = hinge_errors(s, [beat["label"]], self.score_frac, self.error_bits)[0][c]
        pred = int(predict(s)[0])
        ranked = sorted(self.scores + [-(1 << (self.score_bits - 1))])
        last = c == self.classes - 1
        if last:
            self.scores = []
        return {"error": int(e), "last": int(last), "prediction": pred,
                "correct": int(pred == beat["label"]), "margin": ranked[-1] - ranked[-2]}

    def outputs(self, inputs):
        return {**super().outputs(inputs), "correct_count": self.count}

    def entered(self, result):
        self.correct_entered = result["correct"] & result["last"]

    def step(self, inputs):
        self.correct_entered = 0
        accepted = super().step(inputs)
        base = 0 if inputs["clear"] else self.count
        self.count = (base + self.correct_entered) % (1 << self.count_bits)
        return accepted
