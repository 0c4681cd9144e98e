"""The rounding stage the forward, score and back-projection drains share."""

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..arith import rne_shift_var_parts
from ..banked_ram import COPY_SUFFIX

__all__ = ["DrainRounding"]


class DrainRounding(wiring.Component):
    """``rounded = rne(sums / 2**shift)`` per lane, a cycle later (docs/ARITHMETIC.md,
    "Rounding"). The quotient and its rounding bit are registered (one shifter gives both);
    their sum is combinational after the register. One drain runs at a time: it chooses
    ``sums`` and ``shift``.

    With ``registered_shift``, each lane rounds by its own registered copy of ``shift``: the
    sums of a cycle are rounded by the previous cycle's ``shift`` (zero at power-on; a reset
    leaves the copies as they are, the next cycle copies ``shift`` again). A drain sets its
    shift cycles before its first row; no shift register then reaches every lane's shifter.

    Members
    -------
    sums : In(ArrayLayout(sum_shape, lanes))
        The sums to round, every cycle.
    shift : In(unsigned(5))
        The shift of this cycle's sums (0 passes them through).
    rounded : Out(ArrayLayout(signed(sum_shape.width + 2), lanes))
        Last cycle's sums, rounded (zero after reset).
    quotient : Out(ArrayLayout(signed(sum_shape.width + 1), lanes)); round_up : Out(lanes)
        The same, in the registered parts it is added from: ``rounded = quotient + round_up``.
        A stage that saturates a rounded sum can do so from these with
        ``hw.arith.saturate_parts`` and leave out the full-width adder.
    """

    def __init__(self, lanes, sum_shape, registered_shift=False):
        self.lanes, self.sum_shape = lanes, signed(sum_shape.width)
        self.registered_shift = registered_shift
        super().__init__({
            "sums": In(data.ArrayLayout(self.sum_shape, lanes)),
            "shift": In(unsigned(5)),
            "rounded": Out(data.ArrayLayout(signed(sum_shape.width + 2), lanes)),
            "quotient": Out(data.ArrayLayout(signed(sum_shape.width + 1), lanes)),
            "round_up": Out(lanes),
        })

    def elaborate(self, platform):
        m = Module()
        # Data only (no valid): not reset, so that the reset's net reaches control flip-flops
        # only (a fast ECP5 build's reset fanned out to every lane missed 75 MHz).
        parts = Signal(data.StructLayout({
            "q": data.ArrayLayout(signed(self.sum_shape.width + 1), self.lanes),
            "up": self.lanes}), reset_less=True)
        for k in range(self.lanes):
            shift = self.shift
            if self.registered_shift:
                # (Not reset either: the reset's net reached these copies' inputs.)
                shift = Signal(5, name=f"shift_{k}{COPY_SUFFIX}", reset_less=True)
                m.d.sync += shift.eq(self.shift)
            q, up = rne_shift_var_parts(self.sums[k], shift)
            m.d.sync += [parts.q[k].eq(q), parts.up[k].eq(up)]
            m.d.comb += [self.rounded[k].eq(parts.q[k] + parts.up[k]),
                         self.quotient[k].eq(parts.q[k]), self.round_up[k].eq(parts.up[k])]
        return m
