"""Batch normalisation's output of one neuron: the normalised activation, scaled and re-centred."""

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from contract.batch_norm import TABLE_FRAC, XHAT_BITS

from ..arith import rne_shift_any, saturate

__all__ = ["BatchNormalise"]


class BatchNormalise(wiring.Component):
    """Step 1b of docs/ARITHMETIC.md ("Batch normalisation") for a word of ``lanes`` samples of
    one neuron, three cycles after it arrives:

    * ``c = B*y - S1`` (training) or ``(y << RF) - M`` (inference);
    * ``xhat = sat_s(rne(c * R[u], TABLE_FRAC + j - act_frac), XHAT_BITS)``;
    * ``zz = rne(g * xhat, weight_frac) + 2**(act_bits - 1)``, the output ``z = sat_u(zz,
      act_bits)`` and ``active`` (``0 <= zz <= 2**act_bits - 1``), a bit per lane.

    The neuron's constants (``s1`` to ``gamma``, from :class:`BatchStatistics`) and the settings
    are held while its words pass. The registers take their inputs every cycle; ``o``'s fields
    are meaningful while ``o.valid``.

    Parameters
    ----------
    lanes, act_bits, weight_bits : int
        Samples per word; an activation's width; the scale's width (a running mean is
        unsigned ``2 * weight_bits``).
    s1_shape, r_shape, j_shape : shape
        :class:`BatchStatistics`' ``s1``, ``r`` and ``j``.
    tag_shape : shape
        Where the word goes: carried from ``i`` to ``o`` unchanged.

    Members
    -------
    i : In(StructLayout(valid, tag, y))
    training : In(1); batch : In(9); act_frac, weight_frac, stat_frac : In(5)
    s1, mean, r, j, gamma : In
        The neuron's ``S1``, running mean ``M``, ``R[u]``, ``j`` and scale ``g``.
    o : Out(StructLayout(valid, tag, z, xhat, active))
    """

    def __init__(self, lanes, act_bits, weight_bits, s1_shape, r_shape, j_shape, tag_shape):
        self.lanes, self.act_bits = lanes, act_bits
        self.xhat_layout = data.ArrayLayout(signed(XHAT_BITS), lanes)
        super().__init__({
            "i": In(data.StructLayout({"valid": 1, "tag": tag_shape,
                                       "y": data.ArrayLayout(unsigned(act_bits), lanes)})),
            "training": In(1), "batch": In(9),
            "act_frac": In(5), "weight_frac": In(5), "stat_frac": In(5),
            "s1": In(s1_shape), "mean": In(unsigned(2 * weight_bits)), "r": In(r_shape),
            "j": In(j_shape), "gamma": In(signed(weight_bits)),
            "o": Out(data.StructLayout({
                "valid": 1, "tag": tag_shape,
                "z": data.ArrayLayout(unsigned(act_bits), lanes), "xhat": self.xhat_layout,
                "active": lanes})),
        })

    def elaborate(self, platform):
        m = Module()
        Q, act = self.lanes, self.act_bits
        i, o = self.i, self.o
        c_shape = signed(max(len(self.batch) + act, act + 16, len(self.mean)) + 2)
        centred = Signal(data.StructLayout({"valid": 1, "tag": len(i.tag),
                                            "c": data.ArrayLayout(c_shape, Q)}))
        normalised = Signal(data.StructLayout({"valid": 1, "tag": len(i.tag),
                                               "xhat": self.xhat_layout}))
        xhat_shift = Signal(range(TABLE_FRAC + (1 << len(self.j)) + 1))
        m.d.comb += xhat_shift.eq(TABLE_FRAC + self.j - self.act_frac)   # act_frac <= 12
        offset = Const(1 << (act - 1), unsigned(act))
        top = (1 << act) - 1
        m.d.sync += [centred.valid.eq(i.valid), centred.tag.eq(i.tag),
                     normalised.valid.eq(centred.valid), normalised.tag.eq(centred.tag),
                     o.valid.eq(normalised.valid), o.tag.eq(normalised.tag)]
        for q in range(Q):
            m.d.sync += [
                centred.c[q].eq(Mux(self.training, self.batch * i.y[q] - self.s1,
                                    (i.y[q] << self.stat_frac) - self.mean)),
                normalised.xhat[q].eq(saturate(rne_shift_any(centred.c[q] * self.r,
                                                             xhat_shift),
                                               signed(XHAT_BITS))),
            ]
            scaled = Signal(signed(len(self.gamma) + XHAT_BITS + 2), name=f"scaled_{q}")
            m.d.comb += scaled.eq(rne_shift_any(self.gamma * normalised.xhat[q],
                                                self.weight_frac) + offset)
            m.d.sync += [o.xhat[q].eq(normalised.xhat[q]),
                         o.z[q].eq(saturate(scaled, unsigned(act))),
                         o.active[q].eq(~scaled[-1] & (scaled <= top))]
        return m
