"""The weight updater: in-place read-modify-write of a weight memory."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .arith import rne_shift, saturate, stochastic_shift

__all__ = ["WeightUpdater"]


class WeightUpdater(wiring.Component):
    """``w[addr] = sat(w[addr] - R(grad, shift), weight_bits)`` for every beat, one per cycle.

    ``R`` is round-to-nearest-even or stochastic rounding with the beat's ``rand``
    (docs/ARITHMETIC.md, "Rounding"); ``shift`` is ``weight_shift``, or ``bias_shift`` for beats
    with ``bias`` set. The read of a beat and the write of the beat before it meet in the same
    cycle; the read port is transparent to the write port, so back-to-back updates of one
    address see each other (no read-after-write hazard).

    Members
    -------
    i : In(stream.Signature(StructLayout(addr, grad, rand, bias)))
        Always ready.
    wr_en, wr_addr, wr_data : Out
        The memory write of each update, one cycle after its beat.
    """

    def __init__(self, depth, weight_bits, grad_bits, weight_shift, bias_shift, round_bits,
                 rounding="stochastic", init=()):
        if rounding not in ("stochastic", "nearest-even"):
            raise ValueError(f"rounding must be stochastic or nearest-even, not {rounding!r}")
        self.depth, self.weight_shape = depth, signed(weight_bits)
        self.weight_shift, self.bias_shift = weight_shift, bias_shift
        self.round_bits, self.rounding, self.init = round_bits, rounding, list(init)
        addr_bits = max(1, (depth - 1).bit_length())
        self.in_layout = data.StructLayout({
            "addr": unsigned(addr_bits),
            "grad": signed(grad_bits),
            "rand": unsigned(round_bits),
            "bias": 1,
        })
        super().__init__({
            "i": In(stream.Signature(self.in_layout)),
            "wr_en": Out(1),
            "wr_addr": Out(addr_bits),
            "wr_data": Out(self.weight_shape),
        })

    def _round(self, grad, rand, shift):
        if self.rounding == "stochastic":
            return stochastic_shift(grad, shift, rand, self.round_bits)
        return rne_shift(grad, shift)

    def elaborate(self, platform):
        m = Module()
        m.submodules.memory = memory = Memory(shape=self.weight_shape, depth=self.depth,
                                              init=self.init)
        write = memory.write_port()
        read = memory.read_port(transparent_for=(write,))

        pending = Signal()
        beat = Signal(self.in_layout)
        m.d.comb += [
            self.i.ready.eq(1),
            read.addr.eq(self.i.payload.addr),
            read.en.eq(1),
        ]
        m.d.sync += pending.eq(self.i.valid)
        with m.If(self.i.valid):
            m.d.sync += beat.eq(self.i.payload)

        step = Mux(beat.bias, self._round(beat.grad, beat.rand, self.bias_shift),
                   self._round(beat.grad, beat.rand, self.weight_shift))
        updated = Signal(signed(max(len(beat.grad), self.weight_shape.width) + 2))
        m.d.comb += updated.eq(read.data - step)
        m.d.comb += [
            write.en.eq(pending),
            write.addr.eq(beat.addr),
            write.data.eq(saturate(updated, self.weight_shape)),
            self.wr_en.eq(write.en),
            self.wr_addr.eq(write.addr),
            self.wr_data.eq(write.data),
        ]
        return m
