"""The training core's beat generator (training_core.py): the loop nest, the operand reads,
the operands on their way into the MAC array, and the feeds of the weight slab and the feedback
registers; a section of ``TrainingCore.elaborate`` (``core`` the TrainingCore, ``k`` the
namespace its sections share)."""

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring

from ..banked_ram import COPY_SUFFIX
from ..dsp_floorplans import dsp_sites
from ..mac_array import MacArray
from ..skid_buffer import SkidBuffer
from .beat_operands import BeatOperands
from .classifier_weights import odd_part
from .conv_geometry import conv_layout
from .drain_register import DrainRegister
from .exit_savings import ExitSavings
from .feedback_registers import FeedbackRegisters
from .loop_nest import LoopNest
from .patch_walker import PatchWalker
from .sequencer import Phase

__all__ = ["wire_beat_generator"]

#: The operand words a pipelined core's activation buffers register as they read them.
PIPELINED_AT_SOURCE = ("inputs", "outputs")


def _word(layout_shape, lanes):
    return data.ArrayLayout(layout_shape, lanes)


def wire_beat_generator(core, m, k):
    """The loop nest, the operand reads (stage 0 -> 1), the operands registered on their
    way into the MAC array (stage 2), and the feeds of the slab and feedback registers."""
    _wire_array(core, m, k)
    column, conv_fwd = _wire_issue(core, m, k)
    _wire_reads(core, m, k, column, conv_fwd)
    _wire_operands(core, m, k)
    _wire_feeds(core, m, k)


