"""Per-cycle model of hw/core/forward_drain.py; the arithmetic is the golden model's."""

import numpy as np

from sw_model.fixedpoint import saturate_unsigned, shift_rne

__all__ = ["ForwardDrainModel"]


class ForwardDrainModel:
    """Three registers, always moving (docs/ARITHMETIC.md, "One training step", steps 1 and 2).

    * At a row's cycle: its place, whether each sum is positive (``acc > 0``) and the keep bits
      (``draw >= dropout`` while ``drop``; every lane is kept without dropout or ``drop``).
    * A cycle later, with the rounded sums that arrive then: ``y = sat_u(rounded, act_bits)``
      and the clipped ReLU's derivative ``acc > 0 and rounded <= 2**act_bits - 1``.
    * A cycle later again, the output, with that cycle's ``drop``, ``keep_scale`` and
      ``neurons``: ``y`` is 0 where dropped, ``sat_u(rne(y * keep_scale, 8), act_bits)`` where
      kept while ``drop``, else ``y``; ``active`` is the derivative and the keep bit, 0 for a
      neuron ``n >= neurons``; ``write`` is a valid row of a real neuron.

    Every register takes its inputs every cycle, a row or not (the outputs are not masked by
    ``valid``); ``busy`` is any valid bit of the three.

    ``rounding`` replaces the contract's rounding of the kept activations, and ``relu_top`` the
    largest rounded sum that is still active, only to show that the bench notices.
    """

    def __init__(self, lanes, act_bits, dropout=True, rounding=shift_rne, relu_top=None):
        self.lanes, self.act_bits, self.has_dropout = lanes, act_bits, dropout
        self.rounding = rounding
        self.relu_top = (1 << act_bits) - 1 if relu_top is None else relu_top
        at = {"valid": 0, "n": 0, "group": 0, "tile": 0, "row": 0}
        self.placed = {"at": dict(at), "positive": [0] * lanes, "keep": [0] * lanes}
        self.clipped = {"at": dict(at), "y": [0] * lanes, "positive": [0] * lanes,
                        "keep": [0] * lanes}
        self.out = {"at": dict(at), "write": 0, "y": [0] * lanes, "active": 0}
        self.coverage = {"saturated": 0, "clipped_at_zero": 0, "relu_edge": 0, "dropped": 0,
                         "kept_scaled": 0, "scale_saturated": 0, "past_neurons": 0,
                         "active": 0, "positive_to_zero": 0}

    def outputs(self, inputs):
        busy = self.placed["at"]["valid"] or self.clipped["at"]["valid"] or \
            self.out["at"]["valid"]
        return {"o": self.out, "busy": int(busy)}

    def _output_stage(self, inputs):
        c = self.clipped
        drop = self.has_dropout and inputs["drop"]
        y = np.array(c["y"], dtype=np.float64)
        if drop:
            scaled = self.rounding(y * float(inputs["keep_scale"]), 8)
            saturated = scaled > (1 << self.act_bits) - 1
            y = saturate_unsigned(scaled, self.act_bits)
        else:
            saturated = np.zeros(self.lanes, dtype=bool)
        keep = np.array(c["keep"], dtype=bool)
        real = c["at"]["n"] < inputs["neurons"]
        active = np.array(c["positive"], dtype=bool) & keep & real
        if c["at"]["valid"]:
            cov = self.coverage
            cov["dropped"] += int((~keep).sum())
            cov["kept_scaled"] += int(keep.sum()) if drop else 0
            cov["scale_saturated"] += int((saturated & keep).sum())
            cov["past_neurons"] += not real
            cov["active"] += int(active.sum())
        return {"at": dict(c["at"]), "write": int(bool(c["at"]["valid"] and real)),
                "y": [int(v) for v in y * keep],
                "active": sum(int(a) << q for q, a in enumerate(active))}

    def _clip_stage(self, inputs):
        p = self.placed
        rounded = np.array(inputs["rounded"], dtype=np.float64)
        y = saturate_unsigned(rounded, self.act_bits)
        positive = np.array(p["positive"], dtype=bool) & (rounded <= self.relu_top)
        if p["at"]["valid"]:
            cov = self.coverage
            cov["saturated"] += int((rounded > (1 << self.act_bits) - 1).sum())
            cov["clipped_at_zero"] += int((rounded < 0).sum())
            sums_positive = np.array(p["positive"], dtype=bool)
            cov["relu_edge"] += int((sums_positive & (rounded == 1 << self.act_bits)).sum())
            cov["positive_to_zero"] += int((sums_positive & (rounded == 0)).sum())
        return {"at": dict(p["at"]), "y": [int(v) for v in y],
                "positive": [int(v) for v in positive], "keep": list(p["keep"])}

    def _place_stage(self, inputs):
        row = inputs["i"]
        sums = np.array(row["sums"], dtype=np.float64)
        if self.has_dropout and inputs["drop"]:
            keep = np.array(row["draws"]) >= inputs["dropout"]
        else:
            keep = np.ones(self.lanes, dtype=bool)
        return {"at": dict(row["at"]), "positive": [int(v) for v in sums > 0],
                "keep": [int(v) for v in keep]}

    def step(self, inputs):
        out, clipped = self._output_stage(inputs), self._clip_stage(inputs)
        self.placed, self.clipped, self.out = self._place_stage(inputs), clipped, out
