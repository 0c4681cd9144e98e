"""The forward pass's drain: activations from the rounded sums, with dropout."""

from amaranth.hdl import Mux, Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..arith import is_positive, magnitude_above, rne_shift, saturate

__all__ = ["ForwardDrain"]


class ForwardDrain(wiring.Component):
    """Row by row of the MAC array's ``W x + b`` sums (a lane per sample of a group, a row per
    neuron of a tile): ``y = clip(rounded, 0, 2**act_bits - 1)``, dropped to 0 where the
    dropout draw is below ``dropout`` and scaled by ``keep_scale / 2**8`` (rounded to nearest
    even, saturated) where kept; ``active`` is the clipped ReLU's derivative (the sum, before
    rounding, is positive and ``rounded <= 2**act_bits - 1``) and the keep bit, 0 for neurons
    past the layer's last (docs/ARITHMETIC.md, "One training step").

    Three registered stages, for timing: the row's place, the sign of its sums and the keep
    bits (the rounded sums arrive a cycle after the row, from the drains' shared rounding
    stage); the saturation and the ReLU test; the dropout scaling. The row is written from the
    third register. The drain never stalls.

    Parameters
    ----------
    lanes : int
        Samples per row.
    sum_shape : signed shape
        A sum of the MAC array (its sign decides ``active``).
    rounded_shape : signed shape
        A rounded sum.
    act_bits : int
        An activation's width.
    neuron_bits, index_bits, row_bits : int
        Widths of a neuron index, of a group or tile index, and of a row of a tile.
    dropout : bool
        Whether the core is built with dropout; without it, every lane is kept and ``drop``,
        ``dropout``, ``keep_scale`` and ``i.draws`` do not exist.

    Members
    -------
    i : In(StructLayout(valid, n, group, tile, row, sums, draws))
        A row (when ``at.valid``): its neuron ``n``, the sample group, the tile and the row
        within the tile; the row's sums (before rounding); the dropout draws (``draws[q]`` for
        sample lane ``q``).
    rounded : In(ArrayLayout(rounded_shape, lanes))
        The row's rounded sums, in the cycle after the row.
    drop : In(1)
        Dropout is on (training with a non-zero ``dropout``). ``drop``, ``dropout``,
        ``keep_scale`` and ``neurons`` are read in different stages: hold them through a phase.
    dropout : In(unsigned(8))
        A lane is kept where its draw is at least ``dropout``.
    keep_scale : In(unsigned(17))
        The kept activations' scale (``contract.config.keep_scale``).
    neurons : In(unsigned(neuron_bits))
        The layer's neurons: rows from ``neurons`` on are not written.
    o : Out(StructLayout(valid, n, group, tile, row, write, y, active))
        The row after three cycles: ``write`` (a valid row of a real neuron), the activations
        and the active bits (not masked: use them where ``at.valid`` or ``write``).
    busy : Out(1)
        A row is in a stage.
    """

    def __init__(self, lanes, sum_shape, rounded_shape, act_bits, neuron_bits, index_bits,
                 row_bits, dropout=True):
        self.lanes, self.act_bits, self.has_dropout = lanes, act_bits, dropout
        self.where_layout = data.StructLayout({
            "valid": 1, "n": neuron_bits, "group": index_bits, "tile": index_bits,
            "row": row_bits})
        self.act_layout = data.ArrayLayout(unsigned(act_bits), lanes)
        fields = {"at": self.where_layout,
                  "sums": data.ArrayLayout(signed(sum_shape.width), lanes)}
        if dropout:
            fields["draws"] = data.ArrayLayout(unsigned(8), lanes)
        self.in_layout = data.StructLayout(fields)
        self.out_layout = data.StructLayout({
            "at": self.where_layout, "write": 1, "y": self.act_layout, "active": lanes})
        members = {
            "i": In(self.in_layout),
            "rounded": In(data.ArrayLayout(signed(rounded_shape.width), lanes)),
            "neurons": In(unsigned(neuron_bits)),
            "o": Out(self.out_layout),
            "busy": Out(1),
        }
        if dropout:
            members.update(drop=In(1), dropout=In(unsigned(8)), keep_scale=In(unsigned(17)))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        Q, act = self.lanes, unsigned(self.act_bits)
        placed = Signal(data.StructLayout({
            "at": self.where_layout, "positive": Q, "keep": Q}))
        clipped = Signal(data.StructLayout({
            "at": self.where_layout, "y": self.act_layout, "positive": Q, "keep": Q}))
        o = self.o
        m.d.sync += [placed.at.eq(self.i.at), clipped.at.eq(placed.at), o.at.eq(clipped.at),
                     o.write.eq(clipped.at.valid & (clipped.at.n < self.neurons))]
        for q in range(Q):
            v = self.rounded[q]
            m.d.sync += [
                placed.positive[q].eq(is_positive(self.i.sums[q])),
                placed.keep[q].eq(~self.drop | (self.i.draws[q] >= self.dropout)
                                  if self.has_dropout else 1),
                clipped.y[q].eq(saturate(v, act)),
                clipped.positive[q].eq(placed.positive[q]           # v <= 2**act_bits - 1
                                       & (v[-1] | ~magnitude_above(v, self.act_bits))),
                clipped.keep[q].eq(placed.keep[q]),
            ]
            if self.has_dropout:
                scaled = Signal(act, name=f"scaled_{q}")
                m.d.comb += scaled.eq(Mux(self.drop, saturate(
                    rne_shift(clipped.y[q] * self.keep_scale, 8), act), clipped.y[q]))
            else:
                scaled = clipped.y[q]
            m.d.sync += [o.y[q].eq(Mux(clipped.keep[q], scaled, 0)),
                         o.active[q].eq(clipped.positive[q] & clipped.keep[q]
                                        & (clipped.at.n < self.neurons))]
        m.d.comb += self.busy.eq(placed.at.valid | clipped.at.valid | o.at.valid)
        return m
