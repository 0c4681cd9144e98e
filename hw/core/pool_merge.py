"""2 x 2 max pooling for the forward drain: the running maxima of a tile's rows."""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["PoolMerge"]


class PoolMerge(wiring.Component):
    """The window elements of a pooled row arrive one row pass after another (element ``w`` =
    0, 1, 2, 3 for ``(0,0), (0,1), (1,0), (1,1)``); per row of the tile and lane, a state holds
    the largest ``y`` so far, the ``active`` of the element holding it and that element's index
    (docs/ARITHMETIC.md, "Convolutional layers", step 1).

    Combinational from ``i`` and the state to ``o``; the state is written at the clock edge. A
    pooled row (``i.pool`` and ``i.valid``) of element 0 starts its row's state; one of a later
    element replaces the lanes where its ``y`` is strictly larger (the first of equal maxima
    wins). ``o`` is the merge: the state after this row (element 3: the pooled row). A row read
    in the cycle after its row's previous element was merged sees that merge, so the same row
    may come on consecutive cycles (a tile of one row). Rows that do not pool (or are not
    valid) pass through unchanged, with winner 0, and leave the state alone.

    Parameters
    ----------
    lanes : int
        Samples per row.
    act_bits : int
        An activation's width.
    rows : int
        Rows of a tile: the state's entries (``i.row`` must stay below it on pooled rows).
    row_bits : int
        The width of ``i.row``.
    scaled_bits : int
        If not 0, also carry ``scaled``, a value of this width per lane that goes with ``y``
        (the forward drain's dropout product ``y * keep_scale``, computed beside the comparison
        rather than after it).

    Members
    -------
    i : In(StructLayout(valid, pool, row, window, y, active, [scaled]))
        A row's activations and clipped ReLU derivatives (before dropout), its row within the
        tile and its window element.
    o : Out(StructLayout(y, active, winner, [scaled]))
        The merged row: the largest ``y`` so far, its ``active``, its window element per
        lane (``ArrayLayout(unsigned(2), lanes)``) and its ``scaled``.
    """

    def __init__(self, lanes, act_bits, rows, row_bits, scaled_bits=0):
        self.lanes, self.rows, self.scaled = lanes, rows, bool(scaled_bits)
        act_layout = data.ArrayLayout(unsigned(act_bits), lanes)
        self.winner_layout = data.ArrayLayout(unsigned(2), lanes)
        carried = ({"scaled": data.ArrayLayout(unsigned(scaled_bits), lanes)}
                   if scaled_bits else {})
        self.entry_layout = data.StructLayout({
            "y": act_layout, "active": lanes, "winner": self.winner_layout, **carried})
        super().__init__({
            "i": In(data.StructLayout({"valid": 1, "pool": 1, "row": row_bits, "window": 2,
                                       "y": act_layout, "active": lanes, **carried})),
            "o": Out(self.entry_layout),
        })

    def elaborate(self, platform):
        m = Module()
        i, o = self.i, self.o
        state = Signal(data.ArrayLayout(self.entry_layout, self.rows))
        index = i.row[:(self.rows - 1).bit_length()] if self.rows > 1 else 0
        held = state[index]
        pooled = i.pool & i.valid
        first = i.window == 0
        for q in range(self.lanes):
            take = ~pooled | first | (i.y[q] > held.y[q])
            m.d.comb += [o.y[q].eq(Mux(take, i.y[q], held.y[q])),
                         o.active[q].eq(Mux(take, i.active[q], held.active[q])),
                         o.winner[q].eq(Mux(take, Mux(pooled, i.window, 0), held.winner[q]))]
            if self.scaled:
                m.d.comb += o.scaled[q].eq(Mux(take, i.scaled[q], held.scaled[q]))
        with m.If(pooled):
            m.d.sync += state[index].eq(o)
        return m
