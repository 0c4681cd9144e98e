"""The gradient drain's walk over a sum's columns: which go through the weight update."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["GradientColumns"]


class GradientColumns(wiring.Component):
    """The gradient phase drains a sum of the MAC array column by column: column ``step`` is
    input ``tile * cols + step`` of the layer, its ``rows`` weight gradients one weight word's
    update (hw/core/weight_updater.py). Columns past the layer's last input are passed over
    without an update; after the last input tile's columns, one more step updates the bias
    word from the bias gradients. The drain's ``step`` counter (shared with the other drains)
    moves on ``advance``.

    Whether a sum is of the last input tile, and how many of its columns are real inputs, are
    registered as the sum moves into the drain register (with ``step`` at 0); whether a step is
    a real input or the last column, ``bias`` (the bias step) and the step's ``shift`` are
    registers set as ``step`` moves: no comparison sits in front of the update's rounding
    shifter, nor of ``advance`` and ``last``, which the drain register fans out to every
    element.

    With ``batch_norm`` and ``normalise`` high, the bias step is followed by a scale step
    (``gamma``): the batch normalisation's scale, column ``J + 1`` of the tile, updated by
    ``gamma_shift``.

    With ``conv`` and ``conv_on`` high, a sum's real columns are not counted from ``fan_in``
    but given with it (``popped_columns``): a convolution's input tile is ``cols`` consecutive
    ``kw`` of one kernel row, of which ``min(cols, K - kb*cols)`` are real
    (hw/core/gradient_patches.py); the real columns of successive tiles are still the layer's
    inputs in order, as the weight words stream.

    Parameters
    ----------
    cols : int
        Columns of the MAC array.
    width : int
        Width of the input-tile index and of ``fan_in``.
    batch_norm : bool
        Built with the scale step (``normalise``, ``gamma_shift`` and ``gamma`` exist).
    conv : bool
        Built for convolutions (``conv_on`` and ``popped_columns`` exist).

    Members
    -------
    popped, popped_tile : In(1), In(width)
        A sum moves into the drain register, and its input tile.
    last_tile : In(width)
        The layer's last input tile.
    fan_in : In(width)
        The layer's inputs.
    step : In(width)
        The drain's step counter: 0 as a sum moves in, ``+1`` on each ``advance``.
    active : In(1)
        The drain holds a sum of the gradient phase.
    begin, end : In(1)
        A phase begins; the drain's last step (both clear ``bias``).
    taken : In(1)
        The weight update takes this step's gradients.
    bias_shift, update_shift : In(5)
        The shift of the bias update and of the weights' update.
    update : Out(1)
        This step's column goes through the weight update (a real input, or the biases).
    conv_on : In(1); popped_columns : In(range(cols + 1))
        (``conv`` only) The layer is a convolution; the real columns of the sum moving in.
    bias, shift : Out(1), Out(5)
        This step is the bias step; its update's shift (valid while ``active``: a ``begin``
        arrives only with the drain idle, and clears ``bias`` but not the shift chosen with it).
    advance : Out(1)
        The drain moves to the next step.
    advance_column : Out(1)
        ``advance`` from a column of the sum (not the bias or the scale step): the drain
        register shifts its columns.
    last : Out(1)
        This step is the sum's last.
    """

    def __init__(self, cols, width, batch_norm=False, conv=False):
        self.cols, self.batch_norm, self.conv = cols, batch_norm, conv
        super().__init__({
            "popped": In(1), "popped_tile": In(width), "last_tile": In(width),
            "fan_in": In(width), "step": In(width), "active": In(1),
            "begin": In(1), "end": In(1), "taken": In(1),
            "bias_shift": In(5), "update_shift": In(5),
            "update": Out(1), "bias": Out(1), "shift": Out(5), "advance": Out(1),
            "advance_column": Out(1),
            "last": Out(1),
            **({"normalise": In(1), "gamma_shift": In(5), "gamma": Out(1)}
               if batch_norm else {}),
            **({"conv_on": In(1), "popped_columns": In(range(cols + 1))} if conv else {}),
        })

    def elaborate(self, platform):
        m = Module()
        Q = self.cols
        qbits = (Q - 1).bit_length()
        last_tile = Signal()
        real_columns = Signal(range(Q + 1))
        columns_left = Signal.like(self.fan_in)     # 1 .. fan_in: the tile starts below it
        popped_columns = Signal(range(Q + 1))
        counted = Mux(columns_left >= Q, Q, columns_left)
        m.d.comb += [columns_left.eq(self.fan_in - (self.popped_tile << qbits)),
                     popped_columns.eq(Mux(self.conv_on, self.popped_columns, counted)
                                       if self.conv else counted)]
        # Whether this step is a real input and whether it is the sum's last column are
        # registers, set as the sum moves in (at step 0) and as ``step`` moves on: ``advance``
        # and ``last`` fan out to every element of the drain register, so nothing but
        # ``active`` and ``taken`` may sit in front of them.
        real_column, last_column = Signal(), Signal()
        next_step = Signal(qbits + 2)               # step + 1: at most cols, the bias step
        m.d.comb += next_step.eq(self.step[:qbits + 1] + 1)
        with m.If(self.popped):
            m.d.sync += [last_tile.eq(self.popped_tile == self.last_tile),
                         real_columns.eq(popped_columns),
                         real_column.eq(popped_columns != 0),
                         last_column.eq(Q == 1)]
        with m.Elif(self.advance):
            m.d.sync += [real_column.eq(next_step < real_columns),
                         last_column.eq(next_step == Q - 1)]
        bias_next, shift_next = Signal(), Signal(5)
        if self.batch_norm:
            gamma_next = Signal()
            special = self.bias | self.gamma
            m.d.comb += [
                self.last.eq(Mux(last_tile, Mux(self.normalise, self.gamma, self.bias),
                                 last_column)),
                gamma_next.eq(Mux(self.end, 0, Mux(self.advance, self.bias & self.normalise,
                                                   self.gamma))),
                shift_next.eq(Mux(bias_next, self.bias_shift,
                                  Mux(gamma_next, self.gamma_shift, self.update_shift))),
            ]
            m.d.sync += self.gamma.eq(gamma_next)
            with m.If(self.begin):
                m.d.sync += self.gamma.eq(0)
        else:
            special = self.bias
            m.d.comb += [
                self.last.eq(Mux(last_tile, self.bias, last_column)),
                shift_next.eq(Mux(bias_next, self.bias_shift, self.update_shift)),
            ]
        real = ~special & real_column
        m.d.comb += [
            self.update.eq(real | special),
            self.advance.eq(self.active & (self.taken | ~self.update)),
            self.advance_column.eq(self.advance & ~special),
            bias_next.eq(Mux(self.end, 0, Mux(self.advance, last_column,
                                              self.bias))),
        ]
        m.d.sync += [self.bias.eq(bias_next), self.shift.eq(shift_next)]
        with m.If(self.begin):
            m.d.sync += self.bias.eq(0)
        return m
