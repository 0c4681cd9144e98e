"""Per-cycle model of hw/skid_buffer.py."""

__all__ = ["SkidBufferModel"]


class SkidBufferModel:
    """``o`` is ``i`` while the skid is empty, the skid while it is full; ``i`` is ready while
    it is empty. The skid fills with the beat ``i`` offers while empty and ``o`` does not take,
    and empties when ``o`` takes it. ``stalls`` (``copies`` bits) are each ``~i.ready``;
    ``o_valids`` (``valid_copies`` bits) each ``o.valid``.

    Payloads are opaque values (the bench's packed integers). While empty the skid register
    keeps whatever ``i`` offered last, valid or not: ``o.payload`` is checked every cycle.
    """

    def __init__(self, copies=0, valid_copies=0):
        self.copies, self.valid_copies = copies, valid_copies
        self.full, self.skid = False, 0

    def outputs(self, inputs):
        out = {"o__valid": int(self.full or bool(inputs["i__valid"])),
               "o__payload": self.skid if self.full else inputs["i__payload"],
               "i__ready": int(not self.full)}
        if self.copies:
            out["stalls"] = (1 << self.copies) - 1 if self.full else 0
        if self.valid_copies:
            out["o_valids"] = (1 << self.valid_copies) - 1 if out["o__valid"] else 0
        return out

    def step(self, inputs):
        if not self.full:
            self.skid = inputs["i__payload"]
        self.full = not inputs["o__ready"] and (self.full or bool(inputs["i__valid"]))
