"""The training core: one MAC array sequenced through every step of local-error learning.

For each layer the core runs four phases over the mini-batch (docs/ARITHMETIC.md, "One training
step"), each a loop nest of MAC-array beats ``(outer, mid, inner)``:

===========  ==================  ======================  ====================  ===============
phase        outer               mid                     inner (one beat)      rows x columns
===========  ==================  ======================  ====================  ===============
``FWD``      output tile ``t``   sample group ``g``      input ``j``, bias     neurons x samples
``SCORE``    sample group ``g``  class tile              neuron ``n``          classes x samples
``BACK``     output tile ``t``   sample group ``g``      class ``c``           neurons x samples
``GRAD``     output tile ``t``   input tile              sample ``b``          neurons x inputs
===========  ==================  ======================  ====================  ===============

A beat generator walks the nest and reads the operands (stage 0 -> 1), which are selected and
registered (stage 2) on their way into the MAC array; the array sums; a drain per phase turns
each finished sum into activations, scores and errors, deltas, or weight updates while the
array already sums the next. Weights stream over the weight bus
(hw/weight_bus.py): read once into a ping-pong slab for the forward pass, then read, updated in
place and written back in the gradient phase.

The components of this package carry the rest: the register file (register_file.py), the
weight-bus master (weight_stream.py), the local classifier and its feedback
(classifier_weights.py), the drains' rounding stage (drain_rounding.py), the back projection's
drain (back_projection.py), the weight update (weight_updater.py) and the weight
initialisation (weight_init.py).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from contract.registers import GLOBAL, LAYER, LAYER_BASE, LAYER_STRIDE

from ..activation_buffer import ActivationBuffer
from ..lfsr_prng import LfsrPrng
from ..mac_array import MacArray
from ..params import index_bits
from ..ram_collisions import read_data
from ..weight_bus import weight_bus_signature
from .back_projection import BackProjection
from .beat_operands import BeatOperands
from .classifier_weights import ClassifierWeights, odd_part
from .drain_register import DrainRegister
from .drain_rounding import DrainRounding
from .error_stage import ErrorStage
from .exit_savings import ExitSavings
from .feedback_registers import FeedbackRegisters
from .forward_drain import ForwardDrain
from .gradient_columns import GradientColumns
from .layer_registers import LayerRegisters
from .loop_nest import LoopNest
from .register_file import RegisterFile
from .sequencer import Op, Phase, Sequencer, command_layout
from .weight_init import WeightInit
from .weight_slab import WeightSlab
from .weight_stream import WeightStream
from .weight_updater import WeightUpdater

__all__ = ["TrainingCore", "Op"]


def _word(layout_shape, lanes):
    return data.ArrayLayout(layout_shape, lanes)


class TrainingCore(wiring.Component):
    """The sequencer, the MAC array, the on-chip buffers and the weight-bus master.

    Members
    -------
    control : In(control_signature)
        From the host interface: register writes (``reg_*``, contract/registers.py); ``cmd`` (op,
        batch, early_exit, threshold), taken when ``start`` is high and the core is idle;
        ``busy``, and ``done`` pulsing when a command finishes; ``load_*`` writes a pixel (or,
        with ``load_label``, a label) of the input mini-batch (idle only); ``res_*`` the layer
        predictions and exit layer of a sample of the last command (a cycle after the address);
        ``correct`` the correct predictions per layer of the last ``TRAIN``.
    mac_busy : Out
        High in cycles where the MAC array takes a beat.
    skipped : Out
        MAC beats early exit saved in this cycle.
    mem : Out(weight_bus_signature)
        The weight-bus master.
    """

    def __init__(self, params):
        p = self.params = params
        self.nregs = LAYER_BASE + LAYER_STRIDE * p.max_layers
        self.bbits = index_bits(p.max_batch + 1)
        self.lbits = index_bits(p.max_layers + 1)
        self.cmd_layout = command_layout
        # Loop counters and sizes: wide enough for the largest loop of any phase.
        self.count_bits = index_bits(max(p.columns, p.depth, p.tiles, p.groups, p.class_tiles,
                                         -(-p.max_inputs // p.cols)) + 2)
        self.buffer_cols = max(p.columns, 1)
        self.control_signature = wiring.Signature({
            "reg_we": Out(1), "reg_addr": Out(8), "reg_data": Out(32),
            "start": Out(1), "cmd": Out(self.cmd_layout),
            "busy": In(1), "done": In(1),
            "load_en": Out(1), "load_label": Out(1), "load_sample": Out(8),
            "load_col": Out(index_bits(self.buffer_cols)), "load_data": Out(8),
            "res_sample": Out(8), "res_layer": Out(4),
            "res_pred": In(p.label_shape), "res_exit": In(4),
            "correct": In(data.ArrayLayout(16, p.max_layers)),
        })
        super().__init__({
            "control": In(self.control_signature),
            "mac_busy": Out(1), "skipped": Out(32),
            "mem": Out(weight_bus_signature(p.addr_bits, p.word_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        P, Q, C = p.rows, p.cols, p.classes
        pbits = (P - 1).bit_length()
        qbits = (Q - 1).bit_length()
        CT = p.class_tiles
        cw = self.count_bits

        def safe(rd, wr):
            return read_data(m, rd, wr, p.scramble_collisions)

        # ---- registers: a memory, plus a copy of each global register ---------------------
        regs = RegisterFile(p.max_layers, p.scramble_collisions)
        m.submodules.registers = regs
        reg_data = regs.read_data
        m.d.comb += [regs.write.en.eq(self.control.reg_we),
                     regs.write.addr.eq(self.control.reg_addr),
                     regs.write.data.eq(self.control.reg_data)]

        def greg(name):
            return regs.globals[name]

        n_layers = greg("layers")[:4]
        # A feature the core is built without is off (the host interface refuses to turn it on).
        if p.dropout:
            dropout, keep_scale = greg("dropout")[:8], greg("keep_scale")[:17]
        else:
            dropout, keep_scale = Const(0, 8), Const(0, 17)
        stochastic = greg("rounding")[0] == 0
        sign_mode = greg("feedback")[0] if p.sign_feedback else Const(0, 1)
        bias_shift = greg("bias_shift")[:5]

        sequencer = Sequencer(p.early_exit)
        m.submodules.sequencer = sequencer
        m.d.comb += [sequencer.start.eq(self.control.start),
                     sequencer.command.eq(self.control.cmd), sequencer.layers.eq(n_layers),
                     self.control.busy.eq(sequencer.busy), self.control.done.eq(sequencer.done)]
        cmd, layer = sequencer.cmd, sequencer.layer
        current = LayerRegisters()
        m.submodules.layer_registers = current
        m.d.comb += [current.copy.eq(sequencer.copy), current.layer.eq(layer),
                     regs.read_addr.eq(current.read_addr), current.read_data.eq(reg_data),
                     sequencer.copied.eq(current.copied)]
        cur = {name: current.current[name] for name in LAYER}
        N, J = cur["neurons"][:cw], cur["fan_in"][:cw]
        T, JT = cur["tiles"][:cw], cur["in_tiles"][:cw]
        B = cmd.batch
        G = Signal(8)
        m.d.comb += G.eq((B + Q - 1) >> qbits)
        training = cmd.op == Op.TRAIN
        xsel = layer[0]                      # buffer holding this layer's input

        # ---- PRNGs ----------------------------------------------------------------------
        # The local classifier M (SCORE) and its feedback K (BACK's K registers), replayed
        # from the layer's seeds.
        cls_gen = ClassifierWeights(p.lfsr_width, C, p.classifier_bits, p.sign_feedback)
        round_lfsr = LfsrPrng(p.lfsr_width, p.round_bits, P)
        m.submodules.classifier_weights = cls_gen
        m.submodules.round_prng = round_lfsr
        m.d.comb += [
            cls_gen.seed.eq(cur["classifier_seed"]),
            round_lfsr.seed.eq(self.control.reg_data),
            round_lfsr.load.eq(self.control.reg_we & (self.control.reg_addr == GLOBAL["round_seed"])),
        ]
        if p.sign_feedback:
            m.d.comb += [cls_gen.feedback_seed.eq(cur["feedback_seed"]),
                         cls_gen.sign.eq(sign_mode)]
        if p.dropout:
            m.submodules.dropout_prng = drop_lfsr = LfsrPrng(p.lfsr_width, 8, Q)
            m.d.comb += [drop_lfsr.seed.eq(self.control.reg_data),
                         drop_lfsr.load.eq(self.control.reg_we
                                           & (self.control.reg_addr == GLOBAL["dropout_seed"]))]

        def chunks(lfsr, bits, lanes):
            return [lfsr.o.payload[k * bits:(k + 1) * bits] for k in range(lanes)]

        # ---- memories -------------------------------------------------------------------
        bufs = [ActivationBuffer(Q, p.groups, self.buffer_cols, p.act_bits,
                                 p.scramble_collisions) for _ in range(2)]
        m.submodules.buffer_0, m.submodules.buffer_1 = bufs
        tbits, gbits = index_bits(p.tiles), index_bits(p.groups)
        sbits = index_bits(p.max_inputs + 1)
        slab = WeightSlab(p.word_bits, sbits, cw, p.scramble_collisions)
        m.submodules.weight_slab = slab
        # Errors: a word per (group, class), a lane per sample of the group.
        cbits = index_bits(C)
        emem = Memory(shape=unsigned(Q * p.error_bits), depth=1 << (gbits + cbits), init=[])
        m.submodules.errors = emem
        e_rd, e_wr = emem.read_port(), emem.write_port(granularity=p.error_bits)
        bbits_s = index_bits(p.max_batch)
        dmem = Memory(shape=unsigned(P * p.delta_bits), depth=1 << (bbits_s + tbits), init=[])
        m.submodules.deltas = dmem
        d_rd, d_wr = dmem.read_port(), dmem.write_port()
        amem = Memory(shape=unsigned(P * Q), depth=1 << (gbits + tbits), init=[])
        m.submodules.active = amem
        a_rd, a_wr = amem.read_port(), amem.write_port(granularity=Q)
        gb_shape = signed(p.grad_bias_bits)
        gbmem = Memory(shape=unsigned(P * p.grad_bias_bits), depth=1 << tbits, init=[])
        m.submodules.bias_grads = gbmem
        gb_rd, gb_wr = gbmem.read_port(), gbmem.write_port()
        lmem = Memory(shape=p.label_shape, depth=1 << bbits_s, init=[])
        m.submodules.labels = lmem
        l_rd, l_wr = lmem.read_port(domain="comb"), lmem.write_port()
        rmem = Memory(shape=p.label_shape, depth=1 << (bbits_s + 4), init=[])
        m.submodules.results = rmem
        r_rd, r_wr = rmem.read_port(), rmem.write_port()
        xmem = Memory(shape=4, depth=1 << bbits_s, init=[])
        m.submodules.exits = xmem
        x_rd, x_wr = xmem.read_port(), xmem.write_port()
        m.d.comb += [
            r_rd.addr.eq(Cat(self.control.res_sample[:bbits_s], self.control.res_layer)),
            self.control.res_pred.eq(safe(r_rd, r_wr)),
            x_rd.addr.eq(self.control.res_sample[:bbits_s]), self.control.res_exit.eq(safe(x_rd, x_wr)),
        ]

        # ---- bus ------------------------------------------------------------------------
        # The layer's weights: FWD reads them, GRAD reads and writes them, INIT writes them.
        weights = WeightStream(p.addr_bits, p.word_bits, cw)
        m.submodules.weight_stream = weights
        wiring.connect(m, weights.mem, wiring.flipped(self.mem))
        m.d.comb += [weights.fan_in.eq(J), weights.start.bursts.eq(T),
                     weights.start.base.eq(cur["weight_base"])]
        rd, wr = weights.rd, weights.wr
        w_idle = weights.write_idle

        # ---- sequencer state --------------------------------------------------------------
        phase, running = sequencer.phase, sequencer.running
        alive = Signal(p.max_batch)
        skip_en = (cmd.op == Op.INFER) & cmd.early_exit if p.early_exit else Const(0, 1)

        alive_groups = Cat(alive, Const(0, p.groups * Q - p.max_batch))

        def group_alive(g):
            return alive_groups.word_select(g[:gbits], Q) != 0

        # ---- beat generator (stage 0) ------------------------------------------------------
        nest = LoopNest(cw)
        m.submodules.loop_nest = nest
        go, gm, gk = nest.outer, nest.mid, nest.inner
        k_wrap, gen = nest.inner_last, nest.active
        s1 = Signal(data.StructLayout({"valid": 1, "first": 1, "last": 1, "bias": 1,
                                       "k": cw, "m": cw}))
        # The beat's classifier weights (SCORE), registered without their constant low bit.
        s1_weights = Signal(data.ArrayLayout(unsigned(p.classifier_bits), C))
        mac = MacArray(P, Q, p.a_shape, p.b_shape, p.depth)
        m.submodules.mac = mac
        s2 = Signal(data.StructLayout({"valid": 1, "beat": mac.in_layout}))
        freeze = s2.valid & ~mac.i.ready        # the whole pipe holds (registers only)
        # The MAC beat's tag: the outer and mid loop counters of the sum it ends.
        tag_layout = data.StructLayout({"outer": cw, "mid": cw})
        drain = DrainRegister(P, Q, mac.acc_shape, tag_layout)
        m.submodules.drain_register = drain
        wiring.connect(m, mac.o, drain.sums)

        feedback = FeedbackRegisters(P, C, cls_gen.o_layout["k"].shape.elem_shape, cw)
        m.submodules.feedback_registers = feedback

        dead = Signal()
        m.d.comb += dead.eq(skip_en & (((phase == Phase.FWD) & ~group_alive(gm)) |
                                       ((phase == Phase.SCORE) & ~group_alive(go))))
        ready = Signal()
        with m.Switch(phase):
            with m.Case(Phase.FWD):
                m.d.comb += ready.eq(slab.read_ready)
            with m.Case(Phase.BACK):
                m.d.comb += ready.eq(feedback.ready)
            with m.Default():
                m.d.comb += ready.eq(1)
        m.d.comb += [nest.stall.eq(freeze), nest.ready.eq(ready), nest.dead.eq(dead),
                     nest.skip_outer.eq(phase == Phase.SCORE)]
        issue, skip, adv_o = nest.issue, nest.skip, nest.outer_done
        # The beats early exit saves (``skipped`` is registered: the counters see a skip a
        # cycle late).
        if p.early_exit:
            savings = ExitSavings(cw, CT)
            m.submodules.exit_savings = savings
            m.d.comb += [savings.begin.eq(sequencer.begin),
                         savings.begin_phase.eq(sequencer.begin_phase),
                         savings.tiles.eq(T), savings.fan_in.eq(J), savings.neurons.eq(N),
                         savings.groups.eq(G), savings.skip.eq(skip),
                         savings.skip_layer.eq(sequencer.skip_layer),
                         sequencer.skipped.eq(savings.skipped_layer),
                         sequencer.all_exited.eq(skip_en & (alive == 0)),
                         self.skipped.eq(savings.skipped)]
        # The MAC beat's tag: which sum it ends.
        m.d.comb += [drain.tags.valid.eq(issue & k_wrap),
                     drain.tags.payload.outer.eq(go), drain.tags.payload.mid.eq(gm)]

        # Stage-0 reads.
        grad_phase = phase == Phase.GRAD
        for buf in bufs:
            m.d.comb += [
                buf.rd_en.eq(~freeze),
                buf.rd_row.eq(grad_phase),
                buf.rd_group.eq(Mux(grad_phase, gk >> qbits,
                                    Mux(phase == Phase.SCORE, go, gm))),
                buf.rd_lane.eq(gk[:max(1, qbits)] if qbits else 0),
                buf.rd_col.eq(Mux(grad_phase, gm << qbits, gk)),
            ]
        m.d.comb += [
            slab.read_en.eq(~freeze), slab.read_addr.eq(gk[:sbits]), slab.read_bank.eq(go[0]),
            e_rd.en.eq(~freeze), e_rd.addr.eq(Cat(gk[:cbits], gm[:gbits])),
            d_rd.en.eq(~freeze), d_rd.addr.eq(Cat(gk[:bbits_s], go[:tbits])),
        ]
        with m.If(~freeze):
            m.d.sync += [
                s1.valid.eq(issue), s1.first.eq(gk == 0), s1.last.eq(k_wrap),
                s1.bias.eq(gk == J), s1.k.eq(gk), s1.m.eq(gm),
            ]
            m.d.sync += [s1_weights[c].eq(odd_part(cls_gen.o.payload.m[c])) for c in range(C)]

        # Stage 1: the MAC beat's operands, registered (stage 2) on their way into the array.
        x_data = Mux(xsel, bufs[1].rd_data.as_value(), bufs[0].rd_data.as_value())
        y_data = Mux(xsel, bufs[0].rd_data.as_value(), bufs[1].rd_data.as_value())
        x_lanes = data.View(_word(unsigned(p.act_bits), Q), x_data)
        y_lanes = data.View(_word(unsigned(p.act_bits), Q), y_data)
        slab_lanes = data.View(_word(signed(p.weight_bits), P), slab.read_data)
        e_lanes = data.View(_word(signed(p.error_bits), Q), safe(e_rd, e_wr))
        d_lanes = data.View(_word(signed(p.delta_bits), P), safe(d_rd, d_wr))
        operands = BeatOperands(P, Q, C, mac.in_layout, p.act_bits, p.weight_bits,
                                p.error_bits, p.delta_bits, p.classifier_bits,
                                feedback.column.shape().elem_shape, cw)
        m.submodules.beat_operands = operands
        m.d.comb += [
            operands.phase.eq(phase), operands.beat.first.eq(s1.first),
            operands.beat.last.eq(s1.last), operands.beat.bias.eq(s1.bias),
            operands.beat.k.eq(s1.k), operands.beat.m.eq(s1.m),
            operands.weights.eq(slab_lanes), operands.deltas.eq(d_lanes),
            operands.inputs.eq(x_lanes), operands.outputs.eq(y_lanes),
            operands.errors.eq(e_lanes), operands.classifier.eq(s1_weights),
            feedback.class_index.eq(s1.k), operands.feedback.eq(feedback.column),
            operands.in_frac.eq(cur["in_frac"][:4]), operands.fan_in.eq(J),
            mac.i.valid.eq(s2.valid), mac.i.payload.eq(s2.beat),
        ]
        with m.If(~freeze):
            m.d.sync += [s2.valid.eq(s1.valid), s2.beat.eq(operands.o)]
        m.d.comb += self.mac_busy.eq(mac.i.valid & mac.i.ready)

        # ---- classifier weights: SCORE replays M per pass; BACK fills the K registers -------
        m.d.comb += [feedback.enable.eq((phase == Phase.BACK) & running),
                     feedback.tile.eq(go), feedback.stall.eq(freeze),
                     feedback.tiles.eq(T)]
        m.d.comb += [feedback.weights.valid.eq(cls_gen.o.valid),
                     feedback.weights.payload.eq(cls_gen.o.payload.k)]
        with m.If(phase == Phase.SCORE):
            m.d.comb += cls_gen.o.ready.eq(issue)
            m.d.comb += cls_gen.load.eq((issue & k_wrap) | (skip & (phase == Phase.SCORE)))
        with m.Elif(phase == Phase.BACK):
            m.d.comb += cls_gen.o.ready.eq(feedback.weights.ready)

        # ---- the weight slab (FWD) ---------------------------------------------------------
        m.d.comb += [slab.tiles.eq(T), slab.fan_in.eq(J),
                     slab.words.valid.eq((phase == Phase.FWD) & running & rd.valid),
                     slab.words.payload.eq(rd.payload),
                     slab.release.eq((phase == Phase.FWD) & adv_o)]
        fill_go = slab.words.valid & slab.words.ready

        # ---- drains -------------------------------------------------------------------------
        # A finished sum moves into the drain register when it is free (the array sums on); each
        # drain step takes row 0 (FWD, SCORE) or column 0 (BACK, GRAD) and shifts the rest up
        # (hw/core/drain_register.py).
        drain_on = drain.holding
        tag_o, tag_m = drain.tag.outer, drain.tag.mid
        step = Signal(cw)
        drain_end, advance_row, advance_col = drain.end, drain.advance_row, drain.advance_col
        # The sum's active bits (BACK) and bias gradients (GRAD) are read as it pops.
        pop = drain.popped.valid
        pop_o, pop_m = drain.popped.tag.outer, drain.popped.tag.mid
        m.d.comb += [a_rd.en.eq(pop), a_rd.addr.eq(Cat(pop_m[:gbits], pop_o[:tbits])),
                     gb_rd.en.eq(pop), gb_rd.addr.eq(pop_o[:tbits])]

        def element(e):
            """Element ``e`` of the drain register: of row 0 or of column 0."""
            return drain.row[e] if e < Q else drain.column[e // Q]

        # The first drain stage of FWD, SCORE and BACK (one runs at a time): each lane's sum
        # rounded by the phase's shift (``drain_shift``, set with the phase), a cycle later
        # (hw/core/drain_rounding.py). Lane k is row 0's sum k (FWD, SCORE) or column 0's sum
        # k (BACK).
        lanes = max(P, Q)
        drain_shift = Signal(5)
        rounding = DrainRounding(lanes, mac.acc_shape)
        m.submodules.drain_rounding = rounding
        m.d.comb += rounding.shift.eq(drain_shift)
        for k in range(lanes):
            row_sum = k if k < Q else k * Q
            col_sum = k * Q if k < P else k
            m.d.comb += rounding.sums[k].eq(
                element(row_sum) if row_sum == col_sum
                else Mux(phase == Phase.BACK, element(col_sum), element(row_sum)))
        rounded = rounding.rounded

        # FWD: row `step` of the tile: neuron t*P + step, samples g*Q + q
        # (hw/core/forward_drain.py), with the shared rounding stage as its first stage.
        fwd_drop = training & (dropout != 0)
        fwd_step = (phase == Phase.FWD) & drain_on
        forward = ForwardDrain(Q, mac.acc_shape, rounding.rounded.shape().elem_shape,
                               p.act_bits, cw + pbits, cw, max(1, pbits), p.dropout)
        m.submodules.forward_drain = forward
        m.d.comb += [
            forward.i.at.valid.eq(fwd_step),
            forward.i.at.n.eq(Cat(step[:pbits], tag_o) if pbits else tag_o),
            forward.i.at.group.eq(tag_m), forward.i.at.tile.eq(tag_o),
            forward.i.at.row.eq(step[:max(1, pbits)]),
            forward.neurons.eq(N),
        ]
        for q in range(Q):
            m.d.comb += [forward.i.sums[q].eq(drain.row[q]), forward.rounded[q].eq(rounded[q])]
        if p.dropout:
            m.d.comb += [forward.drop.eq(fwd_drop), forward.dropout.eq(dropout),
                         forward.keep_scale.eq(keep_scale)]
            m.d.comb += [forward.i.draws[q].eq(d) for q, d in enumerate(chunks(drop_lfsr, 8, Q))]
        fo = forward.o
        ctl = self.control
        for k, buf in enumerate(bufs):
            is_y = xsel == (1 - k)
            m.d.comb += [
                buf.wr_en.eq(Mux(ctl.busy, fo.write & is_y,
                                 ctl.load_en & ~ctl.load_label & (k == 0))),
                buf.wr_group.eq(Mux(ctl.busy, fo.at.group, ctl.load_sample >> qbits)),
                buf.wr_col.eq(Mux(ctl.busy, fo.at.n, ctl.load_col)),
                buf.wr_mask.eq(Mux(ctl.busy, (1 << Q) - 1,
                                   Const(1, Q) << (ctl.load_sample[:qbits] if qbits else 0))),
            ]
            for q in range(Q):
                m.d.comb += buf.wr_data[q].eq(Mux(ctl.busy, fo.y[q], ctl.load_data))
        m.d.comb += [
            a_wr.addr.eq(Cat(fo.at.group[:gbits], fo.at.tile[:tbits])),
            a_wr.data.eq(fo.active.replicate(P)),
            a_wr.en.eq(Mux(fo.at.valid, Const(1, P) << fo.at.row, 0)),
            l_wr.en.eq(ctl.load_en & ctl.load_label & ~ctl.busy),
            l_wr.addr.eq(ctl.load_sample), l_wr.data.eq(ctl.load_data),
        ]
        if p.dropout:
            m.d.comb += drop_lfsr.o.ready.eq(fwd_step & fwd_drop)

        # SCORE: row `step` = class tile*P + step, then the group's errors
        # (hw/core/error_stage.py), with the shared rounding stage as the drain's first stage.
        errors = ErrorStage(Q, C, rounding.rounded.shape().elem_shape, p.score_bits,
                            p.score_frac, p.error_bits, index_bits(CT * P),
                            p.scramble_collisions)
        m.submodules.error_stage = errors
        score_step = (phase == Phase.SCORE) & drain_on & errors.row_ready
        m.d.comb += [
            errors.row.valid.eq((phase == Phase.SCORE) & drain_on),
            errors.row.class_index.eq(Cat(step[:pbits], tag_m) if pbits else tag_m),
            errors.row.last.eq((step == P - 1) & (tag_m == CT - 1)),
            errors.row.group.eq(tag_o),
            errors.batch.eq(B), l_rd.addr.eq(errors.label_addr), errors.label.eq(l_rd.data),
        ]
        m.d.comb += [errors.rounded[q].eq(rounded[q]) for q in range(Q)]
        error, result = errors.error, errors.result
        m.d.comb += [e_wr.addr.eq(Cat(error.class_index[:cbits],
                                      (error.sample >> qbits)[:gbits])),
                     e_wr.data.eq(error.value.replicate(Q)),
                     e_wr.en.eq(Mux(error.valid, Const(1, Q) << error.sample[:qbits], 0)
                                if qbits else error.valid)]
        m.d.comb += [r_wr.en.eq(result.valid), r_wr.addr.eq(Cat(result.sample[:bbits_s], layer)),
                     r_wr.data.eq(result.prediction),
                     x_wr.addr.eq(result.sample[:bbits_s]), x_wr.data.eq(layer),
                     x_wr.en.eq(result.valid & alive.bit_select(result.sample[:bbits_s], 1))]
        with m.If(result.valid & result.correct & training):
            m.d.sync += self.control.correct[layer].eq(self.control.correct[layer] + 1)
        with m.If(result.valid & skip_en & (result.margin >= cmd.threshold)
                  & (layer != n_layers - 1)):
            m.d.sync += alive.bit_select(result.sample[:bbits_s], 1).eq(0)

        # BACK: column `step` = sample g*Q + step; P deltas a cycle and the bias gradients
        # (hw/core/back_projection.py), with the shared rounding stage as its first stage.
        back_step = (phase == Phase.BACK) & drain_on
        back = BackProjection(P, Q, signed(len(rounded[0])), p.delta_bits, p.grad_bias_bits, cw)
        m.submodules.back_projection = back
        m.d.comb += [
            back.i.valid.eq(back_step),
            back.i.payload.sample.eq(Cat(step[:qbits], tag_m) if qbits else tag_m),
            back.i.payload.tile.eq(tag_o),
            back.i.payload.last.eq((step == Q - 1) & (tag_m == G - 1)),
            back.active.eq(safe(a_rd, a_wr)),
            d_wr.en.eq(back.delta.en),
            d_wr.addr.eq(Cat(back.delta.sample[:bbits_s], back.delta.tile[:tbits])),
            d_wr.data.eq(back.delta.data.as_value()),
            gb_wr.en.eq(back.bias_grad.en), gb_wr.addr.eq(back.bias_grad.tile[:tbits]),
            gb_wr.data.eq(back.bias_grad.data.as_value()),
        ]
        m.d.comb += [back.rounded[r].eq(rounded[r]) for r in range(P)]

        # GRAD: column `step` = input tile*Q + step, then the biases after the last tile.
        gb_lanes = data.View(_word(gb_shape, P), safe(gb_rd, gb_wr))
        old = data.View(_word(signed(p.weight_bits), P), rd.payload)
        rand = chunks(round_lfsr, p.round_bits, P)
        grad_step = (phase == Phase.GRAD) & drain_on
        columns = GradientColumns(Q, cw)
        m.submodules.gradient_columns = columns
        m.d.comb += [columns.popped.eq(pop), columns.popped_tile.eq(pop_m),
                     columns.last_tile.eq(nest.last.mid), columns.fan_in.eq(J),
                     columns.step.eq(step), columns.active.eq(grad_step),
                     columns.begin.eq(sequencer.begin), columns.end.eq(drain_end),
                     columns.bias_shift.eq(bias_shift),
                     columns.update_shift.eq(cur["update_shift"][:5])]
        is_bias = columns.bias
        # A column's update (hw/core/weight_updater.py), its weight word read-modified-written
        # as it arrives from the bus.
        g_width = max(mac.acc_shape.width, p.grad_bias_bits) + 1
        updater = WeightUpdater(P, signed(g_width), p.weight_bits, p.round_bits)
        m.submodules.weight_updater = updater
        m.d.comb += [
            updater.i.valid.eq(grad_step & columns.update),
            updater.i.payload.shift.eq(columns.shift),
            updater.stochastic.eq(stochastic),
            updater.old.valid.eq(rd.valid), updater.old.payload.eq(old),
            updater.new.ready.eq(wr.ready),
        ]
        for r in range(P):
            m.d.comb += [updater.i.payload.grad[r].eq(Mux(is_bias, gb_lanes[r], drain.column[r])),
                         updater.i.payload.rand[r].eq(rand[r])]
        grad_round = updater.i.valid & updater.i.ready
        grad_move = updater.new.valid & updater.new.ready
        m.d.comb += columns.taken.eq(grad_round)
        grad_last, grad_advance = columns.last, columns.advance

        # INIT: every weight word of the layer from the init PRNG, then a zero bias word.
        init = WeightInit(P, p.weight_bits, p.lfsr_width, cw)
        m.submodules.weight_init = init
        m.d.comb += [
            init.seed.eq(cur["init_seed"]), init.tiles.eq(T), init.fan_in.eq(J),
            init.neurons.eq(N), init.init_bits.eq(cur["init_bits"][:5]),
            init.enable.eq((phase == Phase.INIT) & running), init.o.ready.eq(wr.ready),
        ]
        init_push = init.o.valid & init.o.ready

        m.d.comb += [
            wr.valid.eq(grad_move | init_push),
            wr.payload.eq(Mux(phase == Phase.INIT, init.o.payload.as_value(),
                                updater.new.payload.as_value())),
            rd.ready.eq(fill_go | grad_move),
            round_lfsr.o.ready.eq(grad_round & stochastic),
        ]

        # Drain step counters.
        with m.Switch(phase):
            with m.Case(Phase.FWD):
                m.d.comb += [drain_end.eq(fwd_step & (step == P - 1)), advance_row.eq(fwd_step)]
                with m.If(fwd_step):
                    m.d.sync += step.eq(step + 1)
            with m.Case(Phase.SCORE):
                m.d.comb += [drain_end.eq(score_step & (step == P - 1)),
                             advance_row.eq(score_step)]
                with m.If(score_step):
                    m.d.sync += step.eq(step + 1)
            with m.Case(Phase.BACK):
                m.d.comb += [drain_end.eq(back_step & (step == Q - 1)),
                             advance_col.eq(back_step)]
                with m.If(back_step):
                    m.d.sync += step.eq(step + 1)
            with m.Case(Phase.GRAD):
                m.d.comb += [drain_end.eq(grad_advance & grad_last),
                             advance_col.eq(grad_advance & ~is_bias)]
                with m.If(grad_advance):
                    m.d.sync += step.eq(step + 1)
        with m.If(drain_end):
            m.d.sync += step.eq(0)

        # ---- phase and layer control -----------------------------------------------------
        loops_idle = (~gen & ~s1.valid & ~s2.valid & ~drain.busy & ~forward.busy
                      & ~back.busy & ~updater.busy)
        phase_done = Signal()
        with m.Switch(phase):
            with m.Case(Phase.FWD, Phase.BACK):
                m.d.comb += phase_done.eq(loops_idle)
            with m.Case(Phase.SCORE):
                m.d.comb += phase_done.eq(loops_idle & ~errors.busy)
            with m.Case(Phase.GRAD):
                m.d.comb += phase_done.eq(loops_idle & w_idle)
            with m.Case(Phase.INIT):
                m.d.comb += phase_done.eq(init.done & w_idle)

        m.d.comb += sequencer.phase_done.eq(phase_done)

        # A phase begins: the loops, the drains and the streams it uses start.
        begin = sequencer.begin
        with m.If(begin):
            m.d.sync += step.eq(0)
        limits = nest.limits
        with m.If(begin):
            with m.Switch(sequencer.begin_phase):
                with m.Case(Phase.FWD):
                    m.d.sync += drain_shift.eq(cur["forward_shift"][:5])
                    m.d.comb += [slab.start.eq(1), weights.start.read.eq(1),
                                 nest.start.eq(1), limits.outer.eq(T - 1),
                                 limits.mid.eq(G - 1), limits.inner.eq(J)]
                with m.Case(Phase.SCORE):
                    m.d.sync += drain_shift.eq(cur["score_shift"][:5])
                    m.d.comb += [cls_gen.load.eq(1),
                                 nest.start.eq(1), limits.outer.eq(G - 1),
                                 limits.mid.eq(CT - 1), limits.inner.eq(N - 1)]
                with m.Case(Phase.BACK):
                    m.d.sync += drain_shift.eq(cur["delta_shift"][:5])
                    m.d.comb += [feedback.start.eq(1), back.clear.eq(1), cls_gen.load.eq(1),
                                 nest.start.eq(1), limits.outer.eq(T - 1),
                                 limits.mid.eq(G - 1), limits.inner.eq(C - 1)]
                with m.Case(Phase.GRAD):
                    m.d.comb += [weights.start.read.eq(1), weights.start.write.eq(1),
                                 nest.start.eq(1), limits.outer.eq(T - 1),
                                 limits.mid.eq(JT - 1), limits.inner.eq(B - 1)]
                with m.Case(Phase.INIT):
                    m.d.comb += [weights.start.write.eq(1), init.start.eq(1)]

        # A command starts: the samples all alive, the training counts cleared.
        ctl = self.control
        with m.If(sequencer.accept):
            with m.If(ctl.cmd.op == Op.TRAIN):
                m.d.sync += ctl.correct.eq(0)
            m.d.sync += alive.eq((Const(1, p.max_batch + 1) << ctl.cmd.batch) - 1)
        return m
