"""Per-cycle model of hw/local_error.py; the arithmetic is the golden model's."""

import numpy as np

from sw_model.golden import hinge_errors, predict

from .registered_stage import RegisteredStage

__all__ = ["LocalErrorModel"]


class LocalErrorModel(RegisteredStage):
    def __init__(self, classes, score_frac, error_bits, count_bits=32):
        super().__init__({"errors": [0] * classes, "prediction": 0, "correct": 0, "margin": 0})
        self.score_frac, self.error_bits, self.count_bits = score_frac, error_bits, count_bits
        self.count = 0

    def accept(self, beat):
        s = np.array([beat["scores"]], dtype=np.float64)
        e = hinge_errors(s, [beat["label"]], self.score_frac, self.error_bits)[0]
        pred = int(predict(s)[0])
        top2 = np.sort(s[0])[-2:]
        return {"errors": [int(v) for v in e], "prediction": pred,
                "correct": int(pred == beat["label"]), "margin": int(top2[1] - top2[0])}

    def outputs(self, inputs):
        return {**super().outputs(inputs), "correct_count": self.count}

    def step(self, inputs):
        accepted = super().step(inputs)
        correct = self.out["correct"] if accepted is not None else 0
        base = 0 if inputs["clear"] else self.count
        self.count = (base + correct) % (1 << self.count_bits)
