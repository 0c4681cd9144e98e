"""The host interface: frames in, commands to the core, reply frames out (docs/HOST_INTERFACE.md)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from contract.protocol import FRAME_CRC, MAX_PAYLOAD, REPLY, SYNC, Command, Status
from contract.registers import COUNTERS, GLOBAL, LAYER_BASE, LAYER_STRIDE

from .core import Op
from .params import index_bits
from .ram_collisions import read_data
from .weight_bus import weight_bus_signature

__all__ = ["HostInterface"]


class HostInterface(wiring.Component):
    """Parses frames from ``rx``, drives the core and the weight bus, replies on ``tx``.

    One frame executes at a time; ``rx`` is not ready while a command runs. Payloads are
    checked against their CRC before they act, except ``LOAD_BATCH``, which is written into
    the input buffer as it arrives and marks the batch incomplete if its CRC fails.
    """

    def __init__(self, params, core):
        p = self.params = params
        self.core_ref = core
        self.n_counters = len(COUNTERS) + p.max_layers
        self.nregs = LAYER_BASE + LAYER_STRIDE * p.max_layers
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "control": Out(core.control_signature),
            "counters": In(data.ArrayLayout(64, self.n_counters)),
            "clear": Out(1),
            "mem": Out(weight_bus_signature(p.addr_bits, p.word_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        wb = p.word_bytes
        wbits = (wb - 1).bit_length()

        # ---- receive ---------------------------------------------------------------------
        pbits = index_bits(MAX_PAYLOAD + 1)          # a position in a frame's payload
        command, length, index = Signal(8), Signal(16), Signal(pbits)
        m.submodules.rx_crc = rx_crc = FRAME_CRC.create()
        crc = rx_crc.crc
        m.d.comb += rx_crc.data.eq(self.rx.payload)
        timer = Signal(range(p.frame_timeout + 1))
        fbuf = Memory(shape=8, depth=MAX_PAYLOAD, init=[])
        m.submodules.frame_buffer = fbuf
        fb_wr, fb_rd = fbuf.write_port(), fbuf.read_port()
        fb_data = read_data(m, fb_rd, fb_wr, p.scramble_collisions)
        byte = self.rx.payload
        got = self.rx.valid & self.rx.ready

        config_ok, batch_loaded, batch_bad = Signal(), Signal(), Signal()
        loaded_hi = Signal(9)
        inputs, n_layers = Signal(16), Signal(4)
        with m.If(self.control.reg_we & (self.control.reg_addr == GLOBAL["inputs"])):
            m.d.sync += inputs.eq(self.control.reg_data)
        with m.If(self.control.reg_we & (self.control.reg_addr == GLOBAL["layers"])):
            m.d.sync += n_layers.eq(self.control.reg_data)

        # LOAD_BATCH is decoded as it arrives.
        lb_first, lb_count = Signal(8), Signal(8)
        lb_sample, lb_pos = Signal(9), Signal(16)
        is_load = command == Command.LOAD_BATCH
        # The length a LOAD_BATCH frame must have, registered (for timing): its count arrives
        # with payload byte 1, at least two cycles before the frame is dispatched.
        lb_expect = Signal(17)
        m.d.sync += lb_expect.eq(2 + lb_count * (inputs + 1))
        m.d.comb += [self.control.load_sample.eq(lb_sample), self.control.load_data.eq(byte),
                     self.control.load_label.eq(lb_pos == 0), self.control.load_col.eq(lb_pos - 1)]

        # ---- reply -------------------------------------------------------------------------
        status = Signal(8)
        reply_len = Signal(16)
        m.submodules.tx_crc = tx_crc_unit = FRAME_CRC.create()
        tx_crc = tx_crc_unit.crc
        tx_byte = Signal(8)
        m.d.comb += [self.tx.payload.eq(tx_byte), tx_crc_unit.data.eq(tx_byte)]
        sent = self.tx.valid & self.tx.ready

        # Execution state.
        ptr = Signal(pbits)
        word = Signal(p.word_bits)
        nbytes = Signal(8)
        reg_index = Signal(9)
        words_left = Signal(16)
        addr = Signal(p.addr_bits)            # the u32 address's low bits
        cnt_i, cnt_j = Signal(pbits), Signal(8)
        out_word = Signal(p.word_bits)
        out_left = Signal(8)

        m.d.comb += [fb_rd.addr.eq(ptr), fb_rd.en.eq(1)]
        cmd_view = self.control.cmd
        chk = Signal(data.StructLayout({
            "len_zero": 1, "cfg_bad": 1, "ww_bad": 1, "rw_len_bad": 1, "lb_bad": 1,
            "lb_grows": 1, "tr_len_bad": 1, "tr_first_bad": 1, "rr_bad": 1, "rr_len": 16}))
        cmd_reg = Signal(self.core_ref.cmd_layout)
        res_b = Signal(8)
        first = Signal(8)                    # payload byte 0 of the frame being dispatched
        res_read = Signal()                  # the core's result for (res_b, cnt_j) is out
        m.d.comb += [
            self.mem.ar.payload.addr.eq(addr), self.mem.ar.payload.len.eq(words_left),
            self.mem.aw.payload.addr.eq(addr), self.mem.aw.payload.len.eq(words_left),
            self.mem.w.payload.eq(word),
        ]

        def reply(code, payload_len=0):
            m.d.sync += [status.eq(code), reply_len.eq(1 + payload_len), cnt_i.eq(0),
                         cnt_j.eq(0)]
            m.next = "TX_SYNC"

        with m.FSM():
            with m.State("HUNT"):
                m.d.comb += self.rx.ready.eq(1)
                m.d.comb += rx_crc.start.eq(1)
                with m.If(got & (byte == SYNC)):
                    m.d.sync += timer.eq(0)
                    m.next = "CMD"
            for name, nxt in (("CMD", "LEN0"), ("LEN0", "LEN1")):
                with m.State(name):
                    m.d.comb += self.rx.ready.eq(1)
                    m.d.sync += timer.eq(Mux(got, 0, timer + 1))
                    m.d.comb += rx_crc.valid.eq(got)
                    with m.If(got):
                        if name == "CMD":
                            m.d.sync += command.eq(byte)
                        else:
                            m.d.sync += length[:8].eq(byte)
                        m.next = nxt
                    with m.Elif(timer == p.frame_timeout):
                        reply(Status.TIMEOUT)
            with m.State("LEN1"):
                m.d.comb += self.rx.ready.eq(1)
                m.d.sync += timer.eq(Mux(got, 0, timer + 1))
                m.d.comb += rx_crc.valid.eq(got)
                with m.If(got):
                    m.d.sync += [length[8:].eq(byte), index.eq(0),
                                 lb_pos.eq(0), ptr.eq(0)]
                    full_len = Cat(length[:8], byte)
                    with m.If(full_len > MAX_PAYLOAD):
                        reply(Status.OVERSIZED)
                    with m.Elif(full_len == 0):
                        m.next = "CRC"
                    with m.Else():
                        m.next = "PAYLOAD"
                with m.Elif(timer == p.frame_timeout):
                    reply(Status.TIMEOUT)
            with m.State("PAYLOAD"):
                m.d.comb += self.rx.ready.eq(1)
                m.d.sync += timer.eq(Mux(got, 0, timer + 1))
                m.d.comb += [fb_wr.en.eq(got), fb_wr.addr.eq(index), fb_wr.data.eq(byte)]
                m.d.comb += rx_crc.valid.eq(got)
                with m.If(got):
                    m.d.sync += index.eq(index + 1)
                    with m.If(is_load):
                        with m.If(index == 0):
                            m.d.sync += [lb_first.eq(byte), lb_sample.eq(byte)]
                        with m.Elif(index == 1):
                            m.d.sync += lb_count.eq(byte)
                        with m.Else():
                            m.d.comb += self.control.load_en.eq(config_ok & (lb_sample < p.max_batch)
                                                        & (lb_pos <= inputs))
                            m.d.sync += lb_pos.eq(lb_pos + 1)
                            with m.If(lb_pos == inputs):
                                m.d.sync += [lb_pos.eq(0), lb_sample.eq(lb_sample + 1)]
                    with m.If(index == length - 1):
                        m.next = "CRC"
                with m.Elif(timer == p.frame_timeout):
                    with m.If(is_load):
                        m.d.sync += batch_bad.eq(1)
                    reply(Status.TIMEOUT)
            with m.State("CRC"):
                m.d.comb += self.rx.ready.eq(1)
                m.d.sync += timer.eq(Mux(got, 0, timer + 1))
                with m.If(got):
                    with m.If(byte != crc):
                        with m.If(is_load):
                            m.d.sync += batch_bad.eq(1)
                        reply(Status.BAD_CRC)
                    with m.Else():
                        m.next = "FIRST"
                with m.Elif(timer == p.frame_timeout):
                    with m.If(is_load):
                        m.d.sync += batch_bad.eq(1)
                    reply(Status.TIMEOUT)

            with m.State("FIRST"):
                # fb_rd now presents payload byte 0 (ptr = 0): registered, for timing.
                m.d.sync += first.eq(fb_data)
                m.next = "CHECK"

            with m.State("CHECK"):
                # Every command's length and argument checks, registered (for timing).
                body = length - 4
                m.d.sync += [
                    chk.len_zero.eq(length == 0),
                    chk.cfg_bad.eq((length == 0) | (length[:2] != 1)
                                   | (first + ((length - 1) >> 2) > self.nregs)),
                    chk.ww_bad.eq((length < 4 + wb) | ((body[:wbits] != 0) if wbits else 0)),
                    chk.rw_len_bad.eq(length != 6),
                    chk.lb_bad.eq((length < 2) | (length != lb_expect)
                                  | (lb_first + lb_count > p.max_batch)),
                    chk.lb_grows.eq(lb_first + lb_count > loaded_hi),
                    chk.tr_len_bad.eq(length != Mux(command == Command.TRAIN, 1, 4)),
                    chk.tr_first_bad.eq((first == 0) | (first > loaded_hi)),
                    chk.rr_bad.eq((length != 1) | (first > p.max_batch)),
                    chk.rr_len.eq(first * (n_layers + 1)),
                ]
                m.next = "DISPATCH"

            with m.State("DISPATCH"):
                # `first` holds payload byte 0; ptr = 0.
                with m.Switch(command):
                    with m.Case(Command.RESET):
                        with m.If(~chk.len_zero):
                            reply(Status.BAD_LENGTH)
                        with m.Else():
                            m.d.comb += self.clear.eq(1)
                            m.d.sync += [config_ok.eq(0), batch_loaded.eq(0), batch_bad.eq(0),
                                         loaded_hi.eq(0)]
                            reply(Status.OK)
                    with m.Case(Command.WRITE_CONFIG):
                        with m.If(chk.cfg_bad):
                            reply(Status.BAD_LENGTH)
                        with m.Else():
                            m.d.sync += [reg_index.eq(first), ptr.eq(1), nbytes.eq(0),
                                         words_left.eq((length - 1) >> 2)]
                            m.next = "CONFIG"
                    with m.Case(Command.WRITE_WEIGHTS):
                        with m.If(chk.ww_bad):
                            reply(Status.BAD_LENGTH)
                        with m.Else():
                            m.d.sync += [ptr.eq(0), nbytes.eq(0), addr.eq(0),
                                         words_left.eq((length - 4) >> wbits)]
                            m.next = "ADDR"
                    with m.Case(Command.READ_WEIGHTS):
                        with m.If(chk.rw_len_bad):
                            reply(Status.BAD_LENGTH)
                        with m.Else():
                            m.d.sync += [ptr.eq(0), nbytes.eq(0), addr.eq(0)]
                            m.next = "ADDR"
                    with m.Case(Command.INIT_WEIGHTS):
                        with m.If(~chk.len_zero):
                            reply(Status.BAD_LENGTH)
                        with m.Elif(~config_ok):
                            reply(Status.OUT_OF_ORDER)
                        with m.Else():
                            m.d.comb += [self.control.start.eq(1), cmd_view.op.eq(Op.INIT)]
                            m.next = "WAIT_CORE"
                    with m.Case(Command.LOAD_BATCH):
                        with m.If(~config_ok):
                            m.d.sync += batch_bad.eq(1)
                            reply(Status.OUT_OF_ORDER)
                        with m.Elif(chk.lb_bad):
                            m.d.sync += batch_bad.eq(1)
                            reply(Status.BAD_LENGTH)
                        with m.Else():
                            # Sample 0 starts a new mini-batch (forgetting a failed load).
                            m.d.sync += batch_loaded.eq(1)
                            with m.If(lb_first == 0):
                                m.d.sync += [batch_bad.eq(0), loaded_hi.eq(lb_count)]
                            with m.Elif(chk.lb_grows):
                                m.d.sync += loaded_hi.eq(lb_first + lb_count)
                            reply(Status.OK)
                    with m.Case(Command.TRAIN, Command.INFER):
                        with m.If(chk.tr_len_bad):
                            reply(Status.BAD_LENGTH)
                        with m.Elif(~config_ok | ~batch_loaded | batch_bad):
                            reply(Status.OUT_OF_ORDER)
                        with m.Elif(chk.tr_first_bad):
                            reply(Status.BAD_LENGTH)
                        with m.Else():
                            m.d.sync += [cmd_reg.batch.eq(first), ptr.eq(1)]
                            m.next = "TRAIN_ARGS"
                    with m.Case(Command.READ_RESULTS):
                        with m.If(chk.rr_bad):
                            reply(Status.BAD_LENGTH)
                        with m.Else():
                            reply(Status.OK, chk.rr_len)
                    with m.Case(Command.READ_COUNTERS):
                        with m.If(~chk.len_zero):
                            reply(Status.BAD_LENGTH)
                        with m.Else():
                            reply(Status.OK, (len(COUNTERS) + n_layers) << 3)
                    with m.Default():
                        reply(Status.UNKNOWN_COMMAND)

            with m.State("CONFIG"):
                with m.If(words_left == 0):
                    m.d.sync += config_ok.eq(1)
                    reply(Status.OK)
                with m.Else():
                    m.next = "CONFIG_WAIT"
            with m.State("CONFIG_WAIT"):
                m.next = "CONFIG_BYTE"
            with m.State("CONFIG_BYTE"):
                # fb_rd presents the byte at ptr (set two states ago): one byte per 2 cycles.
                m.d.sync += [word[:32].eq(Cat(word[8:32], fb_data)), ptr.eq(ptr + 1),
                             nbytes.eq(nbytes + 1)]
                with m.If(nbytes == 3):
                    m.d.sync += nbytes.eq(0)
                    m.next = "CONFIG_WRITE"
                with m.Else():
                    m.next = "CONFIG_WAIT"
            with m.State("CONFIG_WRITE"):
                # A register that turns on a feature the core was built without is refused
                # (the configuration stays unwritten: TRAIN and INFER are then out of order).
                missing = [GLOBAL[name] for name, built in (("dropout", p.dropout),
                                                            ("feedback", p.sign_feedback))
                           if not built]
                needs_missing = Signal()
                for missing_index in missing:
                    with m.If((reg_index == missing_index) & (word[:32] != 0)):
                        m.d.comb += needs_missing.eq(1)
                with m.If(needs_missing):
                    m.d.sync += config_ok.eq(0)
                    reply(Status.UNSUPPORTED)
                with m.Else():
                    m.d.comb += [self.control.reg_we.eq(1), self.control.reg_addr.eq(reg_index),
                                 self.control.reg_data.eq(word[:32])]
                    m.d.sync += [reg_index.eq(reg_index + 1), words_left.eq(words_left - 1)]
                    m.next = "CONFIG"

            with m.State("ADDR"):
                m.next = "ADDR_BYTE"
            with m.State("ADDR_BYTE"):
                with m.Switch(nbytes):                   # little endian, byte by byte
                    for k in range(-(-p.addr_bits // 8)):
                        with m.Case(k):
                            m.d.sync += addr[8 * k:8 * k + 8].eq(fb_data)
                m.d.sync += [ptr.eq(ptr + 1),
                             nbytes.eq(nbytes + 1)]
                with m.If(nbytes == 3):
                    m.d.sync += nbytes.eq(0)
                    with m.If(command == Command.WRITE_WEIGHTS):
                        m.next = "WW_CMD"
                    with m.Else():
                        m.next = "RW_COUNT"
                with m.Else():
                    m.next = "ADDR"
            with m.State("RW_COUNT"):
                m.next = "RW_COUNT_BYTE"
            with m.State("RW_COUNT_BYTE"):
                m.d.sync += [words_left.eq(Cat(words_left[8:], fb_data)), ptr.eq(ptr + 1),
                             nbytes.eq(nbytes + 1)]
                with m.If(nbytes == 1):
                    m.next = "RW_CHECK"
                with m.Else():
                    m.next = "RW_COUNT"
            with m.State("RW_CHECK"):
                with m.If((words_left == 0) | (words_left > (MAX_PAYLOAD - 1) // wb)):
                    reply(Status.BAD_LENGTH)
                with m.Else():
                    m.d.comb += [self.mem.ar.valid.eq(1)]
                    with m.If(self.mem.ar.ready):
                        m.d.sync += [cnt_i.eq(words_left)]
                        reply(Status.OK, words_left << wbits)
            with m.State("WW_CMD"):
                m.d.comb += self.mem.aw.valid.eq(1)
                with m.If(self.mem.aw.ready):
                    m.next = "WW_BYTE_WAIT"
            with m.State("WW_BYTE_WAIT"):
                with m.If(words_left == 0):
                    with m.If(~self.mem.w.valid):
                        reply(Status.OK)
                with m.Else():
                    m.next = "WW_BYTE"
            with m.State("WW_BYTE"):
                m.d.sync += [word.eq(Cat(word[8:], fb_data)), ptr.eq(ptr + 1),
                             nbytes.eq(nbytes + 1)]
                with m.If(nbytes == wb - 1):
                    m.d.sync += nbytes.eq(0)
                    m.next = "WW_PUSH"
                with m.Else():
                    m.next = "WW_BYTE_WAIT"
            with m.State("WW_PUSH"):
                m.d.comb += [self.mem.w.valid.eq(1)]
                with m.If(self.mem.w.ready):
                    m.d.sync += words_left.eq(words_left - 1)
                    m.next = "WW_BYTE_WAIT"

            with m.State("TRAIN_ARGS"):
                m.next = "TRAIN_ARG_BYTE"
            with m.State("TRAIN_ARG_BYTE"):
                # INFER: early_exit at byte 1, threshold at bytes 2..3.
                reg = cmd_reg
                with m.Switch(ptr):
                    with m.Case(1):
                        m.d.sync += reg.early_exit.eq(fb_data != 0)
                    with m.Case(2):
                        m.d.sync += reg.threshold[:8].eq(fb_data)
                    with m.Case(3):
                        m.d.sync += reg.threshold[8:].eq(fb_data)
                m.d.sync += ptr.eq(ptr + 1)
                with m.If((command == Command.TRAIN) | (ptr == 3)):
                    m.next = "START"
                with m.Else():
                    m.next = "TRAIN_ARGS"
            with m.State("START"):
                reg = cmd_reg
                early_exit = (command == Command.INFER) & reg.early_exit

                def start():
                    m.d.comb += [self.control.start.eq(1),
                                 cmd_view.batch.eq(reg.batch),
                                 cmd_view.op.eq(Mux(command == Command.TRAIN, Op.TRAIN,
                                                    Op.INFER)),
                                 cmd_view.early_exit.eq(early_exit),
                                 cmd_view.threshold.eq(reg.threshold)]
                    m.d.sync += [batch_loaded.eq(0), reg.early_exit.eq(0)]
                    m.next = "WAIT_CORE"

                if p.early_exit:
                    start()
                else:
                    with m.If(early_exit):
                        # The core was built without early exit; the batch stays loaded.
                        m.d.sync += reg.early_exit.eq(0)
                        reply(Status.UNSUPPORTED)
                    with m.Else():
                        start()
            with m.State("WAIT_CORE"):
                with m.If(self.control.done):
                    with m.If(command == Command.TRAIN):
                        reply(Status.OK, n_layers << 1)
                    with m.Else():
                        reply(Status.OK)

            # ---- reply frame ---------------------------------------------------------------
            def emit(value, nxt, crc_on=True):
                m.d.comb += [self.tx.valid.eq(1), tx_byte.eq(value)]
                with m.If(sent):
                    m.next = nxt
                if crc_on:
                    m.d.comb += tx_crc_unit.valid.eq(sent)

            with m.State("TX_SYNC"):
                m.d.comb += tx_crc_unit.start.eq(1)
                emit(SYNC, "TX_CMD", crc_on=False)
            with m.State("TX_CMD"):
                emit(command | REPLY, "TX_LEN0")
            with m.State("TX_LEN0"):
                emit(reply_len[:8], "TX_LEN1")
            with m.State("TX_LEN1"):
                emit(reply_len[8:], "TX_STATUS")
            with m.State("TX_STATUS"):
                emit(status, "TX_CRC")
                with m.If(sent & (reply_len != 1)):
                    m.d.sync += [cnt_i.eq(0), cnt_j.eq(0), out_left.eq(0), res_b.eq(0),
                                 res_read.eq(0)]
                    m.next = "TX_BODY"
            with m.State("TX_BODY"):
                # The payload after the status byte; cnt_i counts its bytes.
                with m.Switch(command):
                    with m.Case(Command.TRAIN):
                        value = self.control.correct[cnt_i[1:5]]
                        m.d.comb += [self.tx.valid.eq(1),
                                     tx_byte.eq(Mux(cnt_i[0], value[8:16], value[:8]))]
                    with m.Case(Command.READ_COUNTERS):
                        value = Signal(64)
                        with m.Switch(cnt_i[3:11]):
                            for k in range(self.n_counters):
                                with m.Case(k):
                                    m.d.comb += value.eq(self.counters[k])
                        m.d.comb += [self.tx.valid.eq(1),
                                     tx_byte.eq(value.word_select(cnt_i[:3], 8))]
                    with m.Case(Command.READ_RESULTS):
                        # cnt_j walks the L + 1 bytes of sample res_b; the core answers a
                        # cycle after each new address.
                        m.d.comb += [self.control.res_sample.eq(res_b),
                                     self.control.res_layer.eq(cnt_j),
                                     self.tx.valid.eq(res_read),
                                     tx_byte.eq(Mux(cnt_j == n_layers, self.control.res_exit,
                                                    self.control.res_pred))]
                        m.d.sync += res_read.eq(~sent)
                        with m.If(sent):
                            m.d.sync += cnt_j.eq(cnt_j + 1)
                            with m.If(cnt_j == n_layers):
                                m.d.sync += [cnt_j.eq(0), res_b.eq(res_b + 1)]
                    with m.Case(Command.READ_WEIGHTS):
                        m.d.comb += self.mem.r.ready.eq(out_left == 0)
                        with m.If(self.mem.r.valid & (out_left == 0)):
                            m.d.sync += [out_word.eq(self.mem.r.payload), out_left.eq(wb)]
                        m.d.comb += [self.tx.valid.eq(out_left != 0), tx_byte.eq(out_word[:8])]
                        with m.If(sent):
                            m.d.sync += [out_word.eq(out_word >> 8), out_left.eq(out_left - 1)]
                m.d.comb += tx_crc_unit.valid.eq(sent)
                with m.If(sent):
                    m.d.sync += cnt_i.eq(cnt_i + 1)
                    with m.If(cnt_i == reply_len - 2):
                        m.next = "TX_CRC"
            with m.State("TX_CRC"):
                emit(tx_crc, "HUNT", crc_on=False)
        return m
