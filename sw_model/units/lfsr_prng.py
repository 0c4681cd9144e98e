"""Per-cycle model of hw/lfsr_prng.py."""

from sw_model.lfsr import LfsrStream

__all__ = ["LfsrPrngModel"]


class LfsrPrngModel:
    """Beats of ``lanes`` chunks of the LFSR stream; ``load`` restarts it from ``seed``."""

    def __init__(self, width, chunk_bits, lanes=1, taps=None):
        """``taps`` overrides the contract's recurrence (only to show that tests notice)."""
        self.width, self.chunk_bits, self.lanes, self.taps = width, chunk_bits, lanes, taps
        self._restart(1)

    def _restart(self, seed):
        self.stream = LfsrStream(self.width, seed or 1, self.chunk_bits, self.taps)
        self.beat = self.stream.draw(self.lanes)

    def outputs(self, inputs):
        payload = 0
        for k, chunk in enumerate(self.beat):
            payload |= int(chunk) << (k * self.chunk_bits)
        return {"o__valid": 1, "o__payload": payload}

    def step(self, inputs):
        if inputs["load"]:
            self._restart(inputs["seed"])
        elif inputs["o__ready"]:
            self.beat = self.stream.draw(self.lanes)
