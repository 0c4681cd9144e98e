"""Per-cycle model of hw/core/drain_rounding.py; the arithmetic is the golden model's."""

import numpy as np

from sw_model.fixedpoint import shift_rne

__all__ = ["DrainRoundingModel"]


class DrainRoundingModel:
    """``rounded`` is last cycle's ``sums`` shifted by last cycle's ``shift``, rounded to
    nearest-even (zero after reset); with ``registered_shift``, shifted by the ``shift`` of the
    cycle before that (zero at power-on: the bench resets once, at the start). ``quotient`` and
    ``round_up`` are the parts it is added from: the floor quotient and the round-to-nearest-even
    bit. ``rounding`` replaces the contract's rounding only to
    show that the bench notices."""

    def __init__(self, lanes, rounding=shift_rne, registered_shift=False):
        self.rounding, self.registered_shift = rounding, registered_shift
        self.shift = 0
        self.rounded = [0] * lanes
        self.quotient, self.round_up = [0] * lanes, [0] * lanes
        self.coverage = {"ties": 0, "negative": 0, "pass_through": 0}

    def outputs(self, inputs):
        return {"rounded": self.rounded, "quotient": self.quotient, "round_up": self.round_up}

    @staticmethod
    def _parts(value, shift):
        """The floor quotient and the round-to-nearest-even bit added to it."""
        quotient = value >> shift
        rest, half = value - (quotient << shift), (1 << shift) >> 1
        return quotient, int(shift > 0 and (rest > half or (rest == half and quotient & 1)))

    def step(self, inputs):
        sums, shift = inputs["sums"], inputs["shift"]
        if self.registered_shift:
            shift, self.shift = self.shift, shift
        self.rounded = [int(v) for v in self.rounding(np.array(sums, dtype=np.float64), shift)]
        parts = [self._parts(int(v), shift) for v in sums]
        self.quotient, self.round_up = [q for q, _ in parts], [u for _, u in parts]
        self.coverage["ties"] += sum(shift > 0 and v % (1 << shift) == 1 << (shift - 1)
                                     for v in sums)
        self.coverage["negative"] += sum(v < 0 for v in sums)
        self.coverage["pass_through"] += shift == 0
