"""The inverse square root of batch normalisation: a power-of-four split and a table."""

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from contract.batch_norm import TABLE_BITS, TABLE_FRAC, inv_sqrt_table

__all__ = ["InverseSqrt"]


class InverseSqrt(wiring.Component):
    """``1 / sqrt(a)`` as ``R[u] / 2**(TABLE_FRAC + j)`` (docs/ARITHMETIC.md, "Batch
    normalisation", *Inverse square root*): ``j = max(0, ceil((bit_length(a) - TABLE_BITS) /
    2))``, ``u = a >> 2j``, and ``R[u]`` from the contract's table (contract/batch_norm.py,
    which proves each entry exactly), two cycles after the argument.

    The first stage counts the power-of-four windows above the table's and shifts; the second reads
    the table, a synchronous ROM (block RAM where there is one). ``a`` must be at least 1.

    Parameters
    ----------
    arg_bits : int
        Width of the argument.

    Members
    -------
    i : In(StructLayout(valid, a))
        An argument, every cycle it is valid.
    o : Out(StructLayout(valid, r, j))
        ``R[u]`` and ``j`` of the argument two cycles earlier (``valid`` follows it; ``r`` and
        ``j`` are not masked).
    """

    def __init__(self, arg_bits):
        self.arg_bits = arg_bits
        self.j_bits = max(1, ((max(arg_bits, TABLE_BITS) - TABLE_BITS + 1) // 2).bit_length())
        self.r_shape = unsigned(TABLE_FRAC + 1)
        super().__init__({
            "i": In(data.StructLayout({"valid": 1, "a": unsigned(arg_bits)})),
            "o": Out(data.StructLayout({"valid": 1, "r": self.r_shape,
                                        "j": unsigned(self.j_bits)})),
        })

    def elaborate(self, platform):
        m = Module()
        a = self.i.a
        # j = ceil((bit_length(a) - TABLE_BITS) / 2) is the number of windows k >= 0 with a
        # bit set at TABLE_BITS + 2k or above: a sum of or-reductions, with no process (an
        # event simulator does not run a comb process at t=0, and an idle argument would
        # leave it X) and no deep Mux chain.
        j = Signal(self.j_bits)
        m.d.comb += j.eq(sum(a[bit:].any()
                             for bit in range(TABLE_BITS, self.arg_bits, 2)))

        table = Memory(shape=self.r_shape, depth=1 << TABLE_BITS, init=inv_sqrt_table())
        m.submodules.table = table
        lookup = table.read_port()
        split = Signal(data.StructLayout({"valid": 1, "j": self.j_bits, "u": TABLE_BITS}))
        m.d.sync += [split.valid.eq(self.i.valid), split.j.eq(j),
                     split.u.eq((a >> (j << 1))[:TABLE_BITS]),
                     self.o.valid.eq(split.valid), self.o.j.eq(split.j)]
        m.d.comb += [lookup.addr.eq(split.u), self.o.r.eq(lookup.data)]
        return m
