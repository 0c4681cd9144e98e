"""Per-cycle model of hw/host_link/sample_shuffler.py: the states of its docstring, the order
from the shuffle rule of docs/ARITHMETIC.md written again here step by step (sw_model/resident.py
draws it vectorised; the bench checks both)."""

from sw_model.lfsr import LfsrStream
from sw_model.resident import DRAW_BITS

__all__ = ["SampleShufflerModel"]


class SampleShufflerModel:
    """``outputs`` what the shuffler drives this cycle, ``step`` takes the clock edge."""

    def __init__(self, capacity, lfsr_width=31, draw_bits=DRAW_BITS):
        """``draw_bits`` other than 16 is only to show that the bench notices."""
        self.capacity, self.lfsr_width, self.draw_bits = capacity, lfsr_width, draw_bits
        self.state = "IDLE"
        self.perm = [0] * capacity
        self.visit = self.left = self.product = self.pick = self.chosen = 0
        self.draws = None

    def outputs(self, inputs):
        out = {"o__valid": int(self.state == "OFFER")}
        if self.state == "OFFER":
            out["o__payload"] = self.chosen
        return out

    def _draw(self):
        return int(self.draws.draw(1)[0]) & ((1 << self.draw_bits) - 1)

    def step(self, inputs):
        state = self.state
        if inputs["start"]:
            self.draws = LfsrStream(self.lfsr_width, inputs["seed"] or 1, 16)
            self.visit, self.left = 0, inputs["count"]
            self.state = "IDENTITY"
            return
        if state == "IDENTITY":
            self.perm[self.visit] = self.visit
            if self.visit + 1 == self.left:
                self.visit, self.state = 0, "DRAW"
            else:
                self.visit += 1
        elif state == "DRAW":
            self.product = self._draw() * self.left
            self.state = "PICK"
        elif state == "PICK":
            self.pick = self.visit + (self.product >> self.draw_bits)
            self.state = "READ_J"
        elif state == "READ_J":
            self.chosen = self.perm[self.pick]
            self.state = "READ_I"
        elif state == "READ_I":
            self.perm[self.pick] = self.perm[self.visit]
            self.state = "OFFER"
        elif state == "OFFER" and inputs["o__ready"]:
            self.visit, self.left = self.visit + 1, self.left - 1
            self.state = "IDLE" if self.left == 0 else "DRAW"