def _wire_array(core, m, k):
    """The loop nest, stage 1's registers, the MAC array, stage 2, the hold of the pipe in
    front of the array, the drain register and the feedback registers."""
    p = core.params
    P, Q, C, _, _, _, cw = core._sizes()
    k.nest = nest = LoopNest(cw, positions=p.conv)
    m.submodules.loop_nest = nest
    k.s1 = Signal(data.StructLayout({"valid": 1, "first": 1, "last": 1, "bias": 1,
                                     "k": cw, "m": cw,
                                     **({"pad": 1, "lanes": Q, "outer": cw}
                                        if p.conv else {})}))
    # The beat's classifier weights (SCORE), registered without their constant low bit.
    k.s1_weights = Signal(data.ArrayLayout(unsigned(p.classifier_bits), C))
    # Pipelined, the drain register takes a finished sum straight from the accumulators (a
    # sum register more was P x Q x 40 flip-flops and their wires in the fabric around the
    # DSP blocks, which an 8 x 8 ULX3S build had no room for); it takes one on a registered
    # ready, so the array's ready does not wait on the drain's logic, and chooses it as the
    # array announces it (``ending``), so that an empty drain register costs no cycle; it
    # says a cycle ahead when it will take one (``ready_next``), so that the array's ready
    # comes from its own registers.
    k.mac = mac = MacArray(P, Q, p.a_shape, p.b_shape, p.depth, pipelined=p.pipelined,
                           operand_stage=p.pipelined and p.operand_stage,
                           sum_register=not p.pipelined, ready_ahead=p.pipelined,
                           row_valids=p.pipelined, multiplier=p.multiplier,
                           sites=dsp_sites(p.dsp_floorplan)[0])
    m.submodules.mac = mac
    # Stage 2: its valid bit, and the beat (pipelined, data not reset, so that the reset's
    # net reaches its valid bit only, not 300 flip-flops; the iCE40's cells pack tighter
    # with the reset, as the MAC array's).
    k.s2 = s2 = SimpleNamespace(valid=Signal(name="s2_valid"),
                                beat=Signal(mac.in_layout, name="s2_beat",
                                            reset_less=p.pipelined))
    # Pipelined, copies of stage 2's valid bit, one per row of MAC lanes: through the skid
    # buffer's copies of its valid bit, each row takes beats by its own (hw/mac_array.py's
    # ``row_valids``).
    s2.row_valids = ([Signal(name=f"s2_valid_{r}{COPY_SUFFIX}") for r in range(P)]
                     if p.pipelined else [])
    # The pipe in front of the array holds while its last beat is not taken. Pipelined, a
    # skid buffer between stage 2 and the array takes that beat, so that the pipe holds on a
    # register, a copy of it for each group of the pipe's registers (``k.holds``): one net
    # from the hold's logic to every stage's enables was an 8 x 8 ULX3S build's worst path
    # (18 ns across the die). The skid passes beats on in the same cycle while empty: the
    # array sees the beats it saw without it, at the same cycles.
    hold_groups = ["loop_nest", "stage_1", "stage_1_weights", "slab", "errors", "deltas",
                   *(f"buffer_{b}" for b in range(len(k.bufs))),
                   *(f"operands_{word}" for word in BeatOperands.REGISTERED
                     if word not in PIPELINED_AT_SOURCE),
                   "stage_1_operands", "stage_2", "stage_2_a", "stage_2_b", "feedback",
                   *(["convolution"] if p.conv else [])]
    if p.pipelined:
        k.skid = skid = SkidBuffer(mac.in_layout, stall_copies=len(hold_groups),
                                   chunk_bits=36, valid_copies=P)
        m.submodules.beat_skid = skid
        wiring.connect(m, skid.o, mac.i)
        m.d.comb += [skid.i.valid.eq(s2.valid), skid.i.payload.eq(s2.beat),
                     skid.i_valids.eq(Cat(*s2.row_valids)), mac.row_valids.eq(skid.o_valids)]
        k.holds = {group: skid.stalls[g] for g, group in enumerate(hold_groups)}
    else:
        freeze = s2.valid & ~mac.i.ready            # (registers only)
        m.d.comb += [mac.i.valid.eq(s2.valid), mac.i.payload.eq(s2.beat)]
        k.holds = {group: freeze for group in hold_groups}
    # The MAC beat's tag: the outer and mid loop counters of the sum it ends.
    # With convolutions, also the output position (pooled) and window element of the sum
    # (FWD), and the real columns of its input tile (GRAD).
    tag_layout = data.StructLayout({"outer": cw, "mid": cw,
                                    **({"pooled": cw, "window": 2,
                                        "columns": range(Q + 1)} if p.conv else {})})
    # Tags: a sum's is written as its last beat issues; the array holds one finished sum,
    # and the pipe in front of it (stages 1 and 2, the MAC's product stage and, pipelined,
    # the operand choice's register and the MAC's operand stage) a sum's last beat each:
    # with sums of one beat, that many tags wait (and one to spare). Pipelined, the skid
    # buffer holds one more.
    k.drain = drain = DrainRegister(P, Q, mac.acc_shape, tag_layout,
                                    tag_depth=8 if p.pipelined else 4,
                                    shift_with_end=p.pipelined,
                                    registered_moves=p.pipelined,
                                    row_stage=p.pipelined and p.drain_row_stage)
    m.submodules.drain_register = drain
    k.tags = drain.tags
    if p.pipelined:
        # A sum's tag is written a cycle after its last beat issues, from registers: the
        # issue's logic ends there, not at the tag FIFO's write. (The sum leaves the array
        # cycles later, and fewer tags wait at a time.)
        k.tags = Signal(data.StructLayout({"valid": 1, "payload": tag_layout}),
                        name="issued_tag")
        m.d.sync += [drain.tags.valid.eq(k.tags.valid),
                     drain.tags.payload.eq(k.tags.payload)]
    wiring.connect(m, mac.o, drain.sums)
    if p.pipelined:
        m.d.comb += [drain.sum_coming.eq(mac.ending), mac.ready_next.eq(drain.ready_next)]

    k.feedback = feedback = FeedbackRegisters(P, C, k.cls_gen.o_layout["k"].shape.elem_shape,
                                              cw, registered_move=p.pipelined)
    m.submodules.feedback_registers = feedback


