"""The local-error unit: local scores and a label in, error vector and prediction out."""

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["LocalErrorUnit"]


class LocalErrorUnit(wiring.Component):
    """Square-hinge error, argmax prediction, its margin and a correct-prediction counter.

    ``e[c] = sat(-t[c] * max(0, 2**score_frac - t[c] * s[c]), error_bits)`` with ``t = +1`` for
    the label and ``-1`` otherwise (docs/ARITHMETIC.md, step 4); the prediction is the first
    class with the largest score.

    Members
    -------
    i : In(stream.Signature(StructLayout(scores, label)))
    o : Out(stream.Signature(StructLayout(errors, prediction, correct, margin)))
        ``margin`` is the largest score minus the second largest (0 on a tie; early exit).
        Registered: a beat accepted on ``i`` appears on the next cycle; ``i`` stalls only while
        a result waits untaken.
    correct_count : Out(count_bits)
        Correct predictions since the last ``clear`` (wraps modulo ``2**count_bits``);
        ``clear`` zeroes it, and a beat accepted in the same cycle counts after the clear.
    """

    def __init__(self, classes, score_bits, score_frac, error_bits, count_bits=32):
        if classes < 2:
            raise ValueError("a classifier needs at least 2 classes")
        self.classes, self.score_frac = classes, score_frac
        self.score_shape, self.error_shape = signed(score_bits), signed(error_bits)
        label_bits = max(1, (classes - 1).bit_length())
        self.in_layout = data.StructLayout({
            "scores": data.ArrayLayout(self.score_shape, classes),
            "label": unsigned(label_bits),
        })
        self.out_layout = data.StructLayout({
            "errors": data.ArrayLayout(self.error_shape, classes),
            "prediction": unsigned(label_bits),
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
        one = 1 << self.score_frac
        lo = -(1 << (self.error_shape.width - 1))
        hi = (1 << (self.error_shape.width - 1)) - 1
        wide = signed(self.score_shape.width + 2)

        errors = []
        for c in range(self.classes):
            is_label = beat.label == c
            margin = Signal(wide, name=f"margin_{c}")        # 1 - t*s
            m.d.comb += margin.eq(Mux(is_label, one - beat.scores[c], one + beat.scores[c]))
            hinge = Mux(margin > 0, margin, 0)
            error = Signal(wide, name=f"error_{c}")
            m.d.comb += error.eq(Mux(is_label, -hinge, hinge))
            errors.append(Mux(error > hi, hi, Mux(error < lo, lo, error)))

        # A tree of comparisons (depth log2 C, for timing), each node a signal (inline
        # expressions grow exponentially). A node keeps (best, its index, runner-up); the
        # right operand wins only if strictly greater, so ties go to the lowest index, and the
        # runner-up equals the best when the largest score is tied.
        nodes = [(beat.scores[c], Const(c, self.in_layout["label"].shape),
                  Const(-(1 << (self.score_shape.width - 1)), self.score_shape))
                 for c in range(self.classes)]
        level = 0
        while len(nodes) > 1:
            merged = []
            for k in range(0, len(nodes) - 1, 2):
                (a, ia, sa), (b, ib, sb) = nodes[k], nodes[k + 1]
                name = f"{level}_{k // 2}"
                best_s = Signal(self.score_shape, name=f"best_score_{name}")
                best_i = Signal.like(self.o.payload.prediction, name=f"best_{name}")
                second = Signal(self.score_shape, name=f"second_score_{name}")
                right = b > a
                m.d.comb += [best_s.eq(Mux(right, b, a)), best_i.eq(Mux(right, ib, ia)),
                             second.eq(Mux(right, Mux(a > sb, a, sb), Mux(b > sa, b, sa)))]
                merged.append((best_s, best_i, second))
            if len(nodes) % 2:
                merged.append(nodes[-1])
            nodes, level = merged, level + 1
        best_score, best, second = nodes[0]
        prediction = best
        correct = prediction == beat.label

        accepted = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(accepted):
            m.d.sync += [
                self.o.valid.eq(1),
                self.o.payload.prediction.eq(prediction),
                self.o.payload.correct.eq(correct),
                self.o.payload.margin.eq(best_score - second),
            ]
            m.d.sync += [self.o.payload.errors[c].eq(e) for c, e in enumerate(errors)]
        base = Mux(self.clear, 0, self.correct_count)
        m.d.sync += self.correct_count.eq(base + (accepted & correct))
        return m
