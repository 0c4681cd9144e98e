"""The core's weight-bus master: a layer's weights streamed in and out as bursts."""

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..skid_buffer import SkidBuffer
from ..weight_bus import weight_bus_signature

__all__ = ["WeightStream"]


class WeightStream(wiring.Component):
    """Reads and writes ``bursts`` bursts of ``fan_in + 1`` words (a tile's weight words, then
    its bias word) from ``base`` on, through a 16-word FIFO each way.

    Members
    -------
    mem : Out(weight_bus_signature(addr_bits, word_bits))
        The weight bus.
    start : In(read, write, base, bursts)
        ``read`` (``write``) high for a cycle restarts the read (write) commands: ``bursts``
        bursts from ``base``. Commands already issued are not taken back.
    fan_in : In(count_bits)
        A burst's length - 1; held while commands are issued.
    rd : Out(stream.Signature(unsigned(word_bits)))
        The words read, in order.
    wr : In(stream.Signature(unsigned(word_bits)))
        The words to write, in order.
    write_idle : Out(1)
        Every write command issued and every word taken by the bus.

    With ``registered_write`` a word taken on ``wr`` enters a register before the FIFO
    (``wr`` is ready while the register is empty or passing its word on): what the writers
    compute (the initial weights from the layer's sizes, the updated ones) then reaches the
    FIFO's LUT-RAM from a flip-flop, not through their arithmetic. The register passes its word
    on through a skid buffer (:class:`~hw.skid_buffer.SkidBuffer`), so that ``wr.ready`` comes
    from registers, not the FIFO's level; and the words leave the FIFO through another, so
    that the bus's ready reaches registers of its own, not the FIFO's output enables.

    With ``flexible`` (a core with batch normalisation, whose tiles carry more words than the
    weights and the bias) the bursts of each direction are ``start.read_length`` (``write_``)
    words from ``base + start.read_offset``, one per tile of ``stride`` words, both latched
    at the restart; ``fan_in`` is not used.
    """

    def __init__(self, addr_bits, word_bits, count_bits, fifo_depth=16, flexible=False,
                 registered_write=False):
        self.addr_bits, self.word_bits = addr_bits, word_bits
        self.count_bits, self.fifo_depth = count_bits, fifo_depth
        self.flexible, self.registered_write = flexible, registered_write
        start = {"read": Out(1), "write": Out(1), "base": Out(addr_bits),
                 "bursts": Out(count_bits)}
        if flexible:
            start.update({f"{way}_{what}": Out(count_bits) for way in ("read", "write")
                          for what in ("offset", "length")})
        super().__init__({
            "mem": Out(weight_bus_signature(addr_bits, word_bits)),
            "start": In(wiring.Signature(start)),
            **({"stride": In(count_bits)} if flexible else {}),
            "fan_in": In(count_bits),
            "rd": Out(stream.Signature(unsigned(word_bits))),
            "wr": In(stream.Signature(unsigned(word_bits))),
            "write_idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        read_fifo = SyncFIFOBuffered(width=self.word_bits, depth=self.fifo_depth)
        write_fifo = SyncFIFOBuffered(width=self.word_bits, depth=self.fifo_depth)
        m.submodules.read_fifo, m.submodules.write_fifo = read_fifo, write_fifo
        wiring.connect(m, wiring.flipped(self.mem.r), read_fifo.w_stream)
        wiring.connect(m, read_fifo.r_stream, wiring.flipped(self.rd))
        skid_free = 1
        staged = Signal()                          # registered_write: a word in the register
        if self.registered_write:
            # The words leave through a skid buffer: the bus's ready (decided by who owns the
            # bus) reaches the skid's full flags, not the write FIFO's output register's 64
            # enables (14.6 ns of an 8 x 8 ULX3S build).
            m.submodules.write_skid = skid = SkidBuffer(unsigned(self.word_bits))
            wiring.connect(m, write_fifo.r_stream, skid.i)
            wiring.connect(m, skid.o, wiring.flipped(self.mem.w))
            skid_free = skid.i.ready
            # (The entry skid: the FIFO's level decided ``wr.ready`` through the weight updater's
            # handshake into its rounding stage's enables, 13.6 ns of an 8 x 8 ULX3S build.)
            m.submodules.entry_skid = entry = SkidBuffer(unsigned(self.word_bits))
            wiring.connect(m, entry.o, write_fifo.w_stream)
            staged_word = Signal(self.word_bits, reset_less=True)
            m.d.comb += [self.wr.ready.eq(~staged | entry.i.ready),
                         entry.i.valid.eq(staged), entry.i.payload.eq(staged_word)]
            with m.If(entry.i.ready):
                m.d.sync += staged.eq(0)
            with m.If(self.wr.valid & self.wr.ready):
                m.d.sync += [staged.eq(1), staged_word.eq(self.wr.payload)]
        else:
            wiring.connect(m, write_fifo.r_stream, wiring.flipped(self.mem.w))
            wiring.connect(m, wiring.flipped(self.wr), write_fifo.w_stream)

        self._commands(m, self.mem.ar, self.start.read, "read")
        writes_left = self._commands(m, self.mem.aw, self.start.write, "write")
        # (The entry skid holds a word only while the FIFO is full.)
        m.d.comb += self.write_idle.eq(~staged & ~write_fifo.r_rdy & (write_fifo.level == 0)
                                       & skid_free & (writes_left == 0))
        return m

    def _commands(self, m, command, restart, way):
        """Issue the bursts of one direction; returns how many are left."""
        left = Signal(self.count_bits)
        addr = Signal(self.addr_bits)
        if self.flexible:
            length = Signal(self.count_bits, name=f"{way}_length")
            offset = getattr(self.start, f"{way}_offset")
            stride = self.stride
            with m.If(restart):
                m.d.sync += length.eq(getattr(self.start, f"{way}_length"))
        else:
            length = stride = self.fan_in + 1
            offset = 0
        m.d.comb += [command.valid.eq(left != 0), command.payload.addr.eq(addr),
                     command.payload.len.eq(length)]
        with m.If(command.valid & command.ready):
            m.d.sync += [left.eq(left - 1), addr.eq(addr + stride)]
        with m.If(restart):                  # a restart wins over an issued command
            m.d.sync += [left.eq(self.start.bursts), addr.eq(self.start.base + offset)]
        return left
