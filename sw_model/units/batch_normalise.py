"""Per-cycle model of hw/core/batch_normalise.py; the arithmetic is the golden model's."""

from contract.batch_norm import TABLE_FRAC, XHAT_BITS
from sw_model.golden_batch_norm import rne_int, sat_s_int

__all__ = ["BatchNormaliseModel", "LATENCY"]

#: Cycles from a word to its output.
LATENCY = 3


class BatchNormaliseModel:
    """A word's ``z``, ``xhat`` and ``active`` (docs/ARITHMETIC.md, "Batch normalisation",
    step 1b, with golden_batch_norm's rounding) ``LATENCY`` cycles after it, from the neuron's
    constants and settings of its cycle (held while it passes). ``o``'s fields other than
    ``valid`` are compared only while it is high.

    ``mutate`` perturbs one rule only to show that the bench notices: ``"active-top"`` (``zz``
    equal to ``2**act_bits`` still active), ``"xhat-floor"`` (``xhat`` rounded down).
    """

    def __init__(self, lanes, act_bits, mutate=None):
        self.lanes, self.act_bits, self.mutate = lanes, act_bits, mutate
        self.pipe = [None] * LATENCY
        self.coverage = {"training": 0, "inference": 0, "xhat_saturated": 0, "z_clipped_low": 0,
                         "z_clipped_high": 0, "active": 0, "top_edge": 0}

    def outputs(self, inputs):
        out = self.pipe[-1]
        return {"o": out} if out else {"o": {"valid": 0}}

    def word(self, i, st):
        act = self.act_bits
        top = (1 << act) - 1
        shift = TABLE_FRAC + st["j"] - st["act_frac"]
        z, xhats, active = [], [], 0
        cov = self.coverage
        cov["training" if st["training"] else "inference"] += 1
        for q, y in enumerate(i["y"]):
            c = (st["batch"] * y - st["s1"] if st["training"]
                 else (y << st["stat_frac"]) - st["mean"])
            product = c * st["r"]
            rounded = product >> shift if self.mutate == "xhat-floor" else \
                int(rne_int(product, shift))
            xhat = int(sat_s_int(rounded, XHAT_BITS))
            zz = int(rne_int(st["gamma"] * xhat, st["weight_frac"])) + (1 << (act - 1))
            live = 0 <= zz <= (top + 1 if self.mutate == "active-top" else top)
            cov["xhat_saturated"] += xhat != rounded
            cov["z_clipped_low"] += zz < 0
            cov["z_clipped_high"] += zz > top
            cov["top_edge"] += zz == top
            cov["active"] += live
            xhats.append(xhat)
            z.append(min(max(zz, 0), top))
            active |= int(live) << q
        return {"valid": 1, "tag": i["tag"], "z": z, "xhat": xhats, "active": active}

    def step(self, inputs):
        i = inputs["i"]
        self.pipe = [self.word(i, inputs) if i["valid"] else None] + self.pipe[:-1]