def _wire_issue(core, m, k):
    """Which beats issue (the loop nest's readiness, its skips of exited groups, early exit's
    savings), the sums' tags and, with convolutions, the patch walker; returns the buffers'
    read column and whether a convolution's forward pass runs."""
    p = core.params
    _, Q, _, _, _, CT, cw = core._sizes()
    phase, nest, feedback, holds = k.phase, k.nest, k.feedback, k.holds
    go, gm, gk, k_wrap = nest.outer, nest.mid, nest.inner, nest.inner_last
    # A group is alive while any of its samples is. Pipelined, that is a register a
    # group, a cycle behind ``alive``: a sample leaves ``alive`` after its group's scores
    # (the loops have left the group), and a layer's copy takes cycles before its
    # ``all_exited`` is read.
    alive_groups = Cat(k.alive, Const(0, p.groups * Q - p.max_batch))
    groups_alive = Signal(p.groups)
    m.d[("sync" if p.pipelined else "comb")] += [
        groups_alive[g].eq(alive_groups.word_select(g, Q) != 0) for g in range(p.groups)]

    def group_alive(g):
        return groups_alive.bit_select(g[:k.gbits], 1)

    dead = Signal()
    # (A convolution's forward pass is not skipped: its beats per group are not the
    # fully connected count exit_savings.py counts.)
    fwd_skips = (phase == Phase.FWD) & ~k.conv_on if p.conv else phase == Phase.FWD
    m.d.comb += dead.eq(k.skip_en & ((fwd_skips & ~group_alive(gm)) |
                                     ((phase == Phase.SCORE) & ~group_alive(go))))
    ready = Signal()
    with m.Switch(phase):
        with m.Case(Phase.FWD):
            m.d.comb += ready.eq(k.slab.read_ready)
        with m.Case(Phase.BACK):
            m.d.comb += ready.eq(feedback.ready)
        with m.Default():
            m.d.comb += ready.eq(1)
    m.d.comb += [nest.stall.eq(holds["loop_nest"]), nest.ready.eq(ready), nest.dead.eq(dead),
                 nest.skip_outer.eq(phase == Phase.SCORE)]
    issue, skip = nest.issue, nest.skip
    # The beats early exit saves (``skipped`` is registered: the counters see a skip a
    # cycle late).
    if p.early_exit:
        savings = ExitSavings(cw, CT, registered_sizes=p.pipelined)
        m.submodules.exit_savings = savings
        sequencer = k.sequencer
        m.d.comb += [savings.begin_forward.eq(sequencer.begins.fwd),
                     savings.begin_scores.eq(sequencer.begins.score),
                     savings.tiles.eq(k.T), savings.fan_in.eq(k.J),
                     savings.neurons.eq(k.N_out),
                     savings.groups.eq(k.G), savings.skip.eq(skip),
                     savings.skip_layer.eq(sequencer.skip_layer),
                     sequencer.skipped.eq(savings.skipped_layer),
                     # A convolution is not skipped whole: its forward beats are not
                     # the count above (it runs; its scores' groups skip and count).
                     sequencer.all_exited.eq(k.skip_en & (groups_alive == 0) & ~k.conv_on),
                     core.skipped.eq(savings.skipped)]
    # The MAC beat's tag: which sum it ends.
    m.d.comb += [k.tags.valid.eq(issue & k_wrap),
                 k.tags.payload.outer.eq(go), k.tags.payload.mid.eq(gm)]
    # A convolution's patches: the input column of each beat's element, or padding.
    conv_fwd = (phase == Phase.FWD) & k.conv_on
    column = gk
    if p.conv:
        k.walker = walker = PatchWalker(conv_layout["in_h"].width,
                                        conv_layout["kernel"].width, k.bufs[0].cbits)
        m.submodules.patch_walker = walker
        conv = k.conv
        m.d.comb += [
            walker.in_h.eq(conv.in_h), walker.in_w.eq(conv.in_w),
            walker.plane.eq(k.geometry.plane), walker.kernel.eq(conv.kernel),
            walker.same.eq(~conv.valid), walker.pool.eq(conv.pool),
            walker.start.eq(k.sequencer.begins.fwd),
            walker.step.eq(issue & conv_fwd), walker.end_of_sum.eq(k_wrap),
            nest.position_last.eq(~conv_fwd | walker.last_position),
            k.tags.payload.pooled.eq(walker.pooled),
            k.tags.payload.window.eq(walker.window),
        ]
        column = Mux(conv_fwd, walker.column, gk)
    return column, conv_fwd


