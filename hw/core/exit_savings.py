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
    no multiplier sits on the loop counters' path; the layer's is multiplied over five cycles,
    from its sizes registered in the first, each product a register (over three from the sizes
    as they are, without ``registered_sizes``).

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
        m.d.sync += self.skipped.eq(Mux(self.skip, per_skip, 0))
        with m.If(self.begin_forward):
            m.d.sync += per_skip.eq(self.fan_in + 1)
        with m.If(self.begin_scores):
            m.d.sync += per_skip.eq(self.neurons * self.class_tiles)
        if self.registered_sizes:
            self._registered_layer(m, per_skip, forward)
            return m
        # Without ``registered_sizes``: the sizes read as they are, three steps.
        tiles, inputs, neurons, groups = (self.tiles, self.fan_in + 1, self.neurons,
                                          self.groups)
        step = Signal(2)
        m.d.comb += self.skipped_layer.eq(self.skip_layer & (step == 2))
        with m.If(self.skip_layer):
            m.d.sync += step.eq(Mux(self.skipped_layer, 0, step + 1))
            with m.Switch(step):
                with m.Case(0):
                    m.d.sync += [forward.eq(tiles * inputs),
                                 per_skip.eq(neurons * self.class_tiles)]
                with m.Case(1):
                    m.d.sync += per_skip.eq(per_skip + forward)
                with m.Default():
                    m.d.sync += self.skipped.eq(per_skip * groups)
        return m

    def _registered_layer(self, m, per_skip, forward):
        """A skipped layer over five steps: its sizes registered (0), the products of registers
        into registers of their own, computed every cycle (1, 3), their sum (2), the layer's
        savings out (4). No multiplier serves two steps (Yosys shared one, with the step's
        decode in front of its inputs) and none has logic before or after it."""
        tiles, inputs = Signal.like(self.tiles), Signal(len(self.fan_in) + 1)
        neurons, groups = Signal.like(self.neurons), Signal.like(self.groups)
        score, layer = Signal(32), Signal(32)
        m.d.sync += [forward.eq(tiles * inputs), score.eq(neurons * self.class_tiles),
                     layer.eq(per_skip * groups)]
        step = Signal(3)
        m.d.comb += self.skipped_layer.eq(self.skip_layer & (step == 4))
        with m.If(self.skip_layer):
            m.d.sync += step.eq(Mux(self.skipped_layer, 0, step + 1))
            with m.Switch(step):
                with m.Case(0):
                    m.d.sync += [tiles.eq(self.tiles), inputs.eq(self.fan_in + 1),
                                 neurons.eq(self.neurons), groups.eq(self.groups)]
                with m.Case(2):
                    m.d.sync += per_skip.eq(score + forward)
                with m.Case(4):
                    m.d.sync += self.skipped.eq(layer)
