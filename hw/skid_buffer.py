"""A skid buffer: a stream stage whose ``ready`` is a register."""

from amaranth.hdl import Cat, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .banked_ram import COPY_SUFFIX

__all__ = ["SkidBuffer"]


class SkidBuffer(wiring.Component):
    """Passes ``i`` to ``o`` in the same cycle while it is empty; holds one beat (the skid)
    that ``o`` did not take, so that ``i.ready`` is a register and not ``o.ready``.

    A pipe that holds every stage while its last beat waits (``valid & ~ready``) drives one
    net from that logic to every register's enable; in front of a skid buffer, the pipe holds
    on a register, of which the buffer keeps copies (``stalls``) for groups of the pipe's
    registers, each net smaller and nearer its loads (an 8 x 8 ULX3S core's hold was one
    net across the die, 18 ns with its logic).

    Parameters
    ----------
    layout : ShapeLike
        A beat.
    stall_copies : int
        Copies of ``~i.ready`` on ``stalls``.
    chunk_bits : int
        The skid's register and the choice of ``o.payload`` each have a copy of the full flag
        per ``chunk_bits`` bits of the beat.
    valid_copies : int
        Copies of ``o.valid`` on ``o_valids``, each from a full flag of its own and a copy of
        ``i.valid`` on ``i_valids`` (the producer's own copies of its valid register), so that
        a consumer's groups of registers each have one near them.

    Members
    -------
    i : In(stream.Signature(layout))
        ``i.ready`` is the register ``~full``.
    o : Out(stream.Signature(layout))
        The skid while full, else ``i``; ``o.valid`` is ``full | i.valid``.
    stalls : Out(stall_copies)
        (With ``stall_copies``.) Each bit ``~i.ready``, from a register of its own.
    i_valids : In(valid_copies); o_valids : Out(valid_copies)
        (With ``valid_copies``.) Copies of ``i.valid``, each equal to it; each bit of
        ``o_valids`` is ``o.valid``.

    The buffer fills when ``o`` does not take a beat ``i`` offers while empty, and empties when
    ``o`` takes the skid: ``full`` becomes ``~o.ready & (full | i.valid)``. Beats leave in the
    order they came; a beat stream that ``o`` takes every cycle passes with no cycle added.
    """

    def __init__(self, layout, stall_copies=0, chunk_bits=32, valid_copies=0):
        if stall_copies < 0 or valid_copies < 0 or chunk_bits <= 0:
            raise ValueError("a skid buffer's copies are counted from 0 and its chunks are "
                             "at least a bit")
        self.stall_copies, self.chunk_bits = stall_copies, chunk_bits
        self.valid_copies = valid_copies
        super().__init__({
            "i": In(stream.Signature(layout)),
            "o": Out(stream.Signature(layout)),
            **({"stalls": Out(stall_copies)} if stall_copies else {}),
            **({"i_valids": In(valid_copies), "o_valids": Out(valid_copies)}
               if valid_copies else {}),
        })

    def elaborate(self, platform):
        m = Module()
        incoming = Value.cast(self.i.payload)
        width = len(incoming)
        chunks = [(lo, min(lo + self.chunk_bits, width))
                  for lo in range(0, width, self.chunk_bits)]
        full = Signal()
        # Copies of ``full``: per chunk of the beat (its register's enable and the output
        # choice) and per stall output, named so that synthesis keeps them apart.
        full_copies = [Signal(name=f"full_chunk_{c}{COPY_SUFFIX}") for c in range(len(chunks))]
        stall_copies = [Signal(name=f"stall_{c}{COPY_SUFFIX}")
                        for c in range(self.stall_copies)]
        valid_fulls = [Signal(name=f"full_valid_{c}{COPY_SUFFIX}")
                       for c in range(self.valid_copies)]
        for flag in [full, *full_copies, *stall_copies]:
            m.d.sync += flag.eq(~self.o.ready & (flag | self.i.valid))
        for c, flag in enumerate(valid_fulls):
            m.d.sync += flag.eq(~self.o.ready & (flag | self.i_valids[c]))
            m.d.comb += self.o_valids[c].eq(flag | self.i_valids[c])
        m.d.comb += [self.i.ready.eq(~full), self.o.valid.eq(full | self.i.valid)]
        m.d.comb += [self.stalls[c].eq(copy) for c, copy in enumerate(stall_copies)]
        # The skid takes every beat offered while it is empty: the one that fills it is the
        # last one it took (the payload is not reset: ``full`` qualifies it).
        skid = Signal(width, reset_less=True)
        outgoing = []
        for (lo, hi), chunk_full in zip(chunks, full_copies):
            with m.If(~chunk_full):
                m.d.sync += skid[lo:hi].eq(incoming[lo:hi])
            outgoing.append(Mux(chunk_full, skid[lo:hi], incoming[lo:hi]))
        m.d.comb += self.o.payload.eq(Cat(*outgoing))
        return m
