"""Step 5 through batch normalisation: the deltas from the errors at the normalised output."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from contract.batch_norm import BACK_BITS, BACK_FRAC, RECIP_BITS, XHAT_BITS

from ..arith import rne_shift_any, saturate

__all__ = ["BatchNormBackward"]

#: Bits of a sum over a mini-batch of at most 256 samples.
SUM_BITS = 9


class BatchNormBackward(wiring.Component):
    """docs/ARITHMETIC.md, "Batch normalisation", *Step 5 through the normalisation*, for a
    tile of ``lanes`` neurons, a sample at a time.

    First pass (``accumulate``, ``clear`` on the tile's first sample): ``P1 = sum_b pz``,
    ``P2 = sum_b pz * xhat`` per lane. ``finish`` (a cycle after the pass): ``m1 = (P1 * inv_b)
    >> (RECIP_BITS - act_frac)`` and ``m2 = (P2 * inv_b) >> RECIP_BITS``, held until the next
    ``finish``. Second pass (``apply``), two cycles a sample: ``U = (pz << act_frac) - m1 -
    rne(xhat * m2, act_frac)``, then ``d = active * sat_s(rne(U * h, act_frac + BACK_FRAC),
    delta_bits)`` on ``o``; ``bias_grad`` sums the deltas on ``o`` since the last ``clear``.
    ``gamma_grad`` is ``P2``, the scale's gradient.

    Parameters
    ----------
    lanes, delta_bits : int
        Neurons per tile; a delta's width.
    tag_shape : shape
        Where a sample's deltas go: carried from ``apply`` to ``o``.

    Members
    -------
    accumulate : In(StructLayout(valid, clear, pz, xhat))
    finish : In(1)
    apply : In(StructLayout(valid, tag, pz, xhat, active))
    inv_b : In(RECIP_BITS + 1); act_frac : In(5)
        ``ceil(2**RECIP_BITS / B)``; ``act_frac`` (at most 12). Held through a command.
    h : In(ArrayLayout(signed(BACK_BITS), lanes))
        The tile's backward scales, held through its second pass.
    o : Out(StructLayout(valid, tag, d))
    gamma_grad, bias_grad : Out(ArrayLayout)
    """

    def __init__(self, lanes, delta_bits, tag_shape):
        self.lanes, self.delta_bits = lanes, delta_bits
        delta, xhat = signed(delta_bits), signed(XHAT_BITS)
        self.deltas = data.ArrayLayout(delta, lanes)
        self.xhats = data.ArrayLayout(xhat, lanes)
        self.p1_shape = signed(delta_bits + SUM_BITS)
        self.p2_shape = signed(delta_bits + XHAT_BITS + SUM_BITS)
        super().__init__({
            "accumulate": In(data.StructLayout({"valid": 1, "clear": 1, "pz": self.deltas,
                                                "xhat": self.xhats})),
            "finish": In(1),
            "apply": In(data.StructLayout({"valid": 1, "tag": tag_shape, "pz": self.deltas,
                                           "xhat": self.xhats, "active": lanes})),
            "inv_b": In(unsigned(RECIP_BITS + 1)), "act_frac": In(5),
            "h": In(data.ArrayLayout(signed(BACK_BITS), lanes)),
            "o": Out(data.StructLayout({"valid": 1, "tag": tag_shape, "d": self.deltas})),
            "gamma_grad": Out(data.ArrayLayout(self.p2_shape, lanes)),
            "bias_grad": Out(data.ArrayLayout(signed(delta_bits + SUM_BITS), lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        P, af = self.lanes, self.act_frac
        acc, app, o = self.accumulate, self.apply, self.o
        p1 = Signal(data.ArrayLayout(self.p1_shape, P))
        p2 = self.gamma_grad
        # |m1| <= 2**(delta_bits + act_frac) and |m2| <= 2**(delta_bits + 15) (the means of
        # pz << act_frac and of pz * xhat, times at most 1 + 2**-12): a bit to spare each.
        m1 = Signal(data.ArrayLayout(signed(self.delta_bits + 14), P))
        m2 = Signal(data.ArrayLayout(signed(self.delta_bits + XHAT_BITS + 1), P))
        m1_down = Signal(5)
        m.d.comb += m1_down.eq(RECIP_BITS - af)
        u_shape = signed(self.delta_bits + XHAT_BITS + 17)
        centred = Signal(data.StructLayout({"valid": 1, "tag": len(app.tag),
                                            "u": data.ArrayLayout(u_shape, P), "active": P}))
        m.d.sync += [centred.valid.eq(app.valid), centred.tag.eq(app.tag),
                     centred.active.eq(app.active),
                     o.valid.eq(centred.valid), o.tag.eq(centred.tag)]
        for r in range(P):
            with m.If(acc.valid):
                m.d.sync += [p1[r].eq(Mux(acc.clear, 0, p1[r]) + acc.pz[r]),
                             p2[r].eq(Mux(acc.clear, 0, p2[r]) + acc.pz[r] * acc.xhat[r])]
            with m.If(self.finish):
                m.d.sync += [m1[r].eq((p1[r] * self.inv_b) >> m1_down),
                             m2[r].eq((p2[r] * self.inv_b) >> RECIP_BITS)]
            m.d.sync += centred.u[r].eq((app.pz[r] << af) - m1[r]
                                        - rne_shift_any(app.xhat[r] * m2[r], af))
            delta = saturate(rne_shift_any(centred.u[r] * self.h[r], af + BACK_FRAC),
                             signed(self.delta_bits))
            m.d.sync += o.d[r].eq(Mux(centred.active[r], delta, 0))
            bias = self.bias_grad[r]
            with m.If(acc.valid & acc.clear):
                m.d.sync += bias.eq(0)
            with m.Elif(centred.valid & centred.active[r]):
                m.d.sync += bias.eq(bias + delta)
        return m
