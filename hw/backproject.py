"""Backward projection: the error vector through the regenerated local classifier."""

from functools import reduce

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .arith import classifier_weight, rne_shift, saturate

__all__ = ["BackProjection"]


class BackProjection(wiring.Component):
    """``d[l] = active[l] * sat(rne(sum_c k[c][l] * e[c], delta_shift), delta_bits)``.

    The feedback weights arrive as raw LFSR chunks and are formatted here: ``k = m`` with
    ``m = 2u - (2**bits - 1)`` (``symmetric``), or ``k = sign(m) * |2f - (2**bits - 1)|`` with
    ``f`` a chunk of the feedback stream (``sign``, sign-concordant). ``lanes`` neurons per beat.

    Members
    -------
    i : In(stream.Signature(StructLayout(errors, m, f, active)))
        ``m[l][c]`` (and ``f[l][c]``) is the chunk of class ``c`` for lane ``l``.
    o : Out(stream.Signature(ArrayLayout(signed(delta_bits), lanes)))
        Registered; ``i`` stalls only while a result waits untaken.
    """

    def __init__(self, classes, lanes, error_bits, classifier_bits, delta_shift, delta_bits,
                 feedback="symmetric"):
        if feedback not in ("symmetric", "sign"):
            raise ValueError(f"feedback must be symmetric or sign, not {feedback!r}")
        self.classes, self.lanes, self.bits = classes, lanes, classifier_bits
        self.delta_shift, self.feedback = delta_shift, feedback
        self.delta_shape = signed(delta_bits)
        chunks = data.ArrayLayout(data.ArrayLayout(unsigned(classifier_bits), classes), lanes)
        self.in_layout = data.StructLayout({
            "errors": data.ArrayLayout(signed(error_bits), classes),
            "m": chunks,
            "f": chunks,
            "active": unsigned(lanes),
        })
        super().__init__({
            "i": In(stream.Signature(self.in_layout)),
            "o": Out(stream.Signature(data.ArrayLayout(self.delta_shape, lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        beat = self.i.payload
        deltas = []
        for lane in range(self.lanes):
            terms = []
            for c in range(self.classes):
                weight = classifier_weight(beat.m[lane][c], self.bits)
                if self.feedback == "sign":
                    magnitude = classifier_weight(beat.f[lane][c], self.bits)
                    magnitude = Mux(magnitude < 0, -magnitude, magnitude)
                    weight = Mux(weight < 0, -magnitude, magnitude)
                term = Signal(signed(len(beat.errors[c]) + self.bits + 2),
                              name=f"term_{lane}_{c}")
                m.d.comb += term.eq(weight * beat.errors[c])
                terms.append(term)
            total = Signal(signed(len(terms[0]) + self.classes.bit_length()), name=f"sum_{lane}")
            m.d.comb += total.eq(reduce(lambda a, b: a + b, terms))
            delta = saturate(rne_shift(total, self.delta_shift), self.delta_shape)
            deltas.append(Mux(beat.active[lane], delta, 0))

        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += self.o.valid.eq(1)
            m.d.sync += [self.o.payload[lane].eq(d) for lane, d in enumerate(deltas)]
        return m