def _wire_reads(core, m, k, column, conv_fwd):
    """Stage 0's reads of the buffers, the slab, the errors and the deltas, and stage 1's
    registers (the beat's place in the loops, its classifier weights)."""
    p = core.params
    _, _, C, _, qbits, _, _ = core._sizes()
    phase, holds, nest, s1, s1_weights = k.phase, k.holds, k.nest, k.s1, k.s1_weights
    go, gm, gk, k_wrap, issue = nest.outer, nest.mid, nest.inner, nest.inner_last, nest.issue
    # Stage-0 reads. (Pipelined, the phase's choice of address from the sequencer's one-hot
    # phase registers: the phase's decoding in front of the banks' address arithmetic was
    # 13.9 ns of an 8 x 8 ULX3S build.)
    if p.pipelined:
        grad_phase, score_phase = k.phase_is.grad, k.phase_is.score
    else:
        grad_phase, score_phase = phase == Phase.GRAD, phase == Phase.SCORE
    for b, buf in enumerate(k.bufs):
        m.d.comb += [
            buf.rd_en.eq(~holds[f"buffer_{b}"]),
            buf.rd_row.eq(grad_phase),
            buf.rd_group.eq(Mux(grad_phase, gk >> qbits, Mux(score_phase, go, gm))),
            buf.rd_lane.eq(gk[:max(1, qbits)] if qbits else 0),
            buf.rd_col.eq(Mux(grad_phase, gm << qbits, column)),
        ]
    m.d.comb += [
        k.slab.read_en.eq(~holds["slab"]), k.slab.read_addr.eq(gk[:k.sbits]),
        k.slab.read_bank.eq(go[0]),
        k.e_rd.en.eq(~holds["errors"]), k.e_rd.addr.eq(Cat(gk[:k.cbits], gm[:k.gbits])),
        k.d_rd.en.eq(~holds["deltas"]), k.d_rd.addr.eq(Cat(gk[:k.bbits_s], go[:k.tbits])),
    ]
    with m.If(~holds["stage_1"]):
        m.d.sync += [
            s1.valid.eq(issue), s1.first.eq(gk == 0), s1.last.eq(k_wrap),
            s1.bias.eq(gk == k.J), s1.k.eq(gk), s1.m.eq(gm),
        ]
        if p.conv:
            m.d.sync += s1.pad.eq(conv_fwd & ~k.walker.in_map)
    with m.If(~holds["stage_1_weights"]):
        m.d.sync += [s1_weights[c].eq(odd_part(k.cls_gen.o.payload.m[c]))
                     for c in range(C)]


