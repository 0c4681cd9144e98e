"""What a block RAM returns for a word read in the cycle it is written.

Amaranth 0.5 asks every read port for the old word, which neither the iCE40's RAMs nor the
ECP5's (across their two ports) do: Yosys builds it from flip-flops and LUTs beside each port. The training core never uses such a word
(each memory is written and read in different phases, banks or states), so a board build marks
these collisions undefined (gen/bitstream.py), and simulation builds check that nothing depends
on them: :func:`read_data` scrambles a word read in a colliding cycle, and every test compares
the results with the golden model."""

from amaranth.hdl import Mux, Signal

__all__ = ["read_data"]


def read_data(m, rd, wr, scramble):
    """``rd``'s data, inverted (with ``scramble``) when the read that produced it hit the
    address ``wr`` wrote in the same cycle."""
    if not scramble:
        return rd.data
    hit = Signal()
    with m.If(rd.en):
        m.d.sync += hit.eq(wr.en.any() & (rd.addr == wr.addr))
    return Mux(hit, ~rd.data, rd.data)
