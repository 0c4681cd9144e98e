"""Frames on the byte streams: the receiver (sync hunt, header, payload into the frame buffer, CRC,
frame timeout) and the transmitter (reply header, body, CRC). docs/HOST_INTERFACE.md, "Frames"."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from contract.protocol import FRAME_CRC, MAX_PAYLOAD, REPLY, SYNC, Status

from ..params import index_bits
from ..ram_collisions import read_data

__all__ = ["PAYLOAD_INDEX_BITS", "cursor_signature", "reply_layout", "executor_members",
           "FrameReceiver", "FrameTransmitter"]

#: Bits of a position in a frame's payload (0 .. MAX_PAYLOAD).
PAYLOAD_INDEX_BITS = index_bits(MAX_PAYLOAD + 1)


def cursor_signature():
    """The frame buffer's read side, as the receiver offers it to the parts executing a frame.

    ``position`` starts at payload byte 0 when a frame's length arrives and moves on by one in
    the cycle after ``advance``; ``data`` is the payload byte at ``position`` one cycle after
    ``position`` took its value (a block RAM read). ``at_end`` is ``position == length``.
    Not a stream: the parts read fields by position (an address byte, a ``TRAIN`` argument) and
    pace themselves, a byte per two cycles.
    """
    return wiring.Signature({
        "data": Out(8),
        "position": Out(PAYLOAD_INDEX_BITS),
        "at_end": Out(1),
        "advance": In(1),
    })


#: A reply to send: its status byte and how many bytes of body follow the status.
reply_layout = data.StructLayout({"status": 8, "length": 16})


def executor_members():
    """The members of a part that executes a held frame (the command dispatcher, the weight
    port): the frame's command and length and its payload cursor in; a reply request and its
    body out, the body's byte index and activity from the transmitter in."""
    return {
        "command": In(8),
        "length": In(16),
        "cursor": In(cursor_signature()),
        "reply": Out(stream.Signature(reply_layout, always_ready=True)),
        "body": Out(stream.Signature(8)),
        "body_index": In(PAYLOAD_INDEX_BITS),
        "body_active": In(1),
    }


