"""Per-cycle model of hw/backproject.py; the arithmetic is the golden model's."""

import numpy as np

from sw_model.fixedpoint import saturate_signed, shift_rne

from .registered_stage import RegisteredStage

__all__ = ["BackProjectionModel", "format_weight"]


def format_weight(chunk, bits):
    return 2 * chunk - ((1 << bits) - 1)


class BackProjectionModel(RegisteredStage):
    def __init__(self, classes, lanes, classifier_bits, delta_shift, delta_bits,
                 feedback="symmetric", rounding=shift_rne):
        """``rounding`` replaces the contract's shift only to show that tests notice."""
        super().__init__([0] * lanes)
        self.lanes, self.bits, self.shift, self.delta_bits = (lanes, classifier_bits,
                                                              delta_shift, delta_bits)
        self.feedback, self.rounding = feedback, rounding

    def accept(self, beat):
        m = format_weight(np.array(beat["m"], dtype=np.int64), self.bits)   # lanes x C
        if self.feedback == "sign":
            f = np.abs(format_weight(np.array(beat["f"], dtype=np.int64), self.bits))
            m = np.sign(m) * f
        e = np.array(beat["errors"], dtype=np.float64)
        d = saturate_signed(self.rounding(m.astype(np.float64) @ e, self.shift),
                            self.delta_bits)
        active = [(beat["active"] >> lane) & 1 for lane in range(self.lanes)]
        return [int(v) * a for v, a in zip(d, active)]
