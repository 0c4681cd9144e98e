"""Per-cycle model of hw/local_error.py; the arithmetic is the golden model's."""

import numpy as np

from sw_model.golden import hinge_errors, predict

__all__ = ["LocalErrorModel"]


class LocalErrorModel:
    def __init__(self, classes, score_frac, error_bits, count_bits=32):
        self.score_frac, self.error_bits, self.count_bits = score_frac, error_bits, count_bits
        self.out_valid = 0
        self.out = {"errors": [0] * classes, "prediction": 0, "correct": 0}
        self.count = 0

    def outputs(self, inputs):
        return {"o__valid": self.out_valid, "o__payload": self.out,
                "i__ready": int(not self.out_valid or inputs["o__ready"]),
                "correct_count": self.count}

    def step(self, inputs):
        ready = not self.out_valid or inputs["o__ready"]
        if self.out_valid and inputs["o__ready"]:
            self.out_valid = 0
        correct = 0
        if inputs["i__valid"] and ready:
            beat = inputs["i__beat"]
            s = np.array([beat["scores"]], dtype=np.float64)
            e = hinge_errors(s, [beat["label"]], self.score_frac, self.error_bits)[0]
            pred = int(predict(s)[0])
            correct = int(pred == beat["label"])
            self.out = {"errors": [int(v) for v in e], "prediction": pred, "correct": correct}
            self.out_valid = 1
        base = 0 if inputs["clear"] else self.count
        self.count = (base + correct) % (1 << self.count_bits)