class FrameReceiver(wiring.Component):
    """Takes one frame from ``rx`` into the frame buffer and holds it until its reply is sent.

    Members
    -------
    rx : In(stream.Signature(8))
        Bytes from the host; ready while a frame is being received (not while one executes).
    command, tag, length : Out
        The frame's command byte, tag and payload length (valid from the cycle after each
        arrives). The tag is only echoed in the reply: after a frame dropped before its tag
        arrived it still holds the frame before's, which is why a dropped frame's reply answers
        nothing (``contract.protocol.is_answer``).
    payload : Out(stream.Signature({data, index}, always_ready=True))
        Each payload byte, with its index, as it arrives (``LOAD_BATCH`` is decoded on the fly).
    received : Out(1)
        Pulses when the frame's CRC byte matched: the frame is held for execution.
    error : Out(stream.Signature(8, always_ready=True))
        A frame dropped (``TIMEOUT``, ``OVERSIZED``, ``BAD_CRC``): the status of its reply
        (0 while not valid).
    dropped : Out(1)
        With ``error``, when the frame was dropped in its payload or CRC byte (a ``LOAD_BATCH``
        that already wrote part of its samples).
    cursor : Out(cursor_signature())
        Reads the held frame's payload.
    reply_sent : In(1)
        The held frame's reply (or the error's) went out: hunt for the next frame.
    """

    def __init__(self, params):
        self.params = params
        super().__init__({
            "rx": In(stream.Signature(8)),
            "command": Out(8),
            "tag": Out(8),
            "length": Out(16),
            "payload": Out(stream.Signature(
                data.StructLayout({"data": 8, "index": PAYLOAD_INDEX_BITS}), always_ready=True)),
            "received": Out(1),
            "error": Out(stream.Signature(8, always_ready=True)),
            "dropped": Out(1),
            "cursor": Out(cursor_signature()),
            "reply_sent": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params

        command, length = self.command, self.length
        index = Signal(PAYLOAD_INDEX_BITS)           # the next payload byte's position
        position = Signal(PAYLOAD_INDEX_BITS)
        # ``position == length`` kept in a register: the executors' end-of-payload tests (and
        # the replies they start) then begin at a flip-flop, not after a 13-bit comparison
        # (the iCE40's critical path ran through it into the transmitter).
        remaining = Signal(PAYLOAD_INDEX_BITS)       # length - position, modulo 2**bits
        at_end = Signal(init=1)
        timer = Signal(range(p.frame_timeout + 1))   # cycles since the last byte of a frame
        m.submodules.frame_buffer = fbuf = Memory(shape=8, depth=MAX_PAYLOAD, init=[])
        wr, rd = fbuf.write_port(), fbuf.read_port()
        m.submodules.crc = crc = FRAME_CRC.create()

        byte = self.rx.payload
        got = self.rx.valid & self.rx.ready
        m.d.comb += [
            crc.data.eq(byte),
            self.payload.payload.data.eq(byte), self.payload.payload.index.eq(index),
            rd.addr.eq(position), rd.en.eq(1),
            self.cursor.data.eq(read_data(m, rd, wr, p.scramble_collisions)),
            self.cursor.position.eq(position),
            self.cursor.at_end.eq(at_end),
        ]
        with m.If(self.cursor.advance):
            m.d.sync += [position.eq(position + 1), remaining.eq(remaining - 1),
                         at_end.eq(remaining == 1)]

        def drop(status):
            m.d.comb += [self.error.valid.eq(1), self.error.payload.eq(status)]
            m.next = "HELD"

        def receiving():
            """In a frame after its SYNC: take a byte, or time out when none comes."""
            m.d.comb += [self.rx.ready.eq(1), crc.valid.eq(got)]
            m.d.sync += timer.eq(Mux(got, 0, timer + 1))

        with m.FSM():
            with m.State("HUNT"):
                m.d.comb += [self.rx.ready.eq(1), crc.start.eq(1)]
                with m.If(got & (byte == SYNC)):
                    m.d.sync += timer.eq(0)
                    m.next = "CMD"
            # The command byte, the tag and the length's low byte: stored as they arrive.
            for state, field, nxt in (("CMD", command, "TAG"), ("TAG", self.tag, "LEN0"),
                                      ("LEN0", length[:8], "LEN1")):
                with m.State(state):
                    receiving()
                    with m.If(got):
                        m.d.sync += field.eq(byte)
                        m.next = nxt
                    with m.Elif(timer == p.frame_timeout):
                        drop(Status.TIMEOUT)
            with m.State("LEN1"):
                receiving()
                with m.If(got):
                    full_length = Cat(length[:8], byte)
                    m.d.sync += [length[8:].eq(byte), index.eq(0), position.eq(0),
                                 remaining.eq(full_length), at_end.eq(full_length == 0)]
                    with m.If(full_length > MAX_PAYLOAD):
                        drop(Status.OVERSIZED)
                    with m.Elif(full_length == 0):
                        m.next = "CRC"
                    with m.Else():
                        m.next = "PAYLOAD"
                with m.Elif(timer == p.frame_timeout):
                    drop(Status.TIMEOUT)
            with m.State("PAYLOAD"):
                receiving()
                m.d.comb += [wr.en.eq(got), wr.addr.eq(index), wr.data.eq(byte),
                             self.payload.valid.eq(got)]
                with m.If(got):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index == length - 1):
                        m.next = "CRC"
                with m.Elif(timer == p.frame_timeout):
                    m.d.comb += self.dropped.eq(1)
                    drop(Status.TIMEOUT)
            with m.State("CRC"):
                # The CRC byte is compared, not fed to the CRC processor.
                m.d.comb += self.rx.ready.eq(1)
                m.d.sync += timer.eq(Mux(got, 0, timer + 1))
                with m.If(got):
                    with m.If(byte != crc.crc):
                        m.d.comb += self.dropped.eq(1)
                        drop(Status.BAD_CRC)
                    with m.Else():
                        m.d.comb += self.received.eq(1)
                        m.next = "HELD"
                with m.Elif(timer == p.frame_timeout):
                    m.d.comb += self.dropped.eq(1)
                    drop(Status.TIMEOUT)
            with m.State("HELD"):
                with m.If(self.reply_sent):
                    m.next = "HUNT"
        return m


class FrameTransmitter(wiring.Component):
    """Sends one reply frame: ``SYNC``, ``command | REPLY``, tag, length, status, body, CRC.

    Members
    -------
    tx : Out(stream.Signature(8))
        Bytes to the host.
    command, tag : In(8)
        The request's command byte and tag (the receiver's, held until the reply is sent).
    reply : In(stream.Signature(reply_layout, always_ready=True))
        Starts a reply. Only requested while no reply is being sent (the receiver holds each
        frame until its reply is out).
    body : In(stream.Signature(8))
        The body bytes after the status, ``reply.length`` of them, taken while ``body_active``.
    body_index : Out
        Which body byte ``body`` should present (0 first).
    body_active : Out(1)
        The body is being sent (its source may fetch the next byte).
    sent : Out(1)
        Pulses as the reply's CRC byte is taken.
    """

    def __init__(self, params):
        self.params = params
        super().__init__({
            "tx": Out(stream.Signature(8)),
            "command": In(8),
            "tag": In(8),
            "reply": In(stream.Signature(reply_layout, always_ready=True)),
            "body": In(stream.Signature(8)),
            "body_index": Out(PAYLOAD_INDEX_BITS),
            "body_active": Out(1),
            "sent": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        status = Signal(8)
        frame_length = Signal(16)            # the status byte and the body
        tx_byte = Signal(8)
        sent = self.tx.valid & self.tx.ready
        m.submodules.crc = crc = FRAME_CRC.create()
        m.d.comb += [self.tx.payload.eq(tx_byte), crc.data.eq(tx_byte),
                     self.body.ready.eq(self.body_active & self.tx.ready)]

        def emit(value, nxt, crc_on=True):
            m.d.comb += [self.tx.valid.eq(1), tx_byte.eq(value)]
            if crc_on:
                m.d.comb += crc.valid.eq(sent)
            with m.If(sent):
                m.next = nxt

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.reply.valid):
                    m.d.sync += [status.eq(self.reply.payload.status),
                                 frame_length.eq(1 + self.reply.payload.length)]
                    m.next = "SYNC"
            with m.State("SYNC"):
                m.d.comb += crc.start.eq(1)
                emit(SYNC, "CMD", crc_on=False)
            with m.State("CMD"):
                emit(self.command | REPLY, "TAG")
            with m.State("TAG"):
                emit(self.tag, "LEN0")
            with m.State("LEN0"):
                emit(frame_length[:8], "LEN1")
            with m.State("LEN1"):
                emit(frame_length[8:], "STATUS")
            with m.State("STATUS"):
                emit(status, "CRC")
                with m.If(sent & (frame_length != 1)):
                    m.d.sync += self.body_index.eq(0)
                    m.next = "BODY"
            with m.State("BODY"):
                m.d.comb += [self.body_active.eq(1), self.tx.valid.eq(self.body.valid),
                             tx_byte.eq(self.body.payload), crc.valid.eq(sent)]
                with m.If(sent):
                    m.d.sync += self.body_index.eq(self.body_index + 1)
                    with m.If(self.body_index == frame_length - 2):
                        m.next = "CRC"
            with m.State("CRC"):
                emit(crc.crc, "IDLE", crc_on=False)
                m.d.comb += self.sent.eq(sent)
        return m
