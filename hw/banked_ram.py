"""A RAM of many block RAMs, split into banks so that no signal reaches every block: the
resident trainer's store of samples (hw/host_link/resident_trainer.py) and the on-chip weight
memory (hw/weight_memory.py).

A store of digits on the ULX3S is 99,840 bytes, 49 block RAMs across the die. One address
register reaching all 49 took 19 ns of routing and their 49-way read multiplexer 13 ns after
the RAMs' 5.8 ns clock-to-output (75 MHz is 13.3 ns a cycle). Here each bank of
``bank_words`` words has its own registered copy of the read and write address, its read data
is registered beside it, and a last register chooses the bank.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BankedRam", "COPY_SUFFIX"]

#: Registers named with this are copies of one value, kept apart on purpose: the board build
#: tells Yosys not to merge them (gen/bitstream.py, KEEP_COPIES).
COPY_SUFFIX = "_copy"


class BankedRam(wiring.Component):
    """``depth`` words of ``width`` bits, written and read a word a cycle.

    Parameters
    ----------
    depth : int
        Words.
    width : int
        Bits a word.
    bank_words : int
        Words a bank (a power of two: a bank is chosen by the address's high bits).

    Members
    -------
    write : In(StructLayout(en, addr, data))
        A word to write (``en`` high): a read given in any later cycle sees it, one given in
        the same cycle the old word.
    read_addr : In(range(depth))
        The word shown on ``read_data`` :data:`READ_LATENCY` cycles later (an address beyond
        ``depth`` shows an unspecified word).
    read_data : Out(width)
        From a register.
    """

    #: Cycles from ``read_addr`` to ``read_data``: the address copies, the RAM, the bank's
    #: data register, the bank choice.
    READ_LATENCY = 4

    def __init__(self, depth, width=8, bank_words=16384):
        if depth <= 0 or bank_words <= 0 or bank_words & (bank_words - 1):
            self._MustUse__silence = True             # refused: no "never used" warning
            raise ValueError(f"a RAM of {depth} words in banks of {bank_words}: both "
                             f"positive, the banks a power of two")
        self.depth, self.width, self.bank_words = depth, width, bank_words
        self.banks = -(-depth // bank_words)
        super().__init__({
            "write": In(data.StructLayout({"en": 1, "addr": range(depth), "data": width})),
            "read_addr": In(range(depth)),
            "read_data": Out(width),
        })

    def elaborate(self, platform):
        m = Module()
        low = (self.bank_words - 1).bit_length()
        if self.banks > 1:
            # The bank a read chose, carried along its pipeline.
            bank_of_read = [Signal(range(self.banks), name=f"bank_of_read_{k}")
                            for k in range(3)]
            m.d.sync += bank_of_read[0].eq(self.read_addr >> low)
            m.d.sync += [bank_of_read[k + 1].eq(bank_of_read[k]) for k in range(2)]
        held = []
        for b in range(self.banks):
            words = min(self.bank_words, self.depth - b * self.bank_words)
            bank = memory.Memory(shape=self.width, depth=words, init=[])
            m.submodules[f"bank_{b}"] = bank
            write, read = bank.write_port(), bank.read_port()
            # Each bank's own copies of the addresses and the write (named so that the
            # synthesis keeps them apart).
            read_addr = Signal(range(words), name=f"read_addr_{b}{COPY_SUFFIX}")
            write_addr = Signal(range(words), name=f"write_addr_{b}{COPY_SUFFIX}")
            write_data = Signal(self.width, name=f"write_data_{b}{COPY_SUFFIX}")
            write_en = Signal(name=f"write_en_{b}{COPY_SUFFIX}")
            in_bank = (self.write.addr >> low) == b if self.banks > 1 else 1
            m.d.sync += [read_addr.eq(self.read_addr[:low] if words > 1 else 0),
                         write_addr.eq(self.write.addr[:low] if words > 1 else 0),
                         write_data.eq(self.write.data),
                         write_en.eq(self.write.en & in_bank)]
            m.d.comb += [read.addr.eq(read_addr), write.addr.eq(write_addr),
                         write.data.eq(write_data), write.en.eq(write_en)]
            # (Data: not reset, so that the reset's net reaches no bank's read word: on an
            # 8 x 8 ULX3S build it was 15.1 ns into them.)
            data_held = Signal(self.width, name=f"read_data_{b}", reset_less=True)
            m.d.sync += data_held.eq(read.data)
            held.append(data_held)
        if self.banks == 1:
            m.d.sync += self.read_data.eq(held[0])
        else:
            with m.Switch(bank_of_read[2]):
                for b in range(self.banks):
                    with m.Case(b):
                        m.d.sync += self.read_data.eq(held[b])
        return m
