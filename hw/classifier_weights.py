"""Regenerates a layer's fixed local classifier (and its feedback) column by column."""

from amaranth.hdl import Module, Mux, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .arith import classifier_weight
from .lfsr_prng import LfsrPrng

__all__ = ["ClassifierWeights"]


class ClassifierWeights(wiring.Component):
    """One beat per neuron ``j``: the ``classes`` weights ``m[:, j]`` (docs/ARITHMETIC.md, "What
    is drawn"), or the sign-concordant feedback ``sign(m) * |m'|`` with ``feedback="sign"``.

    Members
    -------
    seed, feedback_seed : In(width)
        Seeds of the classifier stream and (sign mode) the magnitude stream.
    load : In(1)
        Replay from the seeds: the next beats are neuron 0, 1, ... again.
    o : Out(stream.Signature(ArrayLayout(signed(bits + 1), classes)))
        Always valid; advances on every transfer.
    """

    def __init__(self, width, classes, bits, feedback="symmetric"):
        if feedback not in ("symmetric", "sign"):
            raise ValueError(f"feedback must be symmetric or sign, not {feedback!r}")
        self.width, self.classes, self.bits, self.feedback = width, classes, bits, feedback
        super().__init__({
            "seed": In(width),
            "feedback_seed": In(width),
            "load": In(1),
            "o": Out(stream.Signature(data.ArrayLayout(signed(bits + 1), classes))),
        })

    def elaborate(self, platform):
        m = Module()
        streams = [("classifier", self.seed)]
        if self.feedback == "sign":
            streams.append(("magnitude", self.feedback_seed))
        prngs = []
        for name, seed in streams:
            prng = LfsrPrng(self.width, self.bits, self.classes)
            m.submodules[name] = prng
            m.d.comb += [prng.seed.eq(seed), prng.load.eq(self.load),
                         prng.o.ready.eq(self.o.ready)]
            prngs.append(prng)
        m.d.comb += self.o.valid.eq(1)
        chunk = lambda prng, c: prng.o.payload[c * self.bits:(c + 1) * self.bits]
        for c in range(self.classes):
            weight = classifier_weight(chunk(prngs[0], c), self.bits)
            if self.feedback == "sign":
                mag = classifier_weight(chunk(prngs[1], c), self.bits)
                mag = Mux(mag < 0, -mag, mag)
                weight = Mux(weight < 0, -mag, mag)
            m.d.comb += self.o.payload[c].eq(weight)
        return m
