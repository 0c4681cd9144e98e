"""The sequencer: which layer and which phase the core runs."""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Op", "Phase", "Sequencer", "command_layout"]


class Op(enum.Enum, shape=2):
    """A command's operation (the ``op`` field of ``command_layout``)."""
    INIT = 0
    TRAIN = 1
    INFER = 2


class Phase(enum.Enum, shape=3):
    """What the core's loops do (hw/core/training_core.py; INIT: the weight initialisation)."""
    FWD = 0
    SCORE = 1
    BACK = 2
    GRAD = 3
    INIT = 4
    NORM = 5         # batch normalisation of the layer's outputs (after FWD)
    NORM_BACK = 6    # the deltas through the normalisation (after BACK)


#: A command from the host interface: the operation (an :class:`Op` value; a plain field, so
#: the dispatcher can choose it with a ``Mux``), the samples in the mini-batch, and inference's
#: early exit with its margin threshold.
command_layout = data.StructLayout({"op": Op.as_shape(), "batch": 8, "early_exit": 1,
                                    "threshold": 16})


class Sequencer(wiring.Component):
    """Runs a command layer by layer: copy the layer's registers, then its phases in order
    (``INIT``; or ``FWD``, ``SCORE`` and, training, ``BACK`` and ``GRAD``), each until the
    datapath reports it done; a layer whose samples have all exited early is skipped; a frozen
    layer of a ``TRAIN`` runs ``FWD`` only (its local error and update are not needed).

    Members
    -------
    start : In(1); command : In(command_layout)
        Take ``command`` when idle.
    accept : Out(1)
        The command is taken this cycle.
    cmd : Out(command_layout); layer : Out(4)
        The running command and layer.
    layers : In(4)
        Layers in the network.
    frozen : In(1)
        The running layer is frozen (read while its phases run); only with ``frozen_layers``.
    normalise : In(1)
        The layers are batch-normalised; only with ``batch_norm``.
    copy : Out(1); copied : In(1)
        Copy the layer's registers, until ``copied``; the layer's first phase begins in that
        cycle (hw/core/layer_registers.py: the register still being copied is not read
        before the gradient phase).
    all_exited : In(1)
        (Early exit) no sample of the mini-batch is left: the layer is skipped.
    skip_layer : Out(1); skipped : In(1)
        Account for a skipped layer, until ``skipped``.
    begin : Out(1); begin_phase : Out(Phase)
        A phase of the layer starts this cycle: ``begin_phase``, which is decided from
        registers only (the state, the phase, the command), so that what the datapath loads
        for the phase is chosen before ``phase_done`` arrives and ``begin`` only enables it.
        ``begin_phase`` means nothing while ``begin`` is low. With ``registered_begin`` both
        are registers, decided a cycle ahead: a phase's start fans out to every loop, stream
        and drain of the core, and then it does so from a flip-flop; the layer's first phase
        begins a cycle after ``copied`` instead of with it, and every later phase exactly
        when it would without.
    begins : Out(StructLayout(fwd, score, back, grad, init))
        ``begin`` for each phase.
    phase : Out(Phase); running : Out(1)
        The phase (from the cycle after ``begin``), and that its loops are live.
    phase_is : Out(StructLayout(fwd, score, back, grad, init, ...))
        ``phase`` one-hot, a register of its own: the drains' every-element decisions test
        the phase without a decoder in front of them.
    phase_done : In(1)
        The phase's datapath is idle: its work is done. It is registered here (the idle tests
        are deep, and every start of the next phase fans out from their answer): the cycle
        of a phase's ``begin`` is not counted, and once idle a phase must stay idle until
        the next begins.
    busy, done : Out(1)
        A command runs; it finishes this cycle.
    """

    def __init__(self, early_exit=True, frozen_layers=True, batch_norm=False,
                 registered_begin=False):
        self.early_exit, self.frozen_layers = early_exit, frozen_layers
        self.registered_begin = registered_begin
        self.batch_norm = batch_norm
        self.phases = [phase for phase in Phase
                       if batch_norm or phase not in (Phase.NORM, Phase.NORM_BACK)]
        super().__init__({
            "start": In(1), "command": In(command_layout), "accept": Out(1),
            "cmd": Out(command_layout), "layer": Out(4), "layers": In(4),
            **({"frozen": In(1)} if frozen_layers else {}),
            **({"normalise": In(1)} if batch_norm else {}),
            "copy": Out(1), "copied": In(1),
            "all_exited": In(1), "skip_layer": Out(1), "skipped": In(1),
            "begin": Out(1), "begin_phase": Out(Phase),
            "begins": Out(data.StructLayout({phase.name.lower(): 1 for phase in self.phases})),
            "phase": Out(Phase), "running": Out(1), "phase_done": In(1),
            "phase_is": Out(data.StructLayout({phase.name.lower(): 1
                                               for phase in self.phases})),
            "busy": Out(1), "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()

        # The phase that follows this one in the layer, if any.
        follower, has_follower = Signal(Phase), Signal()
        frozen_train = ((self.cmd.op == Op.TRAIN) & self.frozen if self.frozen_layers
                        else Const(0, 1))
        normalise = self.normalise if self.batch_norm else Const(0, 1)
        with m.Switch(self.phase):
            with m.Case(Phase.FWD):
                m.d.comb += [follower.eq(Mux(normalise, Phase.NORM, Phase.SCORE)),
                             has_follower.eq(normalise | ~frozen_train)]
            if self.batch_norm:
                with m.Case(Phase.NORM):
                    m.d.comb += [follower.eq(Phase.SCORE), has_follower.eq(~frozen_train)]
                with m.Case(Phase.NORM_BACK):
                    m.d.comb += [follower.eq(Phase.GRAD), has_follower.eq(1)]
            with m.Case(Phase.SCORE):
                m.d.comb += [follower.eq(Phase.BACK), has_follower.eq(self.cmd.op == Op.TRAIN)]
            with m.Case(Phase.BACK):
                m.d.comb += [follower.eq(Mux(normalise, Phase.NORM_BACK, Phase.GRAD)),
                             has_follower.eq(1)]
        # What begins (the FSM decides it each cycle): this cycle, or registered, the next.
        begin, begin_phase = ((Signal(), Signal(Phase)) if self.registered_begin
                              else (self.begin, self.begin_phase))
        # ``phase_done`` a cycle late, never counting a begin's own cycle. Registered, not the
        # cycle deciding a begin either: a layer's first phase begins the cycle after
        # ``copied`` with the last layer's phase still in ``phase``, whose idle datapath must
        # not end the new layer.
        done = Signal()
        m.d.sync += done.eq(self.phase_done & ~self.begin & ~begin)
        strobes = [self.begins[phase.name.lower()].eq(begin & (begin_phase == phase))
                   for phase in self.phases]
        if self.registered_begin:
            m.d.sync += [self.begin.eq(begin), self.begin_phase.eq(begin_phase), *strobes]
        else:
            m.d.comb += strobes
        with m.If(self.begin):
            m.d.sync += self.phase.eq(self.begin_phase)
            m.d.sync += [self.phase_is[phase.name.lower()].eq(self.begin_phase == phase)
                         for phase in self.phases]
            if self.registered_begin:
                m.d.sync += self.running.eq(1)

        def next_layer():
            m.d.sync += self.layer.eq(self.layer + 1)
            with m.If(self.layer + 1 >= self.layers):
                m.next = "FINISH"
            with m.Else():
                m.next = "LAYER"

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.accept.eq(self.start)
                with m.If(self.start):
                    m.d.sync += [self.cmd.eq(self.command), self.layer.eq(0)]
                    m.next = "LAYER"
            with m.State("LAYER"):
                # The layer's first phase begins with the copy's last cycle (registered, the
                # cycle after), whose register (``in_tiles``) is written at its end: only the
                # gradient phase reads it.
                skip = self.all_exited if self.early_exit else 0
                m.d.comb += [self.busy.eq(1), self.copy.eq(1),
                             begin.eq(self.copied & ~skip),
                             begin_phase.eq(Mux(self.cmd.op == Op.INIT, Phase.INIT,
                                                Phase.FWD))]
                with m.If(self.copied):
                    if not self.registered_begin:
                        m.d.sync += self.running.eq(~skip)
                    m.next = "RUN"
                    if self.early_exit:
                        with m.If(skip):
                            m.next = "SKIP_LAYER"
            if self.early_exit:
                with m.State("SKIP_LAYER"):
                    m.d.comb += [self.busy.eq(1), self.skip_layer.eq(1)]
                    with m.If(self.skipped):
                        next_layer()
            with m.State("RUN"):
                m.d.comb += [self.busy.eq(1), begin_phase.eq(follower)]
                if self.registered_begin:
                    # Exactly the cycle ``done`` will be high in: the phase and the layer
                    # cannot change before (a change needs a begin, or ``done`` without a
                    # follower), so neither can ``follower`` nor ``has_follower``.
                    m.d.comb += begin.eq(self.phase_done & ~self.begin & has_follower)
                else:
                    m.d.comb += begin.eq(done & has_follower)
                with m.If(done & ~has_follower):
                    m.d.sync += self.running.eq(0)
                    next_layer()
            with m.State("FINISH"):
                m.d.comb += [self.busy.eq(1), self.done.eq(1)]
                m.next = "IDLE"
        return m
