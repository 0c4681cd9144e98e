"""Per-cycle model of hw/core/inverse_sqrt.py; the arithmetic is the golden model's."""

from sw_model.golden_batch_norm import inv_sqrt_parts

__all__ = ["InverseSqrtModel"]


class InverseSqrtModel:
    """Two registers, always moving: an argument's ``(R[u], j)`` (golden_batch_norm's
    ``inv_sqrt_parts``) appears two cycles after it, with its ``valid``. An argument of 0
    (never valid in use) gives ``j = 0`` and ``R[0]`` (the table's ``R[1]``), and so does the idle pipeline after reset. ``parts`` replaces
    the golden model's split only to show that the bench notices."""

    def __init__(self, parts=None):
        self.parts = parts or (lambda a: tuple(int(v) for v in inv_sqrt_parts(max(a, 1))))
        idle = {"valid": 0, "r": self.parts(0)[0], "j": 0}     # the table read at u = 0
        self.stages = [dict(idle), dict(idle)]
        self.coverage = {"table_only": 0, "split": 0, "wide": 0}

    def outputs(self, inputs):
        return {"o": dict(self.stages[1])}

    def step(self, inputs):
        i = inputs["i"]
        r, j = self.parts(i["a"])
        if i["valid"]:
            self.coverage["table_only" if j == 0 else "split"] += 1
            self.coverage["wide"] += i["a"] >= 1 << 40
        self.stages = [{"valid": i["valid"], "r": r, "j": j}, self.stages[0]]
