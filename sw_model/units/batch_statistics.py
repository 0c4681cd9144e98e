"""Per-cycle model of hw/core/batch_statistics.py; the arithmetic is the golden model's."""

from contract.batch_norm import BACK_BITS, BACK_FRAC, RECIP_BITS, TABLE_FRAC
from sw_model.golden_batch_norm import inv_sqrt_parts, rne_int, sat_s_int

__all__ = ["BatchStatisticsModel", "LATENCY"]

#: Cycles from ``finish`` to its ``o``.
LATENCY = 4


class BatchStatisticsModel:
    """The sums ``S1``, ``S2`` over the masked lanes of each ``add`` (restarted by ``clear``);
    a ``finish`` gives, ``LATENCY`` cycles later, the neuron's constants of
    docs/ARITHMETIC.md, "Batch normalisation", step 1b (golden_batch_norm's rounding, table and
    saturation), from the sums as they stand in its cycle and the settings then (held while a
    neuron is in flight). ``o``'s fields other than ``valid`` are meaningful only while it is
    high, and are compared only then.

    ``mutate`` perturbs one rule only to show that the bench notices: ``"h-floor"`` (h rounded
    down), ``"momentum"`` (one more shift), ``"var-once"`` (the variance's second
    reciprocal product skipped, i.e. ``B`` times too large).
    """

    def __init__(self, lanes, mutate=None):
        self.lanes, self.mutate = lanes, mutate
        self.s1 = self.s2 = 0
        self.pipe = [None] * LATENCY
        self.coverage = {"training": 0, "inference": 0, "split": 0, "h_saturated": 0,
                         "mean_moved": 0, "var_moved": 0, "clear_with_add": 0}

    def outputs(self, inputs):
        out = self.pipe[-1]
        return {"o": out} if out else {"o": {"valid": 0}}

    def constants(self, s1, s2, fin, st):
        """The finished neuron's ``o`` fields."""
        batch, rf, mom, inv_b = st["batch"], st["stat_frac"], st["momentum"], st["inv_b"]
        mean, var = fin["mean"], fin["var"]
        if self.mutate == "momentum":
            mom += 1
        if st["training"]:
            q = batch * s2 - s1 * s1
            a = q + ((batch * batch) << st["eps_log2"])
        else:
            a = (var + (1 << (st["eps_log2"] + rf))) << rf
        r, j = (int(v) for v in inv_sqrt_parts(a))
        shift = TABLE_FRAC + j + st["frac_diff"] - BACK_FRAC
        scaled = fin["gamma"] * batch * r
        h = scaled >> shift if self.mutate == "h-floor" else int(rne_int(scaled, shift))
        h = int(sat_s_int(h, BACK_BITS))
        cov = self.coverage
        cov["split"] += j > 0
        cov["h_saturated"] += abs(h) == (1 << (BACK_BITS - 1)) - (h > 0)
        if st["training"]:
            cov["training"] += 1
            batch_mean = (s1 * inv_b) >> (RECIP_BITS - rf)
            first = (q * inv_b) >> RECIP_BITS
            batch_var = first if self.mutate == "var-once" else \
                (first * inv_b) >> (RECIP_BITS - rf)
            new_mean = mean + ((batch_mean - mean) >> mom)
            new_var = var + ((batch_var - var) >> mom)
            cov["mean_moved"] += new_mean != mean
            cov["var_moved"] += new_var != var
            mean, var = new_mean, new_var
        else:
            cov["inference"] += 1
        return {"valid": 1, "s1": s1, "r": r, "j": j, "h": h, "mean": mean, "var": var}

    def step(self, inputs):
        add, fin = inputs["add"], inputs["finish"]
        done = self.constants(self.s1, self.s2, fin, inputs) if fin["valid"] else None
        self.pipe = [done] + self.pipe[:-1]
        if add["valid"]:
            kept = [q for q in range(self.lanes) if add["mask"] >> q & 1]
            base1, base2 = (0, 0) if add["clear"] else (self.s1, self.s2)
            self.coverage["clear_with_add"] += bool(add["clear"] and fin["valid"])
            self.s1 = base1 + sum(add["y"][q] for q in kept)
            self.s2 = base2 + sum(add["y"][q] ** 2 for q in kept)
