"""The host interface: frames in, commands to the core and the weight bus, reply frames out
(docs/HOST_INTERFACE.md).

Its parts: the frame receiver and transmitter (framing.py), the command dispatcher
(dispatcher.py) and the host's weight port (weight_port.py). One frame executes at a time: the
receiver holds it (``rx`` not ready) from its CRC byte until its reply is sent.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out, connect

from contract.protocol import Command
from contract.registers import COUNTERS, GLOBAL

from ..weight_bus import weight_bus_signature
from .dispatcher import CommandDispatcher
from .framing import FrameReceiver, FrameTransmitter
from .resident_trainer import ResidentTrainer
from .weight_port import WeightPort

__all__ = ["HostInterface", "FrameReceiver", "FrameTransmitter", "CommandDispatcher",
           "WeightPort", "ResidentTrainer"]

#: The control members the resident trainer drives while an epoch runs (the dispatcher
#: otherwise); the dispatcher always drives the others (registers, results).
EPOCH_DRIVEN = ("start", "cmd", "load_en", "load_label", "load_sample", "load_col", "load_data")


class HostInterface(wiring.Component):
    """Parses frames from ``rx``, drives the core and the weight bus, replies on ``tx``.

    Payloads are checked against their CRC before they act, except ``LOAD_BATCH``, which is
    written into the input buffer as it arrives and marks the batch incomplete if its CRC fails.

    Members
    -------
    rx : In(stream.Signature(8)), tx : Out(stream.Signature(8))
        Bytes from and to the host.
    control : Out(core.control_signature)
        To the training core.
    counters : In(data.ArrayLayout(64, n)), clear : Out(1)
        The counters ``READ_COUNTERS`` returns; ``RESET`` clears them.
    mem : Out(weight_bus_signature)
        The weight bus, for ``WRITE_WEIGHTS`` and ``READ_WEIGHTS``.
    """

    def __init__(self, params, core):
        p = self.params = params
        self.core_ref = core
        self.n_counters = len(COUNTERS) + p.max_layers
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "control": Out(core.control_signature),
            "counters": In(data.ArrayLayout(64, self.n_counters)),
            "clear": Out(1),
            "mem": Out(weight_bus_signature(p.addr_bits, p.word_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        m.submodules.receiver = receiver = FrameReceiver(p)
        m.submodules.transmitter = transmitter = FrameTransmitter(p)
        m.submodules.dispatcher = dispatcher = CommandDispatcher(p, self.core_ref)
        m.submodules.weight_port = weight_port = WeightPort(p)

        connect(m, wiring.flipped(self.rx), receiver.rx)
        connect(m, transmitter.tx, wiring.flipped(self.tx))
        self._control(m, receiver, dispatcher)
        connect(m, weight_port.mem, wiring.flipped(self.mem))
        m.d.comb += [dispatcher.counters.eq(self.counters), self.clear.eq(dispatcher.clear)]

        # The held frame, to the parts that execute it; its payload bytes as they arrive.
        for part in (dispatcher, weight_port, transmitter):
            m.d.comb += part.command.eq(receiver.command)
        m.d.comb += transmitter.tag.eq(receiver.tag)
        for part in (dispatcher, weight_port):
            m.d.comb += [part.length.eq(receiver.length),
                         part.cursor.data.eq(receiver.cursor.data),
                         part.cursor.position.eq(receiver.cursor.position),
                         part.cursor.at_end.eq(receiver.cursor.at_end)]
        # Only one part executes at a time: the other leaves ``advance`` low.
        m.d.comb += receiver.cursor.advance.eq(dispatcher.cursor.advance
                                               | weight_port.cursor.advance)
        connect(m, receiver.payload, dispatcher.payload)
        m.d.comb += [dispatcher.received.eq(receiver.received),
                     dispatcher.dropped.eq(receiver.dropped),
                     weight_port.start.eq(dispatcher.weights)]

        # Replies: the receiver's (a dropped frame), the dispatcher's or the weight port's; at
        # most one asks in a cycle, and each leaves its request's payload 0 while it does not ask.
        m.d.comb += [
            transmitter.reply.valid.eq(receiver.error.valid | dispatcher.reply.valid
                                       | weight_port.reply.valid),
            transmitter.reply.payload.status.eq(receiver.error.payload
                                                | dispatcher.reply.payload.status
                                                | weight_port.reply.payload.status),
            transmitter.reply.payload.length.eq(dispatcher.reply.payload.length
                                                | weight_port.reply.payload.length),
            receiver.reply_sent.eq(transmitter.sent),
        ]

        # The reply body: READ_WEIGHTS' from the weight port, the others' from the dispatcher.
        from_weights = receiver.command == Command.READ_WEIGHTS
        for part in (dispatcher, weight_port):
            m.d.comb += [part.body_index.eq(transmitter.body_index),
                         part.body_active.eq(transmitter.body_active)]
        m.d.comb += [
            transmitter.body.valid.eq(Mux(from_weights, weight_port.body.valid,
                                          dispatcher.body.valid)),
            transmitter.body.payload.eq(Mux(from_weights, weight_port.body.payload,
                                            dispatcher.body.payload)),
            weight_port.body.ready.eq(transmitter.body.ready & from_weights),
            dispatcher.body.ready.eq(transmitter.body.ready & ~from_weights),
        ]
        return m

    def _control(self, m, receiver, dispatcher):
        """The core's control: the dispatcher's, or while an epoch runs, the resident
        trainer's loading port and command start."""
        p, ctl = self.params, self.control
        if not p.resident_samples:
            connect(m, dispatcher.control, wiring.flipped(ctl))
            return
        m.submodules.resident = trainer = ResidentTrainer(p, self.core_ref)
        connect(m, dispatcher.resident, trainer.dispatch)
        m.d.comb += [
            trainer.command.eq(receiver.command), trainer.length.eq(receiver.length),
            trainer.payload.valid.eq(receiver.payload.valid),
            trainer.payload.payload.eq(receiver.payload.payload),
            trainer.dropped.eq(receiver.dropped),
        ]
        forget = dispatcher.clear | (dispatcher.control.reg_we
                                     & (dispatcher.control.reg_addr == GLOBAL["inputs"]))
        if p.pipelined:
            # A cycle late, from a register: the dispatcher's decoding of RESET was the slow
            # path into the store's count (13.3 ns of an 8 x 8 ULX3S build). The next frame
            # that could store or train is many cycles away.
            forget_late = Signal()
            m.d.sync += forget_late.eq(forget)
            forget = forget_late
        m.d.comb += trainer.forget.eq(forget)
        for name, member in ctl.signature.members.items():
            mine, theirs = getattr(ctl, name), getattr(dispatcher.control, name)
            if member.flow == Out:
                if name in EPOCH_DRIVEN:
                    m.d.comb += mine.eq(Mux(trainer.active, getattr(trainer.control, name),
                                            theirs))
                else:
                    m.d.comb += mine.eq(theirs)
            else:
                m.d.comb += [theirs.eq(mine), getattr(trainer.control, name).eq(mine)]
