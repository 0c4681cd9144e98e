"""On-chip weight memory: the weight bus served from block RAM (boards, small networks)."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from .weight_bus import BURST_LEN_BITS, weight_bus_signature

__all__ = ["OnChipWeightMemory"]


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

        rd_addr, rd_left = Signal.like(bus.ar.payload.addr), Signal(BURST_LEN_BITS)
        issue = (~bus.r.valid | bus.r.ready) & (rd_left != 0)
        m.d.comb += [bus.ar.ready.eq(rd_left == 0), rd.addr.eq(rd_addr), rd.en.eq(issue),
                     bus.r.payload.eq(rd.data)]
        with m.If(bus.ar.valid & bus.ar.ready):
            m.d.sync += [rd_addr.eq(bus.ar.payload.addr), rd_left.eq(bus.ar.payload.len)]
        with m.If(issue):
            m.d.sync += [rd_addr.eq(rd_addr + 1), rd_left.eq(rd_left - 1), bus.r.valid.eq(1)]
        with m.Elif(bus.r.ready):
            m.d.sync += bus.r.valid.eq(0)

        wr_addr, wr_left = Signal.like(bus.aw.payload.addr), Signal(BURST_LEN_BITS)
        take = bus.w.valid & bus.w.ready
        m.d.comb += [bus.aw.ready.eq(wr_left == 0), bus.w.ready.eq(wr_left != 0),
                     wr.addr.eq(wr_addr), wr.data.eq(bus.w.payload), wr.en.eq(take)]
        with m.If(bus.aw.valid & bus.aw.ready):
            m.d.sync += [wr_addr.eq(bus.aw.payload.addr), wr_left.eq(bus.aw.payload.len)]
        with m.If(take):
            m.d.sync += [wr_addr.eq(wr_addr + 1), wr_left.eq(wr_left - 1)]
        return m
