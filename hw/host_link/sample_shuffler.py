"""The resident epoch's sample order: a forward Fisher-Yates shuffle on the device
(docs/ARITHMETIC.md, "Resident training: the sample order"; model sw_model/resident.py, per
cycle sw_model/units/sample_shuffler.py)."""

from amaranth.hdl import Module, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from contract.config import ORDER_DRAW_BITS as DRAW_BITS

from ..lfsr_prng import LfsrPrng

__all__ = ["SampleShuffler"]


class SampleShuffler(wiring.Component):
    """Streams the visit order of ``count`` samples, shuffled from ``seed``.

    On ``start`` it writes the identity into its permutation memory (a cycle a sample), then
    per visit ``i``: multiplies a 16-bit draw by the samples left (``DRAW``), adds ``i``
    (``PICK``, the address of ``j``), reads ``perm[j]`` and ``perm[i]`` (``READ_J``, ``READ_I``,
    writing ``perm[j] = perm[i]``) and offers ``perm[j]`` (``OFFER``) until taken. Each step is
    registered so that the multiplier, the adder and the memory each have a cycle to themselves.

    Parameters
    ----------
    capacity : int
        The most samples an epoch visits (the depth of the permutation memory).
    lfsr_width : int
        Width of the LFSR whose 16-bit chunks drive the shuffle.

    Members
    -------
    start : In(1)
        Starts an epoch of ``count`` visits (``1 <= count <= capacity``) from ``seed``; taken
        in any state (it abandons an epoch under way).
    count : In(index bits + 1), seed : In(lfsr_width)
    o : Out(stream.Signature(index bits))
        The stored samples in visit order, ``count`` of them per ``start``.
    """

    def __init__(self, capacity, lfsr_width=31):
        if capacity < 1:
            raise ValueError(f"a shuffler holds at least one sample, not {capacity}")
        self.capacity, self.lfsr_width = capacity, lfsr_width
        self.index_bits = max(1, (capacity - 1).bit_length())
        self.count_bits = capacity.bit_length()
        super().__init__({
            "start": In(1),
            "count": In(self.count_bits),
            "seed": In(lfsr_width),
            "o": Out(stream.Signature(self.index_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.prng = prng = LfsrPrng(self.lfsr_width, DRAW_BITS)
        # (At least two words: a one-word memory has no address, which Verilog cannot say.)
        m.submodules.perm = perm = memory.Memory(shape=self.index_bits,
                                                 depth=max(2, self.capacity), init=[])
        read = perm.read_port()
        write = perm.write_port()

        visit = Signal(self.count_bits)         # i; the identity's writes count with it too
        left = Signal(self.count_bits)          # n - i
        product = Signal(DRAW_BITS + self.count_bits)
        pick = Signal(self.index_bits)          # j
        chosen = Signal(self.index_bits)        # perm[j], the sample offered
        offering = Signal()                     # in OFFER (a register: o.valid leaves one)

        m.d.comb += [self.o.valid.eq(offering), self.o.payload.eq(chosen),
                     prng.seed.eq(self.seed)]

        def restart():
            # A start restarts from any state (the later assignments win).
            with m.If(self.start):
                m.d.comb += prng.load.eq(1)
                m.d.sync += [visit.eq(0), left.eq(self.count), offering.eq(0)]
                m.next = "IDENTITY"

        with m.FSM():
            with m.State("IDLE"):
                restart()
            with m.State("IDENTITY"):
                m.d.comb += [write.en.eq(1), write.addr.eq(visit), write.data.eq(visit)]
                m.d.sync += visit.eq(visit + 1)
                with m.If(visit + 1 == left):
                    m.d.sync += visit.eq(0)
                    m.next = "DRAW"
                restart()
            with m.State("DRAW"):
                m.d.comb += prng.o.ready.eq(1)
                m.d.sync += product.eq(prng.o.payload * left)
                m.next = "PICK"
                restart()
            with m.State("PICK"):
                j = visit + (product >> DRAW_BITS)
                m.d.comb += read.addr.eq(j)
                m.d.sync += pick.eq(j)
                m.next = "READ_J"
                restart()
            with m.State("READ_J"):
                m.d.comb += read.addr.eq(visit)
                m.d.sync += chosen.eq(read.data)
                m.next = "READ_I"
                restart()
            with m.State("READ_I"):
                m.d.comb += [write.en.eq(1), write.addr.eq(pick), write.data.eq(read.data)]
                m.d.sync += offering.eq(1)
                m.next = "OFFER"
                restart()
            with m.State("OFFER"):
                with m.If(self.o.ready):
                    m.d.sync += [visit.eq(visit + 1), left.eq(left - 1), offering.eq(0)]
                    m.next = "DRAW"
                    with m.If(left == 1):
                        m.next = "IDLE"
                restart()
        return m
