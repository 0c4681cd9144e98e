"""Regenerates a layer's fixed local classifier M and its feedback K column by column."""

from amaranth.hdl import Cat, Const, Module, Mux, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import classifier_weight
from ..lfsr_prng import LfsrPrng

__all__ = ["ClassifierWeights", "odd_part", "from_odd_part"]


def odd_part(weight):
    """A classifier weight without its lowest bit, which is always 1 (the weights are odd):
    what a register needs to hold of it."""
    return weight[1:]


def from_odd_part(bits):
    """The classifier weight whose :func:`odd_part` is ``bits``."""
    return Cat(Const(1, 1), bits).as_signed()


def _with_sign_of(w, f):
    """``sign(w) * |f|`` of two odd weights, without an adder: ``f`` where their signs agree,
    else ``-f``, and an odd weight's negation is its bits above the low one inverted
    (``-(2v + 1) = 2 * ~v + 1``). (Two negations in a row were the feedback registers'
    slowest fill path on an 8 x 8 ULX3S build.)"""
    flip = (f[-1] ^ w[-1]).replicate(len(f) - 1)
    return Cat(Const(1, 1), f[1:] ^ flip).as_signed()


class ClassifierWeights(wiring.Component):
    """One beat per neuron ``j``: the ``classes`` weights ``m[:, j]`` of the local classifier
    (docs/ARITHMETIC.md, "What is drawn") and ``k[:, j]`` of the feedback that projects the
    errors back: ``k = m`` (symmetric), or ``k = sign(m) * |m'|`` while ``sign`` is high
    (sign-concordant; ``m'`` drawn like ``m`` from ``feedback_seed``).

    Parameters
    ----------
    width : int
        LFSR width.
    classes, bits : int
        Weights per beat; bits per LFSR chunk (a weight is ``signed(bits + 1)``).
    sign_feedback : bool
        Build the sign-concordant feedback (its magnitude LFSR, ``feedback_seed`` and
        ``sign``); without it ``k`` is ``m``.
    registered_controls : bool
        The PRNGs' ``load`` and ``ready`` reach registers of their own only
        (:class:`~hw.lfsr_prng.LfsrPrng`): the same weights every cycle, for a consumer whose
        ``o.ready`` or ``load`` comes late in its cycle.

    Members
    -------
    seed : In(width)
        Seed of the classifier stream.
    feedback_seed, sign : In(width), In(1)
        (``sign_feedback`` only) Seed of the magnitude stream; run-time choice of ``k``.
    load : In(1)
        Replay from the seeds: the next beats are neuron 0, 1, ... again (takes priority over
        a transfer in the same cycle).
    o : Out(stream.Signature(StructLayout({"m", "k"}: ArrayLayout(signed(bits + 1), classes))))
        Always valid; advances on every transfer. Combinational from the LFSR registers.
    """

    def __init__(self, width, classes, bits, sign_feedback=False, registered_controls=False):
        self.width, self.classes, self.bits = width, classes, bits
        self.sign_feedback, self.registered_controls = sign_feedback, registered_controls
        weights = data.ArrayLayout(signed(bits + 1), classes)
        self.o_layout = data.StructLayout({"m": weights, "k": weights})
        members = {
            "seed": In(width),
            "load": In(1),
            "o": Out(stream.Signature(self.o_layout)),
        }
        if sign_feedback:
            members.update(feedback_seed=In(width), sign=In(1))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        streams = [("classifier_prng", self.seed)]
        if self.sign_feedback:
            streams.append(("magnitude_prng", self.feedback_seed))
        prngs = []
        for name, seed in streams:
            prng = LfsrPrng(self.width, self.bits, self.classes,
                            registered_controls=self.registered_controls)
            m.submodules[name] = prng
            m.d.comb += [prng.seed.eq(seed), prng.load.eq(self.load),
                         prng.o.ready.eq(self.o.ready)]
            prngs.append(prng)
        m.d.comb += self.o.valid.eq(1)

        def weight(prng, c):
            return classifier_weight(prng.o.payload[c * self.bits:(c + 1) * self.bits],
                                     self.bits)

        for c in range(self.classes):
            w = weight(prngs[0], c)
            m.d.comb += self.o.payload.m[c].eq(w)
            if self.sign_feedback:
                m.d.comb += self.o.payload.k[c].eq(
                    Mux(self.sign, _with_sign_of(w, weight(prngs[1], c)), w))
            else:
                m.d.comb += self.o.payload.k[c].eq(w)
        return m
