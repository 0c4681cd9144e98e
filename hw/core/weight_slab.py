"""The forward pass's weight slab: a tile's weight words, double-buffered."""

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..ram_collisions import read_data

__all__ = ["WeightSlab"]


class WeightSlab(wiring.Component):
    """Two banks, each the ``fan_in + 1`` weight words of one output tile (weights, then the
    biases), filled from the weight stream while the MAC array reads the other bank: a layer's
    weights cross the bus once per forward pass however many sample groups reuse them.

    ``start`` fills ``tiles`` tiles into banks 0, 1, 0, ... A bank is ``full`` from its last
    word until the reader ``release``\\ s it (its tile's beats are done); a full bank takes no
    word.

    Parameters
    ----------
    word_bits : int
        A weight word.
    address_bits : int
        Width of a word's index within a bank (``fan_in + 1`` words fit).
    width : int
        Width of ``tiles`` and ``fan_in``.
    scramble_collisions : bool
        Read a word written in the same cycle as garbage (hw/ram_collisions.py).

    Members
    -------
    start : In(1); tiles, fan_in : In(width)
        Start filling ``tiles`` tiles; a tile is ``fan_in + 1`` words (``fan_in`` held while
        the slab fills).
    words : In(stream.Signature(word))
        The layer's weight words in order.
    read_bank, read_en : In(1); read_addr : In(address_bits)
        The reader's bank, and a read of its word ``read_addr`` (``read_en`` low holds the
        last read's data).
    read_data : Out(word)
        The word read, a cycle later.
    read_ready : Out(1)
        The reader's bank is full.
    release : In(1)
        The reader is done with its bank.
    """

    def __init__(self, word_bits, address_bits, width, scramble_collisions=False):
        self.address_bits, self.scramble_collisions = address_bits, scramble_collisions
        super().__init__({
            "start": In(1), "tiles": In(width), "fan_in": In(width),
            "words": In(stream.Signature(unsigned(word_bits))),
            "read_bank": In(1), "read_en": In(1), "read_addr": In(address_bits),
            "read_data": Out(word_bits), "read_ready": Out(1), "release": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        slab = Memory(shape=self.words.payload.shape(), depth=2 << self.address_bits, init=[])
        m.submodules.slab = slab
        rd, wr = slab.read_port(), slab.write_port()

        full = Signal(2)                    # per bank
        tiles_left, word = Signal.like(self.tiles), Signal.like(self.fan_in)
        bank = Signal()
        m.d.comb += self.words.ready.eq((tiles_left != 0) & ~full.bit_select(bank, 1))
        fill = self.words.valid & self.words.ready
        m.d.comb += [wr.addr.eq(Cat(word[:self.address_bits], bank)),
                     wr.data.eq(self.words.payload), wr.en.eq(fill)]
        set_full, clear_full = Signal(2), Signal(2)
        with m.If(fill):
            m.d.sync += word.eq(word + 1)
            with m.If(word == self.fan_in):
                m.d.sync += [word.eq(0), tiles_left.eq(tiles_left - 1), bank.eq(~bank)]
                m.d.comb += set_full.eq(Mux(bank, 2, 1))
        with m.If(self.release):
            m.d.comb += clear_full.eq(Mux(self.read_bank, 2, 1))
        m.d.sync += full.eq((full & ~clear_full) | set_full)
        with m.If(self.start):
            m.d.sync += [tiles_left.eq(self.tiles), word.eq(0), bank.eq(0), full.eq(0)]

        m.d.comb += [rd.en.eq(self.read_en), rd.addr.eq(Cat(self.read_addr, self.read_bank)),
                     self.read_data.eq(read_data(m, rd, wr, self.scramble_collisions)),
                     self.read_ready.eq(full.bit_select(self.read_bank, 1))]
        return m
