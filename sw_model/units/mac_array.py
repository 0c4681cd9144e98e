"""Per-cycle model of hw/mac_array.py (exact integers)."""

from math import ceil, log2

__all__ = ["MacArrayModel", "accumulator_bits"]


def accumulator_bits(a_bits, b_bits, depth):
    return a_bits + b_bits + max(0, ceil(log2(depth)))


class MacArrayModel:
    """``acc[p][q] += a[p] * b[q]`` per accepted beat; a ``last`` beat's sums appear next cycle.

    Beats are dictionaries ``{"a": [...], "b": [...], "first": 0|1, "last": 0|1}``; the
    testbench packs and unpacks them.
    """

    def __init__(self, rows, cols, acc_bits):
        self.rows, self.cols, self.acc_bits = rows, cols, acc_bits
        self.acc = [0] * (rows * cols)
        self.out_valid = 0
        self.out = [0] * (rows * cols)

    def outputs(self, inputs):
        return {"o__valid": self.out_valid, "o__payload": self.out,
                "i__ready": int(not self.out_valid or inputs["o__ready"])}

    def step(self, inputs):
        ready = not self.out_valid or inputs["o__ready"]
        if self.out_valid and inputs["o__ready"]:
            self.out_valid = 0
        if inputs["i__valid"] and ready:
            beat = inputs["i__beat"]
            for p in range(self.rows):
                for q in range(self.cols):
                    k = p * self.cols + q
                    base = 0 if beat["first"] else self.acc[k]
                    self.acc[k] = base + beat["a"][p] * beat["b"][q]
                    assert -(1 << self.acc_bits) < self.acc[k] < (1 << self.acc_bits), \
                        "accumulation deeper than the array was sized for"
            if beat["last"]:
                self.out = list(self.acc)
                self.out_valid = 1
