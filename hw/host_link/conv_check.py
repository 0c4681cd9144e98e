"""The range check of a layer's ``conv`` register against its geometry: the rules of
:func:`contract.limits.conv_problem`, in three registered stages."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..core.conv_geometry import conv_layout

__all__ = ["ConvCheck", "CONV_CHECK_LATENCY"]

#: Cycles from a value to its verdict.
CONV_CHECK_LATENCY = 3


class ConvCheck(wiring.Component):
    """Judges ``value`` as the ``conv`` register of a layer of ``filters`` rows and
    ``fan_in`` columns (contract.limits.conv_problem): ``bad`` holds the verdict on the inputs
    of :data:`CONV_CHECK_LATENCY` cycles before. 0 is always good.

    Stage 1: the field rules, ``K*K``, ``H*W`` and the output's sides; stage 2: ``K*K*C``,
    ``C*H*W`` and the output positions; stage 3: the output's size and the verdict (the
    multipliers are small: on an ECP5 a DSP each, the checks run once per configuration).
    ``filters`` and ``fan_in`` travel with the value through the stages.

    Parameters
    ----------
    max_inputs, max_neurons : int
        The buffers' limits.
    filter_bits, fan_in_bits : int

    Members
    -------
    value : In(32); filters : In(filter_bits); fan_in : In(fan_in_bits)
    bad : Out(1)
    """

    def __init__(self, max_inputs, max_neurons, filter_bits, fan_in_bits):
        self.max_inputs, self.max_neurons = max_inputs, max_neurons
        super().__init__({"value": In(32), "filters": In(filter_bits),
                          "fan_in": In(fan_in_bits), "bad": Out(1)})

    def elaborate(self, platform):
        m = Module()
        f = data.View(conv_layout, self.value)
        k, h, w, c = f.kernel, f.in_h, f.in_w, f.channels
        # Stage 1.
        conv, fields_bad, pool = Signal(), Signal(), Signal()
        kk, hw = Signal(8), Signal(16)
        out_h, out_w = Signal(8), Signal(8)
        channels = Signal.like(c)
        filters = [Signal.like(self.filters, name=f"filters_{k}") for k in (1, 2)]
        fan_in = [Signal.like(self.fan_in, name=f"fan_in_{k}") for k in (1, 2)]
        m.d.sync += [filters[0].eq(self.filters), filters[1].eq(filters[0]),
                     fan_in[0].eq(self.fan_in), fan_in[1].eq(fan_in[0])]
        same_bad = ~f.valid & ~k[0]                       # "same" needs an odd kernel
        valid_bad = f.valid & ((k > h) | (k > w))
        shrink = Mux(f.valid, k - 1, 0)
        sides = [Signal(8, name="side_h"), Signal(8, name="side_w")]
        m.d.comb += [sides[0].eq(h - shrink), sides[1].eq(w - shrink)]
        odd_pool = f.pool & (sides[0][0] | sides[1][0])
        m.d.sync += [
            conv.eq(self.value != 0),
            fields_bad.eq((h == 0) | (w == 0) | (k == 0) | (c == 0) | same_bad | valid_bad
                          | odd_pool),
            kk.eq(k * k), hw.eq(h * w), channels.eq(c), pool.eq(f.pool),
            out_h.eq(sides[0]), out_w.eq(sides[1]),
        ]
        # Stage 2.
        conv_2, fields_bad_2 = Signal(), Signal()
        kkc, chw, positions = Signal(18), Signal(26), Signal(16)
        m.d.sync += [
            conv_2.eq(conv), fields_bad_2.eq(fields_bad),
            kkc.eq(kk * channels), chw.eq(hw * channels),
            positions.eq(Mux(pool, (out_h >> 1) * (out_w >> 1), out_h * out_w)),
        ]
        # Stage 3.
        size = filters[1] * positions
        m.d.sync += self.bad.eq(conv_2 & (fields_bad_2 | (kkc != fan_in[1])
                                          | (chw > self.max_inputs)
                                          | (size > self.max_neurons)))
        return m
