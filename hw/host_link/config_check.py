"""The range check of a register write: the register's limits (a small table, one comparison
each way) and a layer's geometry checked as a whole (contract/limits.py, docs/HOST_INTERFACE.md,
"Range checks")."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from contract.limits import GEOMETRY, Limits, layer_extent, register_limits
from contract.registers import LAYER, LAYER_BASE, LAYER_STRIDE

__all__ = ["ConfigCheck"]

_OFFSET = {name: LAYER[name] for name in GEOMETRY}


def _bits(n):
    return max(1, n.bit_length())


class ConfigCheck(wiring.Component):
    """Judges the register write ``(index, value)`` when ``start`` pulses; ``done`` pulses (a
    cycle later, or after the layer-extent product) with ``bad`` and ``name``, the index of the
    register the refusal names. An accepted write (``~bad``) is taken to be written.

    A layer's geometry (:data:`contract.limits.GEOMETRY`) is one transaction: each accepted
    geometry write of layer ``L`` is kept in a shadow register and marks ``L`` unusable until
    its ``in_tiles`` write passes ``tiles == ceil(neurons / P)`` (checked as ``tiles`` is
    written), ``in_tiles == ceil(fan_in / Q)`` and ``weight_base + tiles * (fan_in + 1) <=
    weight_words`` (a shift-and-add product, a cycle per bit of ``tiles``).

    Members
    -------
    index : In(8), value : In(32)
        The write being judged, held from ``start`` until ``done``.
    start : In(1), done : Out(1), bad : Out(1), name : Out(8)
    frame_end : In(1)
        Pulses as a ``WRITE_CONFIG`` frame ends; ``open`` (combinational, at that cycle) says a
        geometry transaction is unfinished: ``open_name`` is its ``in_tiles``. It is abandoned.
    layers : In(4), usable : Out(1)
        Whether every layer below ``layers`` has a complete, checked geometry.
    """

    def __init__(self, params):
        self.limits = Limits.of(params)
        super().__init__({
            "index": In(8), "value": In(32), "start": In(1),
            "done": Out(1), "bad": Out(1), "name": Out(8),
            "frame_end": In(1), "open": Out(1), "open_name": Out(8),
            "layers": In(4), "usable": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        lim = self.limits
        table = register_limits(lim)
        pbits, qbits = (lim.rows - 1).bit_length(), (lim.cols - 1).bit_length()
        index, value = self.index, self.value
        is_layer = index[4:] != 0
        offset = index[:4]
        layer = (index[4:] - 1)[:4]

        # ---- the table: the global registers' limits and one layer's (all layers alike) ------
        lo, hi = Signal(2), Signal(32)
        with m.Switch(Cat(offset, is_layer)):
            for k in range(2 * LAYER_STRIDE):
                at = k if k < LAYER_STRIDE else LAYER_BASE + k - LAYER_STRIDE
                low, high = table[at] if at < len(table) else (0, 0)
                with m.Case(k):
                    m.d.comb += [lo.eq(low), hi.eq(high)]
        out_of_range = (value < lo) | (value > hi)

        # ---- the open geometry transaction --------------------------------------------------
        max_extent = layer_extent(lim.max_tiles, lim.max_inputs)
        acc_bits = _bits(lim.weight_words + max_extent)
        tag = Signal(4)                                   # its layer
        have = Signal(len(GEOMETRY) - 1)                  # neurons, fan_in, weight_base, tiles
        neurons = Signal(_bits(lim.max_neurons))
        base = Signal(acc_bits)                           # then the sum base + tiles * (J + 1)
        addend = Signal(acc_bits)                         # fan_in, then (J + 1) << k
        tiles = Signal(_bits(lim.max_tiles))
        unusable = Signal(lim.max_layers)                 # a layer whose geometry is unchecked

        is_geo = {name: is_layer & (offset == _OFFSET[name]) for name in GEOMETRY}
        same = (tag == layer) & (have != 0)
        tiles_wrong = is_geo["tiles"] & ~(
            same & have[0] & (value == ((neurons + lim.rows - 1) >> pbits)))
        in_tiles_wrong = is_geo["in_tiles"] & ~(
            same & (have == (1 << len(have)) - 1)
            & (value == ((addend[:_bits(lim.max_inputs)] + lim.cols - 1) >> qbits)))
        m.d.comb += [self.open.eq(have != 0),
                     self.open_name.eq(LAYER_BASE + LAYER_STRIDE * tag + _OFFSET["in_tiles"])]
        with m.If(self.frame_end):
            m.d.sync += have.eq(0)

        layer_mask = Signal(lim.max_layers)
        m.d.comb += [layer_mask.eq((Const(1, lim.max_layers + 1) << self.layers) - 1),
                     self.usable.eq((unusable & layer_mask) == 0)]

        def accept():
            """The write is taken: a geometry register joins (or opens) its layer's transaction."""
            geometry_write = is_layer & ~is_geo["in_tiles"] & (
                is_geo["neurons"] | is_geo["fan_in"] | is_geo["weight_base"] | is_geo["tiles"])
            with m.If(geometry_write):
                m.d.sync += [tag.eq(layer), unusable.bit_select(layer, 1).eq(1)]
                fresh = Mux(same, have, 0)
                for k, name in enumerate(GEOMETRY[:-1]):
                    with m.If(is_geo[name]):
                        m.d.sync += have.eq(fresh | (1 << k))
                with m.If(is_geo["neurons"]):
                    m.d.sync += neurons.eq(value)
                with m.If(is_geo["fan_in"]):
                    m.d.sync += addend.eq(value)
                with m.If(is_geo["weight_base"]):
                    m.d.sync += base.eq(value)
                with m.If(is_geo["tiles"]):
                    m.d.sync += tiles.eq(value)

        m.d.comb += self.name.eq(index)
        verdict = Signal()
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.next = "JUDGE"
            with m.State("JUDGE"):
                # The comparisons are registered on their way to the verdict (for timing).
                m.d.sync += verdict.eq(out_of_range | tiles_wrong | in_tiles_wrong)
                m.next = "VERDICT"
            with m.State("VERDICT"):
                with m.If(verdict):
                    m.d.comb += [self.done.eq(1), self.bad.eq(1)]
                    m.next = "IDLE"
                with m.Elif(is_geo["in_tiles"]):
                    m.d.sync += addend.eq(addend + 1)
                    m.next = "EXTENT"
                with m.Else():
                    m.d.comb += self.done.eq(1)
                    accept()
                    m.next = "IDLE"
            with m.State("EXTENT"):
                # base + tiles * (fan_in + 1), a bit of tiles a cycle.
                with m.If(tiles == 0):
                    m.d.sync += have.eq(0)        # the shadows are spent
                    m.d.comb += self.done.eq(1)
                    with m.If(base > lim.weight_words):
                        m.d.comb += [self.bad.eq(1), self.name.eq(
                            LAYER_BASE + LAYER_STRIDE * tag + _OFFSET["weight_base"])]
                    with m.Else():
                        m.d.sync += unusable.bit_select(layer, 1).eq(0)
                    m.next = "IDLE"
                with m.Else():
                    with m.If(tiles[0]):
                        m.d.sync += base.eq(base + addend)
                    m.d.sync += [addend.eq(addend << 1), tiles.eq(tiles >> 1)]
        return m
