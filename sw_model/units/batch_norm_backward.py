"""Per-cycle model of hw/core/batch_norm_backward.py; the arithmetic is the golden model's."""

from contract.batch_norm import BACK_FRAC, RECIP_BITS
from sw_model.golden_batch_norm import rne_int, sat_s_int

__all__ = ["BatchNormBackwardModel", "LATENCY"]

#: Cycles from an ``apply`` sample to its deltas on ``o``.
LATENCY = 2


class BatchNormBackwardModel:
    """The sums ``P1``, ``P2`` per lane (restarted by ``clear``); ``m1``, ``m2`` taken at
    ``finish`` from the sums as they stand; a sample's deltas ``LATENCY`` cycles after it
    (docs/ARITHMETIC.md, "Batch normalisation", step 5, golden_batch_norm's rounding), with
    ``U`` formed from the ``m1``, ``m2`` of its cycle and ``d`` from the ``h`` a cycle later;
    ``bias_grad`` the sum of the deltas out since the last ``clear``. ``o``'s fields other than
    ``valid`` are compared only while it is high.

    ``mutate`` perturbs one rule only to show that the bench notices: ``"m1-round"`` (``m1``
    rounded to nearest instead of down), ``"no-m2"`` (the ``xhat * m2`` term left out, the
    statistics treated as constants), ``"d-unmasked"`` (inactive samples keep their delta).
    """

    def __init__(self, lanes, delta_bits, mutate=None):
        self.lanes, self.delta_bits, self.mutate = lanes, delta_bits, mutate
        self.p1, self.p2 = [0] * lanes, [0] * lanes
        self.m1, self.m2 = [0] * lanes, [0] * lanes
        self.bias = [0] * lanes
        self.centred = None                  # (tag, U per lane, active) or None
        self.out = None
        self.coverage = {"saturated": 0, "inactive": 0, "negative_m2": 0, "ties": 0}

    def outputs(self, inputs):
        o = {"valid": 1, "tag": self.out[0], "d": self.out[1]} if self.out else {"valid": 0}
        return {"o": o, "gamma_grad": list(self.p2), "bias_grad": list(self.bias)}

    def _u(self, sample, af):
        u = []
        for r in range(self.lanes):
            pz, xhat = sample["pz"][r], sample["xhat"][r]
            term = 0 if self.mutate == "no-m2" else int(rne_int(xhat * self.m2[r], af))
            u.append((pz << af) - self.m1[r] - term)
        return u

    def _deltas(self, inputs):
        tag, u, active = self.centred
        af, top = inputs["act_frac"], self.delta_bits
        shift = af + BACK_FRAC
        d = []
        for r in range(self.lanes):
            product = u[r] * inputs["h"][r]
            rounded = int(rne_int(product, shift))
            value = int(sat_s_int(rounded, top))
            live = active >> r & 1 or self.mutate == "d-unmasked"
            self.coverage["saturated"] += value != rounded
            self.coverage["inactive"] += not live
            self.coverage["ties"] += product % (1 << shift) == 1 << (shift - 1)
            d.append(value if live else 0)
        return tag, d

    def step(self, inputs):
        acc, app, af = inputs["accumulate"], inputs["apply"], inputs["act_frac"]
        inv_b = inputs["inv_b"]
        out = self._deltas(inputs) if self.centred else None
        if acc["valid"] and acc["clear"]:
            self.bias = [0] * self.lanes
        elif out:
            live = self.centred[2]
            self.bias = [b + (d if live >> r & 1 else 0)
                         for r, (b, d) in enumerate(zip(self.bias, out[1]))]
        self.out = out
        self.centred = (app["tag"], self._u(app, af), app["active"]) if app["valid"] else None
        if inputs["finish"]:
            down = RECIP_BITS - af
            if self.mutate == "m1-round":
                self.m1 = [int(rne_int(p * inv_b, down)) for p in self.p1]
            else:
                self.m1 = [(p * inv_b) >> down for p in self.p1]
            self.m2 = [(p * inv_b) >> RECIP_BITS for p in self.p2]
            self.coverage["negative_m2"] += sum(v < 0 for v in self.m2)
        if acc["valid"]:
            keep = not acc["clear"]
            self.p1 = [(p if keep else 0) + pz for p, pz in zip(self.p1, acc["pz"])]
            self.p2 = [(p if keep else 0) + pz * x
                       for p, pz, x in zip(self.p2, acc["pz"], acc["xhat"])]
