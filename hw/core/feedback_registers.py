"""The back projection's feedback weights, a tile at a time, double-buffered."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["FeedbackRegisters"]


class FeedbackRegisters(wiring.Component):
    """The feedback matrix ``K`` of an output tile (a row per neuron of the tile, a column per
    class) in registers, for the back projection's beats: beat ``c`` multiplies column ``c``
    into the MAC array. While the beats read the ``current`` tile, the ``next`` one fills from
    the classifier-weight generator, a row a cycle; the next tile moves in when it is the one
    the beats ask for and no stalled beat still reads the current one. With
    ``registered_move``, it moves in the cycle after that is seen (from a register: the move
    reaches every weight's clock enable), ``ready`` rising a cycle later; no beat reads the old
    tile then, as none was stalled and the beats wait for the new one.

    Parameters
    ----------
    rows, classes : int
        Neurons per tile; classes.
    weight_shape : signed shape
        A feedback weight.
    width : int
        Width of a tile index.

    Members
    -------
    start : In(1); tiles : In(width)
        Start a layer of ``tiles`` tiles (both buffers empty).
    enable : In(1)
        The back projection runs: rows are taken and tiles move in.
    weights : In(stream.Signature(ArrayLayout(weight_shape, classes)))
        Rows of ``K``: tile 0's rows in order, then tile 1's, ...
    tile : In(width); stall : In(1)
        The tile the beats ask for; a stalled beat still reads ``column``.
    ready : Out(1)
        The current tile is ``tile``.
    class_index : In(range(classes)); column : Out(ArrayLayout(weight_shape, rows))
        Column ``class_index`` of the current tile, combinationally.
    """

    def __init__(self, rows, classes, weight_shape, width, registered_move=False):
        self.rows, self.classes, self.registered_move = rows, classes, registered_move
        self.matrix_layout = data.ArrayLayout(data.ArrayLayout(weight_shape, classes), rows)
        super().__init__({
            "start": In(1), "tiles": In(width), "enable": In(1),
            "weights": In(stream.Signature(data.ArrayLayout(weight_shape, classes))),
            "tile": In(width), "stall": In(1), "ready": Out(1),
            "class_index": In(range(classes)),
            "column": Out(data.ArrayLayout(weight_shape, rows)),
        })

    def elaborate(self, platform):
        m = Module()
        P, C = self.rows, self.classes
        # The weights are data (read while ``current_valid``), but reset: without, Yosys 0.69's
        # synth_ecp5 gave two flip-flops of ``following`` (written at a row index) one output
        # net in a 75 MHz ULX3S build, which nextpnr refused.
        current, following = Signal(self.matrix_layout), Signal(self.matrix_layout)
        current_valid, current_tile = Signal(), Signal.like(self.tile)
        following_full, following_tile = Signal(), Signal.like(self.tile)
        fill_tile, fill_row = Signal.like(self.tile), Signal(max(1, (P - 1).bit_length()))

        m.d.comb += self.weights.ready.eq(self.enable & ~following_full
                                          & (fill_tile < self.tiles))
        with m.If(self.weights.valid & self.weights.ready):
            m.d.sync += [following[fill_row][c].eq(self.weights.payload[c]) for c in range(C)]
            m.d.sync += fill_row.eq(fill_row + 1)
            with m.If(fill_row == P - 1):
                m.d.sync += [following_full.eq(1), following_tile.eq(fill_tile),
                             fill_tile.eq(fill_tile + 1), fill_row.eq(0)]
        m.d.comb += self.ready.eq(current_valid & (current_tile == self.tile))
        # The move waits while a stalled beat of the old tile still reads ``current``.
        move = Signal()
        m.d.comb += move.eq(self.enable & ~self.ready & following_full
                            & (following_tile == self.tile) & ~self.stall)
        if self.registered_move:
            moving = Signal()
            m.d.sync += moving.eq(move & ~moving)
            move = moving
        with m.If(move):
            m.d.sync += [current.eq(following), current_tile.eq(following_tile),
                         current_valid.eq(1), following_full.eq(0)]
        with m.If(self.start):
            m.d.sync += [fill_tile.eq(0), fill_row.eq(0), following_full.eq(0),
                         current_valid.eq(0)]
            if self.registered_move:
                m.d.sync += moving.eq(0)

        with m.Switch(self.class_index):
            for c in range(C):
                with m.Case(c):
                    m.d.comb += [self.column[r].eq(current[r][c]) for r in range(P)]
        return m
