"""Resident training: a training set held on the board (``STORE_SAMPLES``) and whole epochs
trained from it on one command (``TRAIN_EPOCH``), docs/HOST_INTERFACE.md, "Resident training".

The store is written as a ``STORE_SAMPLES`` frame arrives, like ``LOAD_BATCH`` writes the input
buffer; ``stored`` counts the samples from 0 that arrived in frames the device accepted, so a
damaged or refused frame never leaves a sample an epoch may use. An epoch copies each mini-batch
from the store into the core's input buffer through the core's own loading port (the order from
:class:`SampleShuffler`) and runs the core's ``TRAIN`` on it: the core does not change.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from contract.protocol import EPOCH_ARGUMENTS, STORE_HEADER, Command

from ..banked_ram import BankedRam
from ..core import Op
from .sample_decoder import SampleDecoder, payload_signature
from .sample_shuffler import SampleShuffler

__all__ = ["ResidentTrainer", "resident_signature"]


def resident_signature(params):
    """Between the dispatcher (this direction) and the trainer (flipped): the dispatch-time
    verdicts on a held ``STORE_SAMPLES`` or ``TRAIN_EPOCH`` (the trainer decodes both as they
    arrive) and the start and end of an epoch."""
    p = params
    count_bits = p.resident_samples.bit_length()
    return wiring.Signature({
        "config_ok": Out(1), "inputs": Out(16),
        # STORE_SAMPLES: the trainer's checks of the held frame; the dispatcher's verdict.
        "store_length_bad": In(1), "store_value_bad": In(1), "store_gap": In(1),
        "store_bad_sample": In(8), "stored": In(count_bits),
        # The configured inputs are more pixels than a stored sample holds: both commands
        # are UNSUPPORTED.
        "too_wide": In(1),
        "store_commit": Out(1), "store_reject": Out(1),
        # TRAIN_EPOCH: the trainer's checks of the held frame's arguments (BAD_VALUE names
        # the first bad one: 0 samples, 1 batch, 2 seed; more samples than stored is out of
        # order); the start; the end and the correct predictions summed over the epoch.
        "epoch_value_bad": In(1), "epoch_bad_argument": In(2), "epoch_unstored": In(1),
        "start": Out(1),
        "done": In(1), "correct": In(data.ArrayLayout(16, p.max_layers)),
    })


class ResidentTrainer(wiring.Component):
    """The sample store and the epoch loop.

    Members
    -------
    dispatch : In(resident_signature)
        From the dispatcher.
    command, length : In; payload : In(stream.Signature({data, index}, always_ready=True))
        The receiver's held command and length, and payload bytes as they arrive.
    dropped : In(1)
        The receiver dropped the frame part-way.
    forget : In(1)
        ``RESET`` or a new ``inputs`` register: the stored samples no longer count.
    control : Out(core.control_signature)
        The core's loading port and command start, while ``active``.
    active : Out(1)
        An epoch is running: ``control`` drives the core.
    """

    def __init__(self, params, core):
        p = self.params = params
        self.capacity = p.resident_samples
        self.count_bits = self.capacity.bit_length()
        # Bytes of a stored sample: the build config's pixels and the label. (Not the core's
        # widest layer input: a hidden layer wider than the pixels would double the store.)
        self.stride = p.resident_inputs + 1
        super().__init__({
            "dispatch": In(resident_signature(p)),
            "command": In(8), "length": In(16),
            "payload": In(payload_signature()),
            "dropped": In(1), "forget": In(1),
            "control": Out(core.control_signature),
            "active": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.store = store = BankedRam(self.capacity * self.stride)
        stored = self._store_samples(m, store.write)
        self._epochs(m, store, stored)
        return m

    # ---- STORE_SAMPLES: written as it arrives ---------------------------------------------
    def _store_samples(self, m, write):
        d = self.dispatch
        m.submodules.store_decoder = dec = SampleDecoder(self.params, Command.STORE_SAMPLES,
                                                         header=STORE_HEADER)
        m.d.comb += [dec.payload.valid.eq(self.payload.valid),
                     dec.payload.payload.eq(self.payload.payload),
                     dec.command.eq(self.command), dec.inputs.eq(d.inputs)]
        wrote = Signal()                    # this frame wrote into the store
        stored = Signal(self.count_bits)
        m.d.comb += d.stored.eq(stored)
        with m.If(dec.payload.valid & (dec.payload.payload.index == 0)):
            m.d.sync += wrote.eq(0)
        # The write, registered (the address is a product and a sum).
        m.d.sync += [write.en.eq(0), write.addr.eq(dec.sample * self.stride + dec.position),
                     write.data.eq(dec.data)]
        m.d.sync += d.too_wide.eq(d.inputs > self.params.resident_inputs)
        with m.If(dec.write & d.config_ok & ~d.too_wide & (dec.sample < self.capacity)):
            m.d.sync += [write.en.eq(1), wrote.eq(1)]
        # The checks, registered (the count arrives at least a byte before the frame ends);
        # BAD_VALUE names the sample by its place in the frame.
        first, count = dec.first, dec.count
        m.d.sync += [
            d.store_length_bad.eq((self.length != dec.expect) | (count == 0)
                                  | (first + count > self.capacity)),
            d.store_gap.eq(first > stored),
        ]
        with m.If(dec.found_bad):
            m.d.sync += d.store_bad_sample.eq(dec.sample - first)
        m.d.comb += d.store_value_bad.eq(dec.value_bad)
        # What the store holds: samples 0 .. stored-1 all came in accepted frames.
        is_store = self.command == Command.STORE_SAMPLES
        with m.If(d.store_commit):
            with m.If(first + count > stored):
                m.d.sync += stored.eq(first + count)
        with m.If((d.store_reject | (self.dropped & is_store)) & wrote & (first < stored)):
            m.d.sync += stored.eq(first)
        with m.If(self.forget):
            m.d.sync += stored.eq(0)
        return stored

    # ---- TRAIN_EPOCH ---------------------------------------------------------------------
    def _epoch_arguments(self, m, stored):
        """``TRAIN_EPOCH``'s arguments as they arrive (the frame is held, so they stay put
        while the epoch runs) and their checks, registered."""
        p, d = self.params, self.dispatch
        arguments = Signal(8 * EPOCH_ARGUMENTS)
        byte, index = self.payload.payload.data, self.payload.payload.index
        with m.If(self.payload.valid & (self.command == Command.TRAIN_EPOCH)):
            for k in range(EPOCH_ARGUMENTS):
                with m.If(index == k):
                    m.d.sync += arguments.word_select(k, 8).eq(byte)
        samples, batch, seed = arguments[:16], arguments[16:24], arguments[24:]
        bad = [samples == 0, (batch == 0) | (batch > p.max_batch),
               (seed >> p.lfsr_width) != 0 if p.lfsr_width < 32 else 0]
        m.d.sync += [
            d.epoch_value_bad.eq(bad[0] | bad[1] | bad[2]),
            d.epoch_bad_argument.eq(Mux(bad[0], 0, Mux(bad[1], 1, 2))),
            d.epoch_unstored.eq(samples > stored),
        ]
        return samples, batch, seed[:p.lfsr_width]

    def _epochs(self, m, store, stored):
        p, d = self.params, self.dispatch
        ctl = self.control
        samples, batch, seed = self._epoch_arguments(m, stored)
        m.submodules.shuffler = shuffler = SampleShuffler(self.capacity, p.lfsr_width)
        m.d.comb += [shuffler.count.eq(samples), shuffler.seed.eq(seed),
                     shuffler.start.eq(d.start)]
        left = Signal(16)                   # samples of the epoch not yet copied
        slot = Signal(8)                    # the sample of the mini-batch being copied
        row = Signal(range(self.capacity * self.stride + 1))
        position = Signal(16)               # byte of the sample being read
        # The copy's pipeline: each byte's address given to the store, and the byte written
        # into the core when the store shows it, READ_LATENCY cycles later
        # (hw/banked_ram.py): whether a byte is on its way, and which, a register a cycle.
        latency = store.READ_LATENCY
        on_the_way = [Signal(name=f"reading_{k}") for k in range(latency)]
        positions = [Signal(16, name=f"reading_position_{k}") for k in range(latency)]
        writing, writing_position = on_the_way[-1], positions[-1]
        sums = Signal(data.ArrayLayout(16, p.max_layers))
        m.d.comb += d.correct.eq(sums)
        # The command, registered (a constant field driven combinationally would leave
        # Verilog an always block that reads nothing).
        command = Signal.like(ctl.cmd)
        m.d.comb += ctl.cmd.eq(command)

        # ``active`` and the byte's write come from registers, not from a decode of the
        # state's (its logic, then the host's choice of who drives the core and the core's of
        # who writes its buffers, were 14.1 ns of an 8 x 8 ULX3S build): ``active`` is set as
        # an epoch starts and cleared as it ends, and no byte is on its way outside ``COPY``
        # (a sample's last byte leaves it, and the bytes read after it are not written).
        active = Signal()
        m.d.comb += [self.active.eq(active), ctl.load_en.eq(writing)]
        m.d.comb += [ctl.load_sample.eq(slot), ctl.load_data.eq(store.read_data),
                     ctl.load_label.eq(writing_position == 0),
                     ctl.load_col.eq(writing_position - 1)]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(d.start):
                    m.d.sync += [left.eq(samples), slot.eq(0),
                                 sums.eq(0), active.eq(1)]
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.comb += shuffler.o.ready.eq(1)
                with m.If(shuffler.o.valid):
                    m.d.sync += [row.eq(shuffler.o.payload * self.stride), position.eq(0)]
                    m.d.sync += [w.eq(0) for w in on_the_way]
                    m.next = "COPY"
            with m.State("COPY"):
                # A byte's address a cycle, its byte written when the store shows it.
                m.d.comb += store.read_addr.eq(row + position)
                m.d.sync += [position.eq(position + 1), on_the_way[0].eq(position <= d.inputs),
                             positions[0].eq(position)]
                m.d.sync += [on_the_way[k + 1].eq(on_the_way[k]) for k in range(latency - 1)]
                m.d.sync += [positions[k + 1].eq(positions[k]) for k in range(latency - 1)]
                with m.If(writing & (writing_position == d.inputs)):
                    m.d.sync += [left.eq(left - 1), slot.eq(slot + 1),
                                 command.op.eq(Op.TRAIN), command.batch.eq(slot + 1)]
                    with m.If((slot + 1 == batch) | (left == 1)):
                        m.next = "TRAIN"
                    with m.Else():
                        m.next = "FETCH"
            with m.State("TRAIN"):
                m.d.comb += ctl.start.eq(1)
                m.next = "WAIT"
            with m.State("WAIT"):
                with m.If(ctl.done):
                    m.d.sync += [sums[k].eq(sums[k] + ctl.correct[k])
                                 for k in range(p.max_layers)]
                    m.d.sync += slot.eq(0)
                    with m.If(left == 0):
                        m.d.sync += active.eq(0)
                        m.next = "DONE"
                    with m.Else():
                        m.next = "FETCH"
            with m.State("DONE"):
                m.d.comb += d.done.eq(1)
                m.next = "IDLE"
