"""The UART transport: the host driver over a serial port (a board, or a pseudo-terminal)."""

import time

from contract.protocol import FRAME_OVERHEAD, MAX_PAYLOAD, Frame, FrameDecoder
from .transport import Transport, TransportTimeout

__all__ = ["SerialTransport", "TIMEOUT_S", "MIN_QUIET_S", "frame_seconds"]

#: The default wait for a reply, at any baud rate where a longest frame takes less than half of
#: it (115 200 baud and faster: 0.36 s); slower links wait twice a longest frame's time.
TIMEOUT_S = 2.0
#: The least quiet time of ``drain``: a USB-serial bridge holds the bytes it received until its
#: latency timer expires (16 ms by default on FTDI's chips) or its buffer fills, so a line
#: whose longest frame takes less (14 ms at 3 Mbaud) is not yet quiet after that long.
MIN_QUIET_S = 0.1


def frame_seconds(baud):
    """A longest frame's time on a UART at ``baud`` (10 bits a byte)."""
    return (MAX_PAYLOAD + FRAME_OVERHEAD) * 10 / baud


class SerialTransport(Transport):
    """Bytes over ``port`` (a device such as /dev/ttyUSB1, or any pyserial URL) at ``baud``.

    ``exchange`` writes the request and reads until the asked-for number of complete, valid
    frames arrived, or raises :class:`TransportTimeout` after ``timeout`` seconds without them
    (default :data:`TIMEOUT_S`, or twice a longest frame's time when that is longer); ``drain``
    reads until the line has been quiet for ``quiet`` seconds (default a longest frame's time,
    at least :data:`MIN_QUIET_S`).
    """

    def __init__(self, port, baud=115200, timeout=None, quiet=None):
        import serial
        try:
            self.serial = serial.serial_for_url(port, baudrate=baud, timeout=0.05)
        except (serial.SerialException, ValueError, OSError) as e:
            raise OSError(f"cannot open serial port {port}: {e}") from None
        self.port, self.baud = port, baud
        self.timeout = max(TIMEOUT_S, 2 * frame_seconds(baud)) if timeout is None else timeout
        # A device still answering the rest of a damaged frame is never quiet for a longest
        # frame's time, nor its bytes held in the USB bridge for longer than MIN_QUIET_S.
        self.quiet = max(MIN_QUIET_S, frame_seconds(baud)) if quiet is None else quiet
        self.decoder = FrameDecoder()
        self.pending = bytearray()

    def exchange(self, data, frames=1, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        if data:
            self.serial.write(bytes(data))
            self.serial.flush()
        received = bytearray(self.pending)
        self.pending.clear()
        count = sum(isinstance(e, Frame) for e in self.decoder.feed(bytes(received)))
        deadline = time.monotonic() + timeout
        while count < frames:
            if time.monotonic() > deadline:
                self.decoder = FrameDecoder()
                raise TransportTimeout(f"{self.port}: no reply within {timeout:g} s "
                                       f"({len(received)} bytes received)")
            chunk = self.serial.read(max(1, self.serial.in_waiting))
            if chunk:
                received += chunk
                count += sum(isinstance(e, Frame) for e in self.decoder.feed(chunk))
        return bytes(received)

    def drain(self, quiet=None):
        """Return whatever arrives until the line has been quiet for ``quiet`` seconds (the
        transport's ``quiet``, by default the time of a longest frame at the baud rate, at least
        :data:`MIN_QUIET_S`)."""
        quiet = self.quiet if quiet is None else quiet
        out = bytearray(self.pending)
        self.pending.clear()
        last = time.monotonic()
        while time.monotonic() - last < quiet:
            chunk = self.serial.read(max(1, self.serial.in_waiting))
            if chunk:
                out += chunk
                last = time.monotonic()
        self.decoder = FrameDecoder()
        return bytes(out)

    def close(self):
        self.serial.close()
