"""On-chip weight memories: the weight bus served from block RAM, or from one single-port RAM
(the iCE40UP5K's SPRAM) shared by the bus's read and write sides."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from .weight_bus import BURST_LEN_BITS, weight_bus_signature

__all__ = ["OnChipWeightMemory", "SinglePortWeightMemory"]


def _burst(m, command, step):
    """The address and the words left of the burst ``command`` (a stream of ``{addr, len}``)
    started; ``step`` moves it on by one word. A new burst is taken when none is left."""
    addr, left = Signal.like(command.payload.addr), Signal(BURST_LEN_BITS)
    m.d.comb += command.ready.eq(left == 0)
    with m.If(command.valid & command.ready):
        m.d.sync += [addr.eq(command.payload.addr), left.eq(command.payload.len)]
    with m.If(step):
        m.d.sync += [addr.eq(addr + 1), left.eq(left - 1)]
    return addr, left


class OnChipWeightMemory(wiring.Component):
    """A slave of the weight bus (docs/HOST_INTERFACE.md, "The weight bus") holding ``depth``
    words: one read burst and one write burst in flight, one word a cycle each way.

    Members
    -------
    bus : In(weight_bus_signature)
        Connect the accelerator's ``mem`` here.
    """

    def __init__(self, addr_bits, word_bits, depth):
        self.depth = depth
        super().__init__({"bus": In(weight_bus_signature(addr_bits, word_bits))})

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        m.submodules.memory = mem = Memory(shape=len(bus.r.payload), depth=self.depth, init=[])
        rd, wr = mem.read_port(), mem.write_port()

        issue, take = Signal(), Signal()
        rd_addr, rd_left = _burst(m, bus.ar, issue)
        wr_addr, wr_left = _burst(m, bus.aw, take)
        m.d.comb += [issue.eq((~bus.r.valid | bus.r.ready) & (rd_left != 0)),
                     rd.addr.eq(rd_addr), rd.en.eq(issue), bus.r.payload.eq(rd.data)]
        with m.If(issue):
            m.d.sync += bus.r.valid.eq(1)
        with m.Elif(bus.r.ready):
            m.d.sync += bus.r.valid.eq(0)

        m.d.comb += [bus.w.ready.eq(wr_left != 0), take.eq(bus.w.valid & bus.w.ready),
                     wr.addr.eq(wr_addr), wr.data.eq(bus.w.payload), wr.en.eq(take)]
        return m


class SinglePortWeightMemory(wiring.Component):
    """The weight bus served from one single-port RAM: one access a cycle, a write before a
    read (the writes of an update trail its reads, so neither side starves the other). Its
    one address and exclusive enables let Yosys map it to the iCE40UP5K's SPRAM
    (``synth_ice40 -spram``).

    Members
    -------
    bus : In(weight_bus_signature)
        Connect the accelerator's ``mem`` here.
    """

    def __init__(self, addr_bits, word_bits, depth):
        self.depth = depth
        super().__init__({"bus": In(weight_bus_signature(addr_bits, word_bits))})

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        m.submodules.memory = mem = Memory(shape=len(bus.r.payload), depth=self.depth, init=[])
        rd, wr = mem.read_port(), mem.write_port()

        issue, take = Signal(), Signal()
        rd_addr, rd_left = _burst(m, bus.ar, issue)
        wr_addr, wr_left = _burst(m, bus.aw, take)
        m.d.comb += [
            bus.w.ready.eq(wr_left != 0), take.eq(bus.w.valid & bus.w.ready),
            issue.eq(~take & (~bus.r.valid | bus.r.ready) & (rd_left != 0)),
            rd.addr.eq(Mux(take, wr_addr, rd_addr)), wr.addr.eq(rd.addr),
            rd.en.eq(issue), wr.en.eq(take), wr.data.eq(bus.w.payload),
            bus.r.payload.eq(rd.data),
        ]
        with m.If(issue):
            m.d.sync += bus.r.valid.eq(1)
        with m.Elif(bus.r.ready):
            m.d.sync += bus.r.valid.eq(0)
        return m
