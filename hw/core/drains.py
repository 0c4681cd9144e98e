"""The drains of the training core (training_core.py): what turns each finished sum of the MAC
array into activations, scores and errors, deltas, or weight updates while the array sums the
next; and the weight initialisation, the other writer of the weight bus. Each is a component
of this package; these functions wire them into the core, a section of ``TrainingCore.elaborate``
each (``core`` the TrainingCore, ``k`` the namespace its sections share)."""

from amaranth.hdl import Cat, Const, Mux, Signal, signed
from amaranth.lib import data

from ..banked_ram import COPY_SUFFIX
from ..dsp_floorplans import dsp_sites
from ..params import index_bits
from .back_projection import BackProjection
from .drain_rounding import DrainRounding
from .error_stage import ErrorStage
from .forward_drain import ForwardDrain
from .gradient_columns import GradientColumns
from .weight_init import WeightInit
from .weight_updater import WeightUpdater

__all__ = ["wire_row_drains", "wire_column_drains"]


def wire_row_drains(core, m, k):
    """The drain register and its rounding stage; the forward pass's drain with the
    activation writes, and the score drain with the error stage."""
    p, ctl = core.params, core.control
    P, Q, C, pbits, qbits, CT, cw = core._sizes()
    drain, mac = k.drain, k.mac
    # A finished sum moves into the drain register when it is free (the array sums on); each
    # drain step takes row 0 (FWD, SCORE) or column 0 (BACK, GRAD) and shifts the rest up
    # (hw/core/drain_register.py).
    drain_on = drain.holding
    tag_o, tag_m = drain.tag.outer, drain.tag.mid
    k.step = step = Signal(cw)
    # The sum's active bits (BACK) and bias gradients (GRAD) are read as it pops.
    pop_o, pop_m = drain.popped.tag.outer, drain.popped.tag.mid
    k.a_data = core._safe(m, k.a_rd, k.a_wr)
    m.d.comb += [k.a_rd.en.eq(drain.popped.valid),
                 k.a_rd.addr.eq(Cat(pop_m[:k.gbits], pop_o[:k.tbits])),
                 k.gb_rd.en.eq(drain.popped.valid), k.gb_rd.addr.eq(pop_o[:k.tbits])]

    def element(e):
        """Element ``e`` of the drain register: of row 0 or of column 0."""
        return drain.row[e] if e < Q else drain.column[e // Q]

    # The first drain stage of FWD, SCORE and BACK (one runs at a time): each lane's sum
    # rounded by the phase's shift (``drain_shift``, set with the phase), a cycle later
    # (hw/core/drain_rounding.py). Lane i is row 0's sum i (FWD, SCORE) or column 0's sum
    # i (BACK).
    lanes = max(P, Q)
    k.drain_shift = Signal(5)
    rounding = DrainRounding(lanes, mac.acc_shape, registered_shift=p.pipelined)
    m.submodules.drain_rounding = rounding
    m.d.comb += rounding.shift.eq(k.drain_shift)
    for i in range(lanes):
        row_sum = i if i < Q else i * Q
        col_sum = i * Q if i < P else i
        column_lane = k.phase_is.back
        if p.pipelined:
            # Each lane chooses by its own copy of the phase, a cycle late: one register
            # choosing for every lane's 40 bits was a slow path of the 8 x 8 ULX3S build. (No
            # sum is in the drain register in a phase's first cycle or after a reset: its
            # first beat is still in the MAC pipe. So the copies are not reset either: the
            # reset's net reached every copy.)
            column_lane = Signal(name=f"rounding_back_{i}{COPY_SUFFIX}", reset_less=True)
            m.d.sync += column_lane.eq(k.phase_is.back)
        m.d.comb += rounding.sums[i].eq(
            element(row_sum) if row_sum == col_sum
            else Mux(column_lane, element(col_sum), element(row_sum)))
    k.rounded = rounded = rounding.rounded
    # Pipelined, the drains saturate from the rounding's registered parts: its full-width
    # adder is not in front of their saturation (hw.arith.saturate_parts).
    k.rounding_parts = parts = p.pipelined

    def rounded_to(unit, lanes):
        source = rounding.quotient if parts else rounded
        m.d.comb += [unit.rounded[i].eq(source[i]) for i in range(lanes)]
        if parts:
            m.d.comb += unit.round_up.eq(rounding.round_up[:lanes])
    k.rounded_to = rounded_to

    # FWD: row `step` of the tile: neuron t*P + step, samples g*Q + q
    # (hw/core/forward_drain.py), with the shared rounding stage as its first stage.
    fwd_drop = k.training & (k.dropout != 0)
    phase_is = k.phase_is
    k.fwd_step = fwd_step = phase_is.fwd & drain_on
    k.forward = forward = ForwardDrain(Q, mac.acc_shape, rounded.shape().elem_shape,
                                       p.act_bits, cw + pbits, cw, max(1, pbits), p.dropout,
                                       **({"pooling": True, "rows": P} if p.conv else {}),
                                       rounding_parts=parts, output_register=p.pipelined,
                                       multiplier=p.multiplier,
                                       sites=(dsp_sites(p.dsp_floorplan)[1]
                                              if p.dropout else None))
    m.submodules.forward_drain = forward
    neuron = Cat(step[:pbits], tag_o) if pbits else tag_o
    m.d.comb += [
        forward.i.at.valid.eq(fwd_step),
        forward.i.at.n.eq(neuron),
        forward.i.at.group.eq(tag_m), forward.i.at.tile.eq(tag_o),
        forward.i.at.row.eq(step[:max(1, pbits)]),
        forward.neurons.eq(k.N),
    ]
    # A convolution's row is filter ``neuron`` at output position ``pooled``: its column in
    # the flattened output is ``neuron * S + pooled``; a pooled row leaves with its
    # window's last element.
    if p.conv:
        pooling = k.conv_on & k.conv.pool
        pool_last = ~pooling | (drain.tag.window == 3)
        m.d.comb += [forward.pool.eq(pooling), forward.i.at.window.eq(drain.tag.window),
                     forward.i.at.position.eq(drain.tag.pooled),
                     forward.i.at.column.eq(neuron * k.geometry.positions
                                            + drain.tag.pooled)]
    m.d.comb += [forward.i.sums[q].eq(drain.row[q]) for q in range(Q)]
    rounded_to(forward, Q)
    if p.dropout:
        m.d.comb += [forward.drop.eq(fwd_drop), forward.dropout.eq(k.dropout),
                     forward.keep_scale.eq(k.keep_scale)]
        m.d.comb += [forward.i.draws[q].eq(d)
                     for q, d in enumerate(core._chunks(k.drop_lfsr, 8, Q))]
    fo = forward.o
    out_column, out_tile, out_row = fo.at.n, fo.at.tile, fo.at.row
    out_rows = Mux(fo.at.valid, Const(1, P) << out_row, 0)
    if p.conv:
        # The active bits are kept by output column in tiles of P, as a fully connected
        # layer's (the back projection reads them so).
        out_column = Mux(k.conv_on, fo.at.column, fo.at.n)
        out_tile = Mux(k.conv_on, fo.at.column >> pbits, fo.at.tile)
        out_row = Mux(k.conv_on, fo.at.column[:max(1, pbits)], fo.at.row)
        out_rows = Mux(k.conv_on, Mux(fo.write, Const(1, P) << out_row, 0), out_rows)
    for i, buf in enumerate(k.bufs):
        is_y = k.xsel == (1 - i)
        m.d.comb += [
            buf.wr_en.eq(Mux(ctl.busy, fo.write & is_y,
                             ctl.load_en & ~ctl.load_label & (i == 0))),
            buf.wr_group.eq(Mux(ctl.busy, fo.at.group, ctl.load_sample >> qbits)),
            buf.wr_col.eq(Mux(ctl.busy, out_column, ctl.load_col)),
            buf.wr_mask.eq(Mux(ctl.busy, (1 << Q) - 1,
                               Const(1, Q) << (ctl.load_sample[:qbits] if qbits else 0))),
        ]
        for q in range(Q):
            m.d.comb += buf.wr_data[q].eq(Mux(ctl.busy, fo.y[q], ctl.load_data))
    m.d.comb += [
        k.a_wr.addr.eq(Cat(fo.at.group[:k.gbits], out_tile[:k.tbits])),
        k.a_wr.data.eq(fo.active.replicate(P)),
        k.a_wr.en.eq(out_rows),
        k.l_wr.en.eq(ctl.load_en & ctl.load_label & ~ctl.busy),
        k.l_wr.addr.eq(ctl.load_sample), k.l_wr.data.eq(ctl.load_data),
    ]
    if p.dropout:
        draw = fwd_step & fwd_drop
        m.d.comb += k.drop_lfsr.o.ready.eq(draw & pool_last if p.conv else draw)

    # SCORE: row `step` = class tile*P + step, then the group's errors
    # (hw/core/error_stage.py), with the shared rounding stage as the drain's first stage.
    k.errors = errors = ErrorStage(Q, C, rounded.shape().elem_shape, p.score_bits,
                                   p.score_frac, p.error_bits, index_bits(CT * P),
                                   p.scramble_collisions, registered_input=p.pipelined,
                                   rounding_parts=parts)
    m.submodules.error_stage = errors
    k.score_step = phase_is.score & drain_on & errors.row_ready
    m.d.comb += [
        errors.row.valid.eq(phase_is.score & drain_on),
        errors.row.class_index.eq(Cat(step[:pbits], tag_m) if pbits else tag_m),
        errors.row.last.eq((step == P - 1) & (tag_m == CT - 1)),
        errors.row.group.eq(tag_o),
        errors.batch.eq(k.B), k.l_rd.addr.eq(errors.label_addr),
        errors.label.eq(k.l_rd.data),
    ]
    rounded_to(errors, Q)
    error, result = errors.error, errors.result
    m.d.comb += [k.e_wr.addr.eq(Cat(error.class_index[:k.cbits],
                                    (error.sample >> qbits)[:k.gbits])),
                 k.e_wr.data.eq(error.value.replicate(Q)),
                 k.e_wr.en.eq(Mux(error.valid, Const(1, Q) << error.sample[:qbits], 0)
                              if qbits else error.valid)]
    sample, layer, alive = result.sample[:k.bbits_s], k.layer, k.alive
    m.d.comb += [k.r_wr.en.eq(result.valid), k.r_wr.addr.eq(Cat(sample, layer)),
                 k.r_wr.data.eq(result.prediction),
                 k.x_wr.addr.eq(sample), k.x_wr.data.eq(layer),
                 k.x_wr.en.eq(result.valid & alive.bit_select(sample, 1))]
    counts = result.valid & result.correct & k.training
    if p.pipelined:
        # Counted a cycle after the result, from a register: the local-error unit's
        # comparisons end there, not at the counters' adders. (The layer does not change
        # before SCORE is done, cycles later.)
        counted = Signal()
        m.d.sync += counted.eq(counts)
        counts = counted
    with m.If(counts):
        m.d.sync += ctl.correct[layer].eq(ctl.correct[layer] + 1)
    # A sample confident enough exits: it is not alive in the next layers.
    exits = (result.valid & k.skip_en & (result.margin >= k.cmd.threshold)
             & (layer != k.n_layers - 1))
    exiting = sample
    if p.pipelined:
        # Cleared a cycle after the result, from registers: the margin's subtraction and
        # comparison end at a register, not at every bit of ``alive``. (Nothing reads the
        # sample's bit before the next layer, which begins cycles after SCORE is done.)
        exit_valid, exit_sample = Signal(), Signal.like(sample)
        m.d.sync += [exit_valid.eq(exits), exit_sample.eq(sample)]
        exits, exiting = exit_valid, exit_sample
    with m.If(exits):
        m.d.sync += alive.bit_select(exiting, 1).eq(0)


def wire_column_drains(core, m, k):
    """The back projection's drain, the gradient drain with the weight update, and the
    weight initialisation: what the weight bus writes."""
    p = core.params
    P, Q, _, _, qbits, _, cw = core._sizes()
    drain, step, rd, wr = k.drain, k.step, k.rd, k.wr
    tag_o, tag_m = drain.tag.outer, drain.tag.mid
    # BACK: column `step` = sample g*Q + step; P deltas a cycle and the bias gradients
    # (hw/core/back_projection.py), with the shared rounding stage as its first stage.
    phase_is = k.phase_is
    k.back_step = back_step = phase_is.back & drain.holding
    k.back = back = BackProjection(P, Q, signed(len(k.rounded[0])), p.delta_bits,
                                   p.grad_bias_bits, cw, rounding_parts=k.rounding_parts)
    m.submodules.back_projection = back
    m.d.comb += [
        back.i.valid.eq(back_step),
        back.i.payload.sample.eq(Cat(step[:qbits], tag_m) if qbits else tag_m),
        back.i.payload.tile.eq(tag_o),
        back.i.payload.last.eq((step == Q - 1) & (tag_m == k.G - 1)),
        back.active.eq(k.a_data),
        k.d_wr.en.eq(back.delta.en),
        k.d_wr.addr.eq(Cat(back.delta.sample[:k.bbits_s], back.delta.tile[:k.tbits])),
        k.d_wr.data.eq(back.delta.data.as_value()),
        k.gb_wr.en.eq(back.bias_grad.en), k.gb_wr.addr.eq(back.bias_grad.tile[:k.tbits]),
        k.gb_wr.data.eq(back.bias_grad.data.as_value()),
    ]
    k.rounded_to(back, P)

    # GRAD: column `step` = input tile*Q + step, then the biases after the last tile.
    gb_lanes = data.View(data.ArrayLayout(signed(p.grad_bias_bits), P),
                         core._safe(m, k.gb_rd, k.gb_wr))
    old = data.View(data.ArrayLayout(signed(p.weight_bits), P), rd.payload)
    rand = core._chunks(k.round_lfsr, p.round_bits, P)
    grad_step = phase_is.grad & drain.holding
    k.columns = columns = GradientColumns(Q, cw, p.batch_norm, conv=p.conv)
    m.submodules.gradient_columns = columns
    m.d.comb += [columns.popped.eq(drain.popped.valid),
                 columns.popped_tile.eq(drain.popped.tag.mid),
                 columns.last_tile.eq(k.nest.last.mid), columns.fan_in.eq(k.J),
                 columns.step.eq(step), columns.active.eq(grad_step),
                 columns.begin.eq(k.sequencer.begin), columns.end.eq(drain.end),
                 columns.bias_shift.eq(k.bias_shift),
                 columns.update_shift.eq(k.cur["update_shift"][:5])]
    # A column's update (hw/core/weight_updater.py), its weight word read-modified-written
    # as it arrives from the bus.
    g_width = max(k.mac.acc_shape.width, p.grad_bias_bits,
                  core.scale_grad_bits if p.batch_norm else 0) + 1
    k.updater = updater = WeightUpdater(P, signed(g_width), p.weight_bits, p.round_bits,
                                         registered_input=p.pipelined)
    m.submodules.weight_updater = updater
    m.d.comb += [
        updater.i.valid.eq(grad_step & columns.update),
        updater.i.payload.shift.eq(columns.shift),
        updater.stochastic.eq(k.stochastic),
        updater.old.valid.eq(rd.valid), updater.old.payload.eq(old),
        updater.new.ready.eq(wr.ready),
    ]
    for r in range(P):
        m.d.comb += [updater.i.payload.grad[r].eq(Mux(columns.bias, gb_lanes[r],
                                                      drain.column[r])),
                     updater.i.payload.rand[r].eq(rand[r])]
    grad_round = updater.i.valid & updater.i.ready
    grad_move = updater.new.valid & updater.new.ready
    m.d.comb += columns.taken.eq(grad_round)

    # INIT: every weight word of the layer from the init PRNG, then a zero bias word.
    k.init = init = WeightInit(P, p.weight_bits, p.lfsr_width, cw, p.batch_norm,
                               registered_bits=p.pipelined)
    m.submodules.weight_init = init
    m.d.comb += [
        init.seed.eq(k.cur["init_seed"]), init.tiles.eq(k.T), init.fan_in.eq(k.J),
        init.neurons.eq(k.N), init.init_bits.eq(k.cur["init_bits"][:5]),
        init.enable.eq(k.phase_is.init & k.running), init.o.ready.eq(wr.ready),
    ]
    init_push = init.o.valid & init.o.ready

    m.d.comb += [
        wr.valid.eq(grad_move | init_push),
        wr.payload.eq(Mux(k.phase_is.init, init.o.payload.as_value(),
                            updater.new.payload.as_value())),
        rd.ready.eq(k.fill_go | grad_move),
        k.round_lfsr.o.ready.eq(grad_round & k.stochastic),
    ]
