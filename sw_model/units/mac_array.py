"""Per-cycle model of hw/mac_array.py (exact integers)."""

from math import ceil, log2

__all__ = ["MacArrayModel", "accumulator_bits"]


def accumulator_bits(a_bits, b_bits, depth):
    return a_bits + b_bits + max(0, ceil(log2(depth)))


class MacArrayModel:
    """``acc[p][q] += a[p] * b[q]`` per beat, in two stages: a beat's products are registered,
    then added; a ``last`` beat's sums appear on ``o`` two cycles after it is accepted.

    The products move on every cycle except a ``last`` beat's while a finished sum still waits
    on ``o``; ``i`` is ready while the products' register is empty or moving on. Neither
    depends on ``o.ready`` (but see ``sum_register``).

    ``operand_stage``: a stage in front of the products holds the accepted beat; it moves into
    the products' register whenever that is empty or moving on, and ``i`` is ready while the
    stage is empty or moving on; a ``last`` beat's sums appear three cycles after it.

    Without ``sum_register`` (pipelined only): ``o`` shows the accumulators; the products do
    not move on while a finished sum is shown and not taken (``o.ready`` low), so ``i`` is
    ready only as that allows.

    Not ``pipelined`` (the array built without the products' register): a beat is multiplied
    and added as it is accepted, a ``last`` beat's sums appear the next cycle, and ``i``
    stalls only a ``last`` beat while a finished sum still waits on ``o``.

    ``ready_ahead`` (without ``sum_register``): ``ready_next`` says what ``o.ready`` will be in
    the next cycle, and whether a shown sum waits is decided a cycle ahead from it.

    ``ending``: a sum ends at this edge (``o`` valid from the next cycle until taken).

    Pipelined, the array takes no beat in the cycle after a reset (the model's first step):
    its lanes' copies of its valid bits are cleared then.

    Beats are dictionaries ``{"a": [...], "b": [...], "first": 0|1, "last": 0|1}``; the
    testbench packs and unpacks them.
    """

    def __init__(self, rows, cols, acc_bits, pipelined=True, operand_stage=False,
                 sum_register=True, ready_ahead=False):
        self.rows, self.cols, self.acc_bits = rows, cols, acc_bits
        self.pipelined, self.operand_stage = pipelined, operand_stage
        self.sum_register, self.ready_ahead = sum_register, ready_ahead
        self.waiting = False                # (ready_ahead) a shown sum is not taken this cycle
        self.acc = [0] * (rows * cols)
        self.held = None                    # the beat whose products are registered
        self.staged = None                  # the beat whose operands are registered
        self.out_valid, self.out = 0, [0] * (rows * cols)
        self.settling = pipelined           # the cycle after a reset

    def _advance(self, inputs):
        if self.held is None:
            return False
        if self.sum_register:
            return not (self.held["last"] and self.out_valid)
        if self.ready_ahead:
            return not self.waiting
        return not (self.out_valid and not inputs["o__ready"])

    def _products_ready(self, inputs):
        return self.held is None or self._advance(inputs)

    def _move(self, inputs):
        """The staged operands move into the products' register at this edge."""
        return self.staged is not None and self._products_ready(inputs)

    def ready(self, inputs):
        if not self.pipelined:
            return not (self.out_valid and inputs["i__beat"]["last"])
        if self.settling:
            return False
        if self.operand_stage:
            return self.staged is None or self._move(inputs)
        return self._products_ready(inputs)

    def _taken(self, inputs):
        """The beat accepted at this edge, or None."""
        return inputs["i__beat"] if inputs["i__valid"] and self.ready(inputs) else None

    def _adding(self, inputs):
        """The beat added at this edge: the one accepted (one stage), or the registered one
        moving on (two); or None."""
        if not self.pipelined:
            return self._taken(inputs)
        return self.held if self._advance(inputs) else None

    def outputs(self, inputs):
        shown = self.out if self.sum_register else list(self.acc)
        adding = self._adding(inputs)
        return {"o__valid": self.out_valid, "o__payload": shown,
                "i__ready": int(self.ready(inputs)),
                "ending": int(adding is not None and bool(adding["last"]))}

    def _add(self, beat):
        for p in range(self.rows):
            for q in range(self.cols):
                k = p * self.cols + q
                base = 0 if beat["first"] else self.acc[k]
                self.acc[k] = base + beat["a"][p] * beat["b"][q]
                assert -(1 << self.acc_bits) < self.acc[k] < (1 << self.acc_bits), \
                    "accumulation deeper than the array was sized for"

    def step(self, inputs):
        """Returns the beat accepted at this edge, or None."""
        # (All from before the edge.)
        advance, taken, adding = self._advance(inputs), self._taken(inputs), self._adding(inputs)
        move = self.operand_stage and self._move(inputs)
        if self.out_valid and inputs["o__ready"]:
            self.out_valid = 0
        if adding is not None:
            self._add(adding)
            if adding["last"]:
                self.out, self.out_valid = list(self.acc), 1
        if self.ready_ahead:
            self.waiting = bool(self.out_valid) and not inputs["ready_next"]
        if self.operand_stage:
            if move:
                self.held = self.staged
            elif advance:
                self.held = None
            if move or taken is not None:
                self.staged = taken
        elif self.pipelined and (advance or taken is not None):
            self.held = taken
        self.settling = False
        return taken
