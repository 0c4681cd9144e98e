"""The weight bus served from the board's SDRAM (docs/SDRAM.md).

An SDRAM controller written for this flow in Amaranth 0.5 rather than taken from an existing
core: LiteDRAM, the usual open one, is Migen/LiteX, which this project's generator, lint waivers
and benches do not use; the controller the weight bus needs is small (one master, in-order
bursts, burst length 1, no reordering), and written here it is generated, linted and simulated
by the same commands as every other unit.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from contract.sdram import MT48LC16M16A2_6A, SdramTiming, mode_register

from .weight_bus import BURST_LEN_BITS, weight_bus_signature

__all__ = ["SdramController", "sdram_pins_signature"]

# (RAS#, CAS#, WE#) of each command with CS# low (the data sheet's truth table).
_NOP, _ACT, _READ, _WRITE, _PRE, _REF, _MRS = 0b111, 0b011, 0b101, 0b100, 0b010, 0b001, 0b000


def sdram_pins_signature(part=MT48LC16M16A2_6A):
    """The controller's side of the SDRAM's pins: commands and write data out (registered),
    read data in (``dq_i``: the DQ pads' input; ``dq_o`` and ``dq_oe`` drive them)."""
    return wiring.Signature({
        "cke": Out(1, init=1), "cs_n": Out(1, init=1), "ras_n": Out(1, init=1),
        "cas_n": Out(1, init=1), "we_n": Out(1, init=1),
        "ba": Out(part.bank_bits), "a": Out(part.row_bits),
        "dqm": Out(part.data_bits // 8, init=(1 << (part.data_bits // 8)) - 1),
        "dq_o": Out(part.data_bits), "dq_oe": Out(1), "dq_i": In(part.data_bits),
    })


class SdramController(wiring.Component):
    """A slave of the weight bus (docs/HOST_INTERFACE.md, "The weight bus") storing its words
    in a single-data-rate SDRAM.

    A bus word of ``word_bits`` is ``beats = ceil(word_bits / 16)`` columns, word ``n`` at
    columns ``stride * n ..`` of its row (``stride``: ``beats`` rounded up to a power of two).
    A word address is split, low bits first, into the word's place in its row, the bank and the
    row: consecutive words fill a row, and the next row of addresses is in the next bank, so a
    long burst crosses into a bank whose row can be opened without closing the one just used,
    and the core's reads and trailing writes of one layer's weights hit the same open rows.
    Address bits beyond the part's capacity (:attr:`capacity_words`) are ignored.

    Every access is burst length 1, one READ or WRITE command per 16-bit column, so a word and
    the next in the same row go out one column a clock (the full data rate), and rows stay open
    (one per bank) until a different row of that bank or a refresh needs the bank.

    One word is moved at a time. Written words wait in a queue (``write_queue`` words with
    their addresses). When a word's last column goes out the next is chosen: none while a
    refresh is due; otherwise reads keep going while they can and writes wait, until
    ``write_batch`` words are queued or the reads cannot go on; writes then go until the queue
    is empty. So the read-to-write turnaround is paid once per batch. A read burst starts only
    once the words queued before its command was accepted are written (its fence): a read
    accepted after a write beat returns that word, as the bus promises. A writer that keeps the
    queue full holds reads back for as long as it does (the bus promises no fairness).

    Parameters
    ----------
    addr_bits, word_bits : int
        The weight bus's.
    timing : contract.sdram.SdramTiming
        Cycle counts of the part at the controller's clock (default: 50 MHz, CL2).
    part : contract.sdram.SdramPart
    read_delay : int
        Extra clocks between a READ on the controller's pins and its data at ``dq_i`` (the
        I/O registers of a board top: 2 on the ULX3S, hw/boards/sdram.py); the controller waits
        that much longer for each beat.
    read_to_write : int or None
        Clocks from a READ to the next WRITE; default ``CL + 2`` (the read data's cycle, then
        one idle bus cycle while the device's outputs release). Tests shorten it to check that
        the device model catches the conflict.
    write_queue, write_batch : int
        Words the write queue holds; queued words that make reads give way.

    Members
    -------
    bus : In(weight_bus_signature)
    sdram : Out(sdram_pins_signature)
    ready : Out(1)
        The initialisation is done.
    """

    def __init__(self, addr_bits, word_bits, timing=None, part=MT48LC16M16A2_6A,
                 read_delay=0, fifo_depth=None, read_to_write=None, write_queue=16,
                 write_batch=16):
        self.part = part
        self.timing = SdramTiming.derive(part) if timing is None else timing
        self.beats = -(-word_bits // part.data_bits)
        self.stride = 1 << (self.beats - 1).bit_length()
        if self.stride > 1 << part.col_bits:
            raise ValueError(f"a {word_bits}-bit word does not fit one {part.name} row")
        self.stride_bits = (self.stride - 1).bit_length()
        self.col_word_bits = part.col_bits - self.stride_bits
        self.capacity_words = 1 << (self.col_word_bits + part.bank_bits + part.row_bits)
        self.read_delay = read_delay
        if not 1 <= write_batch <= write_queue:
            raise ValueError(f"write batch {write_batch} outside 1..{write_queue}")
        self.write_queue, self.write_batch = write_queue, write_batch
        self.read_to_write = self.timing.cl + 2 if read_to_write is None else read_to_write
        latency = self.timing.cl + 2 + read_delay
        self.fifo_depth = fifo_depth or max(4, -(-latency // self.beats) + 2)
        self.addr_bits, self.word_bits = addr_bits, word_bits
        super().__init__({"bus": In(weight_bus_signature(addr_bits, word_bits)),
                          "sdram": Out(sdram_pins_signature(part)), "ready": Out(1)})

    def location(self, addr):
        """``(bank, row, first column)`` of word address ``addr`` (for tests and docs)."""
        addr %= self.capacity_words
        word = addr & ((1 << self.col_word_bits) - 1)
        bank = (addr >> self.col_word_bits) & ((1 << self.part.bank_bits) - 1)
        row = addr >> (self.col_word_bits + self.part.bank_bits)
        return bank, row, word * self.stride

    def elaborate(self, platform):
        m = Module()
        t, part, bus, pins = self.timing, self.part, self.bus, self.sdram
        banks, beats, db = 1 << part.bank_bits, self.beats, part.data_bits

        # ---- cycles since each event, saturating at the largest count a rule asks -----------
        def age(name, limit):
            return Signal(range(limit + 1), init=limit, name=name)

        def count(signal, event):
            with m.If(event):
                m.d.sync += signal.eq(1)
            with m.Elif(signal != signal.init):
                m.d.sync += signal.eq(signal + 1)

        act_limit = max(t.rcd, t.ras, t.rc)
        act_age = [age(f"act_age{b}", act_limit) for b in range(banks)]
        pre_age = [age(f"pre_age{b}", t.rp) for b in range(banks)]
        wr_age = [age(f"wr_age{b}", t.wr) for b in range(banks)]
        act_any_age = age("act_any_age", t.rrd)
        ref_age = age("ref_age", t.rfc)
        mrs_age = age("mrs_age", t.mrd)
        rd_age = age("rd_age", max(self.read_to_write, 1))
        cmd_ok = (mrs_age >= t.mrd) & (ref_age >= t.rfc)

        # ---- this cycle's command (registered onto the pins) --------------------------------
        cmd = Signal(3, init=_NOP)
        c_ba = Signal(part.bank_bits)
        c_a = Signal(part.row_bits)
        c_dq = Signal(db)
        is_act, is_pre, pre_all, is_ref, is_mrs = Signal(), Signal(), Signal(), Signal(), Signal()
        is_rd, is_wr = Signal(), Signal()
        m.d.comb += cmd.eq(Mux(is_act, _ACT, Mux(is_rd, _READ, Mux(is_wr, _WRITE, Mux(
            is_pre, _PRE, Mux(is_ref, _REF, Mux(is_mrs, _MRS, _NOP)))))))
        powering_up = Signal()          # DQM high through the power-up wait (DQ High-Z)
        m.d.sync += [pins.cs_n.eq(0), pins.ras_n.eq(cmd[2]), pins.cas_n.eq(cmd[1]),
                     pins.we_n.eq(cmd[0]), pins.ba.eq(c_ba), pins.a.eq(c_a),
                     pins.dq_o.eq(c_dq), pins.dq_oe.eq(is_wr),
                     pins.dqm.eq(Mux(powering_up, (1 << len(pins.dqm)) - 1, 0))]
        m.d.comb += pins.cke.eq(1)

        for b in range(banks):
            hit_b = c_ba == b
            count(act_age[b], is_act & hit_b)
            count(pre_age[b], is_pre & (pre_all | hit_b))
            count(wr_age[b], is_wr & hit_b)
        count(act_any_age, is_act)
        count(ref_age, is_ref)
        count(mrs_age, is_mrs)
        count(rd_age, is_rd)

        # ---- open rows ------------------------------------------------------------------------
        open_ = Signal(banks)
        open_row = Array(Signal(part.row_bits, name=f"open_row{b}") for b in range(banks))
        with m.If(is_act):
            m.d.sync += [open_.bit_select(c_ba, 1).eq(1), open_row[c_ba].eq(c_a)]
        with m.If(is_pre):
            with m.If(pre_all):
                m.d.sync += open_.eq(0)
            with m.Else():
                m.d.sync += open_.bit_select(c_ba, 1).eq(0)
        # All open banks may be precharged / all banks may take a REF or MRS.
        pre_all_ok = Cat(~open_[b] | ((act_age[b] >= t.ras) & (wr_age[b] >= t.wr))
                         for b in range(banks)).all() & cmd_ok
        idle_ok = (open_ == 0) & Cat(pre_age[b] >= t.rp for b in range(banks)).all() & cmd_ok

        # ---- refresh timer --------------------------------------------------------------------
        refresh_timer = Signal(range(t.refi + 1), init=t.refi)
        refresh_due = Signal()
        running = Signal()
        with m.If(running):
            with m.If(refresh_timer == 0):
                m.d.sync += [refresh_timer.eq(t.refi), refresh_due.eq(1)]
            with m.Else():
                m.d.sync += refresh_timer.eq(refresh_timer - 1)
        with m.If(is_ref & running):
            m.d.sync += refresh_due.eq(0)

        # ---- the bus side: bursts, the write buffer, the read FIFO ----------------------------
        m.submodules.rfifo = rfifo = SyncFIFOBuffered(width=self.word_bits,
                                                      depth=self.fifo_depth)
        m.d.comb += [bus.r.valid.eq(rfifo.r_rdy), bus.r.payload.eq(rfifo.r_data),
                     rfifo.r_en.eq(bus.r.ready)]
        rd_addr, rd_left = Signal(self.addr_bits), Signal(BURST_LEN_BITS)
        wr_addr, wr_left = Signal(self.addr_bits), Signal(BURST_LEN_BITS)
        # Write words wait in a queue (address and word); a read burst may only start once
        # the words queued before its command was accepted have gone (its fence).
        m.submodules.wq = wq = SyncFIFOBuffered(width=self.addr_bits + self.word_bits,
                                                depth=self.write_queue)
        wq_addr, wq_word = wq.r_data[:self.addr_bits], wq.r_data[self.addr_bits:]
        inflight = Signal(range(self.fifo_depth + 1))
        take_rd, take_wr, push = Signal(), Signal(), Signal()
        fence = Signal(range(self.write_queue + 2))
        w_fire = Signal()

        m.d.comb += [bus.ar.ready.eq(rd_left == 0), bus.aw.ready.eq(wr_left == 0)]
        with m.If(bus.ar.valid & bus.ar.ready):
            m.d.sync += [rd_addr.eq(bus.ar.payload.addr), rd_left.eq(bus.ar.payload.len),
                         fence.eq(wq.level - take_wr + w_fire)]
        with m.Elif(take_wr & (fence != 0)):
            m.d.sync += fence.eq(fence - 1)
        with m.If(take_rd):
            m.d.sync += [rd_addr.eq(rd_addr + 1), rd_left.eq(rd_left - 1)]
        with m.If(bus.aw.valid & bus.aw.ready):
            m.d.sync += [wr_addr.eq(bus.aw.payload.addr), wr_left.eq(bus.aw.payload.len)]
        m.d.comb += [bus.w.ready.eq((wr_left != 0) & wq.w_rdy),
                     w_fire.eq(bus.w.valid & bus.w.ready),
                     wq.w_en.eq(w_fire), wq.w_data.eq(Cat(wr_addr, bus.w.payload)),
                     wq.r_en.eq(take_wr)]
        with m.If(w_fire):
            m.d.sync += [wr_addr.eq(wr_addr + 1), wr_left.eq(wr_left - 1)]
        with m.If(take_rd & ~push):
            m.d.sync += inflight.eq(inflight + 1)
        with m.Elif(push & ~take_rd):
            m.d.sync += inflight.eq(inflight - 1)
        room = (rfifo.level + inflight) < self.fifo_depth

        # ---- the word being moved -------------------------------------------------------------
        op_valid, op_write = Signal(), Signal()
        op_bank, op_row = Signal(part.bank_bits), Signal(part.row_bits)
        op_col = Signal(part.col_bits)
        op_beat = Signal(range(max(beats, 2)))
        op_data = Signal(db * beats)
        last_beat = Signal()
        writing = Signal()              # the last word taken was a write

        def split(addr):
            a = Cat(addr, Const(0, 32))
            cw, bb = self.col_word_bits, part.bank_bits
            return (a[cw:cw + bb], a[cw + bb:cw + bb + part.row_bits],
                    Cat(Const(0, self.stride_bits), a[:cw]))

        # ---- read data: the dq register, then a word assembled beat by beat -------------------
        dq_in = Signal(db)
        m.d.sync += dq_in.eq(pins.dq_i)
        # The board's registers delay the data on its way to dq_i (read_delay clocks): only
        # the strobe that says when a beat is in dq_in waits longer, the data path is the same.
        lat = t.cl + 1 + self.read_delay          # issue decision -> beat in dq_in
        rd_pipe, rd_last = Signal(lat + 1), Signal(lat + 1)
        m.d.sync += [rd_pipe.eq(Cat(is_rd, rd_pipe[:-1])),
                     rd_last.eq(Cat(is_rd & last_beat, rd_last[:-1]))]
        beat_in = dq_in
        rword = Signal(db * beats)
        word_now = Cat(rword[db:], beat_in) if beats > 1 else beat_in
        with m.If(rd_pipe[lat]):
            m.d.sync += rword.eq(word_now)
        m.d.comb += [push.eq(rd_pipe[lat] & rd_last[lat]),
                     rfifo.w_en.eq(push), rfifo.w_data.eq(word_now[:self.word_bits])]

        # ---- scheduling ---------------------------------------------------------------------
        act_age_a, pre_age_a, wr_age_a = Array(act_age), Array(pre_age), Array(wr_age)
        bank_open = open_.bit_select(op_bank, 1)
        row_hit = bank_open & (open_row[op_bank] == op_row)
        col_ok = ((act_age_a[op_bank] >= t.rcd) & cmd_ok
                  & (~op_write | (rd_age >= self.read_to_write)))
        pre_ok = (act_age_a[op_bank] >= t.ras) & (wr_age_a[op_bank] >= t.wr) & cmd_ok
        act_ok = ((pre_age_a[op_bank] >= t.rp) & (act_age_a[op_bank] >= t.rc)
                  & (act_any_age >= t.rrd) & cmd_ok)
        m.d.comb += last_beat.eq(op_beat == beats - 1)

        init_refs = Signal(range(t.init_refreshes + 1))
        powerup = Signal(range(t.powerup + 1))
        with m.FSM():
            with m.State("POWERUP"):
                m.d.comb += powering_up.eq(1)
                m.d.sync += powerup.eq(powerup + 1)
                with m.If(powerup == t.powerup):
                    m.next = "INIT_PRE"
            with m.State("INIT_PRE"):
                m.d.comb += [is_pre.eq(1), pre_all.eq(1), c_a.eq(1 << 10)]
                m.next = "INIT_REF"
            with m.State("INIT_REF"):
                with m.If(idle_ok):
                    m.d.comb += is_ref.eq(1)
                    m.d.sync += init_refs.eq(init_refs + 1)
                    with m.If(init_refs == t.init_refreshes - 1):
                        m.next = "INIT_MRS"
            with m.State("INIT_MRS"):
                with m.If(idle_ok):
                    m.d.comb += [is_mrs.eq(1), c_a.eq(mode_register(t.cl))]
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += [running.eq(1), self.ready.eq(1)]
                with m.If(op_valid):
                    m.d.comb += c_ba.eq(op_bank)
                    with m.If(row_hit):
                        with m.If(col_ok):
                            m.d.comb += [is_rd.eq(~op_write), is_wr.eq(op_write),
                                         c_a.eq(op_col | op_beat), c_dq.eq(op_data[:db])]
                            m.d.sync += [op_beat.eq(op_beat + 1),
                                         op_data.eq(op_data >> db)]
                    with m.Elif(bank_open):
                        m.d.comb += is_pre.eq(pre_ok)
                    with m.Else():
                        m.d.comb += [is_act.eq(act_ok), c_a.eq(op_row)]
                with m.Elif(refresh_due):
                    with m.If(open_ != 0):
                        m.d.comb += [is_pre.eq(pre_all_ok), pre_all.eq(1), c_a.eq(1 << 10)]
                    with m.Else():
                        m.d.comb += is_ref.eq(idle_ok)

                # The next word, once this one's last beat goes out (or none is in hand):
                # reads and writes each keep going while they can (a batch of writes pays the
                # read-to-write turnaround once); reads give way once `write_batch` words
                # wait, or when they cannot go on (fence, FIFO full, no burst).
                can_rd = (rd_left != 0) & room & (fence == 0)
                can_wr = wq.r_rdy
                want_wr = can_wr & (~can_rd | writing | (wq.level >= self.write_batch))
                with m.If(~op_valid | ((is_rd | is_wr) & last_beat)):
                    m.d.sync += [op_valid.eq(0), op_beat.eq(0)]
                    with m.If(~refresh_due):
                        with m.If(want_wr):
                            m.d.comb += take_wr.eq(1)
                            bank, row, col = split(wq_addr)
                            m.d.sync += [op_valid.eq(1), op_write.eq(1), op_bank.eq(bank),
                                         op_row.eq(row), op_col.eq(col), op_data.eq(wq_word),
                                         writing.eq(1)]
                        with m.Elif(can_rd):
                            m.d.sync += writing.eq(0)
                            m.d.comb += take_rd.eq(1)
                            bank, row, col = split(rd_addr)
                            m.d.sync += [op_valid.eq(1), op_write.eq(0), op_bank.eq(bank),
                                         op_row.eq(row), op_col.eq(col)]
        return m
