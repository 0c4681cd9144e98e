"""The range check of a register write: the register's limits from a small table in a block
RAM, compared a byte at a time as the value arrives, and a layer's geometry checked as one
transaction (contract/limits.py, docs/HOST_INTERFACE.md, "Range checks")."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from contract.limits import GEOMETRY, GEOMETRY_CONV, Limits, register_limits
from contract.registers import BN_WORDS, LAYER, LAYER_BASE, LAYER_STRIDE

from ..params import index_bits
from .conv_check import CONV_CHECK_LATENCY, ConvCheck

__all__ = ["ConfigCheck", "limit_table"]



def _bits(n):
    return max(1, n.bit_length())


def limit_table(lim):
    """The table's words, at ``(byte << 5) | (is_layer << 4) | offset``: byte ``k`` of the
    register's largest value, and (in byte 0's word, bits 8..9) its least value (0, 1 or 2).
    One layer's limits serve every layer."""
    table = register_limits(lim)
    words = [0] * 128
    for k in range(2 * LAYER_STRIDE):
        at = k if k < LAYER_STRIDE else LAYER_BASE + k - LAYER_STRIDE
        lo, hi = table[at] if at < len(table) else (0, 0)
        assert lo <= 2, "a least value the check's flags cannot express"
        for byte in range(4):
            words[(byte << 5) | k] = (hi >> (8 * byte)) & 0xFF | (lo << 8 if byte == 0 else 0)
    return words


