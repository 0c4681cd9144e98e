"""The drain register: a finished sum of the MAC array, taken apart a row or a column at a
time while the array sums the next."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..banked_ram import COPY_SUFFIX

__all__ = ["DrainRegister"]


class DrainRegister(wiring.Component):
    """Holds one ``rows x cols`` sum of the MAC array and the tag of the beat that ended it
    (which output tile and group it belongs to).

    A sum moves in when the register is empty and its tag has arrived; each ``advance_row``
    shifts the rows up (row 0 leaves), each ``advance_col`` the columns left (column 0
    leaves); ``end`` empties the register. The next sum moves in a cycle after ``end`` at the
    earliest: the move is decided from registers only, since it fans out to every element.
    With ``shift_with_end``, a shift with ``end`` still shifts the elements (nothing reads
    them until the next sum moves in): an element's clock enable is ``popped.valid |
    advance_row | advance_col``, with nothing of the drain's last step (its step count) in
    front of it; without, ``end`` keeps the elements as they are (a smaller netlist where the
    array is one element).

    With ``registered_moves``, every clock enable and multiplexer choice of the elements comes
    from a register, copied for each element (a copy reaches one element's bits): a sum is chosen
    to move in (``popped`` raised) a cycle before it moves in, and each shift is made the cycle
    after its ``advance_row`` or ``advance_col``, during which ``holding`` is low (so a drain
    takes a step every other cycle at most). ``end``, ``advance_row`` and ``advance_col`` are
    ignored unless ``holding``. ``sum_coming`` says a sum is offered from the next cycle
    until taken (the MAC array's ``ending``): the sum is chosen a cycle early and moves in in
    the cycle it is first offered, so that an array showing its sums from its accumulators
    waits no cycle for an empty drain register.

    Tags are written when the beat ending a sum issues, before the sum leaves the array; a
    FIFO of ``tag_depth`` holds them (the array holds at most one finished and one partial
    sum, and the pipe in front of it two beats). With ``registered_moves`` the FIFO is
    buffered (a tag readable two cycles after it is written).

    Parameters
    ----------
    rows, cols : int
        The MAC array's shape.
    sum_shape : signed shape
        A sum.
    tag_layout : Layout
        A sum's tag.

    Members
    -------
    sums : In(stream.Signature(ArrayLayout(sum_shape, rows * cols)))
        The MAC array's finished sums (element ``r * cols + c``).
    tags : In(stream.Signature(tag_layout))
        The tags of the sums, in order (always taken).
    popped : Out(StructLayout(valid, tag))
        A sum moves in this cycle, with its tag (``holding`` the next).
    holding : Out(1); tag : Out(tag_layout)
        A sum is in the register, and its tag.
    row : Out(ArrayLayout(sum_shape, cols)); column : Out(ArrayLayout(sum_shape, rows))
        Row 0 and column 0 of the sum in the register.
    sum_coming : In(1)
        (``registered_moves`` only) A sum is offered on ``sums`` from the next cycle until
        taken.
    ready_next : Out(1)
        (``registered_moves`` only) ``sums.ready`` of the next cycle (a sum is chosen now).
    end, advance_row, advance_col : In(1)
        Empty the register; shift the rows; shift the columns (rows first when both are high;
        a drain's last step raises ``end`` with its shift, or alone).
    busy : Out(1)
        A sum is in the register or a tag waits for its sum.
    """

    def __init__(self, rows, cols, sum_shape, tag_layout, tag_depth=4, shift_with_end=True,
                 registered_moves=False, row_stage=False):
        if registered_moves and not shift_with_end:
            raise ValueError("registered moves shift the elements with end")
        if row_stage and not registered_moves:
            raise ValueError("a row stage is a stage of registered moves")
        self.rows, self.cols, self.tag_depth = rows, cols, tag_depth
        self.shift_with_end, self.registered_moves = shift_with_end, registered_moves
        self.row_stage = row_stage
        self.tag_layout = tag_layout
        super().__init__({
            "sums": In(stream.Signature(data.ArrayLayout(sum_shape, rows * cols))),
            "tags": In(stream.Signature(tag_layout)),
            "popped": Out(data.StructLayout({"valid": 1, "tag": tag_layout})),
            "holding": Out(1), "tag": Out(tag_layout),
            "row": Out(data.ArrayLayout(sum_shape, cols)),
            "column": Out(data.ArrayLayout(sum_shape, rows)),
            "advance_row": In(1), "advance_col": In(1), "end": In(1), "sum_coming": In(1),
            "ready_next": Out(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        P, Q = self.rows, self.cols
        # With registered moves, the tags' FIFO is buffered: whether a tag is there and the
        # oldest tag come from registers (its level's comparison, then the choice of a sum,
        # then every element's and the array's copies of it was 14.3 ns of an 8 x 8 ULX3S
        # build). A tag is readable a cycle later; sums leave the array cycles after theirs.
        fifo = SyncFIFOBuffered if self.registered_moves else SyncFIFO
        tags = fifo(width=self.tag_layout.size, depth=self.tag_depth)
        m.submodules.tags = tags
        m.d.comb += [tags.w_en.eq(self.tags.valid), tags.w_data.eq(self.tags.payload),
                     self.tags.ready.eq(tags.w_rdy)]
        # One signal per element (a simulator keeps each in a machine word).
        shape = self.sums.payload.shape().elem_shape
        # Data (read while ``holding``): not reset, so that the reset's net reaches control
        # flip-flops only.
        acc = [Signal(shape, name=f"drain_{k}", reset_less=True) for k in range(P * Q)]
        m.d.comb += [self.row[q].eq(acc[q]) for q in range(Q)]
        m.d.comb += [self.column[r].eq(acc[r * Q]) for r in range(P)]
        if self.registered_moves:
            self._registered_moves(m, tags, acc)
            return m
        pop = self.popped.valid
        m.d.comb += [pop.eq(self.sums.valid & tags.r_rdy & ~self.holding),
                     self.sums.ready.eq(pop), tags.r_en.eq(pop),
                     self.popped.tag.eq(tags.r_data)]
        load = [acc[k].eq(self.sums.payload[k]) for k in range(P * Q)]
        shift_rows = [acc[k].eq(acc[k + Q]) for k in range(P * Q - Q)]
        shift_cols = [acc[r * Q + q].eq(acc[r * Q + q + 1])
                      for r in range(P) for q in range(Q - 1)]
        with m.If(pop):
            if not self.shift_with_end:
                m.d.sync += load
            m.d.sync += [self.holding.eq(1), self.tag.eq(self.popped.tag)]
        with m.Elif(self.end):
            m.d.sync += self.holding.eq(0)
        if self.shift_with_end:
            # The elements' own chain, without ``end``: the shifts below continue it.
            with m.If(pop):
                m.d.sync += load
        with m.Elif(self.advance_row):
            m.d.sync += shift_rows
        with m.Elif(self.advance_col):
            m.d.sync += shift_cols
        m.d.comb += self.busy.eq(self.holding | (tags.level != 0))
        return m

    def _registered_moves(self, m, tags, acc):
        P, Q = self.rows, self.cols
        # ``full``: a sum is in, or chosen to move in next cycle (``moving_in``); the sum and
        # its tag stay offered until then (sums.ready and the tag's read wait for the move).
        full, moving_in = Signal(), self.popped.valid
        choose = Signal()
        m.d.comb += [choose.eq((self.sums.valid | self.sum_coming) & tags.r_rdy & ~full),
                     self.sums.ready.eq(moving_in), tags.r_en.eq(moving_in),
                     self.popped.tag.eq(tags.r_data)]
        m.d.sync += moving_in.eq(choose)
        m.d.comb += self.ready_next.eq(choose)
        with m.If(choose):
            m.d.sync += full.eq(1)
        up_next, left_next = self.advance_row & self.holding, self.advance_col & self.holding
        advancing = up_next | left_next
        # (Row stage: a shift decided last cycle is made next cycle; ``holding`` waits for it.)
        shift_pending = Signal()
        if self.row_stage:
            m.d.sync += shift_pending.eq(advancing)
        with m.If(moving_in):
            m.d.sync += [self.holding.eq(1), self.tag.eq(self.popped.tag)]
        with m.Elif(self.end & self.holding):
            m.d.sync += [self.holding.eq(0), full.eq(0)]
        with m.Elif(advancing):
            m.d.sync += self.holding.eq(0)          # the shift is made next cycle
        with m.Elif(full & ~shift_pending):
            m.d.sync += self.holding.eq(1)
        for r in range(P):
            if self.row_stage:
                # This row's registers of the shifts: each reaches the row's elements' copies.
                row_up, row_left = (Signal(name=f"drain_{what}_row_{r}{COPY_SUFFIX}",
                                           reset_less=True) for what in ("up", "left"))
                m.d.sync += [row_up.eq(up_next), row_left.eq(left_next)]
                up_next_r, left_next_r = row_up, row_left
            else:
                up_next_r, left_next_r = up_next, left_next
            for q in range(Q):
                # This element's copies of the move: each reaches one element's bits, not
                # a row's (a row's copies were the 8 x 8 ULX3S build's most congested nets:
                # each fanned out to 320 flip-flops spread around the multipliers).
                k = r * Q + q
                # (Not reset: the reset's net reached every copy. A move a copy makes in the
                # cycle after a reset moves data only; nothing reads it while not holding.)
                load, up, left = (Signal(name=f"drain_{what}_{k}{COPY_SUFFIX}", reset_less=True)
                                  for what in ("load", "up", "left"))
                m.d.sync += [load.eq(choose), up.eq(up_next_r), left.eq(left_next_r)]
                with m.If(load):
                    m.d.sync += acc[k].eq(self.sums.payload[k])
                with m.Elif(up):
                    if r < P - 1:
                        m.d.sync += acc[k].eq(acc[k + Q])
                with m.Elif(left):
                    if q < Q - 1:
                        m.d.sync += acc[k].eq(acc[k + 1])
        m.d.comb += self.busy.eq(full | (tags.level != 0))
