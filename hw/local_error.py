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
        Two register stages (for timing; the argmax tree is split between them): a beat
        accepted on ``i`` appears two cycles later; ``i`` stalls only while both stages hold
        a result and the output's is not taken.
    correct_count : Out(count_bits)
        Correct predictions since the last ``clear`` (wraps modulo ``2**count_bits``), counted
        as a result enters ``o``; ``clear`` zeroes it, and a result entering in the same cycle
        counts after the clear.
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
        label_shape = self.in_layout["label"].shape

        # Stage 1 -> 2 register: the errors, the label and the argmax tree's first levels.
        # A tree node keeps (best score, its index, runner-up).
        node = data.StructLayout({"best": self.score_shape, "index": label_shape,
                                  "second": self.score_shape})
        levels = (self.classes - 1).bit_length()
        first_levels = (levels + 1) // 2
        mid_nodes = -(-self.classes // (1 << first_levels))
        mid = Signal(data.StructLayout({
            "valid": 1, "label": label_shape,
            "errors": data.ArrayLayout(self.error_shape, self.classes),
            "nodes": data.ArrayLayout(node, mid_nodes)}))

        errors = []
        for c in range(self.classes):
            is_label = beat.label == c
            margin = Signal(wide, name=f"margin_{c}")        # 1 - t*s
            m.d.comb += margin.eq(Mux(is_label, one - beat.scores[c], one + beat.scores[c]))
            hinge = Mux(margin > 0, margin, 0)
            error = Signal(wide, name=f"error_{c}")
            m.d.comb += error.eq(Mux(is_label, -hinge, hinge))
            errors.append(Mux(error > hi, hi, Mux(error < lo, lo, error)))

        def tree(nodes, count, prefix):
            """``count`` levels of pairwise maxima, each node a signal (inline expressions
            grow exponentially). The right operand wins only if strictly greater, so ties go
            to the lowest index, and the runner-up equals the best when the largest score is
            tied."""
            for level in range(count):
                merged = []
                for k in range(0, len(nodes) - 1, 2):
                    (a, ia, sa), (b, ib, sb) = nodes[k], nodes[k + 1]
                    name = f"{prefix}{level}_{k // 2}"
                    best_s = Signal(self.score_shape, name=f"best_score_{name}")
                    best_i = Signal(label_shape, name=f"best_{name}")
                    second = Signal(self.score_shape, name=f"second_score_{name}")
                    right = b > a
                    m.d.comb += [best_s.eq(Mux(right, b, a)), best_i.eq(Mux(right, ib, ia)),
                                 second.eq(Mux(right, Mux(a > sb, a, sb), Mux(b > sa, b, sa)))]
                    merged.append((best_s, best_i, second))
                if len(nodes) % 2:
                    merged.append(nodes[-1])
                nodes = merged
            return nodes

        lowest = Const(-(1 << (self.score_shape.width - 1)), self.score_shape)
        leaves = [(beat.scores[c], Const(c, label_shape), lowest) for c in range(self.classes)]
        half = tree(leaves, first_levels, "a")
        (best_score, prediction, second), = tree(
            [(n.best, n.index, n.second) for n in mid.nodes], levels - first_levels, "b")
        correct = prediction == mid.label

        # Stream handshakes: stage 1 moves on when the output register is free.
        out_free = ~self.o.valid | self.o.ready
        advance = mid.valid & out_free
        accepted = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(~mid.valid | out_free)
        with m.If(accepted):
            m.d.sync += [mid.valid.eq(1), mid.label.eq(beat.label)]
            m.d.sync += [mid.errors[c].eq(e) for c, e in enumerate(errors)]
            for k, (b, i, sec) in enumerate(half):
                m.d.sync += [mid.nodes[k].best.eq(b), mid.nodes[k].index.eq(i),
                             mid.nodes[k].second.eq(sec)]
        with m.Elif(advance):
            m.d.sync += mid.valid.eq(0)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(advance):
            m.d.sync += [
                self.o.valid.eq(1),
                self.o.payload.errors.eq(mid.errors),
                self.o.payload.prediction.eq(prediction),
                self.o.payload.correct.eq(correct),
                self.o.payload.margin.eq(best_score - second),
            ]
        base = Mux(self.clear, 0, self.correct_count)
        m.d.sync += self.correct_count.eq(base + (advance & correct))
        return m
