"""What early exit saves: the MAC beats of skipped groups and layers."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


__all__ = ["ExitSavings"]


class ExitSavings(wiring.Component):
    """Counts the MAC beats early exit saves, for the ``exit_skipped_beats`` counter: a
    skipped group of the forward pass saves ``fan_in + 1`` beats per tile it skips, a skipped
    group of the scores ``neurons * class_tiles``, and a skipped layer ``groups * (tiles *
    (fan_in + 1) + neurons * class_tiles)``. The per-skip amount is set when a phase begins, so
    no multiplier sits on the loop counters' path; the layer's is multiplied over four cycles,
    from its sizes registered in the first (over three from the sizes as they are, without
    ``registered_sizes``).

    Members
    -------
    begin_forward, begin_scores : In(1)
        The forward pass, or the scores, begin (the layer's sizes are valid).
    tiles, fan_in, neurons, groups : In(width)
        The layer's sizes and the mini-batch's sample groups.
    skip : In(1)
        The loop nest skips an iteration this cycle.
    skip_layer : In(1); skipped_layer : Out(1)
        Account for a skipped layer; done (the savings are out in the next cycle).
    skipped : Out(32)
        Beats saved by the skips of the cycle before.
    """

    def __init__(self, width, class_tiles, registered_sizes=True):
        self.class_tiles, self.registered_sizes = class_tiles, registered_sizes
        super().__init__({
            "begin_forward": In(1), "begin_scores": In(1),
            "tiles": In(width), "fan_in": In(width), "neurons": In(width), "groups": In(8),
            "skip": In(1), "skip_layer": In(1), "skipped_layer": Out(1),
            "skipped": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        per_skip, forward = Signal(32), Signal(32)
        step = Signal(2)
        m.d.sync += self.skipped.eq(Mux(self.skip, per_skip, 0))
        with m.If(self.begin_forward):
            m.d.sync += per_skip.eq(self.fan_in + 1)
        with m.If(self.begin_scores):
            m.d.sync += per_skip.eq(self.neurons * self.class_tiles)
        # A skipped layer's sizes, registered first: the multipliers then start from
        # registers, not from the command's decode (the groups from the batch).
        # (Without ``registered_sizes``, a step less, the sizes read as they are.)
        if self.registered_sizes:
            tiles, inputs = Signal.like(self.tiles), Signal(len(self.fan_in) + 1)
            neurons, groups = Signal.like(self.neurons), Signal.like(self.groups)
            sizes = [tiles.eq(self.tiles), inputs.eq(self.fan_in + 1),
                     neurons.eq(self.neurons), groups.eq(self.groups)]
        else:
            tiles, inputs, neurons, groups = (self.tiles, self.fan_in + 1, self.neurons,
                                              self.groups)
            sizes = []
        first = 0 if self.registered_sizes else -1
        m.d.comb += self.skipped_layer.eq(self.skip_layer & (step == 3 + first))
        with m.If(self.skip_layer):
            m.d.sync += step.eq(Mux(self.skipped_layer, 0, step + 1))
            with m.Switch(step):
                if sizes:
                    with m.Case(0):
                        m.d.sync += sizes
                with m.Case(1 + first):
                    m.d.sync += [forward.eq(tiles * inputs),
                                 per_skip.eq(neurons * self.class_tiles)]
                with m.Case(2 + first):
                    m.d.sync += per_skip.eq(per_skip + forward)
                with m.Default():
                    m.d.sync += self.skipped.eq(per_skip * groups)
        return m
