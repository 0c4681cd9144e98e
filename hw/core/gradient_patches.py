"""The patches of a convolution's weight gradient: which input columns each GRAD beat reads."""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .patch_walker import walk_constants

__all__ = ["GradientPatches"]


class GradientPatches(wiring.Component):
    """Walks the input tiles of a convolution's weight gradient and, within each, the output
    positions (docs/CONV_CORE.md, ``GRAD``), by address arithmetic: counters and adders only,
    no multiplier or divider. The sibling of hw/core/patch_walker.py, in the other loop order.

    ``G[f, j] = sum over b and positions of d[b, f, pos] * patch[b, pos, j]``: a beat's ``Q``
    columns are ``Q`` consecutive ``kw`` of one ``(c, kh)``, input tile
    ``m = (c*K + kh)*KB + kb`` (``KB = ceil(K/Q)`` blocks of a kernel row), lane ``q`` being
    ``kw = kb*Q + q`` (lanes with ``kw >= K`` are not real). Those elements are ``Q``
    consecutive input columns of the map flattened channel by channel, row by row (element
    ``(c, ih, iw)`` is column ``c*H*W + ih*W + iw``), so one start column and a lane mask say
    them all. Tiles come in order ``m = 0, 1, ...``; within a tile the positions come in the
    forward walk's order (row-major; with pooling, row-major over the pooled map and, within
    each, the 2 x 2 window's elements ``(0,0), (0,1), (1,0), (1,1)``); the samples, innermost,
    are the loop nest's, not counted here. After the last position of the tile the nest calls
    the last (``last_tile``), the walk wraps to tile 0 (the next filter tile).

    The column is kept running: that of the position (lane 0's element), and of the tile's
    kernel row and channel. As in the patch walker, rows above the map are not counted, to
    avoid ``pad * W``: the row part of every running address is ``max(ih, 0) * W`` (``W`` is
    added when stepping down from a row ``ih >= 0``, taken when stepping up from ``ih >= 1``).
    The column part ``iw0 = ow + kb*Q - pad`` may be negative, so ``column`` is exact, modulo
    ``2**column_bits``, whenever the position's kernel row lies in the map: lane ``q``'s
    element is column ``(column + q) mod 2**column_bits`` whenever ``lanes[q]`` (the first
    channel's top-left corner wraps below 0). When no lane is in the map, ``column`` is some
    other value.

    Parameters
    ----------
    lanes : int
        ``Q``, the MAC array's columns: patch elements per beat (a power of two).
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
        Go to input tile 0, position 0 (overrides ``next_position``).
    next_position : In(1)
        The current position's last beat issues (its last sample's): go to the next position;
        after the tile's last position, to position 0 of the next input tile.
    last_tile : In(1)
        The current input tile is the last (``m = C*K*KB - 1``, the loop nest's count: the
        walker does not know ``C``). Read only with ``next_position`` at the last position:
        the walk then wraps to tile 0.
    column : Out(column_bits); lanes : Out(Q); columns : Out(range(Q + 1))
        Lane 0's input column ``c*H*W + ih*W + iw0`` (``ih = oh + kh - pad``,
        ``iw0 = ow + kb*Q - pad``; meaningful when some lane is set, see above); lane ``q`` is a
        real element (``kb*Q + q < K``) inside the map (``0 <= ih < H``,
        ``0 <= iw0 + q < W``), the others are zero padding or not real; the tile's real lanes
        ``min(Q, K - kb*Q)``. All follow the state in the same cycle.
    pooled : Out(column_bits); window : Out(2); last_position : Out(1)
        The position's output index in its (pooled) map, row-major; the window element 0..3
        (0 without pooling); the position is the walk's last of this input tile.
    """

    def __init__(self, lanes, dim_bits, kernel_bits, column_bits):
        assert lanes >= 1 and lanes & (lanes - 1) == 0, "lanes must be a power of two"
        self.lanes_count = lanes
        self.dim_bits, self.kernel_bits, self.column_bits = dim_bits, kernel_bits, column_bits
        super().__init__({
            "in_h": In(dim_bits), "in_w": In(dim_bits), "plane": In(column_bits),
            "kernel": In(kernel_bits), "same": In(1), "pool": In(1),
            "start": In(1), "next_position": In(1), "last_tile": In(1),
            "column": Out(column_bits), "lanes": Out(lanes), "columns": Out(range(lanes + 1)),
            "pooled": Out(column_bits), "window": Out(2), "last_position": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        lanes = self.lanes_count
        coord = signed(self.dim_bits + 2)     # -pad .. H-1 + K-1 - pad, and one more
        offset = signed(self.kernel_bits + 2)      # kb*Q - pad: -pad .. K - 1
        height, width, k = self.in_h, self.in_w, self.kernel

        pad_now, pad, last_r, last_s = walk_constants(m, self)

        # The input tile: kernel row kh, the block's first kw (kb*Q, kept so that no multiplier
        # is needed), and the running columns of its channel and of its kernel row (rows above
        # the map not counted, no column offset).
        kh = Signal(self.kernel_bits)
        block = Signal(self.kernel_bits)     # kb*Q < K
        channel_start, row_start = Signal(self.column_bits), Signal(self.column_bits)
        # The position: conv output (r, s), its window element and its (pooled) output index;
        # column is lane 0's, rows above the map not counted.
        r, s = Signal(self.dim_bits), Signal(self.dim_bits)
        column, window, pooled = self.column, self.window, self.pooled

        top, left = Signal(coord), Signal(offset)     # kh - pad, kb*Q - pad: the tile's offsets
        ih, iw = Signal(coord), Signal(coord)         # the position's kernel row, lane 0's iw0
        rest = Signal(signed(self.kernel_bits + 1))   # K - kb*Q: real lanes, if below Q
        m.d.comb += [
            top.eq(kh - pad), left.eq(block - pad),
            ih.eq(r + top), iw.eq(s + left),
            rest.eq(k - block),
            self.columns.eq(Mux(rest >= lanes, lanes, rest)),
            self.last_position.eq((r == last_r) & (s == last_s)),
        ]
        # Lane q: real (q < columns), in a row of the map, and 0 <= iw0 + q < W, that is
        # -iw0 <= q < W - iw0: two comparisons with constants per lane, no adder per lane.
        row_in = (ih >= 0) & (ih < height)
        low, high = Signal(signed(coord.width + 1)), Signal(signed(coord.width + 1))
        m.d.comb += [low.eq(-iw), high.eq(width - iw)]
        m.d.comb += self.lanes.eq(Mux(row_in, Cat(
            (low <= q) & (high > q) & (self.columns > q) for q in range(lanes)), 0))

        with m.If(self.next_position):
            # The next position within the tile (as the patch walker's origin, with the tile's
            # kernel row ih in place of the position's top row).
            next_r, next_s = Signal.like(r), Signal.like(s)
            next_column = Signal.like(column)
            row_down = Mux(ih >= 0, width, 0)          # column's step one row down
            row_up = Mux(ih >= 1, width, 0)            # and one row up
            last_in_row = s == last_s
            m.d.comb += [next_r.eq(r), next_s.eq(s + 1), next_column.eq(column + 1)]
            with m.If(self.pool & (window == 1)):      # (0,1) -> (1,0)
                m.d.comb += [next_r.eq(r + 1), next_s.eq(s - 1),
                             next_column.eq(column + row_down - 1)]
            with m.Elif(self.pool & (window == 3) & ~last_in_row):   # next window, same rows
                m.d.comb += [next_r.eq(r - 1), next_column.eq(column - row_up + 1)]
            with m.Elif((~self.pool | (window == 3)) & last_in_row):
                m.d.comb += [next_r.eq(r + 1), next_s.eq(0),
                             next_column.eq(column + row_down - last_s)]
            m.d.sync += [
                r.eq(next_r), s.eq(next_s), column.eq(next_column),
                window.eq(Mux(self.pool, window + 1, 0)),
                pooled.eq(Mux(~self.pool | (window == 3), pooled + 1, pooled)),
            ]

            # After the tile's last position: position 0 of the next tile, whose column is its
            # kernel row's start plus its kb*Q - pad.
            with m.If(self.last_position):
                m.d.sync += [r.eq(0), s.eq(0), window.eq(0), pooled.eq(0)]
                with m.If(self.last_tile):
                    m.d.sync += [kh.eq(0), block.eq(0), channel_start.eq(0),
                                 row_start.eq(0), column.eq(-pad)]
                with m.Elif(rest > lanes):                  # the next block of the kernel row
                    m.d.sync += [block.eq(block + lanes),
                                 column.eq(row_start + left + lanes)]
                with m.Elif(kh != k - 1):                   # the next kernel row
                    # A row above the map shares the address of row 0.
                    down = Mux(top >= 0, row_start + width, row_start)
                    m.d.sync += [kh.eq(kh + 1), block.eq(0), row_start.eq(down),
                                 column.eq(down - pad)]
                with m.Else():                              # the next channel
                    plane = channel_start + self.plane
                    m.d.sync += [kh.eq(0), block.eq(0), channel_start.eq(plane),
                                 row_start.eq(plane), column.eq(plane - pad)]

        with m.If(self.start):
            m.d.sync += [
                r.eq(0), s.eq(0), window.eq(0), pooled.eq(0),
                kh.eq(0), block.eq(0), channel_start.eq(0), row_start.eq(0), column.eq(-pad_now),
            ]
        return m