class ConfigCheck(wiring.Component):
    """Judges a register write: its bytes arrive one by one (``byte_valid``, least significant
    first, at ``byte_at`` 0..3, for register ``index``); ``start`` then pulses with the whole
    ``value`` and, a cycle later (two with ``params.pipelined``: each byte is registered before
    its comparison), ``done`` pulses with ``bad`` and ``name`` (the register the refusal names);
    hold ``index`` and ``value`` until then. A write judged good is taken to be written.

    A layer's geometry (:data:`contract.limits.GEOMETRY`) is written in that order: ``neurons``
    opens the layer's transaction and marks the layer unusable; ``fan_in``, ``weight_base``,
    ``tiles`` must follow in turn (``weight_base + ceil(neurons / P) * (fan_in + 1) <=
    weight_words``, ``tiles == ceil(neurons / P)``); ``in_tiles == ceil(fan_in / Q)`` closes it
    and makes the layer usable again. On a core built with convolutions ``conv`` closes it
    (:data:`contract.limits.GEOMETRY_CONV`), judged by conv_check.py against the layer's
    ``neurons`` and ``fan_in`` (its verdict takes :data:`CONV_CHECK_LATENCY` cycles more).

    Members
    -------
    index : In(8), value : In(32), byte : In(8), byte_at : In(2), byte_valid : In(1)
    start : In(1), done : Out(1), bad : Out(1), name : Out(8)
    frame_end : In(1)
        Pulses as a ``WRITE_CONFIG`` frame ends; ``open`` (in that cycle) says a transaction is
        unfinished (it is abandoned), ``open_name`` its ``in_tiles``.
    layers : In(4), usable : Out(1)
        Every layer below ``layers`` has a checked geometry.
    """

    def __init__(self, params):
        self.limits = Limits.of(params)
        self.pipelined = params.pipelined
        super().__init__({
            "index": In(8), "value": In(32),
            "byte": In(8), "byte_at": In(2), "byte_valid": In(1),
            "start": In(1), "done": Out(1), "bad": Out(1), "name": Out(8),
            "frame_end": In(1), "open": Out(1), "open_name": Out(8),
            "layers": In(4), "usable": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        lim = self.limits
        pbits, qbits = (lim.rows - 1).bit_length(), (lim.cols - 1).bit_length()
        index, value = self.index, self.value
        is_layer = index[4:] != 0
        offset = index[:4]
        layer = Signal(index_bits(lim.max_layers))
        m.d.comb += layer.eq(index[4:] - 1)

        # ---- the limits, a byte at a time --------------------------------------------------
        m.submodules.table = table = Memory(shape=10, depth=128, init=limit_table(lim))
        row = table.read_port()
        m.d.comb += row.addr.eq(Cat(offset, is_layer, self.byte_at))
        above = Signal()             # the bytes so far exceed the largest value's
        upper = Signal()             # a byte above byte 0 is not zero
        low = Signal(2)              # byte 0, if below 2 (else 3)
        least = Signal(2)
        byte, byte_at, byte_valid = self.byte, self.byte_at, self.byte_valid
        if self.pipelined:
            # Each byte registered as it arrives, and compared a cycle later (with the table's
            # row, which the next byte's address changes a cycle later still): the byte comes
            # from the frame buffer's block RAM late in its cycle (13.4 ns into ``above`` on
            # an 8 x 8 ULX3S build). The verdict waits a cycle for the last byte.
            byte, byte_at, byte_valid = Signal(8), Signal(2), Signal()
            m.d.sync += [byte.eq(self.byte), byte_at.eq(self.byte_at),
                         byte_valid.eq(self.byte_valid)]
        top = row.data[:8]
        with m.If(byte_valid):
            m.d.sync += above.eq((byte > top) | ((byte == top) & above & (byte_at != 0)))
            with m.If(byte_at == 0):
                m.d.sync += [low.eq(Mux(byte < 2, byte, 3)), least.eq(row.data[8:]), upper.eq(0)]
            with m.Elif(byte != 0):
                m.d.sync += upper.eq(1)
        out_of_range = above | (~upper & (low < least))

        # ---- the open geometry transaction --------------------------------------------------
        names = GEOMETRY_CONV if lim.conv else GEOMETRY
        closing = len(names) - 1
        step = Signal(range(len(names) + 1))         # its next register; 0: none open
        tag = Signal.like(layer)                     # its layer
        want_tiles = Signal(_bits(lim.max_tiles))    # ceil(neurons / P)
        fan_in = Signal(_bits(lim.max_inputs))
        # The layer's words, registered (on an iCE40 with DSPs, in a multiplier): set as the
        # transaction reaches its weight_base. Pipelined, the multiplier's operands and
        # product are registers too (a DSP block is routed to and from; the dispatcher takes
        # at least eight cycles from one register's check to the next).
        tile_words = 1 + (BN_WORDS if lim.batch_norm else 0)     # after the weight words
        extent = Signal(_bits(lim.max_tiles * (lim.max_inputs + tile_words)))
        fan_in_words = Signal(_bits(lim.max_inputs + tile_words))
        if self.pipelined:
            # In logic, as a tree of shifted partial products, not in a DSP block: the MAC
            # array takes the DSP rows, and the multiplier left for this product was placed
            # across the die from its registers (20.9 ns of an 8 x 8 ULX3S placement).
            terms = [Mux(want_tiles[i], fan_in_words << i, 0) for i in range(len(want_tiles))]
            while len(terms) > 1:
                terms = [a + b for a, b in zip(terms[::2], terms[1::2])] + terms[len(terms) & ~1:]
            product = Signal.like(extent)
            m.d.sync += [product.eq(terms[0]), extent.eq(product)]
        else:
            m.d.comb += fan_in_words.eq(fan_in + tile_words)
            m.d.sync += extent.eq(want_tiles * fan_in_words)
        unusable = Signal(lim.max_layers)
        geometry = Signal()
        at_step = Signal(range(len(names)))
        for k, off in enumerate(LAYER[name] for name in names):
            with m.If(is_layer & (offset == off)):
                m.d.comb += [geometry.eq(1), at_step.eq(k)]
        in_turn = (step == at_step) & (tag == layer)
        wrong = Signal()
        with m.Switch(at_step):
            with m.Case(1, 4):
                m.d.comb += wrong.eq(~in_turn | ((at_step == 4) & (
                    value[:_bits(lim.max_in_tiles)] != (fan_in + lim.cols - 1) >> qbits)))
            with m.Case(2):
                # (a larger base is out of range: its low bits suffice)
                base = value[:_bits(lim.weight_words)]
                m.d.comb += wrong.eq(~in_turn | (base + extent > lim.weight_words))
            with m.Case(3):
                m.d.comb += wrong.eq(~in_turn | (value[:len(want_tiles)] != want_tiles))
        if lim.conv:
            filters = Signal(_bits(lim.max_neurons))
            m.submodules.conv_check = conv_check = ConvCheck(
                lim.max_inputs, lim.max_neurons, len(filters), len(fan_in))
            m.d.comb += [conv_check.value.eq(value), conv_check.filters.eq(filters),
                         conv_check.fan_in.eq(fan_in)]
            with m.If(at_step == len(GEOMETRY)):
                m.d.comb += wrong.eq(~in_turn | conv_check.bad)
        m.d.comb += [self.open.eq(step != 0),
                     self.open_name.eq(LAYER_BASE + LAYER_STRIDE * tag + LAYER[names[-1]])]
        with m.If(self.frame_end):
            m.d.sync += step.eq(0)
        m.d.comb += self.usable.eq(
            (unusable & ((Const(1, lim.max_layers + 1) << self.layers) - 1)) == 0)

        verdict = Signal()
        m.d.comb += self.name.eq(index)

        def judge():
            # Registered on their way to the verdict (for timing).
            m.d.sync += verdict.eq(out_of_range | (geometry & wrong))
            m.next = "VERDICT"
            if lim.conv:
                with m.If(geometry & (at_step == len(GEOMETRY))):
                    m.next = "CONV_0"

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    if self.pipelined:
                        m.next = "LAST_BYTE"
                    else:
                        judge()
            if self.pipelined:
                with m.State("LAST_BYTE"):      # the last byte's comparison, registered
                    judge()
            if lim.conv:
                # The conv check's stages see the value (held through the judgement).
                for k in range(CONV_CHECK_LATENCY):
                    with m.State(f"CONV_{k}"):
                        if k < CONV_CHECK_LATENCY - 1:
                            m.next = f"CONV_{k + 1}"
                        else:
                            m.d.sync += verdict.eq(out_of_range | (geometry & wrong))
                            m.next = "VERDICT"
            with m.State("VERDICT"):
                m.d.comb += [self.done.eq(1), self.bad.eq(verdict)]
                m.next = "IDLE"
                with m.If(verdict):
                    # The frame ends here: its transaction is abandoned (the layer stays
                    # unusable), so that the next frame does not find it open.
                    m.d.sync += step.eq(0)
                with m.If(~verdict & geometry):
                    m.d.sync += step.eq(Mux(at_step == closing, 0, at_step + 1))
                    with m.Switch(at_step):
                        with m.Case(0):
                            m.d.sync += [tag.eq(layer), unusable.bit_select(layer, 1).eq(1),
                                         want_tiles.eq((value[:_bits(lim.max_neurons)]
                                                        + lim.rows - 1) >> pbits)]
                            if lim.conv:
                                m.d.sync += filters.eq(value)
                        with m.Case(1):
                            m.d.sync += fan_in.eq(value)
                            if self.pipelined:
                                m.d.sync += fan_in_words.eq(value[:len(fan_in)] + tile_words)
                        with m.Case(closing):
                            m.d.sync += unusable.bit_select(layer, 1).eq(0)
        return m
