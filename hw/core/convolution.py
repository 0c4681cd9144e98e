"""Training a convolution in the training core (a core built with ``CoreParams.conv``): the
wiring of ``BACK`` and ``GRAD`` of a layer whose ``conv`` register is set into
hw/core/training_core.py's datapath (docs/CONV_CORE.md, "Training")."""

from amaranth.hdl import Cat, Mux, Signal, signed

from .conv_deltas import ConvDeltas
from .conv_geometry import conv_layout
from .gradient_patches import GradientPatches
from .sequencer import Phase

__all__ = ["wire_conv_training"]


def wire_conv_training(core, m, k):
    """A convolution's backward steps. ``BACK`` runs as a fully connected layer's over the
    flattened output (``F*S`` outputs in tiles of ``P``); its deltas also go to the
    convolution's delta store (conv_deltas.py), which the forward pass's pooling winners
    unpool. ``GRAD`` runs, per filter tile, over the kernel-row input tiles, every conv output
    position and every sample (gradient_patches.py walks the tiles and positions, the loop
    nest the samples): a sum is the whole mini-batch's, its columns the tile's real ``kw``;
    the bias gradients are the sums of the first input tile's delta operands. Where this
    drives a port another section drives, the assignment here comes later and wins."""
    p = core.params
    P, Q, _, _, qbits, _, cw = core._sizes()
    phase, nest, drain, s1 = k.phase, k.nest, k.drain, k.s1
    conv, geometry, conv_on = k.conv, k.geometry, k.conv_on
    sequencer, operands = k.sequencer, k.operands
    hold, issue = k.holds["convolution"], nest.issue
    conv_back = (phase == Phase.BACK) & conv_on
    conv_grad = (phase == Phase.GRAD) & conv_on
    pooling = conv_on & conv.pool

    # ---- the delta store: winners from the forward drain, deltas from BACK -------------
    k.conv_deltas = deltas = ConvDeltas(P, Q, p.delta_bits, p.max_batch, p.max_neurons, cw,
                                        p.scramble_collisions)
    m.submodules.conv_deltas = deltas
    fo, back = k.forward.o, k.back
    m.d.comb += [
        deltas.filters.eq(k.N), deltas.positions.eq(geometry.positions),
        deltas.pool.eq(conv.pool),
        deltas.winner.valid.eq(fo.write & pooling), deltas.winner.filter.eq(fo.at.n),
        deltas.winner.position.eq(fo.at.position), deltas.winner.group.eq(fo.at.group),
        deltas.winner.winners.eq(fo.winner),
    ]
    # BACK's columns reach the store a cycle late, registered: its write side (the tile's
    # comparison, the lanes' choice, the banks' selection) after the phase decode and the
    # drain in one cycle was the ULX3S conv build's critical path (21.3 ns). GRAD, which reads
    # them, begins after BACK's drain is idle and reads from the cycle after it begins.
    # ``start`` is registered with them (BACK's first column comes cycles after it begins):
    # the sequencer's phase decode, then the lanes' choice and the banks' write addresses, was
    # the next critical path (22.8 ns).
    column = Signal(deltas.write_layout)
    m.d.sync += [deltas.start.eq(sequencer.begins.back),
                 column.valid.eq(back.delta.en & conv_back),
                 column.sample.eq(back.delta.sample), column.tile.eq(back.delta.tile),
                 column.deltas.eq(back.delta.data)]
    m.d.comb += deltas.write.eq(column)

    # ---- GRAD: the input tiles and positions ----------------------------------------------
    k.gradient_patches = walk = GradientPatches(Q, conv_layout["in_h"].width,
                                                conv_layout["kernel"].width, k.bufs[0].cbits)
    m.submodules.gradient_patches = walk
    last_position_beat = nest.inner_last & walk.last_position
    m.d.comb += [
        walk.in_h.eq(conv.in_h), walk.in_w.eq(conv.in_w), walk.plane.eq(geometry.plane),
        walk.kernel.eq(conv.kernel), walk.same.eq(~conv.valid), walk.pool.eq(conv.pool),
        # After the last input tile the walk wraps to the first (the next filter tile).
        walk.start.eq(sequencer.begins.grad), walk.last_tile.eq(nest.mid == nest.last.mid),
        walk.next_position.eq(issue & conv_grad & nest.inner_last),
    ]
    with m.If(conv_grad):
        m.d.comb += [nest.position_last.eq(walk.last_position),
                     # A sum is a whole input tile's: one tag, at its last beat.
                     k.tags.valid.eq(issue & last_position_beat)]
    m.d.comb += k.tags.payload.columns.eq(walk.columns)
    # The beat's reads: Q consecutive input columns of sample ``inner`` from the walk's
    # start, and the deltas of the filter tile at the position, unpooled.
    for buf in k.bufs:
        with m.If(conv_grad):
            m.d.comb += buf.rd_col.eq(walk.column)
    m.d.comb += [
        deltas.read.en.eq(~hold), deltas.read.sample.eq(nest.inner),
        deltas.read.tile.eq(nest.outer), deltas.read.position.eq(walk.pooled),
        deltas.read.window.eq(walk.window),
    ]
    # The first beat of a sum: the first after a phase begins or after a sum's last.
    sum_first = Signal(init=1)
    with m.If(sequencer.begin):
        m.d.sync += sum_first.eq(1)
    with m.Elif(issue & conv_grad):
        m.d.sync += sum_first.eq(last_position_beat)
    with m.If(~hold):
        m.d.sync += [s1.lanes.eq(walk.lanes), s1.outer.eq(nest.outer)]
        with m.If(conv_grad):
            m.d.sync += [s1.first.eq(sum_first), s1.last.eq(last_position_beat)]
    m.d.comb += [operands.conv_on.eq(conv_on), operands.beat.lanes.eq(s1.lanes)]
    with m.If(conv_on):
        m.d.comb += operands.deltas.eq(deltas.deltas)

    # The bias gradients: the delta operands of the first input tile's sum, summed as the
    # array takes them (every sample at every position, each pooled delta once at its
    # winner), written at its last beat; the bias step reads them after the last tile's. They
    # are taken from the registered beat (stage 2), off the operand selection's combinational
    # path.
    gb_shape = signed(p.grad_bias_bits)
    s2 = k.s2
    first_tile, outer = Signal(), Signal.like(s1.outer)     # of the beat in stage 2
    at_operands = k.s1_operands                             # the beat entering stage 2
    with m.If(~hold):
        m.d.sync += [first_tile.eq(at_operands.valid & conv_grad & (at_operands.m == 0)),
                     outer.eq(at_operands.outer)]
    bias_sums = [Signal(gb_shape, name=f"conv_bias_sum_{r}") for r in range(P)]
    summed = [Signal(gb_shape, name=f"conv_bias_next_{r}") for r in range(P)]
    taken = ~hold & s2.valid & first_tile
    for r in range(P):
        m.d.comb += summed[r].eq(Mux(s2.beat.first, 0, bias_sums[r]) + s2.beat.a[r])
        with m.If(taken):
            m.d.sync += bias_sums[r].eq(summed[r])
    with m.If(conv_grad):
        m.d.comb += [k.gb_wr.en.eq(taken & s2.beat.last),
                     k.gb_wr.addr.eq(outer[:k.tbits]), k.gb_wr.data.eq(Cat(*summed))]

    # The gradient drain's columns: a tile's real ``kw``, carried by the sum's tag.
    m.d.comb += [k.columns.conv_on.eq(conv_on),
                 k.columns.popped_columns.eq(drain.popped.tag.columns)]

    # ---- the loops of BACK and GRAD --------------------------------------------------------
    with m.If(conv_on):
        with m.Switch(sequencer.begin_phase):
            with m.Case(Phase.BACK):
                m.d.comb += nest.limits.outer.eq(geometry.out_tiles - 1)
            with m.Case(Phase.GRAD):
                m.d.comb += nest.limits.mid.eq(geometry.in_tiles - 1)
        m.d.comb += k.feedback.tiles.eq(geometry.out_tiles)
