"""The host protocol: framed commands to the accelerator and its replies.

Shared by the host driver and the RTL's frame parser as a definition, like the configuration.
A frame on the wire::

    SYNC (0xA5) | command (1) | tag (1) | length (2, little endian) | payload (length) | crc (1)

``crc`` is CRC-8/SMBUS (polynomial 0x07, initial value 0, no reflection, no final XOR) over
command, tag, length and payload: :data:`FRAME_CRC`, ``amaranth.lib.crc``'s catalogue entry,
whose software model the host uses and whose hardware the RTL instantiates, so the CRC is
written once. A reply is a frame whose command byte is the request's command with bit 7 set,
whose tag is the request's tag, and whose payload starts with a :class:`Status` byte. The tag
is the host's request number: it matches a reply to its request (see :func:`is_answer` for the
rule). The receiver resynchronises after garbage, a bad CRC or an oversized length by dropping
one byte and searching for the next SYNC.
"""

import enum
from dataclasses import dataclass

from amaranth.lib.crc.catalog import CRC8_SMBUS

__all__ = ["SYNC", "MAX_PAYLOAD", "FRAME_OVERHEAD", "STORE_HEADER", "EPOCH_ARGUMENTS", "Command", "Status", "DAMAGED", "Frame",
           "FrameError", "FRAME_CRC", "crc8", "encode", "FrameDecoder", "reply", "is_answer"]

SYNC = 0xA5
MAX_PAYLOAD = 4096
REPLY = 0x80
#: Bytes of a frame besides its payload: SYNC, command, tag, two of length, CRC.
FRAME_OVERHEAD = 6
#: Payload bytes of ``STORE_SAMPLES`` before its samples: ``u16 first``, ``u8 count``.
STORE_HEADER = 3
#: ``TRAIN_EPOCH``'s payload: ``u16 samples``, ``u8 batch``, ``u32 seed``.
EPOCH_ARGUMENTS = 7


class Command(enum.IntEnum):
    RESET = 0x01
    WRITE_CONFIG = 0x02
    WRITE_WEIGHTS = 0x03
    READ_WEIGHTS = 0x04
    INIT_WEIGHTS = 0x05
    LOAD_BATCH = 0x06
    TRAIN = 0x07
    INFER = 0x08
    READ_RESULTS = 0x09
    READ_COUNTERS = 0x0A
    STORE_SAMPLES = 0x0B       # resident training (a core built with resident_samples)
    TRAIN_EPOCH = 0x0C


class Status(enum.IntEnum):
    OK = 0x00
    BAD_CRC = 0x01
    UNKNOWN_COMMAND = 0x02
    OVERSIZED = 0x03
    BAD_LENGTH = 0x04          # payload length wrong for the command
    OUT_OF_ORDER = 0x05        # e.g. TRAIN before WRITE_CONFIG or LOAD_BATCH
    # 0x06 is reserved: it was BUSY, never sent. The device takes no byte while a command
    # executes (rx not ready), so no frame ever arrives that it would have to refuse as busy.
    TIMEOUT = 0x07             # a frame stopped arriving part-way; it was dropped
    UNSUPPORTED = 0x08         # needs a feature the core was built without (dropout, ...)
    BAD_VALUE = 0x09           # a value outside the core's limits (contract/limits.py); the
    #                            body names it: WRITE_CONFIG the register index, LOAD_BATCH
    #                            the sample, the weight commands nothing (their address range)


#: Statuses of a reply to a frame the device dropped as it arrived (checksum wrong, length over
#: the maximum, bytes stopped coming): that frame never ran, and its command and tag may be
#: line noise, so such a reply answers no request (:func:`is_answer`).
DAMAGED = frozenset({Status.BAD_CRC, Status.OVERSIZED, Status.TIMEOUT})


class FrameError(ValueError):
    """A frame that cannot be encoded (the message names the problem)."""


@dataclass(frozen=True)
class Frame:
    command: int
    payload: bytes = b""
    tag: int = 0


#: The frame check over bytes: CRC-8/SMBUS, polynomial x^8 + x^2 + x + 1 (0x07), initial value
#: 0, MSB first, no reflection, no final XOR (check value 0xF4). ``FRAME_CRC.create()`` is the
#: RTL's CRC processor (hw/host_link/framing.py).
FRAME_CRC = CRC8_SMBUS(data_width=8)


def crc8(data):
    """The frame CRC of ``data`` (bytes), by :data:`FRAME_CRC`'s software model."""
    return FRAME_CRC.compute(data)


def encode(command, payload=b"", tag=0):
    """The bytes of one frame."""
    payload = bytes(payload)
    for name, value in (("command", command), ("tag", tag)):
        if not 0 <= int(value) <= 0xFF:
            raise FrameError(f"{name} {value} does not fit in a byte")
    if len(payload) > MAX_PAYLOAD:
        raise FrameError(f"payload of {len(payload)} bytes exceeds the maximum {MAX_PAYLOAD}")
    body = bytes([int(command), int(tag)]) + len(payload).to_bytes(2, "little") + payload
    return bytes([SYNC]) + body + bytes([crc8(body)])


def reply(command, status, payload=b"", tag=0):
    """The bytes of the reply to ``command`` (a request with ``tag``)."""
    return encode(int(command) | REPLY, bytes([int(status)]) + bytes(payload), tag)


def is_answer(frame, command, tag):
    """Whether ``frame`` (a decoded :class:`Frame`) answers the request ``command`` with ``tag``.

    It must be a reply to that command with that tag and carry a status, and the status must
    not be one of :data:`DAMAGED`: a dropped frame's reply echoes whatever command and tag
    bytes the device took, which may be noise, or (when the frame was cut before its tag) the
    tag of the frame before, so it never answers anything. The host treats it as "some frame
    was lost on the way", possibly its own.
    """
    return (isinstance(frame, Frame) and frame.command == int(command) | REPLY
            and frame.tag == tag and len(frame.payload) >= 1
            and frame.payload[0] not in DAMAGED)


class FrameDecoder:
    """Turns a byte stream into frames, resynchronising after anything malformed.

    :meth:`feed` returns the events the new bytes complete, in order: :class:`Frame` for a good
    frame, or ``(Status, detail)`` for a rejected one (bad CRC, oversized length). Bytes before
    a SYNC are skipped and counted in :attr:`skipped`.
    """

    def __init__(self, max_payload=MAX_PAYLOAD):
        self.max_payload = max_payload
        self.buffer = bytearray()
        self.skipped = 0

    def feed(self, data):
        self.buffer.extend(data)
        events = []
        while True:
            start = self.buffer.find(SYNC)
            if start < 0:
                self.skipped += len(self.buffer)
                self.buffer.clear()
                return events
            self.skipped += start
            del self.buffer[:start]
            if len(self.buffer) < FRAME_OVERHEAD - 1:
                return events
            length = int.from_bytes(self.buffer[3:5], "little")
            if length > self.max_payload:
                events.append((Status.OVERSIZED, f"length {length} > {self.max_payload}"))
                self._drop_one()
                continue
            if len(self.buffer) < FRAME_OVERHEAD + length:
                return events
            body = bytes(self.buffer[1:FRAME_OVERHEAD - 1 + length])
            if crc8(body) != self.buffer[FRAME_OVERHEAD - 1 + length]:
                events.append((Status.BAD_CRC, f"command {body[0]:#04x}, {length} bytes"))
                self._drop_one()
                continue
            events.append(Frame(body[0], body[4:], body[1]))
            del self.buffer[:FRAME_OVERHEAD + length]

    def _drop_one(self):
        del self.buffer[:1]
        self.skipped += 1
