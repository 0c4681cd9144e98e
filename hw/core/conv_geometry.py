"""A convolutional layer's sizes, derived once per layer from its ``conv`` register."""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from contract.registers import CONV_FIELDS

__all__ = ["ConvGeometry", "conv_layout"]

#: The ``conv`` register's fields (contract/registers.py), as a layout over its word.
conv_layout = data.StructLayout({name: unsigned(bits) for name, (_, bits)
                                 in sorted(CONV_FIELDS.items(), key=lambda kv: kv[1][0])})
assert all(conv_layout[name].offset == at and conv_layout[name].width == bits
           for name, (at, bits) in CONV_FIELDS.items())


class ConvGeometry(wiring.Component):
    """The sizes the core needs of a convolution beyond its registers (docs/ARITHMETIC.md,
    "Convolutional layers"): the input plane ``H*W`` (the patch walker's channel stride), the
    pooled output positions ``S = Ho' * Wo'`` per filter (the forward drain's column stride),
    and the layer's output size ``F * S`` (its local classifier's width); for the training
    steps, the output tiles of ``rows`` outputs (``BACK``'s outer loop) and the weight
    gradient's input tiles ``C * K * ceil(K / cols)`` (``GRAD``'s: a tile is ``cols``
    consecutive ``kw`` of one kernel row, hw/core/gradient_patches.py).

    Registered in four stages: ``plane``, the conv output's ``Ho x Wo`` and ``C * K`` a cycle
    after the inputs, ``positions`` and ``in_tiles`` two, ``width`` three, ``out_tiles`` four.
    The inputs are held through a layer, so ``plane``, ``positions`` and ``width`` are right
    from the third cycle after a layer's registers are copied on, ``out_tiles`` and
    ``in_tiles`` from the fourth (``BACK`` and ``GRAD``, which read them, begin phases later).

    Parameters
    ----------
    filter_bits, width_bits : int
        Widths of the filters (the ``neurons`` register) and of ``width``.
    rows, cols : int
        The MAC array's shape (powers of two).

    Members
    -------
    conv : In(conv_layout)
        The ``conv`` register (``kernel`` 0: a fully connected layer; the outputs then mean
        nothing).
    filters : In(filter_bits)
    conv_on : Out(1)
        The layer is a convolution (``kernel`` is not 0), combinationally.
    plane : Out(16); positions : Out(16); width : Out(width_bits)
    out_tiles, in_tiles : Out(width_bits)
        ``ceil(F * S / rows)``; ``C * K * ceil(K / cols)``.
    """

    def __init__(self, filter_bits, width_bits, rows=1, cols=1):
        self.filter_bits, self.width_bits = filter_bits, width_bits
        self.rows, self.cols = rows, cols
        super().__init__({
            "conv": In(conv_layout), "filters": In(filter_bits),
            "conv_on": Out(1), "plane": Out(16), "positions": Out(16),
            "width": Out(width_bits), "out_tiles": Out(width_bits),
            "in_tiles": Out(width_bits),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.conv
        m.d.comb += self.conv_on.eq(c.kernel != 0)
        # "valid" shrinks each side by K - 1; "same" keeps it (K odd, pad (K-1)/2).
        shrink = Mux(c.valid, c.kernel - 1, 0)
        out_h, out_w = Signal(8), Signal(8)
        pool = Signal()
        m.d.sync += [self.plane.eq(c.in_h * c.in_w), out_h.eq(c.in_h - shrink),
                     out_w.eq(c.in_w - shrink), pool.eq(c.pool)]
        m.d.sync += self.positions.eq(Mux(pool, (out_h >> 1) * (out_w >> 1), out_h * out_w))
        m.d.sync += self.width.eq(self.filters * self.positions)
        pbits, qbits = (self.rows - 1).bit_length(), (self.cols - 1).bit_length()
        m.d.sync += self.out_tiles.eq((self.width + self.rows - 1) >> pbits)
        kernel_rows = Signal(16)
        m.d.sync += [kernel_rows.eq(c.channels * c.kernel),
                     self.in_tiles.eq(kernel_rows * ((c.kernel + self.cols - 1) >> qbits))]
        return m
