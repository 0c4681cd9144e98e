"""The back projection's drain: deltas from the summed feedback, and the bias gradients."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import saturate, saturate_parts

__all__ = ["BackProjection"]


class BackProjection(wiring.Component):
    """Column by column of the MAC array's ``K^T e`` sums (a lane per neuron of a tile, a
    column per sample): ``d = active * sat(rounded, delta_bits)`` written as the sample's delta
    word, and the bias gradients ``sum_b d`` of the tile summed on the way (docs/ARITHMETIC.md,
    "One training step").

    Two registered stages: the beat's place and active bits (the rounded sums arrive a cycle
    after the beat, from the drain's shared rounding stage); then the deltas, written from the
    register, and the bias-gradient sums, written after the tile's last sample.

    Parameters
    ----------
    lanes, columns : int
        Neurons per beat; samples per active word.
    sum_shape : signed shape
        A rounded sum.
    delta_bits, grad_bias_bits : int
        A delta's and a bias gradient's width.
    tile_bits : int
        Width of a tile index.
    rounding_parts : bool
        The rounded sums arrive as their quotients (``rounded``) and rounding bits
        (``round_up``), as ``DrainRounding`` registers them.

    Members
    -------
    i : In(stream.Signature(StructLayout(sample, tile, last)))
        A column: its sample, the tile, and whether it is the tile's last sample. Always ready.
    active : In(ArrayLayout(unsigned(columns), lanes))
        In the beat's cycle: the active bits (relu' and dropout) of the sample's group; lane
        ``l``'s bit for the sample is bit ``sample % columns``.
    rounded : In(ArrayLayout(sum_shape, lanes))
        The beat's rounded sums, in the cycle after the beat (with ``rounding_parts``, their
        quotients).
    round_up : In(lanes)
        With ``rounding_parts``: lane ``r``'s rounded sum is ``rounded[r] + round_up[r]``,
        saturated from the two (``hw.arith.saturate_parts``: no full-width adder in front).
    clear : In(1)
        Start the bias-gradient sums from zero (a phase's start).
    delta : Out(en, sample, tile, data)
        The delta word of a sample; ``data`` is registered.
    bias_grad : Out(en, tile, data)
        The bias gradients of a tile, after its last sample.
    busy : Out(1)
        A beat is in either stage.
    """

    def __init__(self, lanes, columns, sum_shape, delta_bits, grad_bias_bits, tile_bits,
                 rounding_parts=False):
        self.lanes, self.columns, self.tile_bits = lanes, columns, tile_bits
        self.rounding_parts = rounding_parts
        self.delta_shape = signed(delta_bits)
        self.grad_bias_shape = signed(grad_bias_bits)
        self.in_layout = data.StructLayout({"sample": 8, "tile": tile_bits, "last": 1})
        self.delta_layout = data.ArrayLayout(self.delta_shape, lanes)
        self.bias_layout = data.ArrayLayout(self.grad_bias_shape, lanes)
        super().__init__({
            "i": In(stream.Signature(self.in_layout)),
            "active": In(data.ArrayLayout(unsigned(columns), lanes)),
            "rounded": In(data.ArrayLayout(signed(sum_shape.width), lanes)),
            "clear": In(1),
            "delta": Out(wiring.Signature({"en": Out(1), "sample": Out(8),
                                           "tile": Out(tile_bits),
                                           "data": Out(self.delta_layout)})),
            "bias_grad": Out(wiring.Signature({"en": Out(1), "tile": Out(tile_bits),
                                               "data": Out(self.bias_layout)})),
            "busy": Out(1),
            **({"round_up": In(lanes)} if rounding_parts else {}),
        })

    def elaborate(self, platform):
        m = Module()
        lanes, qbits = self.lanes, (self.columns - 1).bit_length()
        at = data.StructLayout({"valid": 1, "last": 1, "sample": 8, "tile": self.tile_bits})
        # Each stage: where (with its valid bit), and its lanes' data without reset (the
        # reset's net reaches control flip-flops only).
        first = Signal(data.StructLayout({"at": at}))
        second = Signal(data.StructLayout({"at": at}))
        first_active = Signal(lanes, reset_less=True)
        second_d = Signal(self.delta_layout, reset_less=True)
        beat = self.i.payload
        m.d.comb += [self.i.ready.eq(1), self.busy.eq(first.at.valid | second.at.valid)]
        m.d.sync += [first.at.valid.eq(self.i.valid), second.at.eq(first.at)]
        with m.If(self.i.valid):
            m.d.sync += [first.at.sample.eq(beat.sample), first.at.tile.eq(beat.tile),
                         first.at.last.eq(beat.last)]
            for r in range(lanes):
                m.d.sync += first_active[r].eq(
                    self.active[r].bit_select(beat.sample[:qbits], 1) if qbits
                    else self.active[r][0])
        sums = Signal(self.bias_layout, reset_less=True)       # ``clear`` zeroes it
        sums_next = Signal(self.bias_layout)
        for r in range(lanes):
            d = Signal(self.delta_shape, name=f"delta_{r}")
            m.d.comb += [d.eq(saturate_parts(self.rounded[r], self.round_up[r], self.delta_shape)
                              if self.rounding_parts
                              else saturate(self.rounded[r], self.delta_shape)),
                         sums_next[r].eq(sums[r] + second_d[r])]
            m.d.sync += second_d[r].eq(Mux(first_active[r], d, 0))
        m.d.comb += [
            self.delta.en.eq(second.at.valid), self.delta.sample.eq(second.at.sample),
            self.delta.tile.eq(second.at.tile), self.delta.data.eq(second_d),
            self.bias_grad.en.eq(second.at.valid & second.at.last),
            self.bias_grad.tile.eq(second.at.tile), self.bias_grad.data.eq(sums_next),
        ]
        with m.If(second.at.valid):
            m.d.sync += sums.eq(Mux(second.at.last, 0, sums_next))
        # After the phase's other writes of ``sums``: a start wins.
        with m.If(self.clear):
            m.d.sync += sums.eq(0)
        return m
