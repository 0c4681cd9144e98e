"""Batch normalisation's statistics of one neuron: sums, the inverse square root, the backward
scale and the running statistics."""

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from contract.batch_norm import BACK_BITS, BACK_FRAC, RECIP_BITS, TABLE_FRAC

from ..arith import rne_shift_any, saturate
from .inverse_sqrt import InverseSqrt

__all__ = ["BatchStatistics"]

# h's shift, TABLE_FRAC + j + weight_frac - act_frac - BACK_FRAC, is j + frac_diff plus this.
_H_SHIFT = TABLE_FRAC - BACK_FRAC
assert _H_SHIFT >= 0

#: Bits of a sample count (a batch-normalised mini-batch has at most 256 samples).
BATCH_BITS = 9


class BatchStatistics(wiring.Component):
    """Step 1b of docs/ARITHMETIC.md ("Batch normalisation") up to the per-neuron constants.

    A neuron's outputs arrive as words of ``lanes`` samples (``add``; the word that starts a
    neuron has ``clear`` set); ``S1 = sum y`` and ``S2 = sum y**2`` accumulate over the lanes
    whose ``mask`` bit is set. ``finish``, on a cycle after the neuron's last word, brings the
    neuron's scale ``g`` and running statistics ``M``, ``V``; four cycles later ``o`` holds:

    * ``r``, ``j``: the inverse square root of ``A`` (``Q + B**2 * eps`` training, with
      ``Q = B*S2 - S1**2``; ``(V + (eps << RF)) << RF`` in inference), from
      :class:`InverseSqrt`;
    * ``s1``, for the normalisation's centring (``c = B*y - S1``);
    * ``h = sat_s(rne(g * B * R, j + weight_frac - act_frac), BACK_BITS)``, the backward scale;
    * the running statistics moved by the batch's (training), or ``M`` and ``V`` unchanged:
      ``M + ((mb - M) >> mom)`` with ``mb = (S1 * inv_b) >> (RECIP_BITS - RF)``, and
      ``V + ((vb - V) >> mom)`` with ``vb = (((Q * inv_b) >> RECIP_BITS) * inv_b) >>
      (RECIP_BITS - RF)``.

    Stages after ``finish``: ``Q`` and ``A``; the variance's first product and the mean (while
    the inverse square root takes two cycles); the variance and the new mean; ``h`` and the new
    variance. The settings (``training`` to ``frac_diff``) are held through a command.

    Parameters
    ----------
    lanes, act_bits : int
        Samples per word; an activation's width.
    weight_bits : int
        The scale's width; a running statistic is unsigned ``2 * weight_bits``.

    Members
    -------
    add : In(StructLayout(valid, clear, y, mask))
    finish : In(StructLayout(valid, gamma, mean, var))
    training : In(1); batch : In(9); inv_b : In(RECIP_BITS + 1)
        Batch statistics (else the running ones); the samples ``B``; ``ceil(2**20 / B)``.
    eps_log2, stat_frac, momentum, frac_diff : In(5)
        ``2*act_frac - bn_eps_shift``, ``bn_stat_frac``, ``bn_momentum_shift``, ``weight_frac -
        act_frac``.
    o : Out(StructLayout(valid, s1, r, j, h, mean, var))
    """

    def __init__(self, lanes, act_bits, weight_bits):
        self.lanes, self.act_bits, self.weight_bits = lanes, act_bits, weight_bits
        self.s1_shape = unsigned(act_bits + BATCH_BITS - 1)
        self.s2_shape = unsigned(2 * act_bits + BATCH_BITS - 1)
        self.stat_shape = unsigned(2 * weight_bits)
        # The largest argument: inference's ``(V + 2**(eps_log2 + RF)) << RF`` with the
        # config's limits (eps_log2 + RF <= 2 * weight_bits, RF <= 16), or training's
        # ``B*S2 + B**2 << eps_log2``.
        self.arg_bits = max(2 * weight_bits + 1 + 16, 2 * act_bits + 2 * BATCH_BITS + 1)
        self.root = InverseSqrt(self.arg_bits)
        super().__init__({
            "add": In(data.StructLayout({"valid": 1, "clear": 1,
                                         "y": data.ArrayLayout(unsigned(act_bits), lanes),
                                         "mask": lanes})),
            "finish": In(data.StructLayout({"valid": 1, "gamma": signed(weight_bits),
                                            "mean": self.stat_shape, "var": self.stat_shape})),
            "training": In(1), "batch": In(unsigned(BATCH_BITS)),
            "inv_b": In(unsigned(RECIP_BITS + 1)),
            "eps_log2": In(5), "stat_frac": In(5), "momentum": In(5), "frac_diff": In(5),
            "o": Out(data.StructLayout({
                "valid": 1, "s1": self.s1_shape, "r": self.root.r_shape,
                "j": unsigned(self.root.j_bits), "h": signed(BACK_BITS),
                "mean": self.stat_shape, "var": self.stat_shape})),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.root = root = self.root
        add, fin, o = self.add, self.finish, self.o
        B, inv_b, rf, mom = self.batch, self.inv_b, self.stat_frac, self.momentum
        stat_down = Signal(5)                        # RECIP_BITS - RF (RF <= 16)
        m.d.comb += stat_down.eq(RECIP_BITS - rf)

        # ---- the sums --------------------------------------------------------------------
        s1, s2 = Signal(self.s1_shape), Signal(self.s2_shape)
        word_s1 = sum(Mux(add.mask[q], add.y[q], 0) for q in range(self.lanes))
        word_s2 = sum(Mux(add.mask[q], add.y[q] * add.y[q], 0) for q in range(self.lanes))
        with m.If(add.valid):
            m.d.sync += [s1.eq(Mux(add.clear, 0, s1) + word_s1),
                         s2.eq(Mux(add.clear, 0, s2) + word_s2)]

        # ---- stage 1: Q and the inverse square root's argument ----------------------------
        carried = {"valid": 1, "gamma": signed(self.weight_bits), "mean": self.stat_shape,
                   "var": self.stat_shape, "s1": self.s1_shape}
        first = Signal(data.StructLayout({**carried, "q": unsigned(self.arg_bits),
                                          "mean_product": unsigned(self.s1_shape.width
                                                                   + RECIP_BITS + 1)}))
        q = Signal(signed(self.arg_bits + 1))
        m.d.comb += q.eq(B * s2 - s1 * s1)           # >= 0: B times the sums of squares
        train_arg = q.as_unsigned()[:self.arg_bits] + ((B * B) << self.eps_log2)
        infer_arg = (fin.var + (Const(1, 1) << (self.eps_log2 + rf))) << rf
        m.d.sync += [first.valid.eq(fin.valid), first.gamma.eq(fin.gamma),
                     first.mean.eq(fin.mean), first.var.eq(fin.var), first.s1.eq(s1),
                     first.q.eq(q.as_unsigned()[:self.arg_bits]),
                     first.mean_product.eq(s1 * inv_b)]
        arg = Signal(unsigned(self.arg_bits))
        m.d.sync += arg.eq(Mux(self.training, train_arg, infer_arg)[:self.arg_bits])
        m.d.comb += [root.i.valid.eq(first.valid), root.i.a.eq(arg)]

        # ---- stage 2: the variance's first product, the batch mean --------------------------
        second = Signal(data.StructLayout({**carried, "var_product": unsigned(self.arg_bits),
                                           "batch_mean": self.stat_shape}))
        m.d.sync += [second[name].eq(first[name]) for name in carried]
        m.d.sync += [second.var_product.eq((first.q * inv_b) >> RECIP_BITS),
                     second.batch_mean.eq(first.mean_product >> stat_down)]

        # ---- stage 3: the batch variance, the new mean --------------------------------------
        third = Signal(data.StructLayout({**carried, "batch_var": self.stat_shape}))
        m.d.sync += [third[name].eq(second[name]) for name in carried if name != "mean"]
        moved_mean = second.mean + ((second.batch_mean - second.mean).as_signed() >> mom)
        m.d.sync += [third.mean.eq(Mux(self.training, moved_mean, second.mean)),
                     third.batch_var.eq((second.var_product * inv_b) >> stat_down)]

        # ---- stage 4: h and the new variance, out ----------------------------------------
        moved_var = third.var + ((third.batch_var - third.var).as_signed() >> mom)
        scaled = third.gamma * B * root.o.r
        m.d.sync += [o.valid.eq(third.valid), o.s1.eq(third.s1), o.mean.eq(third.mean),
                     o.var.eq(Mux(self.training, moved_var, third.var)),
                     o.r.eq(root.o.r), o.j.eq(root.o.j),
                     o.h.eq(saturate(rne_shift_any(scaled, root.o.j + self.frac_diff + _H_SHIFT),
                                     signed(BACK_BITS)))]
        return m
