"""A layer's initial weights, drawn word by word from its init stream."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import as_signed
from ..lfsr_prng import LfsrPrng

__all__ = ["WeightInit"]


class WeightInit(wiring.Component):
    """For each output tile of ``lanes`` rows: ``fan_in`` weight words, lane ``r`` of column
    ``j`` the weight ``(u >> (16 - I)) - 2**(I - 1)`` of a 16-bit chunk ``u`` of the init
    stream (``I = init_bits``; zero in rows past ``neurons``), then a zero bias word
    (docs/ARITHMETIC.md, "What is drawn"). Only weight words draw from the stream.

    With ``batch_norm`` and ``normalise`` high, each tile's bias word is followed by its batch
    normalisation's words (docs/HOST_INTERFACE.md, "Weight layout"): the scale ``0.5``
    (``2**(weight_frac - 1)``), the running mean 0 over two words, and the running variance
    ``2**var_exponent`` (``2*act_frac + bn_stat_frac``) over two words, low word first; rows
    past ``neurons`` are 0.

    With ``registered_bits``, the shift ``16 - I`` and the offset ``2**(I - 1)`` are registers
    set from the previous cycle's ``init_bits`` (as for ``I = 1`` after reset): a layer's
    ``init_bits`` stands still cycles before its words, and the words' logic starts at the
    shifter, not at the layer's register.

    Members
    -------
    start : In(1)
        Restart: tile and column zero, the stream reloaded from ``seed``.
    seed : In(width)
        The layer's init seed.
    tiles, fan_in, neurons : In(count_bits)
        The layer's sizes (held from ``start`` to ``done``).
    init_bits : In(5)
        ``I``, 1 to 16.
    enable : In(1)
        Words are offered while high.
    o : Out(stream.Signature(ArrayLayout(signed(weight_bits), lanes)))
        The words, in weight-memory order; the payload is combinational.
    done : Out(1)
        Every tile's words taken.
    """

    def __init__(self, lanes, weight_bits, width, count_bits, batch_norm=False,
                 registered_bits=False):
        if lanes & (lanes - 1):
            raise ValueError(f"lanes must be a power of two (a row index is the tile's above "
                             f"the lane's), not {lanes}")
        self.lanes, self.weight_bits, self.width = lanes, weight_bits, width
        self.count_bits, self.batch_norm = count_bits, batch_norm
        self.registered_bits = registered_bits
        self.word_layout = data.ArrayLayout(signed(weight_bits), lanes)
        super().__init__({
            "start": In(1), "seed": In(width),
            "tiles": In(count_bits), "fan_in": In(count_bits), "neurons": In(count_bits),
            "init_bits": In(unsigned(5)), "enable": In(1),
            "o": Out(stream.Signature(self.word_layout)),
            "done": Out(1),
            **({"normalise": In(1), "weight_frac": In(5), "var_exponent": In(6)}
               if batch_norm else {}),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.prng = prng = LfsrPrng(self.width, 16, self.lanes)
        tile, column = Signal(self.count_bits), Signal(self.count_bits)
        push = self.o.valid & self.o.ready
        row_bits = (self.lanes - 1).bit_length()
        shift, offset = Signal(5, init=15), Signal(17, init=1)      # 16 - I, 2**(I - 1)
        m.d["sync" if self.registered_bits else "comb"] += [
            shift.eq(16 - self.init_bits), offset.eq(Const(1, 17) << (self.init_bits - 1)[:4])]
        m.d.comb += [
            prng.seed.eq(self.seed), prng.load.eq(self.start),
            prng.o.ready.eq(push & (column < self.fan_in)),
            self.o.valid.eq(self.enable & (tile < self.tiles)),
            self.done.eq(tile >= self.tiles),
        ]
        last_column = self.fan_in
        if self.batch_norm:
            # The words after the bias: its index past the bias (1: the scale, 4 and 5: the
            # variance's low and high words).
            after_bias = Signal(self.count_bits)
            m.d.comb += after_bias.eq(column - self.fan_in)
            last_column = Mux(self.normalise, self.fan_in + 5, self.fan_in)
            wb = self.weight_bits
            half_shift = Signal(5)                    # weight_frac - 1 (weight_frac >= 1)
            m.d.comb += half_shift.eq(self.weight_frac - 1)
            scale = (Const(1, wb) << half_shift)[:wb]
            variance = (Const(1, 2 * wb) << self.var_exponent)[:2 * wb]
        for r in range(self.lanes):
            u = prng.o.payload[r * 16:(r + 1) * 16]
            row = Cat(Const(r, row_bits), tile) if row_bits else tile
            value = Mux(column < self.fan_in, as_signed(u >> shift) - offset, 0)
            if self.batch_norm:
                word = Signal(self.weight_bits, name=f"extra_{r}")
                m.d.comb += word.eq(Mux(after_bias == 1, scale,
                                        Mux(after_bias == 4, variance[:wb],
                                            Mux(after_bias == 5, variance[wb:], 0))))
                value = Mux(column <= self.fan_in,
                            Mux(column < self.fan_in, as_signed(u >> shift) - offset, 0),
                            word.as_signed())
            m.d.comb += self.o.payload[r].eq(Mux(row < self.neurons, value, 0))
        with m.If(push):
            m.d.sync += column.eq(column + 1)
            with m.If(column == last_column):
                m.d.sync += [column.eq(0), tile.eq(tile + 1)]
        with m.If(self.start):
            m.d.sync += [tile.eq(0), column.eq(0)]
        return m
