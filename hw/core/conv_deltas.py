"""A convolution's deltas between BACK and GRAD: written by flattened output, read by filter
tile and position, unpooled through the pooling winners."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..params import index_bits
from ..ram_collisions import read_data

__all__ = ["ConvDeltas", "delta_words", "winner_words"]


def _ceil(a, b):
    return -(-a // b)


def delta_words(rows, max_outputs):
    """Words per sample of a delta bank: the largest ``ceil(F/P) * ceil(S/P)`` with
    ``F*S <= max_outputs`` (at most ``max_outputs/P**2 + (max_outputs + 1)/P + 1``)."""
    return max(_ceil(f, rows) * _ceil(max_outputs // f, rows) for f in range(1, max_outputs + 1))


def winner_words(rows, max_outputs):
    """Words per group of a winner bank: the largest ``ceil(F/P) * S`` with
    ``F*S <= max_outputs`` (at most ``max_outputs/P + max_outputs``; ``S`` itself when
    ``F <= P``)."""
    return max(_ceil(f, rows) * (max_outputs // f) for f in range(1, max_outputs + 1))


class ConvDeltas(wiring.Component):
    """The deltas of a convolution's pooled outputs, stored as ``BACK`` drains them and read as
    ``GRAD``'s beats want them (docs/CONV_CORE.md, "To build: the training steps"), and the
    pooling winners that send each delta to one element of its window (docs/ARITHMETIC.md,
    "Convolutional layers", steps 1 and 5; sw_model.golden_conv.unpool).

    Output ``o = f*S + s'`` of the flattened pooled map is filter ``f``, pooled position ``s'``
    (row-major, ``S`` per filter). ``BACK`` writes a column a cycle: sample ``b``, outputs
    ``T*P .. T*P + P-1`` (``P`` consecutive ``o``); ``GRAD`` reads, a cycle, sample ``b``,
    filters ``t*P .. t*P + P-1`` at one ``s'``. Both patterns hit ``P`` distinct banks when the
    deltas are kept in ``P*P`` banks indexed ``(f mod P, s' mod P)``: ``P`` consecutive outputs
    of one filter have distinct ``s' mod P``, and outputs of different filters among them are
    fewer than ``P`` filters apart, so distinct ``f mod P``, for every ``S`` (``S < P`` too); a
    read's filters have distinct ``f mod P``. Word ``(f div P) * ceil(S/P) + s' div P`` of a bank
    holds ``(f, s')``, the sample in the address's low bits.

    The write side needs each lane's ``(f, s')`` without a divider: it keeps, in registers,
    every lane's ``(f, s', (f div P) * ceil(S/P))`` for the current tile and for the next one,
    and steps each lane of the next set by ``P`` outputs when a write takes it (``s' + (P mod
    S)``, less ``S`` and ``f + 1`` if it reaches ``S``, and ``f + (P div S)``; the word base
    grows by ``ceil(S/P)`` when ``f`` crosses a multiple of ``P``, which it does at most once).
    ``start`` sets tile 0's lanes (``(r div S, r mod S)``, from ``S``'s low bits when ``S <
    P``). So a tile may repeat (every sample group writes it) and advance by one, as ``BACK``
    does, but never skip.

    The winners are kept by filter: ``P`` banks (``f mod P``), a word per ``(f div P, s')`` and
    group of ``Q`` samples holding the ``Q`` samples' window elements, written as the forward
    drain pools a row. A read takes the sample's lane of each filter's word and zeroes the
    deltas whose winner is not the asked window element (``window`` 0..3 for ``(0,0), (0,1),
    (1,0), (1,1)``), so the read is the unpooled delta of one conv output position.

    Every memory is written and read in different phases; a read in the cycle a write hits its
    address follows :func:`hw.ram_collisions.read_data` (scrambled with
    ``scramble_collisions``, else the old word).

    Memory: ``P*P`` delta banks of ``delta_words(P, max_outputs) * 2**sample_bits`` words of
    ``delta_bits`` (the words per sample are at most ``max_outputs/P**2 + (max_outputs+1)/P + 1``:
    about ``max_outputs/P**2`` when ``F`` and ``S`` are both at least ``P``, up to ``P`` times
    that when one of them is below ``P``, the banks of the other residues then being unused);
    ``P`` winner banks of ``winner_words(P, max_outputs) * 2**group_bits`` words of ``2*Q`` bits
    (at most ``max_outputs/P + max_outputs`` words per group). One multiplier: the winner
    write's ``(f div P) * S``; the read's word bases ``t * ceil(S/P)`` and ``t * S`` are kept
    in registers, stepped as the read's tile steps.

    Parameters
    ----------
    rows, cols : int
        ``P`` and ``Q``, the MAC array's rows and columns (powers of two).
    delta_bits : int
        A delta's width (signed).
    max_batch : int
        The largest mini-batch: ``sample_bits = index_bits(max_batch)``, ``group_bits =
        index_bits(ceil(max_batch / Q))``.
    max_outputs : int
        The largest ``F*S`` of a layer (also the bound of ``F`` and of ``S``):
        ``tile_bits = index_bits(ceil(max_outputs / P))``.
    width : int
        The width of ``filters`` and ``positions`` (and of a winner's filter and position and a
        read's position).
    scramble_collisions : bool
        Scramble a word read in the cycle its address is written (simulation builds).

    Members
    -------
    filters, positions : In(width); pool : In(1)
        ``F``, ``S`` and whether the layer pools (else each position is its own window's only
        element: no winner test, ``window`` must be 0). Held through a phase (``BACK`` writes
        and ``GRAD`` reads must see the same ``F`` and ``S``; ``pool`` is read with a read).
    start : In(1)
        ``BACK`` begins: the next column written is of output tile 0. A column offered in the
        same cycle is dropped. (``begin``, the obvious name, is a Verilog keyword.)
    write : In(StructLayout(valid 1, sample sample_bits, tile tile_bits, deltas))
        A column of ``BACK``: lane ``r`` of ``deltas`` (``ArrayLayout(signed(delta_bits), P)``)
        is output ``tile*P + r`` of sample ``sample``; lanes past the layer's last output
        (filter ``f >= F``) are not written. After ``start``, ``tile`` starts at 0 and either
        repeats or grows by one from one column to the next. No backpressure.
    winner : In(StructLayout(valid 1, filter width, position width, group group_bits,
                              winners))
        The winning window elements (``ArrayLayout(unsigned(2), Q)``, lane ``q`` for sample
        ``group*Q + q``) of pooled position ``position`` of filter ``filter``, as the forward
        drain's pooled row leaves it (``o.winner``; lanes past the batch may carry anything).
    read : In(StructLayout(en 1, sample sample_bits, tile tile_bits, position width,
                           window 2))
        Read sample ``sample``'s deltas of filters ``tile*P ..`` at pooled position
        ``position`` (below ``S``), unpooled to window element ``window``. In every cycle,
        ``read.en`` high or not, ``tile`` is 0, the previous cycle's ``tile`` or one more (as
        the loop nest's counter steps); a read is right once ``tile`` has been 0 in a cycle
        since ``positions`` last changed (and ``positions`` held since).
    deltas : Out(ArrayLayout(signed(delta_bits), P))
        The cycle after ``read.en``: lane ``r`` is the delta of filter ``f = tile*P + r`` where
        ``f < F`` and either not ``pool`` or the stored winner is ``window``, else 0. Held while
        ``read.en`` is low.
    """

    def __init__(self, rows, cols, delta_bits, max_batch, max_outputs, width,
                 scramble_collisions=False):
        for name, v in (("rows", rows), ("cols", cols)):
            if v < 1 or v & (v - 1):
                raise ValueError(f"{name} must be a power of two, not {v}")
        if max_outputs < 1 or max_outputs >= 1 << width:
            raise ValueError(f"max_outputs {max_outputs} must be 1 .. 2**width - 1")
        if rows >= 1 << width:
            raise ValueError(f"rows {rows} must be below 2**width")
        self.rows, self.cols, self.delta_bits = rows, cols, delta_bits
        self.max_batch, self.max_outputs, self.width = max_batch, max_outputs, width
        self.scramble_collisions = scramble_collisions
        self.row_log, self.col_log = (rows - 1).bit_length(), (cols - 1).bit_length()
        self.sample_bits = index_bits(max_batch)
        self.group_bits = index_bits(_ceil(max_batch, cols))
        self.tile_bits = index_bits(_ceil(max_outputs, rows))
        self.delta_words = delta_words(rows, max_outputs)
        self.winner_words = winner_words(rows, max_outputs)
        self.delta_layout = data.ArrayLayout(signed(delta_bits), rows)
        self.winners_layout = data.ArrayLayout(unsigned(2), cols)
        self.write_layout = data.StructLayout({
            "valid": 1, "sample": self.sample_bits, "tile": self.tile_bits,
            "deltas": self.delta_layout})
        self.winner_layout = data.StructLayout({
            "valid": 1, "filter": width, "position": width, "group": self.group_bits,
            "winners": self.winners_layout})
        self.read_layout = data.StructLayout({
            "en": 1, "sample": self.sample_bits, "tile": self.tile_bits, "position": width,
            "window": 2})
        super().__init__({
            "filters": In(width), "positions": In(width), "pool": In(1),
            "start": In(1),
            "write": In(self.write_layout),
            "winner": In(self.winner_layout),
            "read": In(self.read_layout),
            "deltas": Out(self.delta_layout),
        })

    def elaborate(self, platform):
        m = Module()
        P, Q, lp, lq = self.rows, self.cols, self.row_log, self.col_log
        F, S = self.filters, self.positions
        wb = index_bits(self.delta_words)                # a delta bank's word (per sample)
        vb = index_bits(self.winner_words)               # a winner bank's word (per group)
        bb, gb = self.sample_bits, self.group_bits
        delta_depth, winner_depth = self.delta_words << bb, self.winner_words << gb

        def residue(v):                                  # v mod P
            return v[:lp] if lp else Const(0, 1)

        # ceil(S/P): a filter's words in a delta bank.
        s_words = Signal(self.width)
        m.d.comb += s_words.eq((S + P - 1) >> lp)

        # ---- write side: each lane's (f, s', word base), kept in registers ------------------
        # Each lane moves P outputs a tile: s' + P = s' + (P mod S) + (P div S) * S, so
        # s' + (P mod S), less S once if it reaches S, and f + (P div S), plus one if it did
        # (for S >= P: s' + P, and f + 1 if that reaches S); f crosses at most one multiple of
        # P, where the word base grows by ceil(S/P). A tile's lanes and the next tile's are
        # registers: a write of the next tile uses the second set and steps it (one addition
        # and one comparison a lane: no chain through the lanes). f runs up to P past the
        # layer's filters (the last tile's lanes, and the next set); the word base is exact
        # wherever f < F (it only grows, and stays below delta_words there), so it may wrap
        # beyond.
        chain = data.StructLayout({"f": self.width + lp + 2, "s": self.width, "base": wb})
        here = [Signal(chain, name=f"lane_{r}") for r in range(P)]    # the current tile
        nxt = [Signal(chain, name=f"next_lane_{r}") for r in range(P)]  # the tile after it
        tile, fresh = Signal(self.tile_bits), Signal()
        wr = self.write
        write = wr.valid & ~self.start
        advance = write & (fresh | (wr.tile != tile))
        # P div S and P mod S, set at start (S < P: both from S's low bits; else 0 and P).
        small = S < P
        s_low = S[:lp] if lp else Const(1, 1)
        per_tile_f, per_tile_s = Signal(lp + 1), Signal(lp + 1)

        def step(lane):
            after = Signal(chain)
            s_up = lane.s + per_tile_s
            wrap = s_up >= S
            residue_up = residue(lane.f) + per_tile_f + wrap
            m.d.comb += [after.s.eq(Mux(wrap, s_up - S, s_up)),
                         after.f.eq(lane.f + per_tile_f + wrap),
                         after.base.eq(Mux(residue_up >= P, lane.base + s_words, lane.base))]
            return after

        # Each lane's word and whether its filter is real, for both sets, before the choice
        # between them (the adder and the comparison then run beside the tile's comparison
        # instead of after it: the ULX3S conv build's critical path, 20.3 ns).
        placed = data.StructLayout({"f": lp or 1, "s": lp or 1, "word": wb, "real": 1})

        def place(lane, r, which):
            out = Signal(placed, name=f"{which}_place_{r}")
            m.d.comb += [out.f.eq(residue(lane.f)), out.s.eq(residue(lane.s)),
                         out.word.eq(lane.base + (lane.s >> lp)), out.real.eq(lane.f < F)]
            return out

        lanes = [Signal(placed, name=f"write_lane_{r}") for r in range(P)]
        for r in range(P):
            m.d.comb += lanes[r].eq(Mux(advance, place(nxt[r], r, "next"),
                                        place(here[r], r, "here")))
        with m.If(advance):
            m.d.sync += [tile.eq(wr.tile), fresh.eq(0)]
            m.d.sync += [here[r].eq(nxt[r]) for r in range(P)]
            m.d.sync += [nxt[r].eq(step(nxt[r])) for r in range(P)]
        with m.If(self.start):
            # Tile 0: lane r is output r, (r div S, r mod S), word base 0 (r div S < P). For
            # S < P the quotients are a table over S's few values (no divider cells: Yosys
            # 0.69's techmap fails on them).
            m.d.sync += [per_tile_f.eq(0), per_tile_s.eq(P), fresh.eq(1)]
            for r in range(P):
                m.d.sync += [nxt[r].f.eq(0), nxt[r].s.eq(r), nxt[r].base.eq(0)]
            with m.Switch(s_low):
                for small_s in range(1, P):
                    with m.Case(small_s):
                        with m.If(small):
                            m.d.sync += [per_tile_f.eq(P // small_s),
                                         per_tile_s.eq(P % small_s)]
                            for r in range(P):
                                m.d.sync += [nxt[r].f.eq(r // small_s),
                                             nxt[r].s.eq(r % small_s)]

        banks = [[None] * P for _ in range(P)]           # banks[f mod P][s' mod P]: (rd, wr)
        for i in range(P):
            for j in range(P):
                mem = Memory(shape=unsigned(self.delta_bits), depth=delta_depth, init=[])
                m.submodules[f"deltas_{i}_{j}"] = mem
                banks[i][j] = (mem.read_port(), mem.write_port())
        for r in range(P):
            lane = lanes[r]
            addr = Cat(wr.sample, lane.word)
            live = write & lane.real
            for i in range(P):
                for j in range(P):
                    port = banks[i][j][1]
                    with m.If(live & (lane.f == i) & (lane.s == j)):
                        m.d.comb += [port.en.eq(1), port.addr.eq(addr),
                                     port.data.eq(wr.deltas[r])]

        # ---- winners: P banks by f mod P, a word of Q lanes per (f div P, s') and group -------
        wn = self.winner
        winners = []
        for i in range(P):
            mem = Memory(shape=unsigned(2 * Q), depth=winner_depth, init=[])
            m.submodules[f"winners_{i}"] = mem
            winners.append((mem.read_port(), mem.write_port()))
        w_word = Signal(vb)
        m.d.comb += w_word.eq((wn.filter >> lp) * S + wn.position)
        for i in range(P):
            port = winners[i][1]
            m.d.comb += [port.en.eq(wn.valid & (residue(wn.filter) == i)),
                         port.addr.eq(Cat(wn.group, w_word)), port.data.eq(wn.winners)]

        # ---- read side: one address for every bank of a kind; the lane chosen a cycle later --
        rd = self.read
        # The read tile's word bases, ``tile * ceil(S/P)`` (delta banks) and ``tile * S``
        # (winner banks), without multipliers (the multiplier on the address was the ULX3S
        # conv build's critical path): the tile is 0, the last cycle's, or one more, so the
        # bases are 0, the last cycle's, or the last cycle's plus a step, each in a register.
        last_tile = Signal(self.tile_bits)
        last_base, next_base = Signal(wb), Signal(wb)
        last_winner_base, next_winner_base = Signal(vb), Signal(vb)
        r_base, r_winner_base = Signal(wb), Signal(vb)
        with m.If(rd.tile == 0):
            m.d.comb += [r_base.eq(0), r_winner_base.eq(0)]
        with m.Elif(rd.tile == last_tile):
            m.d.comb += [r_base.eq(last_base), r_winner_base.eq(last_winner_base)]
        with m.Else():
            m.d.comb += [r_base.eq(next_base), r_winner_base.eq(next_winner_base)]
        m.d.sync += [last_tile.eq(rd.tile), last_base.eq(r_base),
                     last_winner_base.eq(r_winner_base), next_base.eq(r_base + s_words),
                     next_winner_base.eq(r_winner_base + S)]
        r_word, r_winner_word = Signal(wb), Signal(vb)
        r_group = Signal(gb)
        m.d.comb += [r_word.eq(r_base + (rd.position >> lp)),
                     r_winner_word.eq(r_winner_base + rd.position),
                     r_group.eq(rd.sample >> lq)]
        for row in banks:
            for port, _ in row:
                m.d.comb += [port.en.eq(rd.en), port.addr.eq(Cat(rd.sample, r_word))]
        for port, _ in winners:
            m.d.comb += [port.en.eq(rd.en), port.addr.eq(Cat(r_group, r_winner_word))]
        # What the read asked, kept with the words it reads (so the output holds with them).
        column, lane_q = Signal(max(lp, 1)), Signal(max(lq, 1))
        window, pool, real = Signal(2), Signal(), Signal(P)
        with m.If(rd.en):
            m.d.sync += [column.eq(residue(rd.position)),
                         lane_q.eq(rd.sample[:lq] if lq else 0),
                         window.eq(rd.window), pool.eq(self.pool)]
            for r in range(P):
                f = Cat(Const(r, lp), rd.tile) if lp else rd.tile
                m.d.sync += real[r].eq(f < F)
        scramble = self.scramble_collisions
        for r in range(P):
            words = Array(read_data(m, rp, wp, scramble) for rp, wp in banks[r])
            held = data.View(self.winners_layout, read_data(m, *winners[r], scramble))
            won = Array(held[q] for q in range(Q))[lane_q] == window
            m.d.comb += self.deltas[r].eq(Mux(real[r] & (~pool | won), words[column], 0))
        return m
