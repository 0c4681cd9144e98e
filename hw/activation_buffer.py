"""The mini-batch activation buffer: a column of ``Q`` samples or a row of ``Q`` inputs a cycle."""

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory

from .ram_collisions import read_data
from amaranth.lib.wiring import In, Out

from .params import index_bits

__all__ = ["ActivationBuffer"]


class ActivationBuffer(wiring.Component):
    """``Q`` memory banks with a skewed layout.

    Element ``(b, j)`` (sample ``b = g*Q + q``, column ``j``) lives in bank ``(b + j) mod Q`` at
    address ``(g, j)``. So the ``Q`` samples of a group at one column (the forward pass reads
    inputs this way) and the ``Q`` columns ``j0 .. j0+Q-1`` of one sample (the weight gradient
    does, ``j0`` a multiple of ``Q``) each sit in ``Q`` different banks: one cycle either way.
    Built with ``any_start``, a row read may start at any column (a convolution's weight
    gradient reads ``Q`` consecutive columns of a kernel row, hw/core/gradient_patches.py):
    each bank then adds its own offset to the start (an adder a bank).

    Parameters
    ----------
    lanes, groups, columns, width : int
        ``Q``; sample groups; columns a sample holds; bits of an element.
    scramble_collisions : bool
        Simulation: a read of a word being written returns garbage (hw/ram_collisions.py).
    any_start : bool
        Row reads from any column, not only multiples of ``Q``.
    registered_write : bool
        Each bank's write (its enable, address and word, after the lanes are rotated to the
        banks) is registered before the RAM: a write lands a cycle later (a read sees it from
        two cycles after it is given), and neither the writers' selection logic nor the
        rotation shares a cycle with the RAMs' inputs (for a fast clock on an ECP5).
    registered_read : bool
        The banks' words are registered as they leave the RAMs, in cycles with ``rd_en``, and
        the lanes are rotated from the registers: ``rd_data`` is the read given at the
        last-but-one cycle with ``rd_en`` (holding while ``rd_en`` is low), and the RAMs' late
        output reaches a register, not the rotation (for a fast clock on an ECP5).
        ``rd_data_early`` then gives the read data as without (the batch-normalisation
        phase's reads take it so).

    Members
    -------
    rd_en, rd_row, rd_group, rd_lane, rd_col : In
        A read of column ``rd_col`` of group ``rd_group`` (``rd_row`` low) or of columns
        ``rd_col .. rd_col+Q-1`` of sample ``rd_group*Q + rd_lane`` (``rd_row`` high; ``rd_col``
        a multiple of ``Q`` unless built with ``any_start``; columns past the padded edge wrap
        to the group's first).
    rd_data : Out(ArrayLayout(width, Q))
        Lane ``q`` holds sample ``q`` (column read) or column ``rd_col + q`` (row read), the
        cycle after ``rd_en`` (``registered_read``: above); it holds while ``rd_en`` is low.
    wr_en, wr_group, wr_col, wr_data, wr_mask : In
        Writes lane ``q`` of ``wr_data`` to sample ``wr_group*Q + q`` at column ``wr_col``
        where ``wr_mask`` bit ``q`` is set.
    """

    def __init__(self, lanes, groups, columns, width, scramble_collisions=False,
                 any_start=False, registered_write=False, registered_read=False):
        self.lanes, self.groups, self.columns, self.width = lanes, groups, columns, width
        self.registered_write, self.registered_read = registered_write, registered_read
        self.scramble_collisions, self.any_start = scramble_collisions, any_start
        self.qbits = index_bits(lanes) if lanes > 1 else 0
        columns = -(-columns // lanes) * lanes          # row reads reach the padded edge
        gbits, cbits = index_bits(groups), index_bits(columns)
        self.gbits, self.cbits = gbits, cbits
        lane_data = data.ArrayLayout(unsigned(width), lanes)
        super().__init__({
            "rd_en": In(1), "rd_row": In(1), "rd_group": In(gbits),
            "rd_lane": In(max(1, self.qbits)), "rd_col": In(cbits),
            "rd_data": Out(lane_data),
            **({"rd_data_early": Out(lane_data)} if registered_read else {}),
            "wr_en": In(1), "wr_group": In(gbits), "wr_col": In(cbits),
            "wr_data": In(lane_data), "wr_mask": In(lanes),
        })

    def elaborate(self, platform):
        m = Module()
        Q, qbits = self.lanes, self.qbits
        depth = 1 << (self.gbits + self.cbits)

        def mod_q(value):
            return value[:qbits] if qbits else 0

        # Lane q of a row read is column start + q, in bank (lane + start + q) mod Q.
        row_rot = self.rd_lane + mod_q(self.rd_col) if self.any_start else self.rd_lane
        rot = Signal(max(1, qbits))
        m.d.comb += rot.eq(Mux(self.rd_row, row_rot, mod_q(self.rd_col)))
        rot_d = Signal.like(rot)
        with m.If(self.rd_en):
            m.d.sync += rot_d.eq(rot)
        wr_rot = mod_q(self.wr_col)
        bank_out = Signal(data.ArrayLayout(unsigned(self.width), Q))
        for k in range(Q):
            mem = Memory(shape=unsigned(self.width), depth=depth, init=[])
            m.submodules[f"bank_{k}"] = mem
            rd, wr = mem.read_port(), mem.write_port()
            if qbits:
                # Row read: bank k holds column j0 + ((k - lane) mod Q) of the sample.
                offset = Signal(qbits, name=f"row_offset_{k}")
                if self.any_start:
                    # Bank k serves lane (k - lane - start) mod Q, column start + that lane.
                    m.d.comb += offset.eq(k - self.rd_lane - self.rd_col[:qbits])
                    row_col = Signal(self.cbits, name=f"row_column_{k}")
                    m.d.comb += row_col.eq(self.rd_col + offset)
                else:
                    m.d.comb += offset.eq(k - self.rd_lane)
                    row_col = Cat(offset, self.rd_col[qbits:])
                lane_in = Signal(qbits, name=f"write_lane_{k}")
                m.d.comb += lane_in.eq(k - wr_rot)
            else:
                row_col, lane_in = self.rd_col, 0
            write = [wr.en.eq(self.wr_en & self.wr_mask.bit_select(lane_in, 1)),
                     wr.addr.eq(Cat(self.wr_col, self.wr_group)),
                     wr.data.eq(self.wr_data[lane_in])]
            m.d.comb += [
                rd.en.eq(self.rd_en),
                rd.addr.eq(Cat(Mux(self.rd_row, row_col, self.rd_col), self.rd_group)),
                bank_out[k].eq(read_data(m, rd, wr, self.scramble_collisions)),
            ]
            if self.registered_write:
                m.d.sync += write
            else:
                m.d.comb += write
        def rotated(out, words, rotation, name):
            for q in range(Q):
                sel = Signal(max(1, qbits), name=f"{name}_{q}")
                m.d.comb += sel.eq(q + rotation)
                m.d.comb += out[q].eq(words[sel] if qbits else words[0])

        if self.registered_read:
            words = Signal.like(bank_out, name="bank_words", reset_less=True)
            rot_words = Signal.like(rot_d)
            with m.If(self.rd_en):
                m.d.sync += [words.eq(bank_out), rot_words.eq(rot_d)]
            rotated(self.rd_data, words, rot_words, "read_bank")
            rotated(self.rd_data_early, bank_out, rot_d, "early_bank")
        else:
            rotated(self.rd_data, bank_out, rot_d, "read_bank")
        return m

