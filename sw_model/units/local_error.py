"""Per-cycle model of hw/local_error.py; the arithmetic is the golden model's."""

import numpy as np

from sw_model.golden import hinge_errors, predict

from .registered_stage import RegisteredStage

__all__ = ["LocalErrorModel"]


class LocalErrorModel(RegisteredStage):
    """Two register stages; ``correct_count`` counts a result as it enters the output."""

    def __init__(self, classes, score_frac, error_bits, count_bits=32):
        super().__init__({"errors": [0] * classes, "prediction": 0, "correct": 0, "margin": 0},
                         latency=2)
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

    def entered(self, result):
        self.correct_entered = result["correct"]

    def step(self, inputs):
        self.correct_entered = 0
        accepted = super().step(inputs)
        base = 0 if inputs["clear"] else self.count
        self.count = (base + self.correct_entered) % (1 << self.count_bits)
        return accepted
