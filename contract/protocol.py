"""The host protocol: framed commands to the accelerator and its replies.

Shared by the host driver and the RTL's frame parser as a definition, like the configuration.
A frame on the wire::

    SYNC (0xA5) | command (1) | length (2, little endian) | payload (length) | crc (1)

``crc`` is CRC-8/SMBUS (polynomial 0x07, initial value 0, no reflection, no final XOR) over
command, length and payload: :data:`FRAME_CRC`, ``amaranth.lib.crc``'s catalogue entry, whose
software model the host uses and whose hardware the RTL instantiates, so the CRC is written
once. A reply is a frame whose command byte is the request's command with bit 7 set, and
whose payload starts with a :class:`Status` byte. The receiver resynchronises after garbage, a
bad CRC or an oversized length by dropping one byte and searching for the next SYNC.
"""

import enum
from dataclasses import dataclass

from amaranth.lib.crc.catalog import CRC8_SMBUS

__all__ = ["SYNC", "MAX_PAYLOAD", "Command", "Status", "Frame", "FrameError", "FRAME_CRC", "crc8",
           "encode", "FrameDecoder", "reply"]

SYNC = 0xA5
MAX_PAYLOAD = 4096
REPLY = 0x80


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


class FrameError(ValueError):
    """A frame that cannot be encoded (the message names the problem)."""


@dataclass(frozen=True)
class Frame:
    command: int
    payload: bytes = b""


#: The frame check over bytes: CRC-8/SMBUS, polynomial x^8 + x^2 + x + 1 (0x07), initial value
#: 0, MSB first, no reflection, no final XOR (check value 0xF4). ``FRAME_CRC.create()`` is the
#: RTL's CRC processor (hw/host_link/framing.py).
FRAME_CRC = CRC8_SMBUS(data_width=8)


def crc8(data):
    """The frame CRC of ``data`` (bytes), by :data:`FRAME_CRC`'s software model."""
    return FRAME_CRC.compute(data)


def encode(command, payload=b""):
    """The bytes of one frame."""
    payload = bytes(payload)
    if not 0 <= int(command) <= 0xFF:
        raise FrameError(f"command {command} does not fit in a byte")
    if len(payload) > MAX_PAYLOAD:
        raise FrameError(f"payload of {len(payload)} bytes exceeds the maximum {MAX_PAYLOAD}")
    body = bytes([int(command)]) + len(payload).to_bytes(2, "little") + payload
    return bytes([SYNC]) + body + bytes([crc8(body)])


def reply(command, status, payload=b""):
    """The bytes of the reply to ``command``."""
    return encode(int(command) | REPLY, bytes([int(status)]) + bytes(payload))


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
            if len(self.buffer) < 4:
                return events
            length = int.from_bytes(self.buffer[2:4], "little")
            if length > self.max_payload:
                events.append((Status.OVERSIZED, f"length {length} > {self.max_payload}"))
                self._drop_one()
                continue
            if len(self.buffer) < 5 + length:
                return events
            body = bytes(self.buffer[1:4 + length])
            if crc8(body) != self.buffer[4 + length]:
                events.append((Status.BAD_CRC, f"command {body[0]:#04x}, {length} bytes"))
                self._drop_one()
                continue
            events.append(Frame(body[0], body[3:]))
            del self.buffer[:5 + length]

    def _drop_one(self):
        del self.buffer[:1]
        self.skipped += 1
