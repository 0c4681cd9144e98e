"""Per-cycle model of hw/mac_array.py (exact integers)."""

from math import ceil, log2

from .registered_stage import RegisteredStage

__all__ = ["MacArrayModel", "accumulator_bits"]


def accumulator_bits(a_bits, b_bits, depth):
    return a_bits + b_bits + max(0, ceil(log2(depth)))


class MacArrayModel(RegisteredStage):
    """``acc[p][q] += a[p] * b[q]`` per accepted beat; a ``last`` beat's sums appear next cycle.

    ``i`` is ready except for a ``last`` beat while a finished sum still waits on ``o``: the
    ready does not depend on ``o.ready``, so no combinational path crosses the array.

    Beats are dictionaries ``{"a": [...], "b": [...], "first": 0|1, "last": 0|1}``; the
    testbench packs and unpacks them.
    """

    def __init__(self, rows, cols, acc_bits):
        super().__init__([0] * (rows * cols))
        self.rows, self.cols, self.acc_bits = rows, cols, acc_bits
        self.acc = [0] * (rows * cols)

    def ready(self, inputs):
        return not (self.out_valid and inputs["i__beat"]["last"])

    def accept(self, beat):
        for p in range(self.rows):
            for q in range(self.cols):
                k = p * self.cols + q
                base = 0 if beat["first"] else self.acc[k]
                self.acc[k] = base + beat["a"][p] * beat["b"][q]
                assert -(1 << self.acc_bits) < self.acc[k] < (1 << self.acc_bits), \
                    "accumulation deeper than the array was sized for"
        return list(self.acc) if beat["last"] else None
