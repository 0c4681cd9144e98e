"""The current layer's registers, copied out of the register file."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from contract.registers import LAYER, LAYER_BASE, LAYER_STRIDE

__all__ = ["LayerRegisters"]


class LayerRegisters(wiring.Component):
    """The registers of the layer being run (contract/registers.py ``LAYER``), in flip-flops:
    the datapath reads them every cycle, and the register file's memory has one read port.

    While ``copy`` is high, one register a cycle is read from the register file (each a cycle
    ahead of its copy); ``copied`` is high in the cycle after the last read, the
    cycle after the last one's read (counting from 0, the last offset plus one), and the count
    starts again.

    Parameters
    ----------
    names : iterable of str
        The registers the core reads (by default every one but ``gamma_shift`` and ``conv``,
        which only a core built with batch normalisation or convolutions reads); they are
        copied in register order. When ``conv`` is copied (it is the last), ``copied`` comes a
        cycle later, so that the first phase, which reads it, begins with it in place.

    Members
    -------
    copy : In(1); layer : In(4)
        Copy layer ``layer``'s registers.
    read_addr : Out(8); read_data : In(32)
        The register file's read port (its data a cycle after the address).
    current : Out(StructLayout({name: 32 for name in names}))
        The copied registers.
    copied : Out(1)
        The copy is complete this cycle.
    """

    def __init__(self, names=None):
        if names is None:
            names = [name for name in LAYER if name not in ("gamma_shift", "conv")]
        self.names = sorted(names, key=LAYER.get)
        # The read address is the index above the layer's number: that is the register map
        # while layer i's block starts at 16 * (i + 1) and the offsets (up to len(LAYER) - 1)
        # fit in 4 bits.
        if not (LAYER_BASE == LAYER_STRIDE == 16 and len(LAYER) <= 16):
            raise ValueError("LayerRegisters assumes 16-register layer blocks from 16 on")
        # The sequencer begins a layer's first phase in the cycle ``copied`` is high, while
        # the last register is still being written: it must be one the first phase (INIT or
        # FWD) does not read (only the gradient phase reads either), or ``conv``, after whose
        # write ``copied`` waits a cycle.
        self.settle = int(self.names[-1] == "conv")
        if self.names[-1] not in ("in_tiles", "gamma_shift", "conv"):
            raise ValueError("the register copied last must be in_tiles, gamma_shift or conv "
                             "(hw/core/sequencer.py)")
        super().__init__({
            "copy": In(1), "layer": In(4),
            "read_addr": Out(8), "read_data": In(32),
            "current": Out(data.StructLayout({name: 32 for name in self.names})),
            "copied": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        index = Signal(4 + self.settle)        # counts to 17 with conv
        last = LAYER[self.names[-1]]
        m.d.comb += [self.read_addr.eq(Cat(index[:4], self.layer + 1)),
                     self.copied.eq(self.copy & (index == last + 1 + self.settle))]
        with m.If(self.copy):
            with m.Switch(index):
                for name in self.names:
                    offset = LAYER[name]
                    with m.Case(offset + 1):
                        m.d.sync += self.current[name].eq(self.read_data)
            m.d.sync += index.eq(Mux(self.copied, 0, index + 1))
        return m
