"""Per-cycle model of hw/core/back_projection.py; the arithmetic is the golden model's."""

import numpy as np

from sw_model.fixedpoint import saturate_signed

__all__ = ["BackProjectionModel"]


class BackProjectionModel:
    """Two stages: a beat's place and active bits; then its deltas (the rounded sums that
    arrived meanwhile, saturated and masked). The bias-gradient sums add every delta word
    that leaves the second stage and restart after a tile's last sample or on ``clear``.

    ``saturate_bits`` replaces ``delta_bits`` in the saturation only to show that the bench
    notices."""

    def __init__(self, lanes, columns, delta_bits, grad_bias_bits, saturate_bits=None):
        self.lanes, self.columns = lanes, columns
        self.delta_bits, self.grad_bias_bits = delta_bits, grad_bias_bits
        self.saturate_bits = saturate_bits or delta_bits
        self.first = {"valid": 0, "sample": 0, "tile": 0, "last": 0, "active": [0] * lanes}
        self.second = {"valid": 0, "sample": 0, "tile": 0, "last": 0, "d": [0] * lanes}
        self.sums = [0] * lanes
        self.coverage = {"saturated": 0, "inactive": 0, "tiles": 0, "clears": 0}

    def _wrap(self, value):
        bits = self.grad_bias_bits
        value &= (1 << bits) - 1
        return value - (1 << bits) if value >> (bits - 1) else value

    def _sums_next(self):
        return [self._wrap(s + d) for s, d in zip(self.sums, self.second["d"])]

    def outputs(self, inputs):
        second = self.second
        return {
            "i__ready": 1,
            "busy": int(self.first["valid"] or second["valid"]),
            "delta__en": second["valid"], "delta__sample": second["sample"],
            "delta__tile": second["tile"], "delta__data": second["d"],
            "bias_grad__en": int(second["valid"] and second["last"]),
            "bias_grad__tile": second["tile"], "bias_grad__data": self._sums_next(),
        }

    def step(self, inputs):
        first, second = self.first, self.second
        sums_next = self._sums_next()
        if second["valid"]:
            self.sums = [0] * self.lanes if second["last"] else sums_next
            self.coverage["tiles"] += second["last"]
        if inputs["clear"]:
            self.sums = [0] * self.lanes
            self.coverage["clears"] += 1
        rounded = np.array(inputs["rounded"], dtype=np.float64)
        d = saturate_signed(rounded, self.saturate_bits).astype(np.int64).tolist()
        self.coverage["saturated"] += sum(int(v != r) for v, r in zip(d, inputs["rounded"]))
        self.coverage["inactive"] += first["valid"] and first["active"].count(0)
        self.second = {"valid": first["valid"], "sample": first["sample"],
                       "tile": first["tile"], "last": first["last"],
                       "d": [v if a else 0 for v, a in zip(d, first["active"])]}
        beat = inputs["i__beat"]
        first = {**first, "valid": inputs["i__valid"]}
        if inputs["i__valid"]:
            column = beat["sample"] % self.columns
            first.update(sample=beat["sample"], tile=beat["tile"], last=beat["last"],
                         active=[(word >> column) & 1 for word in inputs["active"]])
        self.first = first
