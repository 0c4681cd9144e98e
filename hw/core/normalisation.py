"""Batch normalisation in the training core (a core built with ``CoreParams.batch_norm``):
the wiring of the NORM and NORM_BACK phases into hw/core/training_core.py's datapath."""

from amaranth.hdl import Cat, Const, Mux, signed, unsigned
from amaranth.lib import data
from amaranth.lib.memory import Memory

from contract.batch_norm import BACK_BITS, RECIP_BITS, XHAT_BITS

from .normalise_backward_phase import NormaliseBackwardPhase
from .normalise_phase import EXTRA_READ, EXTRA_WRITE, NormalisePhase
from .sequencer import Phase

__all__ = ["wire_normalisation"]


def wire_normalisation(core, m, k):
    """Batch normalisation (a core built with it): the NORM and NORM_BACK phases
    (normalise_phase.py, normalise_backward_phase.py), their memories, the centred operands,
    the tiles' extra words on the weight bus, the scale's update in GRAD. Where a phase of
    its own drives a port another section drives, the assignment here comes later and wins."""
    p, ctl = core.params, core.control
    P, Q, _, _, qbits, _, cw = core._sizes()
    phase, greg, cur = k.phase, k.regs.globals, k.cur
    bn, T, J = k.bn, k.T, k.J
    af, wf = greg.bn_act_frac[:5], greg.bn_weight_frac[:5]
    rf = greg.bn_stat_frac[:5]
    gbits, tbits = k.gbits, k.tbits
    m.d.comb += k.sequencer.normalise.eq(bn)

    # ceil(2**RECIP_BITS / B) for the command's batch, from a table (one entry per B).
    reciprocals = Memory(shape=unsigned(RECIP_BITS + 1), depth=256,
                         init=[0] + [-(-(1 << RECIP_BITS) // b) for b in range(1, 256)])
    m.submodules.batch_reciprocals = reciprocals
    reciprocal = reciprocals.read_port()
    m.d.comb += reciprocal.addr.eq(k.B)
    inv_b = reciprocal.data

    # ---- the centred operands ---------------------------------------------------------
    m.d.comb += [k.operands.centre_inputs.eq(bn & (k.layer != 0)),
                 k.operands.centre_outputs.eq(bn)]

    # ---- memories: xhat and bn_active per (group, tile), h per tile, scale gradients ------
    xmem = Memory(shape=unsigned(P * Q * XHAT_BITS), depth=1 << (gbits + tbits), init=[])
    bmem = Memory(shape=unsigned(P * Q), depth=1 << (gbits + tbits), init=[])
    hmem = Memory(shape=unsigned(P * BACK_BITS), depth=1 << tbits, init=[])
    gmem = Memory(shape=unsigned(P * core.scale_grad_bits), depth=1 << tbits, init=[])
    m.submodules.xhat = xmem
    m.submodules.bn_active = bmem
    m.submodules.backward_scales = hmem
    m.submodules.scale_grads = gmem
    x_rd, x_wr = xmem.read_port(), xmem.write_port(granularity=XHAT_BITS)
    b_rd, b_wr = bmem.read_port(), bmem.write_port(granularity=Q)
    h_rd, h_wr = hmem.read_port(), hmem.write_port(granularity=BACK_BITS)
    g_rd, g_wr = gmem.read_port(), gmem.write_port()

    # ---- NORM ----------------------------------------------------------------------------
    norm = NormalisePhase(P, Q, p.act_bits, p.weight_bits, cw, gbits,
                          k.bufs[0].cbits, tbits)
    m.submodules.normalise_phase = norm
    m.d.comb += [
        norm.start.eq(k.sequencer.begins.norm), norm.tiles.eq(T), norm.neurons.eq(k.N),
        norm.groups.eq(k.G), norm.batch.eq(k.B), norm.training.eq(k.training),
        norm.inv_b.eq(inv_b), norm.act_frac.eq(af), norm.weight_frac.eq(wf),
        norm.stat_frac.eq(rf), norm.momentum.eq(greg.bn_momentum[:5]),
        norm.eps_log2.eq(greg.bn_eps_log2[:5]),
        norm.read_data.eq(k.y_lanes),
        norm.words.payload.eq(k.rd.payload),
        norm.words.valid.eq((phase == Phase.NORM) & k.rd.valid),
        norm.stats_words.ready.eq((phase == Phase.NORM) & k.wr.ready),
    ]
    side, hw_ = norm.side, norm.h_write
    m.d.comb += [
        x_wr.addr.eq(Cat(side.group[:gbits], side.tile[:tbits])),
        x_wr.data.eq(side.xhat.as_value().replicate(P)),
        x_wr.en.eq(Mux(side.en, Const((1 << Q) - 1, P * Q) << (side.row * Q), 0)),
        b_wr.addr.eq(Cat(side.group[:gbits], side.tile[:tbits])),
        b_wr.data.eq(side.active.replicate(P)),
        b_wr.en.eq(Mux(side.en, Const(1, P) << side.row, 0)),
        h_wr.addr.eq(hw_.tile[:tbits]), h_wr.data.eq(hw_.value.as_unsigned().replicate(P)),
        h_wr.en.eq(Mux(hw_.en, Const(1, P) << hw_.row, 0)),
    ]
    # (Only while a command runs: the phase stays NORM after a frozen layer's, the last of
    # its TRAIN, while the host loads the next mini-batch into the buffers.)
    with m.If((phase == Phase.NORM) & ctl.busy):
        for i, buf in enumerate(k.bufs):
            is_y = k.xsel == (1 - i)
            m.d.comb += [buf.rd_en.eq(norm.read.en), buf.rd_row.eq(0),
                         buf.rd_group.eq(norm.read.group), buf.rd_col.eq(norm.read.col),
                         buf.wr_en.eq(norm.write.en & is_y),
                         buf.wr_group.eq(norm.write.group), buf.wr_col.eq(norm.write.col),
                         buf.wr_mask.eq((1 << Q) - 1)]
            m.d.comb += [buf.wr_data[q].eq(norm.write.z[q]) for q in range(Q)]
        m.d.comb += [k.rd.ready.eq(norm.words.ready), k.wr.valid.eq(norm.stats_words.valid),
                     k.wr.payload.eq(norm.stats_words.payload)]

    # ---- BACK masks the projection with bn_active (pz) --------------------------------
    m.d.comb += [b_rd.en.eq(k.a_rd.en), b_rd.addr.eq(k.a_rd.addr)]
    with m.If(bn):
        m.d.comb += k.back.active.eq(core._safe(m, b_rd, b_wr))

    # ---- NORM_BACK -------------------------------------------------------------------
    back = NormaliseBackwardPhase(P, Q, p.delta_bits, cw, k.bbits_s)
    m.submodules.normalise_backward_phase = back
    at = back.at
    m.d.comb += [
        back.start.eq(k.sequencer.begins.norm_back), back.tiles.eq(T), back.batch.eq(k.B),
        back.inv_b.eq(inv_b), back.act_frac.eq(af),
        back.deltas.eq(k.d_lanes), back.xhats.eq(core._safe(m, x_rd, x_wr)),
        back.active.eq(k.a_data), back.h.eq(core._safe(m, h_rd, h_wr)),
        x_rd.addr.eq(Cat((at.sample >> qbits)[:gbits], at.tile[:tbits])),
        x_rd.en.eq(at.en), h_rd.addr.eq(at.tile[:tbits]), h_rd.en.eq(at.en),
        g_wr.addr.eq(back.grads.tile[:tbits]), g_wr.en.eq(back.grads.en),
        g_wr.data.eq(back.grads.gamma.as_value()),
    ]
    with m.If((phase == Phase.NORM_BACK) & ctl.busy):
        dw = back.delta_write
        m.d.comb += [
            k.d_rd.en.eq(at.en), k.d_rd.addr.eq(Cat(at.sample[:k.bbits_s], at.tile[:tbits])),
            k.a_rd.en.eq(at.en),
            k.a_rd.addr.eq(Cat((at.sample >> qbits)[:gbits], at.tile[:tbits])),
            k.d_wr.en.eq(dw.en), k.d_wr.addr.eq(Cat(dw.sample[:k.bbits_s], dw.tile[:tbits])),
            k.d_wr.data.eq(dw.d.as_value()),
            k.gb_wr.en.eq(back.grads.en), k.gb_wr.addr.eq(back.grads.tile[:tbits]),
            k.gb_wr.data.eq(Cat(*(back.grads.bias[r][:p.grad_bias_bits]
                                  for r in range(P)))),
        ]

    # ---- GRAD: the scale after the bias ------------------------------------------------
    columns, updater, drain = k.columns, k.updater, k.drain
    m.d.comb += [columns.normalise.eq(bn), columns.gamma_shift.eq(cur["gamma_shift"][:5]),
                 g_rd.en.eq(drain.popped.valid), g_rd.addr.eq(drain.popped.tag.outer[:tbits])]
    scale_grads = data.View(data.ArrayLayout(signed(core.scale_grad_bits), P),
                            core._safe(m, g_rd, g_wr))
    with m.If(columns.gamma):
        m.d.comb += [updater.i.payload.grad[r].eq(scale_grads[r]) for r in range(P)]

    # ---- INIT: the tiles' normalisation words ---------------------------------------------
    m.d.comb += [k.init.normalise.eq(bn), k.init.weight_frac.eq(wf),
                 k.init.var_exponent.eq((af << 1) + rf)]

    # ---- the weight bus: tiles of J + 1 (+ 5) words, each phase its part ----------------
    weights, begins = k.weights, k.sequencer.begins
    extra = Mux(bn, EXTRA_READ, 0)
    m.d.comb += weights.stride.eq(J + 1 + extra)
    with m.If(begins.norm):
        m.d.comb += [weights.start.read.eq(1), weights.start.write.eq(k.training),
                     weights.start.read_offset.eq(J + 1),
                     weights.start.read_length.eq(EXTRA_READ),
                     weights.start.write_offset.eq(J + 2),
                     weights.start.write_length.eq(EXTRA_WRITE)]
    with m.Else():
        m.d.comb += [weights.start.read_offset.eq(0), weights.start.write_offset.eq(0),
                     weights.start.read_length.eq(J + 1 + Mux(begins.grad, bn, 0)),
                     weights.start.write_length.eq(J + 1 + Mux(begins.init, extra, bn))]

    # ---- when the phases are done ---------------------------------------------------------
    with m.Switch(phase):
        with m.Case(Phase.NORM):
            m.d.comb += k.phase_done.eq(~norm.busy & k.weights.write_idle)
        with m.Case(Phase.NORM_BACK):
            m.d.comb += k.phase_done.eq(~back.busy)
