"""The patch walker of a convolution: which input column each forward beat reads."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["PatchWalker", "walk_constants"]


class PatchWalker(wiring.Component):
    """Walks the output positions of a convolution and, for each, the elements of its patch
    (docs/ARITHMETIC.md, "Convolutional layers"), by address arithmetic: counters and adders
    only, no multiplier or divider.

    A sum's beats are the patch elements ``j = (c*K + kh)*K + kw`` in order, then one bias beat.
    The input map is flattened channel by channel, row by row: element ``(c, ih, iw)`` is column
    ``c*H*W + ih*W + iw``. Positions come row-major; with pooling, row-major over the pooled map
    and, within each, the 2 x 2 window's elements ``(0,0), (0,1), (1,0), (1,1)``. After the last
    position the walk wraps to the first (the next group of samples).

    The column is kept running: the element's, the start of its kernel row's and of its
    channel's, and the position's origin. To avoid ``pad * W``, rows above the map are not
    counted: the row part of every running address is ``max(ih, 0) * W`` (so ``W`` is added only
    when stepping down from a row ``ih >= 0``). The column is therefore exact when ``in_map``
    and some other value outside the map.

    Parameters
    ----------
    dim_bits : int
        Width of a map's height or width.
    kernel_bits : int
        Width of the kernel size.
    column_bits : int
        Width of an input column (and of an output index).

    Members
    -------
    in_h, in_w : In(dim_bits); plane : In(column_bits)
        The input map's ``H``, ``W`` and ``H*W``.
    kernel : In(kernel_bits); same : In(1); pool : In(1)
        ``K`` (1 .. 15, odd with ``same``); "same" padding ``(K-1)//2`` (output ``H x W``) or none
        (``(H-K+1) x (W-K+1)``); the layer pools 2 x 2 (its output sides are even). The shape
        inputs are held through a walk, from the cycle of ``start`` on (they are read a cycle
        late but by ``start``).
    start : In(1)
        Go to the first position's element 0 (overrides ``step``).
    step, end_of_sum : In(1)
        A beat issues this cycle; it is the sum's bias beat: go to the next position.
    column : Out(column_bits); in_map : Out(1)
        The current element's input column (meaningful when ``in_map``) and whether it lies in
        the map (outside: zero padding). Both follow the state in the same cycle. (``inside``
        is a SystemVerilog keyword, hence ``in_map``.)
    pooled : Out(column_bits); window : Out(2); last_position : Out(1)
        The index of the sum's output in its (pooled) map, row-major; the window element 0..3
        (0 without pooling); the position is the walk's last.
    """

    def __init__(self, dim_bits, kernel_bits, column_bits):
        self.dim_bits, self.kernel_bits, self.column_bits = dim_bits, kernel_bits, column_bits
        super().__init__({
            "in_h": In(dim_bits), "in_w": In(dim_bits), "plane": In(column_bits),
            "kernel": In(kernel_bits), "same": In(1), "pool": In(1),
            "start": In(1), "step": In(1), "end_of_sum": In(1),
            "column": Out(column_bits), "in_map": Out(1),
            "pooled": Out(column_bits), "window": Out(2), "last_position": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        coord = signed(self.dim_bits + 2)     # -pad .. H-1 + K-1 - pad, and one more
        height, width, k = self.in_h, self.in_w, self.kernel

        pad_now, pad, last_r, last_s = walk_constants(m, self)

        # The position: conv output (r, s), its window element and its (pooled) output index;
        # origin is the column of its element 0, rows above the map not counted.
        r, s = Signal(self.dim_bits), Signal(self.dim_bits)
        origin = Signal(self.column_bits)
        # The element: kernel counters, input coordinates, running columns.
        kh, kw = Signal(self.kernel_bits), Signal(self.kernel_bits)
        ih, iw = Signal(coord), Signal(coord)
        row_start, channel_start = Signal(self.column_bits), Signal(self.column_bits)
        column, window, pooled = self.column, self.window, self.pooled

        top_r = Signal(coord)                 # r - pad: ih at kh = 0
        m.d.comb += [
            top_r.eq(r - pad),
            self.in_map.eq((ih >= 0) & (ih < height) & (iw >= 0) & (iw < width)),
            self.last_position.eq((r == last_r) & (s == last_s)),
        ]

        # Next element: kw, then kh, then the channel.
        with m.If(self.step & ~self.end_of_sum):
            with m.If(kw != k - 1):
                m.d.sync += [kw.eq(kw + 1), iw.eq(iw + 1), column.eq(column + 1)]
            with m.Else():
                m.d.sync += [kw.eq(0), iw.eq(s - pad)]
                with m.If(kh != k - 1):
                    # A row above the map shares the address of row 0.
                    down = Mux(ih >= 0, row_start + width, row_start)
                    m.d.sync += [kh.eq(kh + 1), ih.eq(ih + 1),
                                 row_start.eq(down), column.eq(down)]
                with m.Else():
                    plane = channel_start + self.plane
                    m.d.sync += [kh.eq(0), ih.eq(top_r), channel_start.eq(plane),
                                 row_start.eq(plane), column.eq(plane)]

        # Next position, and its element 0.
        with m.If(self.step & self.end_of_sum):
            next_r, next_s = Signal.like(r), Signal.like(s)
            next_origin = Signal.like(origin)
            row_down = Mux(top_r >= 0, width, 0)       # origin's step one row down
            row_up = Mux(top_r >= 1, width, 0)         # and one row up
            last_in_row = s == last_s
            m.d.comb += [next_r.eq(r), next_s.eq(s + 1), next_origin.eq(origin + 1)]
            with m.If(self.pool & (window == 1)):      # (0,1) -> (1,0)
                m.d.comb += [next_r.eq(r + 1), next_s.eq(s - 1),
                             next_origin.eq(origin + row_down - 1)]
            with m.Elif(self.pool & (window == 3) & ~last_in_row):   # next window, same rows
                m.d.comb += [next_r.eq(r - 1), next_origin.eq(origin - row_up + 1)]
            with m.Elif((~self.pool | (window == 3)) & last_in_row):
                m.d.comb += [next_r.eq(r + 1), next_s.eq(0),
                             next_origin.eq(origin + row_down - last_s)]
            with m.If(self.last_position):              # wrap to the first position
                m.d.comb += [next_r.eq(0), next_s.eq(0), next_origin.eq(-pad)]
            m.d.sync += [
                r.eq(next_r), s.eq(next_s), origin.eq(next_origin),
                kh.eq(0), kw.eq(0), ih.eq(next_r - pad), iw.eq(next_s - pad),
                row_start.eq(next_origin), channel_start.eq(next_origin),
                column.eq(next_origin),
                window.eq(Mux(self.pool, window + 1, 0)),
                pooled.eq(Mux(self.last_position, 0,
                              Mux(~self.pool | (window == 3), pooled + 1, pooled))),
            ]

        with m.If(self.start):
            m.d.sync += [
                r.eq(0), s.eq(0), window.eq(0), pooled.eq(0), origin.eq(-pad_now),
                kh.eq(0), kw.eq(0), ih.eq(-pad_now), iw.eq(-pad_now),
                row_start.eq(-pad_now), channel_start.eq(-pad_now), column.eq(-pad_now),
            ]
        return m


def walk_constants(m, walker):
    """A walk's layer constants from ``walker``'s held shape inputs (``in_h``, ``in_w``,
    ``kernel``, ``same``): ``(pad_now, pad, last_r, last_s)``, the padding combinationally and,
    registered, the padding and the conv output's last row and column (``Ho - 1``, ``Wo - 1``).
    Registered because they head the position's logic (taken combinationally from the layer's
    registers, a critical path of the ULX3S build); ``start`` may come in the first cycle the
    inputs hold, so it sets the walk from ``pad_now``; the registered ones are right from the
    next cycle."""
    height, width, k = walker.in_h, walker.in_w, walker.kernel
    pad_now = Mux(walker.same, (k - 1) >> 1, 0)
    last_r_now = Mux(walker.same, height - 1, height - k)
    last_s_now = Mux(walker.same, width - 1, width - k)
    pad = Signal(pad_now.shape())
    last_r, last_s = Signal(last_r_now.shape()), Signal(last_s_now.shape())
    m.d.sync += [pad.eq(pad_now), last_r.eq(last_r_now), last_s.eq(last_s_now)]
    return pad_now, pad, last_r, last_s
