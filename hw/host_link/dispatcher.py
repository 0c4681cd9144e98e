"""The command dispatcher: checks a received frame, writes configuration registers, decodes
``LOAD_BATCH`` as it arrives, starts the core, and supplies the bodies of the replies that come
from the core (``TRAIN``, ``READ_RESULTS``, ``READ_COUNTERS``). docs/HOST_INTERFACE.md."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from contract.protocol import EPOCH_ARGUMENTS, Command, Status
from contract.registers import COUNTERS, GLOBAL, LAYER, LAYER_BASE, LAYER_STRIDE

from ..core import Op
from .config_check import ConfigCheck
from .framing import executor_members
from .resident_trainer import resident_signature
from .sample_decoder import SampleDecoder, payload_signature

__all__ = ["CommandDispatcher"]


class CommandDispatcher(wiring.Component):
    """Executes every command but the weight port's, one held frame at a time.

    Members
    -------
    command, length : In
        The held frame's command byte and payload length (the receiver's).
    payload : In(stream.Signature({data, index}, always_ready=True))
        Payload bytes as they arrive (only ``LOAD_BATCH`` uses them).
    received, dropped : In(1)
        The receiver's: a frame passed its CRC; a frame was dropped part-way through its payload.
    cursor : In(cursor_signature())
        Reads the held frame's payload.
    reply : Out(stream.Signature(reply_layout, always_ready=True))
        The reply to send (the transmitter is idle whenever a frame is held); its payload is
        0 while not valid, so the host interface ORs the parts' requests.
    body : Out(stream.Signature(8)), body_index : In, body_active : In(1)
        The reply body of ``TRAIN``, ``READ_RESULTS`` and ``READ_COUNTERS``, byte
        ``body_index``, while the transmitter sends it.
    weights : Out(1)
        Pulses to hand a well-formed ``WRITE_WEIGHTS`` or ``READ_WEIGHTS`` to the weight port.
    control : Out(core.control_signature)
        Register writes, batch loading, command start and results, to the core.
    counters : In(data.ArrayLayout(64, n))
        The counters ``READ_COUNTERS`` returns.
    clear : Out(1)
        Pulses on ``RESET``: the counters clear.
    resident : Out(resident_signature)
        A core built with ``resident_samples``: ``STORE_SAMPLES`` and ``TRAIN_EPOCH`` to the
        resident trainer (hw/host_link/resident_trainer.py); without, both are ``UNSUPPORTED``.
    """

    def __init__(self, params, core):
        p = self.params = params
        self.n_counters = len(COUNTERS) + p.max_layers
        self.nregs = LAYER_BASE + LAYER_STRIDE * p.max_layers
        self.cmd_layout = core.cmd_layout
        super().__init__({
            **executor_members(),
            "payload": In(payload_signature()),
            "received": In(1),
            "dropped": In(1),
            "weights": Out(1),
            "control": Out(core.control_signature),
            "counters": In(data.ArrayLayout(64, self.n_counters)),
            "clear": Out(1),
            **({"resident": Out(resident_signature(p))} if p.resident_samples else {}),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        wb = p.word_bytes
        wbits = (wb - 1).bit_length()
        command, length = self.command, self.length
        ctl = self.control
        cursor = self.cursor

        config_ok, batch_loaded, batch_bad = Signal(), Signal(), Signal()
        loaded_hi = Signal(9)
        # Copies of two global registers (their least value after RESET, as the core's).
        inputs, n_layers = Signal(16, init=1), Signal(4, init=1)
        # BAD_VALUE's body: the register (WRITE_CONFIG) or the sample (LOAD_BATCH) refused.
        bad_name = Signal(8)
        m.submodules.config_check = check = ConfigCheck(p)
        m.d.comb += check.layers.eq(n_layers)
        with m.If(ctl.reg_we & (ctl.reg_addr == GLOBAL["inputs"])):
            m.d.sync += inputs.eq(ctl.reg_data)
        with m.If(ctl.reg_we & (ctl.reg_addr == GLOBAL["layers"])):
            m.d.sync += n_layers.eq(ctl.reg_data)
        # The layers whose ``conv`` register is set: TRAIN_EPOCH is UNSUPPORTED while one is
        # configured (the resident store's epochs of a convolutional network are untested).
        conv_in_use = None
        if p.conv:
            conv_layers = Signal(p.max_layers)
            layer_of = Signal(4)
            m.d.comb += layer_of.eq(ctl.reg_addr[4:] - 1)
            with m.If(ctl.reg_we & (ctl.reg_addr[:4] == LAYER["conv"])
                      & (ctl.reg_addr[4:] != 0)):
                m.d.sync += conv_layers.bit_select(layer_of, 1).eq(ctl.reg_data != 0)
            conv_in_use = (conv_layers & ((Const(1, p.max_layers + 1) << n_layers) - 1)) != 0

        def reply(code, body_length=0):
            m.d.comb += [self.reply.valid.eq(1), self.reply.payload.status.eq(code),
                         self.reply.payload.length.eq(body_length)]
            m.next = "IDLE"

        # ---- LOAD_BATCH, decoded as it arrives ------------------------------------------------
        m.submodules.load_decoder = load = SampleDecoder(p, Command.LOAD_BATCH, header=2)
        m.d.comb += [load.payload.valid.eq(self.payload.valid),
                     load.payload.payload.eq(self.payload.payload),
                     load.command.eq(command), load.inputs.eq(inputs)]
        lb_first, lb_count, lb_expect = load.first, load.count, load.expect
        lb_value_bad = load.value_bad
        writes = {"load_sample": load.sample, "load_data": load.data,
                  "load_label": load.position == 0, "load_col": load.position - 1,
                  "load_en": (load.write & config_ok & (load.sample < p.max_batch)
                              & (load.position <= inputs))}
        for name, value in writes.items():
            # Pipelined, a byte's write leaves from registers, a cycle later: the decode of
            # the frame's state, then the host's choice of who drives the core and the core's
            # of who writes its buffers, was 13.45 ns of an 8 x 8 ULX3S build. (The frame's
            # CRC follows its last byte, so no command starts before the write is made.)
            if p.pipelined:
                written = Signal.like(getattr(ctl, name), name=f"{name}_registered")
                m.d.sync += written.eq(value)
                value = written
            m.d.comb += getattr(ctl, name).eq(value)
        with m.If(load.found_bad):
            m.d.sync += bad_name.eq(load.sample)
        is_load = command == Command.LOAD_BATCH
        with m.If(self.dropped & is_load):
            m.d.sync += batch_bad.eq(1)

        # ---- execution ----------------------------------------------------------------------
        first = Signal(8)                    # payload byte 0 of the frame being dispatched
        chk = Signal(data.StructLayout({
            "len_zero": 1, "cfg_bad": 1, "ww_bad": 1, "rw_len_bad": 1, "lb_bad": 1,
            "lb_grows": 1, "tr_len_bad": 1, "tr_first_bad": 1, "rr_bad": 1, "rr_len": 16}))
        cmd_reg = Signal(self.cmd_layout)
        reg_index = Signal(9)
        # A configuration value's bytes 0..2 (newest at the top); byte 3 stays under the cursor
        # until the value is written. Pipelined (CoreParams), byte 3 is registered too as it
        # arrives: the cursor's data comes late in the cycle from the frame buffer's block
        # RAM, and the value goes on to the register file and the PRNGs' seeds.
        config_low = Signal(24)
        config_high = Signal(8) if p.pipelined else cursor.data
        config_value = Cat(config_low, config_high)
        m.d.comb += [check.index.eq(reg_index), check.value.eq(config_value),
                     check.byte.eq(cursor.data), check.byte_at.eq(cursor.position[:2] - 1)]
        res_b, res_layer = Signal(8), Signal(8)
        res_read = Signal()                  # the core's result for (res_b, res_layer) is out
        # (pipelined) the result registered here: it is the byte to send
        res_answered, res_byte = Signal(), Signal(8)
        resident = p.resident_samples > 0
        epoch_ok = Signal()                  # the TRAIN_EPOCH reply is OK (else BAD_VALUE)
        if resident:
            rs = self.resident
            m.d.comb += [rs.config_ok.eq(config_ok), rs.inputs.eq(inputs)]
        cmd_view = ctl.cmd

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.received):
                    m.next = "FIRST"

            with m.State("FIRST"):
                # The cursor presents payload byte 0: registered, for timing.
                m.d.sync += first.eq(cursor.data)
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
                # `first` holds payload byte 0; the cursor is at byte 0.
                with m.Switch(command):
                    with m.Case(Command.RESET):
                        with m.If(~chk.len_zero):
                            reply(Status.BAD_LENGTH)
                        with m.Else():
                            m.d.comb += self.clear.eq(1)
                            m.d.sync += [config_ok.eq(0), batch_loaded.eq(0), batch_bad.eq(0),
                                         loaded_hi.eq(0), inputs.eq(1), n_layers.eq(1)]
                            reply(Status.OK)
                    with m.Case(Command.WRITE_CONFIG):
                        with m.If(chk.cfg_bad):
                            reply(Status.BAD_LENGTH)
                        with m.Else():
                            m.d.comb += cursor.advance.eq(1)
                            m.d.sync += reg_index.eq(first)
                            m.next = "CONFIG"
                    # The weight port executes both weight commands once their length holds.
                    for weight_command, length_bad in ((Command.WRITE_WEIGHTS, chk.ww_bad),
                                                       (Command.READ_WEIGHTS, chk.rw_len_bad)):
                        with m.Case(weight_command):
                            with m.If(length_bad):
                                reply(Status.BAD_LENGTH)
                            with m.Else():
                                m.d.comb += self.weights.eq(1)
                                m.next = "IDLE"
                    with m.Case(Command.INIT_WEIGHTS):
                        with m.If(~chk.len_zero):
                            reply(Status.BAD_LENGTH)
                        with m.Elif(~config_ok):
                            reply(Status.OUT_OF_ORDER)
                        with m.Else():
                            m.d.comb += [ctl.start.eq(1), cmd_view.op.eq(Op.INIT)]
                            m.next = "WAIT_CORE"
                    with m.Case(Command.LOAD_BATCH):
                        with m.If(~config_ok):
                            m.d.sync += batch_bad.eq(1)
                            reply(Status.OUT_OF_ORDER)
                        with m.Elif(chk.lb_bad):
                            m.d.sync += batch_bad.eq(1)
                            reply(Status.BAD_LENGTH)
                        with m.Elif(lb_value_bad):
                            m.d.sync += batch_bad.eq(1)
                            reply(Status.BAD_VALUE, 1)
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
                            m.d.comb += cursor.advance.eq(1)
                            m.d.sync += cmd_reg.batch.eq(first)
                            m.next = "TRAIN_ARGS"
                    with m.Case(Command.STORE_SAMPLES):
                        if not resident:
                            reply(Status.UNSUPPORTED)
                        else:
                            def refuse(code, body_length=0):
                                m.d.comb += rs.store_reject.eq(1)
                                reply(code, body_length)
                            with m.If(~config_ok):
                                refuse(Status.OUT_OF_ORDER)
                            with m.Elif(rs.too_wide):
                                refuse(Status.UNSUPPORTED)
                            with m.Elif(rs.store_length_bad | rs.store_gap):
                                refuse(Status.BAD_LENGTH)
                            with m.Elif(rs.store_value_bad):
                                m.d.sync += bad_name.eq(rs.store_bad_sample)
                                refuse(Status.BAD_VALUE, 1)
                            with m.Else():
                                m.d.comb += rs.store_commit.eq(1)
                                reply(Status.OK)
                    with m.Case(Command.TRAIN_EPOCH):
                        if not resident:
                            reply(Status.UNSUPPORTED)
                        else:
                            with m.If(length != EPOCH_ARGUMENTS):
                                reply(Status.BAD_LENGTH)
                            with m.Elif(~config_ok):
                                reply(Status.OUT_OF_ORDER)
                            with m.Elif(rs.too_wide if conv_in_use is None
                                        else rs.too_wide | conv_in_use):
                                reply(Status.UNSUPPORTED)
                            with m.Elif(rs.epoch_value_bad):
                                # The body names the argument: 0 samples, 1 batch, 2 seed.
                                m.d.sync += [bad_name.eq(rs.epoch_bad_argument),
                                             epoch_ok.eq(0)]
                                reply(Status.BAD_VALUE, 1)
                            with m.Elif(rs.epoch_unstored):
                                reply(Status.OUT_OF_ORDER)
                            with m.Else():
                                # The epoch overwrites the input buffer: a loaded batch is gone.
                                m.d.comb += rs.start.eq(1)
                                m.d.sync += batch_loaded.eq(0)
                                m.next = "EPOCH_RUN"
                    with m.Case(Command.READ_RESULTS):
                        with m.If(chk.rr_bad):
                            reply(Status.BAD_LENGTH)
                        with m.Else():
                            m.d.sync += [res_b.eq(0), res_layer.eq(0), res_read.eq(0),
                                         res_answered.eq(0)]
                            reply(Status.OK, chk.rr_len)
                    with m.Case(Command.READ_COUNTERS):
                        with m.If(~chk.len_zero):
                            reply(Status.BAD_LENGTH)
                        with m.Else():
                            reply(Status.OK, (len(COUNTERS) + n_layers) << 3)
                    with m.Default():
                        reply(Status.UNKNOWN_COMMAND)

            # WRITE_CONFIG: a register per 4 payload bytes (little endian), a byte per 2 cycles.
            with m.State("CONFIG"):
                with m.If(cursor.at_end):
                    # A layer's geometry left unfinished is refused; the configuration is usable
                    # once every layer in use has a checked geometry.
                    m.d.comb += check.frame_end.eq(1)
                    with m.If(check.open):
                        m.d.sync += [config_ok.eq(0), bad_name.eq(check.open_name)]
                        reply(Status.BAD_VALUE, 1)
                    with m.Else():
                        m.d.sync += config_ok.eq(check.usable)
                        reply(Status.OK)
                with m.Else():
                    m.next = "CONFIG_WAIT"
            with m.State("CONFIG_WAIT"):
                m.next = "CONFIG_BYTE"
            with m.State("CONFIG_BYTE"):
                # The cursor presents the byte at its position (moved two states ago). Byte 3
                # (position 4k + 4 after the first register's index) stays under the cursor
                # until the register is written. The range check takes each byte.
                m.d.comb += check.byte_valid.eq(1)
                with m.If(cursor.position[:2] == 0):
                    if p.pipelined:
                        m.d.sync += config_high.eq(cursor.data)
                    m.next = "CONFIG_JUDGE"
                with m.Else():
                    m.d.comb += cursor.advance.eq(1)
                    m.d.sync += config_low.eq(Cat(config_low[8:], cursor.data))
                    m.next = "CONFIG_WAIT"
            with m.State("CONFIG_JUDGE"):
                value = config_value
                # A register that turns on a feature the core was built without is refused
                # (the configuration stays unwritten: TRAIN and INFER are then out of order).
                missing = [GLOBAL[name] for name, built in (("dropout", p.dropout),
                                                            ("feedback", p.sign_feedback))
                           if not built]
                needs_missing = Signal()
                for missing_index in missing:
                    with m.If((reg_index == missing_index) & (value != 0)):
                        m.d.comb += needs_missing.eq(1)
                with m.If(needs_missing):
                    m.d.sync += config_ok.eq(0)
                    reply(Status.UNSUPPORTED)
                with m.Else():
                    m.d.comb += check.start.eq(1)
                    m.next = "CONFIG_WRITE"
            with m.State("CONFIG_WRITE"):
                # Written once the range check (contract/limits.py) passes; else refused, and
                # the configuration is unusable until a WRITE_CONFIG ends well.
                with m.If(check.done):
                    # A core without convolutions takes only 0 in a layer's conv register
                    # (offset 15 of blocks 1..15; the range check's unused register): any other
                    # value asks for what the core was built without.
                    conv_register = ((reg_index[:4] == LAYER["conv"]) & (reg_index[4:] != 0)
                                     if not p.conv else Const(0))
                    with m.If(check.bad & conv_register):
                        m.d.sync += config_ok.eq(0)
                        reply(Status.UNSUPPORTED)
                    with m.Elif(check.bad):
                        m.d.sync += [config_ok.eq(0), bad_name.eq(check.name)]
                        reply(Status.BAD_VALUE, 1)
                    with m.Else():
                        m.d.comb += [ctl.reg_we.eq(1), ctl.reg_addr.eq(reg_index),
                                     ctl.reg_data.eq(config_value), cursor.advance.eq(1)]
                        m.d.sync += reg_index.eq(reg_index + 1)
                        m.next = "CONFIG"

            if resident:
                with m.State("EPOCH_RUN"):
                    with m.If(rs.done):
                        m.d.sync += epoch_ok.eq(1)
                        reply(Status.OK, n_layers << 1)

            with m.State("TRAIN_ARGS"):
                m.next = "TRAIN_ARG_BYTE"
            with m.State("TRAIN_ARG_BYTE"):
                # INFER: early_exit at byte 1, threshold at bytes 2..3.
                with m.Switch(cursor.position):
                    with m.Case(1):
                        m.d.sync += cmd_reg.early_exit.eq(cursor.data != 0)
                    with m.Case(2):
                        m.d.sync += cmd_reg.threshold[:8].eq(cursor.data)
                    with m.Case(3):
                        m.d.sync += cmd_reg.threshold[8:].eq(cursor.data)
                m.d.comb += cursor.advance.eq(1)
                with m.If((command == Command.TRAIN) | (cursor.position == 3)):
                    m.next = "START"
                with m.Else():
                    m.next = "TRAIN_ARGS"
            with m.State("START"):
                early_exit = (command == Command.INFER) & cmd_reg.early_exit

                def start():
                    m.d.comb += [ctl.start.eq(1),
                                 cmd_view.batch.eq(cmd_reg.batch),
                                 cmd_view.op.eq(Mux(command == Command.TRAIN, Op.TRAIN,
                                                    Op.INFER)),
                                 cmd_view.early_exit.eq(early_exit),
                                 cmd_view.threshold.eq(cmd_reg.threshold)]
                    m.d.sync += [batch_loaded.eq(0), cmd_reg.early_exit.eq(0)]
                    m.next = "WAIT_CORE"

                # Refused: early exit on a core built without it; the batch stays loaded.
                refused = None if p.early_exit else early_exit
                if refused is not None:
                    with m.If(refused):
                        m.d.sync += cmd_reg.early_exit.eq(0)
                        reply(Status.UNSUPPORTED)
                    with m.Else():
                        start()
                else:
                    start()
            with m.State("WAIT_CORE"):
                with m.If(ctl.done):
                    with m.If(command == Command.TRAIN):
                        reply(Status.OK, n_layers << 1)
                    with m.Else():
                        reply(Status.OK)

        # ---- reply bodies from the core ------------------------------------------------------
        at = self.body_index
        taken = self.body.valid & self.body.ready

        def count_byte(counts):
            # Byte ``at`` of the u16 correct counts per layer (TRAIN, TRAIN_EPOCH), low first.
            value = counts[at[1:5]]
            return Mux(at[0], value[8:16], value[:8])

        with m.Switch(command):
            with m.Case(Command.WRITE_CONFIG, Command.LOAD_BATCH,
                        *([Command.STORE_SAMPLES] if resident else [])):
                m.d.comb += [self.body.valid.eq(1), self.body.payload.eq(bad_name)]
            with m.Case(Command.TRAIN):
                m.d.comb += [self.body.valid.eq(1), self.body.payload.eq(count_byte(ctl.correct))]
            if resident:
                with m.Case(Command.TRAIN_EPOCH):
                    # BAD_VALUE's body is the argument named; OK's the correct predictions.
                    m.d.comb += [self.body.valid.eq(1),
                                 self.body.payload.eq(Mux(epoch_ok,
                                                          count_byte(self.resident.correct),
                                                          bad_name))]
            with m.Case(Command.READ_COUNTERS):
                value = Signal(64)
                with m.Switch(at[3:11]):
                    for k in range(self.n_counters):
                        with m.Case(k):
                            m.d.comb += value.eq(self.counters[k])
                if p.all_counters:
                    # A counter's eight bytes leave over many cycles while it may move
                    # (``cycles`` always does): the first byte goes out live and the counter is
                    # held as it is taken; the other seven come from the held copy, so no
                    # counter reads torn. (A core with only the driver's counters needs no hold:
                    # they stand still while no command runs.)
                    held = Signal(64)
                    first = at[:3] == 0
                    with m.If(taken & first):
                        m.d.sync += held.eq(value)
                    byte = Mux(first, value[:8], held.word_select(at[:3], 8))
                else:
                    byte = value.word_select(at[:3], 8)
                m.d.comb += [self.body.valid.eq(1), self.body.payload.eq(byte)]
            with m.Case(Command.READ_RESULTS):
                # res_layer walks the L + 1 bytes of sample res_b; the core answers a cycle
                # after each new address. Pipelined, its answer is registered here and sent a
                # cycle later (the results' block RAM, then the transmitter's CRC, in one cycle
                # was 15.1 ns of an 8 x 8 ULX3S build).
                answer = Mux(res_layer == n_layers, ctl.res_exit, ctl.res_pred)
                with m.If(self.body_active):
                    m.d.comb += [ctl.res_sample.eq(res_b), ctl.res_layer.eq(res_layer)]
                    if p.pipelined:
                        m.d.sync += [res_answered.eq(res_read & ~taken), res_byte.eq(answer)]
                        m.d.comb += [self.body.valid.eq(res_answered),
                                     self.body.payload.eq(res_byte)]
                    else:
                        m.d.comb += [self.body.valid.eq(res_read), self.body.payload.eq(answer)]
                    m.d.sync += res_read.eq(~taken)
                with m.If(taken):
                    m.d.sync += res_layer.eq(res_layer + 1)
                    with m.If(res_layer == n_layers):
                        m.d.sync += [res_layer.eq(0), res_b.eq(res_b + 1)]
        return m