def _wire_operands(core, m, k):
    """The beat operands (stage 1 -> 2) and stage 2's registers."""
    p = core.params
    P, Q, C, _, _, _, cw = core._sizes()
    phase, holds, feedback, mac, s1, s2 = k.phase, k.holds, k.feedback, k.mac, k.s1, k.s2
    s1_weights = k.s1_weights
    # Stage 1: the MAC beat's operands, registered (stage 2) on their way into the array.
    bufs = k.bufs
    x_data = Mux(k.xsel, bufs[1].rd_data.as_value(), bufs[0].rd_data.as_value())
    y_data = Mux(k.xsel, bufs[0].rd_data.as_value(), bufs[1].rd_data.as_value())
    x_lanes = data.View(_word(unsigned(p.act_bits), Q), x_data)
    y_lanes = data.View(_word(unsigned(p.act_bits), Q), y_data)
    slab_lanes = data.View(_word(signed(p.weight_bits), P), k.slab.read_data)
    e_lanes = data.View(_word(signed(p.error_bits), Q), core._safe(m, k.e_rd, k.e_wr))
    k.d_lanes = d_lanes = data.View(_word(signed(p.delta_bits), P),
                                    core._safe(m, k.d_rd, k.d_wr))
    k.y_lanes = y_lanes
    if p.pipelined:
        # The normalisation phase reads the buffers a cycle after its read, as they were.
        early = [buf.rd_data_early.as_value() for buf in bufs]
        k.y_lanes = data.View(_word(unsigned(p.act_bits), Q),
                              Mux(k.xsel, early[0], early[1]))
    k.operands = operands = BeatOperands(P, Q, C, mac.in_layout, p.act_bits, p.weight_bits,
                                         p.error_bits, p.delta_bits, p.classifier_bits,
                                         feedback.column.shape().elem_shape, cw,
                                         batch_norm=p.batch_norm, conv=p.conv,
                                         registered=p.pipelined,
                                         registered_at_source=(PIPELINED_AT_SOURCE
                                                               if p.pipelined else ()))
    m.submodules.beat_operands = operands
    # The beat whose operands leave the operand choice: stage 1's, or (pipelined cores,
    # whose operand choice registers the words read: the memories' late read data ends
    # at a register) stage 1's a cycle later.
    k.s1_operands = s1
    if p.pipelined:
        k.s1_operands = Signal.like(s1, name="s1_operands")
        m.d.comb += [operands.stall[w].eq(holds[f"operands_{word}"])
                     for w, word in enumerate(operands.held_words)]
        with m.If(~holds["stage_1_operands"]):
            m.d.sync += k.s1_operands.eq(s1)
    m.d.comb += [
        operands.phase.eq(phase), operands.beat.first.eq(s1.first),
        operands.beat.last.eq(s1.last), operands.beat.bias.eq(s1.bias),
        operands.beat.k.eq(s1.k), operands.beat.m.eq(s1.m),
        *([operands.beat.pad.eq(s1.pad)] if p.conv else []),
        operands.weights.eq(slab_lanes), operands.deltas.eq(d_lanes),
        operands.inputs.eq(x_lanes), operands.outputs.eq(y_lanes),
        operands.errors.eq(e_lanes), operands.classifier.eq(s1_weights),
        feedback.class_index.eq(s1.k), operands.feedback.eq(feedback.column),
        operands.in_frac.eq(k.cur["in_frac"][:5]), operands.fan_in.eq(k.J),
    ]
    with m.If(~holds["stage_2"]):
        m.d.sync += [s2.valid.eq(k.s1_operands.valid), s2.beat.first.eq(operands.o.first),
                     s2.beat.last.eq(operands.o.last),
                     *(copy.eq(k.s1_operands.valid) for copy in s2.row_valids)]
    with m.If(~holds["stage_2_a"]):
        m.d.sync += s2.beat.a.eq(operands.o.a)
    with m.If(~holds["stage_2_b"]):
        m.d.sync += s2.beat.b.eq(operands.o.b)
    m.d.comb += core.mac_busy.eq(mac.i.valid & mac.i.ready)


def _wire_feeds(core, m, k):
    """The feeds of the feedback registers (the classifier weights) and the weight slab."""
    phase, feedback, holds, nest = k.phase, k.feedback, k.holds, k.nest
    issue, skip, go, k_wrap = nest.issue, nest.skip, nest.outer, nest.inner_last
    # ---- classifier weights: SCORE replays M per pass; BACK fills the K registers -------
    cls_gen = k.cls_gen
    m.d.comb += [feedback.enable.eq((phase == Phase.BACK) & k.running),
                 feedback.tile.eq(go), feedback.stall.eq(holds["feedback"]),
                 feedback.tiles.eq(k.T)]
    m.d.comb += [feedback.weights.valid.eq(cls_gen.o.valid),
                 feedback.weights.payload.eq(cls_gen.o.payload.k)]
    with m.If(phase == Phase.SCORE):
        m.d.comb += cls_gen.o.ready.eq(issue)
        m.d.comb += cls_gen.load.eq((issue & k_wrap) | (skip & (phase == Phase.SCORE)))
    with m.Elif(phase == Phase.BACK):
        m.d.comb += cls_gen.o.ready.eq(feedback.weights.ready)

    # ---- the weight slab (FWD) ---------------------------------------------------------
    slab = k.slab
    m.d.comb += [slab.tiles.eq(k.T), slab.fan_in.eq(k.J),
                 slab.words.valid.eq((phase == Phase.FWD) & k.running & k.rd.valid),
                 slab.words.payload.eq(k.rd.payload),
                 slab.release.eq((phase == Phase.FWD) & nest.outer_done)]
    k.fill_go = slab.words.valid & slab.words.ready
