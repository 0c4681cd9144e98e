"""The training core's phase control (training_core.py): the drains' step counter, when a phase
is done, what a phase's start starts, and a command's start; a section of
``TrainingCore.elaborate`` (``core`` the TrainingCore, ``k`` the namespace its sections share)."""

from amaranth.hdl import Const, Signal

from .sequencer import Op, Phase

__all__ = ["wire_phase_control"]


def wire_phase_control(core, m, k):
    """The drains' step counter, when a phase is done, what a phase's start starts, and a
    command's start."""
    p, ctl = core.params, core.control
    P, Q, C, _, _, CT, _ = core._sizes()
    phase, drain, step, columns = k.phase, k.drain, k.step, k.columns
    # Drain step counters: in FWD, SCORE and BACK a step moves a row or a column out each
    # time the phase's drain takes one; in GRAD, as the column walk advances. The drain
    # register's shifts reach every element's clock enable: they are sums of products of
    # registers (the one-hot phase, ``holding``, the column walk's state) and the drains'
    # readiness, with no phase decoder or step comparison in front.
    row_or_column_drains = [(Phase.FWD, k.fwd_step, P), (Phase.SCORE, k.score_step, P),
                            (Phase.BACK, k.back_step, Q)]
    m.d.comb += [drain.advance_row.eq(k.fwd_step | k.score_step),
                 drain.advance_col.eq(k.back_step | columns.advance_column)]
    with m.Switch(phase):
        for drain_phase, moves, steps in row_or_column_drains:
            with m.Case(drain_phase):
                m.d.comb += drain.end.eq(moves & (step == steps - 1))
                with m.If(moves):
                    m.d.sync += step.eq(step + 1)
        with m.Case(Phase.GRAD):
            m.d.comb += drain.end.eq(columns.advance & columns.last)
            with m.If(columns.advance):
                m.d.sync += step.eq(step + 1)
    with m.If(drain.end):
        m.d.sync += step.eq(0)

    # ---- phase and layer control -----------------------------------------------------
    w_idle = k.weights.write_idle
    loops_idle = (~k.nest.active & ~k.s1.valid & ~k.s2.valid & ~drain.busy
                  & ~k.forward.busy & ~k.back.busy & ~k.updater.busy)
    if p.pipelined:
        loops_idle &= ~k.s1_operands.valid & k.skid.i.ready
    k.phase_done = phase_done = Signal()
    with m.Switch(phase):
        with m.Case(Phase.FWD, Phase.BACK):
            m.d.comb += phase_done.eq(loops_idle)
        with m.Case(Phase.SCORE):
            m.d.comb += phase_done.eq(loops_idle & ~k.errors.busy)
        with m.Case(Phase.GRAD):
            m.d.comb += phase_done.eq(loops_idle & w_idle)
        with m.Case(Phase.INIT):
            m.d.comb += phase_done.eq(k.init.done & w_idle)
    sequencer = k.sequencer
    # The sequencer registers it (a cycle a phase): every start of the next phase fans out
    # from it, and the idle tests before it are deep (the iCEBreaker missed 24 MHz without).
    m.d.comb += sequencer.phase_done.eq(phase_done)

    # A phase begins: the loops, the drains and the streams it uses start. What they load
    # is chosen by ``begin_phase`` (registers only); ``begin`` enables it.
    cur, nest, weights = k.cur, k.nest, k.weights
    T, G, N, J, JT, B = k.T, k.G, k.N, k.J, k.JT, k.B
    begins, limits = sequencer.begins, nest.limits
    shift = Signal(5)
    with m.Switch(sequencer.begin_phase):
        with m.Case(Phase.FWD):
            m.d.comb += [limits.outer.eq(T - 1), limits.mid.eq(G - 1), limits.inner.eq(J),
                         shift.eq(cur["forward_shift"][:5])]
        with m.Case(Phase.SCORE):
            m.d.comb += [limits.outer.eq(G - 1), limits.mid.eq(CT - 1),
                         limits.inner.eq(k.N_out - 1), shift.eq(cur["score_shift"][:5])]
        with m.Case(Phase.BACK):
            m.d.comb += [limits.outer.eq(T - 1), limits.mid.eq(G - 1),
                         limits.inner.eq(C - 1), shift.eq(cur["delta_shift"][:5])]
        with m.Case(Phase.GRAD):
            m.d.comb += [limits.outer.eq(T - 1), limits.mid.eq(JT - 1),
                         limits.inner.eq(B - 1)]
    with m.If(sequencer.begin):
        m.d.sync += step.eq(0)
    with m.If(begins.fwd | begins.score | begins.back):
        m.d.sync += k.drain_shift.eq(shift)
    m.d.comb += [
        nest.start.eq(begins.fwd | begins.score | begins.back | begins.grad),
        k.slab.start.eq(begins.fwd),
        weights.start.read.eq(begins.fwd | begins.grad),
        weights.start.write.eq(begins.grad | begins.init),
        k.feedback.start.eq(begins.back), k.back.clear.eq(begins.back),
        k.init.start.eq(begins.init),
    ]
    with m.If(begins.score | begins.back):
        m.d.comb += k.cls_gen.load.eq(1)

    # A command starts: the samples all alive, the training counts cleared. Pipelined, a
    # cycle after it is taken, from the sequencer's copy: the host's command choice then
    # does not reach the alive mask's shifter (the register copy reads neither before).
    if p.pipelined:
        started, command = Signal(), sequencer.cmd
        m.d.sync += started.eq(sequencer.accept)
    else:
        started, command = sequencer.accept, ctl.cmd
    with m.If(started):
        with m.If(command.op == Op.TRAIN):
            m.d.sync += ctl.correct.eq(0)
        m.d.sync += k.alive.eq((Const(1, p.max_batch + 1) << command.batch) - 1)
