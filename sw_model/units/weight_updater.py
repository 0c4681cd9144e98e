"""Per-cycle model of hw/weight_updater.py; the arithmetic is the golden model's."""

import numpy as np

from sw_model.fixedpoint import saturate_signed, shift_rne, shift_stochastic

__all__ = ["WeightUpdaterModel"]


class WeightUpdaterModel:
    """Memory contents plus the beat accepted at the last edge, written during this cycle."""

    def __init__(self, init, weight_bits, weight_shift, bias_shift, round_bits, rounding):
        self.memory = list(init)
        self.weight_bits, self.round_bits, self.rounding = weight_bits, round_bits, rounding
        self.shifts = (weight_shift, bias_shift)
        self.pending = None
        self.coverage = {"saturated_low": 0, "saturated_high": 0, "ties": 0}

    def _write(self):
        beat = self.pending
        g = np.array([float(beat["grad"])])
        shift = self.shifts[beat["bias"]]
        if self.rounding == "stochastic":
            step = shift_stochastic(g, shift, np.array([beat["rand"]]), self.round_bits)
        else:
            step = shift_rne(g, shift)
        new = saturate_signed(self.memory[beat["addr"]] - step, self.weight_bits)
        return beat["addr"], int(new[0])

    def outputs(self, inputs):
        if self.pending is None:
            return {"wr_en": 0, "i__ready": 1}
        addr, value = self._write()
        return {"wr_en": 1, "wr_addr": addr, "wr_data": value & ((1 << self.weight_bits) - 1),
                "i__ready": 1}

    def step(self, inputs):
        if self.pending is not None:
            addr, value = self._write()
            beat, shift = self.pending, self.shifts[self.pending["bias"]]
            lo, hi = -(1 << (self.weight_bits - 1)), (1 << (self.weight_bits - 1)) - 1
            exact = self.memory[addr] - beat["grad"] / 2 ** shift
            self.coverage["saturated_low"] += value == lo and exact < lo
            self.coverage["saturated_high"] += value == hi and exact > hi
            self.coverage["ties"] += shift > 0 and beat["grad"] % (1 << shift) == 1 << (shift - 1)
            self.memory[addr] = value
        self.pending = inputs["i__beat"] if inputs["i__valid"] else None
