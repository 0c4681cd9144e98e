"""The ``NORM`` phase: a layer's outputs batch-normalised in place, a neuron at a time."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from contract.batch_norm import BACK_BITS, RECIP_BITS, XHAT_BITS

from .batch_normalise import BatchNormalise
from .batch_statistics import BATCH_BITS, BatchStatistics

__all__ = ["NormalisePhase", "EXTRA_READ", "EXTRA_WRITE"]

#: Words a tile's ``NORM`` reads after its bias (the scale, the running mean and variance) and
#: writes after its scale (the moved running mean and variance, training).
EXTRA_READ, EXTRA_WRITE = 5, 4


class NormalisePhase(wiring.Component):
    """docs/ARITHMETIC.md, "Batch normalisation", step 1b, over a layer's outputs in the
    activation buffer (a word per ``(group, neuron)``, a lane per sample).

    Per tile of ``rows`` neurons: the tile's words after its bias from the weight stream (the
    scale ``g``, the running mean ``M`` and variance ``V`` as two words each, low first). Per
    neuron of the tile: a pass over its ``groups`` words into :class:`BatchStatistics`, its
    ``finish``; then a second pass through :class:`BatchNormalise`, whose ``z`` overwrites the
    outputs in place and whose ``xhat`` and ``active`` (``bn_active``) go to ``side`` for the
    backward step, with the neuron's ``h`` to ``h_write``. Per tile in training: the moved
    running statistics, four words, to ``stats_words``. Neurons past ``neurons`` are passed over
    (their statistics words are 0, their ``bn_active`` bits cleared). One neuron at a time: about ``2 * groups + 12`` cycles each.

    Members
    -------
    start : In(1)
        Begin (idle only); ``busy`` until the last tile is done.
    tiles, neurons : In(count_bits); groups : In(8); batch : In(9); training : In(1)
    inv_b : In(RECIP_BITS + 1); act_frac, weight_frac, stat_frac, momentum, eps_log2 : In(5)
        The layer's and command's sizes and the normalisation's settings, held while busy.
    words : In(stream.Signature(word_bits))
        The weight stream's reads: :data:`EXTRA_READ` words a tile.
    stats_words : Out(stream.Signature(word_bits))
        The moved running statistics, :data:`EXTRA_WRITE` words a tile (training only).
    read : Out(StructLayout(en, group, col)); read_data : In(ArrayLayout(act, cols))
        The activation buffer's column read (data the cycle after).
    write : Out(StructLayout(en, group, col, z))
        The normalised outputs of a group, written in place (every lane).
    side : Out(StructLayout(en, group, tile, row, xhat, active))
        ``xhat`` and ``bn_active`` of a group's samples at row ``row`` of tile ``tile``.
    h_write : Out(StructLayout(en, tile, row, value))
        The backward scale of neuron ``tile * rows + row``.
    busy : Out(1)
    """

    def __init__(self, rows, cols, act_bits, weight_bits, count_bits, group_bits, col_bits,
                 tile_bits):
        self.rows, self.cols, self.act_bits, self.weight_bits = rows, cols, act_bits, weight_bits
        self.count_bits = count_bits
        word_bits = rows * weight_bits
        self.stats = BatchStatistics(cols, act_bits, weight_bits)
        row_bits = max(1, (rows - 1).bit_length())
        act_lanes = data.ArrayLayout(unsigned(act_bits), cols)
        super().__init__({
            "start": In(1), "tiles": In(count_bits), "neurons": In(count_bits),
            "groups": In(8), "batch": In(BATCH_BITS), "training": In(1),
            "inv_b": In(unsigned(RECIP_BITS + 1)), "act_frac": In(5), "weight_frac": In(5),
            "stat_frac": In(5), "momentum": In(5), "eps_log2": In(5),
            "words": In(stream.Signature(unsigned(word_bits))),
            "stats_words": Out(stream.Signature(unsigned(word_bits))),
            "read": Out(data.StructLayout({"en": 1, "group": group_bits, "col": col_bits})),
            "read_data": In(act_lanes),
            "write": Out(data.StructLayout({"en": 1, "group": group_bits, "col": col_bits,
                                            "z": act_lanes})),
            "side": Out(data.StructLayout({
                "en": 1, "group": group_bits, "tile": tile_bits, "row": row_bits,
                "xhat": data.ArrayLayout(signed(XHAT_BITS), cols), "active": cols})),
            "h_write": Out(data.StructLayout({"en": 1, "tile": tile_bits, "row": row_bits,
                                              "value": signed(BACK_BITS)})),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        P, Q, wb, cw = self.rows, self.cols, self.weight_bits, self.count_bits
        qbits = (Q - 1).bit_length()
        pbits = (P - 1).bit_length()
        m.submodules.statistics = stats = self.stats
        norm = BatchNormalise(Q, self.act_bits, wb, stats.o.s1.shape(), stats.o.r.shape(),
                              stats.o.j.shape(), unsigned(8))
        m.submodules.normalise = norm

        # ---- settings ----------------------------------------------------------------------
        frac_diff = Signal(5)
        m.d.comb += frac_diff.eq(self.weight_frac - self.act_frac)
        m.d.comb += [stats.training.eq(self.training), stats.batch.eq(self.batch),
                     stats.inv_b.eq(self.inv_b), stats.eps_log2.eq(self.eps_log2),
                     stats.stat_frac.eq(self.stat_frac), stats.momentum.eq(self.momentum),
                     stats.frac_diff.eq(frac_diff),
                     norm.training.eq(self.training), norm.batch.eq(self.batch),
                     norm.act_frac.eq(self.act_frac), norm.weight_frac.eq(self.weight_frac),
                     norm.stat_frac.eq(self.stat_frac)]

        # ---- the tile's words and the neuron's place --------------------------------------
        tile, row, group = Signal(cw), Signal(max(1, pbits)), Signal(8)
        neuron = Signal(cw + pbits)
        m.d.comb += neuron.eq(Cat(row[:pbits], tile) if pbits else tile)
        words = Signal(data.ArrayLayout(data.ArrayLayout(signed(wb), P), EXTRA_READ))
        word_count = Signal(range(EXTRA_READ + 1))
        stat = data.ArrayLayout(unsigned(2 * wb), P)
        new_mean, new_var = Signal(stat), Signal(stat)

        def lane(word, r):
            return words[word][r].as_unsigned()

        gamma = words[0][row]
        mean = Cat(lane(1, 0), lane(2, 0))
        var = Cat(lane(3, 0), lane(4, 0))
        if P > 1:
            mean = Signal(2 * wb)
            var = Signal(2 * wb)
            with m.Switch(row):
                for r in range(P):
                    with m.Case(r):
                        m.d.comb += [mean.eq(Cat(lane(1, r), lane(2, r))),
                                     var.eq(Cat(lane(3, r), lane(4, r)))]

        # ---- the buffer reads of a pass, and their data a cycle later -------------------------
        last_group = group == self.groups - 1
        arriving = Signal(data.StructLayout({"valid": 1, "group": 8}))
        reading = Signal()
        m.d.comb += [self.read.en.eq(reading), self.read.group.eq(group),
                     self.read.col.eq(neuron)]
        m.d.sync += [arriving.valid.eq(reading), arriving.group.eq(group)]
        mask = Signal(Q)
        for q in range(Q):
            m.d.comb += mask[q].eq(Cat(Const(q, qbits), arriving.group) < self.batch
                                   if qbits else arriving.group < self.batch)
        first_pass = Signal()
        m.d.comb += [
            stats.add.valid.eq(arriving.valid & first_pass),
            stats.add.clear.eq(arriving.group == 0), stats.add.mask.eq(mask),
            stats.add.y.eq(self.read_data),
            norm.i.valid.eq(arriving.valid & ~first_pass), norm.i.tag.eq(arriving.group),
            norm.i.y.eq(self.read_data),
        ]
        # The neuron's constants for the second pass.
        constants = Signal(data.StructLayout({"s1": stats.o.s1.shape(), "r": stats.o.r.shape(),
                                              "j": stats.o.j.shape()}))
        m.d.comb += [norm.s1.eq(constants.s1), norm.r.eq(constants.r), norm.j.eq(constants.j),
                     norm.mean.eq(mean), norm.gamma.eq(gamma)]
        # Words in the second pass not yet written back.
        in_flight = Signal(range(256 + 4))
        m.d.sync += in_flight.eq(in_flight + norm.i.valid - norm.o.valid)

        # ---- results: z in place, xhat and bn_active aside, h -------------------------------
        o = norm.o
        padding = Signal()                   # a row past the last neuron: bn_active 0, xhat 0
        m.d.comb += [
            self.write.en.eq(o.valid), self.write.group.eq(o.tag), self.write.col.eq(neuron),
            self.write.z.eq(o.z),
            self.side.en.eq(o.valid | padding), self.side.group.eq(Mux(padding, group, o.tag)),
            self.side.tile.eq(tile), self.side.row.eq(row),
            self.side.xhat.eq(Mux(padding, 0, o.xhat.as_value())),
            self.side.active.eq(Mux(padding, 0, o.active)),
            self.h_write.tile.eq(tile), self.h_write.row.eq(row),
            self.h_write.value.eq(stats.o.h),
        ]

        # ---- the sequence ---------------------------------------------------------------------
        stats_word = Signal(range(EXTRA_WRITE))
        m.d.comb += self.stats_words.payload.eq(Mux(
            stats_word[1], Cat(*(Mux(stats_word[0], new_var[r][wb:], new_var[r][:wb])
                                 for r in range(P))),
            Cat(*(Mux(stats_word[0], new_mean[r][wb:], new_mean[r][:wb]) for r in range(P)))))

        def next_row():
            with m.If(row == P - 1):
                m.next = "STATS_OUT"
            with m.Else():
                m.d.sync += row.eq(row + 1)
                m.next = "ROW"

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [tile.eq(0), word_count.eq(0)]
                    m.next = "WORDS"
            with m.State("WORDS"):
                m.d.comb += [self.busy.eq(1), self.words.ready.eq(1)]
                with m.If(self.words.valid):
                    m.d.sync += [words[word_count].eq(self.words.payload),
                                 word_count.eq(word_count + 1)]
                    with m.If(word_count == EXTRA_READ - 1):
                        m.d.sync += [row.eq(0), new_mean.eq(0), new_var.eq(0)]
                        m.next = "ROW"
            with m.State("ROW"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += group.eq(0)
                with m.If(neuron < self.neurons):
                    m.d.sync += first_pass.eq(1)
                    m.next = "SUMS"
                with m.Else():
                    m.next = "PAD"
            with m.State("PAD"):
                # Its bn_active bits cleared, so that the back projection leaves it no error
                # (its scale, like its weights, stays 0).
                m.d.comb += [self.busy.eq(1), padding.eq(1)]
                m.d.sync += group.eq(group + 1)
                with m.If(last_group):
                    next_row()
            with m.State("SUMS"):
                m.d.comb += [self.busy.eq(1), reading.eq(1)]
                m.d.sync += group.eq(group + 1)
                with m.If(last_group):
                    m.next = "SETTLE"
            with m.State("SETTLE"):                  # the last word is summed this cycle
                m.d.comb += self.busy.eq(1)
                m.next = "FINISH"
            with m.State("FINISH"):
                m.d.comb += [self.busy.eq(1), stats.finish.valid.eq(1)]
                m.next = "CONSTANTS"
            with m.State("CONSTANTS"):
                m.d.comb += [self.busy.eq(1), self.h_write.en.eq(stats.o.valid)]
                with m.If(stats.o.valid):
                    m.d.sync += [constants.s1.eq(stats.o.s1), constants.r.eq(stats.o.r),
                                 constants.j.eq(stats.o.j), group.eq(0), first_pass.eq(0),
                                 new_mean[row].eq(stats.o.mean), new_var[row].eq(stats.o.var)]
                    m.next = "OUTPUTS"
            with m.State("OUTPUTS"):
                m.d.comb += [self.busy.eq(1), reading.eq(1)]
                m.d.sync += group.eq(group + 1)
                with m.If(last_group):
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.comb += self.busy.eq(1)
                with m.If(~arriving.valid & (in_flight == 0)):
                    next_row()
            with m.State("STATS_OUT"):
                m.d.comb += [self.busy.eq(1), self.stats_words.valid.eq(self.training)]
                with m.If(~self.training | self.stats_words.ready):
                    m.d.sync += stats_word.eq(stats_word + 1)
                    with m.If(~self.training | (stats_word == EXTRA_WRITE - 1)):
                        m.d.sync += [stats_word.eq(0), tile.eq(tile + 1), word_count.eq(0)]
                        with m.If(tile == self.tiles - 1):
                            m.next = "IDLE"
                        with m.Else():
                            m.next = "WORDS"
        m.d.comb += [stats.finish.gamma.eq(gamma), stats.finish.mean.eq(mean),
                     stats.finish.var.eq(var)]
        return m
