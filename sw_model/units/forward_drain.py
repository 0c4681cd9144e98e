"""Per-cycle model of hw/core/forward_drain.py; the arithmetic is the golden model's."""

import numpy as np

from sw_model.fixedpoint import saturate_unsigned, shift_rne

__all__ = ["ForwardDrainModel"]


class ForwardDrainModel:
    """Three registers, always moving (docs/ARITHMETIC.md, "One training step", steps 1 and 2).

    * At a row's cycle: its place, whether each sum is positive (``acc > 0``) and the keep bits
      (``draw >= dropout`` while ``drop``; every lane is kept without dropout or ``drop``).
    * A cycle later, with the rounded sums and the ``keep_scale`` of that cycle:
      ``y = sat_u(rounded, act_bits)``, the product ``y * keep_scale`` and the clipped ReLU's
      derivative ``acc > 0 and rounded <= 2**act_bits - 1``.
    * A cycle later again, the output, with that cycle's ``drop`` and ``neurons``: ``y`` is 0
      where dropped, ``sat_u(rne(product, 8), act_bits)`` where kept while ``drop``, else ``y``; ``active`` is the derivative and the keep bit, 0 for a
      neuron ``n >= neurons``; ``write`` is a valid row of a real neuron.

    Every register takes its inputs every cycle, a row or not (the outputs are not masked by
    ``valid``); ``busy`` is any valid bit of the three.

    With ``pooling`` (docs/ARITHMETIC.md, "Convolutional layers", step 1, and
    sw_model.golden_conv.max_pool): ``pool`` is read at the row's cycle. A valid row with
    ``pool`` is element ``window`` of its 2 x 2 window; at the output, before dropout, element 0
    starts its row's running maximum (``y``, derivative, index 0 per lane), elements 1 and 2
    replace it where their ``y`` is strictly larger (the first of equal maxima wins), and
    element 3 merges the same way without keeping the result. Every pooled row leaves with the
    merged values (for elements 0 to 2, the maximum so far), scaled and masked by its own keep
    bits; only element 3's row is written. Other rows leave with their own values and index 0.
    ``tie="last"`` lets a later equal maximum win, only to show that the bench notices.

    ``output_register``: a fourth register, always moving, delays the output a cycle.

    ``rounding`` replaces the contract's rounding of the kept activations, and ``relu_top`` the
    largest rounded sum that is still active, only to show that the bench notices.
    """

    def __init__(self, lanes, act_bits, dropout=True, rounding=shift_rne, relu_top=None,
                 pooling=False, rows=1, tie="first", output_register=False):
        self.lanes, self.act_bits, self.has_dropout = lanes, act_bits, dropout
        self.rounding = rounding
        self.relu_top = (1 << act_bits) - 1 if relu_top is None else relu_top
        self.pooling, self.tie = pooling, tie
        at = {"valid": 0, "n": 0, "group": 0, "tile": 0, "row": 0}
        if pooling:
            at.update(window=0, column=0, position=0)
        self.placed = {"at": dict(at), "positive": [0] * lanes, "keep": [0] * lanes,
                       "pool": 0}
        self.clipped = {"at": dict(at), "y": [0] * lanes, "positive": [0] * lanes,
                        "keep": [0] * lanes, "pool": 0, "keep_scale": 0}
        self.out = {"at": dict(at), "write": 0, "y": [0] * lanes, "active": 0}
        if pooling:
            self.out["winner"] = [0] * lanes
        #: (``output_register``) the output register, a cycle behind ``out``
        self.registered = ({**self.out, "at": dict(at), "y": [0] * lanes}
                           if output_register else None)
        #: per row of the tile: the running maximum (y, derivative, window index per lane)
        self.best = [None] * rows
        self.coverage = {"saturated": 0, "clipped_at_zero": 0, "relu_edge": 0, "dropped": 0,
                         "kept_scaled": 0, "scale_saturated": 0, "past_neurons": 0,
                         "active": 0, "positive_to_zero": 0}
        if pooling:
            self.coverage.update({"pooled": 0, "tie": 0, "tie_active_differs": 0,
                                  "same_row_next_cycle": 0, "unpooled": 0,
                                  **{f"winner_{w}": 0 for w in range(4)}})
        self._last_pooled_row = None

    def outputs(self, inputs):
        busy = self.placed["at"]["valid"] or self.clipped["at"]["valid"] or \
            self.out["at"]["valid"]
        if self.registered is None:
            return {"o": self.out, "busy": int(busy)}
        return {"o": self.registered, "busy": int(busy or self.registered["at"]["valid"])}

    def _output_stage(self, inputs):
        c = self.clipped
        drop = self.has_dropout and inputs["drop"]
        y = np.array(c["y"], dtype=np.float64)
        positive = np.array(c["positive"], dtype=bool)
        winner, written = np.zeros(self.lanes, dtype=int), True
        pooled = c["pool"] and c["at"]["valid"]
        if pooled:
            row = c["at"]["row"]
            self.coverage["same_row_next_cycle"] += self._last_pooled_row == row
            y, positive, winner = self._pool(row, c["at"]["window"], y, positive)
            written = c["at"]["window"] == 3
        elif self.pooling and c["at"]["valid"]:
            self.coverage["unpooled"] += 1
        self._last_pooled_row = c["at"]["row"] if pooled else None
        if drop:
            # The product of the row's (for a pooled row, its window's) ``y`` and the scale
            # read with its rounded sums (held through a window).
            scaled = self.rounding(y * float(c["keep_scale"]), 8)
            saturated = scaled > (1 << self.act_bits) - 1
            y = saturate_unsigned(scaled, self.act_bits)
        else:
            saturated = np.zeros(self.lanes, dtype=bool)
        keep = np.array(c["keep"], dtype=bool)
        real = c["at"]["n"] < inputs["neurons"]
        active = positive & keep & real
        if c["at"]["valid"]:
            cov = self.coverage
            cov["dropped"] += int((~keep).sum())
            cov["kept_scaled"] += int(keep.sum()) if drop else 0
            cov["scale_saturated"] += int((saturated & keep).sum())
            cov["past_neurons"] += not real
            cov["active"] += int(active.sum())
        out = {"at": dict(c["at"]),
               "write": int(bool(c["at"]["valid"] and real and written)),
               "y": [int(v) for v in y * keep],
               "active": sum(int(a) << q for q, a in enumerate(active))}
        if self.pooling:
            out["winner"] = [int(w) for w in winner]
        return out

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
                "positive": [int(v) for v in positive], "keep": list(p["keep"]),
                "pool": p["pool"],
                "keep_scale": inputs["keep_scale"] if self.has_dropout else 0}

    def _pool(self, row, window, y, positive):
        """Element ``window`` of the row's 2 x 2 window: the merged maximum so far, kept as the
        row's running maximum for elements 0 to 2."""
        cov = self.coverage
        if window == 0:
            best = (y, positive, np.zeros(self.lanes, dtype=int))
        else:
            best_y, best_positive, best_winner = self.best[row]
            equal = y == best_y
            cov["tie"] += int(equal.sum())
            cov["tie_active_differs"] += int((equal & (positive != best_positive)).sum())
            larger = y >= best_y if self.tie == "last" else y > best_y
            best = (np.where(larger, y, best_y), np.where(larger, positive, best_positive),
                    np.where(larger, window, best_winner))
        if window < 3:
            self.best[row] = best
        else:
            cov["pooled"] += 1
            for w in best[2]:
                cov[f"winner_{w}"] += 1
        return best

    def _place_stage(self, inputs):
        row = inputs["i"]
        sums = np.array(row["sums"], dtype=np.float64)
        if self.has_dropout and inputs["drop"]:
            keep = np.array(row["draws"]) >= inputs["dropout"]
        else:
            keep = np.ones(self.lanes, dtype=bool)
        return {"at": dict(row["at"]), "positive": [int(v) for v in sums > 0],
                "keep": [int(v) for v in keep], "pool": int(self.pooling and inputs["pool"])}

    def step(self, inputs):
        out, clipped = self._output_stage(inputs), self._clip_stage(inputs)
        if self.registered is not None:
            self.registered = self.out
        self.placed, self.clipped, self.out = self._place_stage(inputs), clipped, out
