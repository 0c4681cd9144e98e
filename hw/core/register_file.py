"""The core's registers: a memory of every register the host writes, and copies of the globals."""

from amaranth.hdl import Module
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from contract.limits import minimum_values
from contract.registers import GLOBAL, LAYER_BASE, LAYER_STRIDE

from ..params import index_bits
from ..ram_collisions import read_data

__all__ = ["RegisterFile", "register_write_signature"]


def register_write_signature():
    """A register write from the host interface (contract/registers.py indices)."""
    return wiring.Signature({"en": Out(1), "addr": Out(8), "data": Out(32)})


class RegisterFile(wiring.Component):
    """Every register (``LAYER_BASE + LAYER_STRIDE * max_layers`` words) in a memory, which the
    sequencer reads a layer's registers from; the global registers also in flip-flops, which
    the datapath reads at any time.

    Members
    -------
    write : In(register_write_signature())
        Written at the clock edge (the memory and, for a global register, its copy).
    read_addr : In(index_bits(depth))
        The memory's read address.
    read_data : Out(32)
        The word at the ``read_addr`` of the cycle before (scrambled, in simulation builds,
        when that read hit the word written in the same cycle: hw/ram_collisions.py).
    globals : Out(StructLayout({name: 32 for name in GLOBAL if name not in absent}))
        The last word written to each global register (its least value after reset), but
        those of ``absent``: registers of features the core is built without, which nothing
        reads (leaving them out keeps a lean core's netlist as it was before the feature).

    Every register starts at its least value (contract/limits.py, ``minimum_values``): a
    register the host has not written still holds a value the range checks accept.
    """

    def __init__(self, max_layers, scramble_collisions=False, absent=()):
        self.depth = LAYER_BASE + LAYER_STRIDE * max_layers
        self.copies = {name: index for name, index in GLOBAL.items() if name not in absent}
        self.scramble_collisions = scramble_collisions
        self.initial = minimum_values(self.depth)
        super().__init__({
            "write": In(register_write_signature()),
            "read_addr": In(index_bits(self.depth)),
            "read_data": Out(32),
            "globals": Out(data.StructLayout({name: 32 for name in self.copies}),
                           init={name: self.initial[index] for name, index in self.copies.items()}),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.memory = memory = Memory(shape=32, depth=self.depth, init=self.initial)
        wr, rd = memory.write_port(), memory.read_port()
        m.d.comb += [wr.en.eq(self.write.en), wr.addr.eq(self.write.addr),
                     wr.data.eq(self.write.data), rd.addr.eq(self.read_addr),
                     self.read_data.eq(read_data(m, rd, wr, self.scramble_collisions))]
        for name, index in self.copies.items():
            with m.If(self.write.en & (self.write.addr == index)):
                m.d.sync += self.globals[name].eq(self.write.data)
        return m
