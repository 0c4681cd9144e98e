"""The LFSR PRNG: every random number of docs/ARITHMETIC.md ("PRNG"), several chunks a cycle."""

from functools import reduce

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from contract.lfsr_taps import TAPS

__all__ = ["LfsrPrng", "leap_forward"]


def leap_forward(width, step):
    """Express the LFSR sequence as XORs of the register.

    Returns ``(out, nxt)``: ``out[i]`` is the mask of register bits whose XOR is sequence bit
    ``n + i`` (``i < step``), ``nxt[i]`` that of bit ``n + step + i``, the register after
    ``step`` bits (the register holds ``b[n] .. b[n+W-1]`` with ``b[n]`` in bit 0).
    """
    seq = [1 << i for i in range(width)]
    while len(seq) < step + width:
        n = len(seq)
        seq.append(reduce(lambda a, t: a ^ seq[n - t], TAPS[width], 0))
    return seq[:step], seq[step:step + width]


class LfsrPrng(wiring.Component):
    """Maximal-length Fibonacci LFSR with leap-forward: ``lanes`` chunks per beat.

    Parameters
    ----------
    width : int
        Register width; its recurrence comes from :data:`contract.lfsr_taps.TAPS`.
    chunk_bits : int
        Bits per chunk.
    lanes : int
        Chunks per beat; chunk ``k`` of a beat is ``o.payload[k*chunk_bits:(k+1)*chunk_bits]``
        and the first sequence bit is the least significant.

    Members
    -------
    seed : In(width)
        Value loaded by ``load`` (a zero seed loads 1: the register never holds 0).
    load : In(1)
        Restart the sequence from ``seed`` at the next clock edge (replay); takes priority
        over advancing.
    o : Out(stream.Signature(unsigned(chunk_bits * lanes)))
        The chunks; always valid, advances by one beat on every transfer. After reset the
        register holds 1.

    ``registered_controls``: ``load``, ``seed`` and ``o.ready`` reach only registers of their
    own (the pending load, its seed, the pending step), not the state's clock enable and
    multiplexer: the state catches up a cycle later, and ``o`` is computed from it and what is
    pending, so that every cycle's output is the same as without. For a consumer whose
    ``ready`` comes late in the cycle (the training core's loop nest into the classifier
    weights' two PRNGs was a 75 MHz ULX3S build's recurring slow path).
    """

    def __init__(self, width, chunk_bits, lanes=1, registered_controls=False):
        if width not in TAPS:
            raise ValueError(f"LFSR width {width} has no known maximal polynomial")
        self.width, self.chunk_bits, self.lanes = width, chunk_bits, lanes
        self.registered_controls = registered_controls
        super().__init__({
            "seed": In(width),
            "load": In(1),
            "o": Out(stream.Signature(unsigned(chunk_bits * lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        state = Signal(self.width, init=1)
        out, nxt = leap_forward(self.width, self.chunk_bits * self.lanes)

        def xor(mask, register):
            bits = [register[i] for i in range(self.width) if mask >> i & 1]
            return reduce(lambda a, b: a ^ b, bits)

        def stepped(register):
            return Cat(xor(mask, register) for mask in nxt)

        def seeded(seed):
            return seed | (seed == 0)

        if self.registered_controls:
            # The register the sequence is in: the state, or what a pending load or step
            # makes of it (the state takes it at the next edge, whatever comes then).
            # (The pending seed is registered as it loads, its zero test in front of the
            # register: behind it, the test was the first levels of the classifier weights'
            # slowest path into the feedback registers on an 8 x 8 ULX3S build.)
            seed = Signal(self.width, name="load_seed")
            load, step = Signal(name="load_pending"), Signal(name="step_pending")
            m.d.sync += [seed.eq(seeded(self.seed)), load.eq(self.load),
                         step.eq(self.o.ready)]
            current = Signal(self.width, name="sequence_state")
            m.d.comb += current.eq(Mux(load, seed, Mux(step, stepped(state), state)))
            m.d.sync += state.eq(current)
        else:
            current = state
            with m.If(self.load):
                m.d.sync += state.eq(seeded(self.seed))
            with m.Elif(self.o.ready):
                m.d.sync += state.eq(stepped(state))
        m.d.comb += [
            self.o.valid.eq(1),
            self.o.payload.eq(Cat(xor(mask, current) for mask in out)),
        ]
        return m
