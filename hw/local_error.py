"""The local-error unit: a sample's local scores in, one class a beat; errors and prediction out."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .arith import saturate

__all__ = ["LocalErrorUnit"]


class LocalErrorUnit(wiring.Component):
    """Square-hinge error, argmax prediction, its margin and a correct-prediction counter, one
    class per beat.

    A sample is ``classes`` beats on ``i``, classes in order, each with the sample's label. Each
    beat produces a beat on ``o`` a cycle later (one register stage): the class's error
    ``e = sat(-t * max(0, 2**score_frac - t * s), error_bits)`` with ``t = +1`` for the label
    and ``-1`` otherwise (docs/ARITHMETIC.md, step 4), and the argmax over the sample's classes
    so far: ``prediction`` (the first class with the largest score), ``correct`` (it is the
    label) and ``margin`` (the largest score minus the second largest; 0 on a tie; before the
    second class, the score minus the smallest score). ``last`` marks the sample's last class,
    where these are the sample's.

    One comparison and one subtraction a beat, whatever the number of classes: the unit is
    small and short-pathed; a sample takes ``classes`` cycles. (``margin`` is computed from
    the running best and second scores after their registers: what leaves equals what a
    register would hold.)

    Members
    -------
    i : In(stream.Signature(StructLayout(score, label)))
    o : Out(stream.Signature(StructLayout(error, last, prediction, correct, margin)))
        ``i`` is ready while the output register is empty or passing its beat on.
    correct_count : Out(count_bits)
        Correct predictions since the last ``clear`` (wraps modulo ``2**count_bits``), counted
        as a sample's last beat enters ``o``; ``clear`` zeroes it, and a result entering in the
        same cycle counts after the clear.
    """

    def __init__(self, classes, score_bits, score_frac, error_bits, count_bits=32):
        if classes < 2:
            raise ValueError("a classifier needs at least 2 classes")
        self.classes, self.score_frac = classes, score_frac
        self.score_shape, self.error_shape = signed(score_bits), signed(error_bits)
        self.label_shape = unsigned(max(1, (classes - 1).bit_length()))
        self.in_layout = data.StructLayout({"score": self.score_shape,
                                            "label": self.label_shape})
        self.out_layout = data.StructLayout({
            "error": self.error_shape,
            "last": 1,
            "prediction": self.label_shape,
            "correct": 1,
            "margin": unsigned(score_bits),
        })
        super().__init__({
            "i": In(stream.Signature(self.in_layout)),
            "o": Out(stream.Signature(self.out_layout)),
            "correct_count": Out(count_bits),
            "clear": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        beat = self.i.payload
        out = self.o.payload
        one = 1 << self.score_frac
        wide = signed(self.score_shape.width + 2)
        lowest = -(1 << (self.score_shape.width - 1))

        cls = Signal(self.label_shape)
        is_label = Signal()
        # e = -t * max(0, 1 - t*s): for the label min(0, s - 1), else max(0, s + 1). Both are
        # made and one chosen, so that a single adder (not the margin's and then a negation's
        # carry chains, 13.9 ns of an 8 x 8 ULX3S build) stands before the saturation.
        below, above = Signal(wide), Signal(wide)          # s - 1, s + 1
        error = Signal(wide)
        m.d.comb += [
            is_label.eq(beat.label == cls),
            below.eq(beat.score - one), above.eq(beat.score + one),
            error.eq(Mux(is_label, Mux(below[-1], below, 0), Mux(above[-1], 0, above))),
        ]

        # The running argmax: the best score so far, its class and the runner-up. A score
        # takes the lead only if strictly greater (ties keep the lowest class).
        best, second = Signal(self.score_shape), Signal(self.score_shape)
        best_cls = Signal(self.label_shape)
        best_next, second_next = Signal(self.score_shape), Signal(self.score_shape)
        best_cls_next = Signal(self.label_shape)
        first = cls == 0
        leads = first | (beat.score > best)
        m.d.comb += [
            best_next.eq(Mux(leads, beat.score, best)),
            best_cls_next.eq(Mux(leads, cls, best_cls)),
            second_next.eq(Mux(leads, Mux(first, lowest, best),
                               Mux(beat.score > second, beat.score, second))),
        ]
        last = cls == self.classes - 1
        correct = best_cls_next == beat.label

        accepted = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        # The output register, but the margin: it is the difference of the best and second
        # registers, which change only as a beat enters the output, so the subtraction sits
        # after the register, not after the comparisons that choose them.
        held = Signal(self.out_layout)
        m.d.comb += [out.eq(held), out.margin.eq(best - second)]
        with m.If(accepted):
            m.d.sync += [
                cls.eq(Mux(last, 0, cls + 1)),
                best.eq(best_next), best_cls.eq(best_cls_next), second.eq(second_next),
                self.o.valid.eq(1),
                held.error.eq(saturate(error, self.error_shape)),
                held.last.eq(last),
                held.prediction.eq(best_cls_next),
                held.correct.eq(correct),
            ]
        base = Mux(self.clear, 0, self.correct_count)
        m.d.sync += self.correct_count.eq(base + (accepted & last & correct))
        return m
