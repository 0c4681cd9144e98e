"""The forward pass's drain: activations from the rounded sums, with dropout."""

from amaranth.hdl import Mux, Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..arith import (at_most_parts, is_positive, magnitude_above, rne_shift, saturate,
                     saturate_parts)
from ..registered_multiplier import RegisteredMultiplier, check_multiplier
from .pool_merge import PoolMerge

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
    stage); the saturation and the ReLU test, with ``keep_scale`` registered beside them; the
    dropout product ``y * keep_scale``, whose rounding and saturation to ``o.y`` come after
    the third register, in the output's own cycle (the row is written from the third register
    and ``o.y``'s logic into a buffer's write register). The drain never stalls.

    With ``pooling``, a layer that pools (``pool``) sends each of a 2 x 2 window's four
    elements as a pass of the tile's rows (``at.window`` = 0, 1, 2, 3 for ``(0,0), (0,1), (1,0),
    (1,1)``; idle cycles allowed anywhere, the same row possibly on consecutive cycles). The
    third stage merges each pooled row, from the clipped register, into the running maxima of its
    row (:class:`PoolMerge`, read and written in that stage, so a row sees the merge of the cycle
    before), which keeps the merge off the clipping's path (the rounding adder and the
    saturation, a critical path of the ULX3S build); the dropout product ``y * keep_scale``
    of each lane is formed beside the merge's comparison and carried with the maximum (the
    product of the largest ``y`` is the largest ``y``'s), which keeps the multiplier off the
    merge's path (the merge, then the multiplier, was the ULX3S conv build's critical path,
    28 ns), and its rounding and saturation are done after the output register, in ``o.y``'s
    combinational logic (the multiplier, the rounding and the merge in one stage was the next
    critical path, 21.9 ns; the output's cycle only writes it to a buffer): rows of
    elements 0 to 2 only update the maxima and are not written; the row of element 3 leaves with
    the window's largest ``y`` (the first of equal maxima wins), the winner's ``active`` and its
    index ``winner``, with its own keep bits and dropout scaling: dropout applies after pooling.
    Same three-cycle latency.

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
    pooling : bool
        Whether the drain can pool; without it, ``pool``, ``o.winner``, ``at.window``,
        ``at.column`` and ``at.position`` do not exist and the drain is as it was before
        pooling.
    rows : int
        Rows of a tile (with ``pooling``): the running maxima's entries.
    output_register : bool
        A fourth register: ``o`` is the three stages' output a cycle later, registered, so
        that a row's activations (with dropout, ``o.y`` is the rounding and saturation of the
        product register) are not formed in the cycle that writes them into a buffer's
        banks (their rotation and the buffers' choice: 15-16 ns of an 8 x 8 ULX3S build).
        Four-cycle latency.
    rounding_parts : bool
        ``rounded`` carries a rounded sum's quotient and ``round_up`` its rounding bit
        (``DrainRounding.quotient`` and ``round_up``): the sum is saturated and compared from
        them (``hw.arith.saturate_parts``), with no full-width adder in front.
    multiplier : str
        The dropout products' multipliers (the config's ``multiplier``): ``"inferred"``, or
        ``"ecp5"``: each lane's ``y`` and ``keep_scale`` are registered in an ECP5 MULT18X18D's
        input registers (:class:`~hw.registered_multiplier.RegisteredMultiplier`) beside the
        second stage's (an 8 x 8 ULX3S build routed the clipped values 9.5 ns to inferred
        multipliers' blocks); the products are the same, at the same cycles.
    sites : sequence of str
        (``"ecp5"`` with dropout only) Where each lane's block sits on the die, a nextpnr BEL
        name per lane (hw/dsp_floorplans.py).

    Members
    -------
    i : In(StructLayout(valid, n, group, tile, row, [window, column,] sums, draws))
        A row (when ``at.valid``): its neuron ``n``, the sample group, the tile and the row
        within the tile; with ``pooling``, its window element (2 bits), the output column
        the core writes the pooled row to and its (pooled) position (``neuron_bits`` each,
        carried to ``o.at`` like ``n``: the position addresses the winners' store);
        the row's sums (before rounding); the dropout draws (``draws[q]`` for sample lane
        ``q``).
    rounded : In(ArrayLayout(rounded_shape, lanes))
        The row's rounded sums, in the cycle after the row (with ``rounding_parts``, their
        quotients).
    round_up : In(lanes)
        With ``rounding_parts``: lane ``q``'s rounded sum is ``rounded[q] + round_up[q]``.
    drop : In(1)
        Dropout is on (training with a non-zero ``dropout``). ``drop``, ``dropout``,
        ``keep_scale`` and ``neurons`` are read in different stages (``keep_scale`` with the
        rounded sums, ``drop`` and ``neurons`` a cycle later): hold them through a phase
        (with pooling, ``drop`` and ``keep_scale`` scale every element of a window: hold them
        from its first element's row to its last's output).
    dropout : In(unsigned(8))
        A lane is kept where its draw is at least ``dropout``.
    keep_scale : In(unsigned(17))
        The kept activations' scale (``contract.config.keep_scale``).
    neurons : In(unsigned(neuron_bits))
        The layer's neurons: rows from ``neurons`` on are not written.
    pool : In(1)
        With ``pooling``: the layer pools; read with the row (``i``), held through a phase.
        Low, every row is output as without pooling (``at.window`` ignored, ``o.winner`` 0).
    o : Out(StructLayout(valid, n, group, tile, row, [window, column,] write, y, active,
            [winner]))
        The row after three cycles (four with ``output_register``): ``write`` (a valid row of
        a real neuron; while pooling, of element 3 only), the activations and the active bits (not masked: use them where
        ``at.valid`` or ``write``); with ``pooling``, the winning window element per lane
        (``ArrayLayout(unsigned(2), lanes)``). ``at.valid`` is high for every row, pooled rows
        of elements 0 to 2 included (their ``y``, ``active`` and ``winner`` are the maxima so
        far, through the row's own keep bits and scaling): write on ``write``.
    busy : Out(1)
        A row is in a stage.
    """

    def __init__(self, lanes, sum_shape, rounded_shape, act_bits, neuron_bits, index_bits,
                 row_bits, dropout=True, pooling=False, rows=None, rounding_parts=False,
                 output_register=False, multiplier="inferred", sites=None):
        self.lanes, self.act_bits, self.has_dropout = lanes, act_bits, dropout
        check_multiplier(multiplier)
        if sites is not None and (multiplier != "ecp5" or not dropout or len(sites) != lanes):
            raise ValueError(f"{len(sites)} sites for the dropout multipliers of {lanes} lanes "
                             f"({multiplier}, dropout {bool(dropout)}): sites place each "
                             "lane's ECP5 block")
        self.multiplier, self.sites = multiplier, sites
        self.rounding_parts, self.output_register = rounding_parts, output_register
        self.pooling, self.rows, self.row_bits = pooling, rows, row_bits
        if pooling and not (rows and 1 <= rows <= 1 << row_bits):
            raise ValueError(f"pooling needs 1 <= rows <= 2**row_bits, not rows={rows}")
        where = {"valid": 1, "n": neuron_bits, "group": index_bits, "tile": index_bits,
                 "row": row_bits}
        if pooling:
            where.update(window=2, column=neuron_bits, position=neuron_bits)
        self.where_layout = data.StructLayout(where)
        self.act_layout = data.ArrayLayout(unsigned(act_bits), lanes)
        fields = {"at": self.where_layout,
                  "sums": data.ArrayLayout(signed(sum_shape.width), lanes)}
        if dropout:
            fields["draws"] = data.ArrayLayout(unsigned(8), lanes)
        self.in_layout = data.StructLayout(fields)
        out = {"at": self.where_layout, "write": 1, "y": self.act_layout, "active": lanes}
        if pooling:
            out["winner"] = data.ArrayLayout(unsigned(2), lanes)
        self.out_layout = data.StructLayout(out)
        members = {
            "i": In(self.in_layout),
            "rounded": In(data.ArrayLayout(signed(rounded_shape.width), lanes)),
            "neurons": In(unsigned(neuron_bits)),
            "o": Out(self.out_layout),
            "busy": Out(1),
        }
        if dropout:
            members.update(drop=In(1), dropout=In(unsigned(8)), keep_scale=In(unsigned(17)))
        if pooling:
            members["pool"] = In(1)
        if rounding_parts:
            members["round_up"] = In(lanes)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        Q, act = self.lanes, unsigned(self.act_bits)
        placed_fields = {"at": self.where_layout, "positive": Q, "keep": Q}
        clipped_fields = {"at": self.where_layout, "y": self.act_layout, "positive": Q, "keep": Q}
        product_bits = self.act_bits + len(self.keep_scale) if self.has_dropout else 0
        ys = [self._clipped_y(q) for q in range(Q)]      # the second stage's y
        in_blocks = self.has_dropout and self.multiplier != "inferred"
        if self.has_dropout and not in_blocks:
            # ``keep_scale`` is registered beside ``y`` (its register near the multipliers:
            # the scale comes from the register file across the die).
            clipped_fields["keep_scale"] = unsigned(len(self.keep_scale))
        if self.pooling:                # the row pools (``pool`` read with the row)
            placed_fields["pool"] = clipped_fields["pool"] = 1
        placed = Signal(data.StructLayout(placed_fields))
        clipped = Signal(data.StructLayout(clipped_fields))
        if self.has_dropout and not in_blocks:
            m.d.sync += clipped.keep_scale.eq(self.keep_scale)
        # Each lane's product of the second stage's y and keep_scale: of its own registers,
        # or of the copies in a multiplier block's input registers.
        if in_blocks:
            scaled = []
            for q in range(Q):
                lane = RegisteredMultiplier(act, unsigned(len(self.keep_scale)),
                                            primitive=self.multiplier,
                                            site=None if self.sites is None else self.sites[q])
                m.submodules[f"dropout_multiplier_{q}"] = lane
                m.d.comb += [lane.a.eq(ys[q]), lane.b.eq(self.keep_scale), lane.load.eq(1)]
                scaled.append(lane.product)
        elif self.has_dropout:
            scaled = [clipped.y[q] * clipped.keep_scale for q in range(Q)]
        # (With ``output_register``, the third stage's output, registered into ``o``.)
        o = Signal(self.out_layout, name="row_out") if self.output_register else self.o
        write = clipped.at.valid & (clipped.at.n < self.neurons)
        positive = clipped.positive

        # With dropout, each lane's product ``y * keep_scale`` is formed in the third stage
        # (with pooling, beside the pooling's comparison, and carried with the maximum: the
        # product of the largest ``y`` is the largest ``y``'s product); its rounding and
        # saturation come after the output register, in the output's own cycle, which only
        # writes it to a buffer's write register. (The multiplier, the rounding, the
        # saturation and the merge in one cycle was the ULX3S conv build's critical path,
        # 21.9 ns; without the merge, 18.1 ns of a 75 MHz FC build.) Without dropout the
        # third stage registers ``y`` (with pooling, the maximum) itself.
        dropout = self.has_dropout
        largest = clipped.y
        if self.pooling:                # the maxima, and the product that goes with them
            m.submodules.pool = merge = PoolMerge(Q, self.act_bits, self.rows, self.row_bits,
                                                  scaled_bits=product_bits)
            m.d.comb += [merge.i.valid.eq(clipped.at.valid), merge.i.pool.eq(clipped.pool),
                         merge.i.row.eq(clipped.at.row), merge.i.window.eq(clipped.at.window),
                         merge.i.y.eq(clipped.y), merge.i.active.eq(clipped.positive)]
            if dropout:
                m.d.comb += [merge.i.scaled[q].eq(scaled[q]) for q in range(Q)]
                largest_product = merge.o.scaled
            largest = merge.o.y
            m.d.sync += [placed.pool.eq(self.pool), clipped.pool.eq(placed.pool),
                         o.winner.eq(merge.o.winner)]
            write &= ~clipped.pool | (clipped.at.window == 3)
            positive = merge.o.active
        elif dropout:
            largest_product = scaled
        if dropout:                     # the output's registers: y (maximum), product, keep, drop
            out_y = Signal(self.act_layout)
            products = Signal(data.ArrayLayout(unsigned(product_bits), Q))
            kept, dropping = Signal(Q), Signal()
            m.d.sync += [out_y.eq(largest), kept.eq(clipped.keep), dropping.eq(self.drop)]
            m.d.sync += [products[q].eq(largest_product[q]) for q in range(Q)]
            for q in range(Q):
                m.d.comb += o.y[q].eq(Mux(kept[q], Mux(dropping, saturate(
                    rne_shift(products[q], 8), act), out_y[q]), 0))
        m.d.sync += [placed.at.eq(self.i.at), clipped.at.eq(placed.at), o.at.eq(clipped.at),
                     o.write.eq(write)]
        for q in range(Q):
            y, at_most = ys[q], self._at_most(q)
            m.d.sync += [
                placed.positive[q].eq(is_positive(self.i.sums[q])),
                placed.keep[q].eq(~self.drop | (self.i.draws[q] >= self.dropout)
                                  if self.has_dropout else 1),
                clipped.y[q].eq(y),
                clipped.positive[q].eq(placed.positive[q] & at_most),   # v <= 2**act_bits - 1
                clipped.keep[q].eq(placed.keep[q]),
            ]
            if not dropout:
                m.d.sync += o.y[q].eq(Mux(clipped.keep[q], largest[q], 0))
            m.d.sync += o.active[q].eq(positive[q] & clipped.keep[q]
                                       & (clipped.at.n < self.neurons))
        m.d.comb += self.busy.eq(placed.at.valid | clipped.at.valid | o.at.valid
                                 | (self.o.at.valid if self.output_register else 0))
        if self.output_register:
            m.d.sync += self.o.eq(o)
        return m

    def _clipped_y(self, q):
        """Lane ``q``'s rounded sum saturated to an activation (the second stage's ``y``)."""
        v, act = self.rounded[q], unsigned(self.act_bits)
        if self.rounding_parts:
            return saturate_parts(v, self.round_up[q], act)
        return saturate(v, act)

    def _at_most(self, q):
        """Lane ``q``'s rounded sum is at most ``2**act_bits - 1``."""
        v = self.rounded[q]
        if self.rounding_parts:
            return at_most_parts(v, self.round_up[q], self.act_bits)
        return v[-1] | ~magnitude_above(v, self.act_bits)
