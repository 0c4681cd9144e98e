"""The UART transport: the host driver over a serial port (a board, or a pseudo-terminal)."""

import time

from contract.protocol import FRAME_OVERHEAD, MAX_PAYLOAD, Frame, FrameDecoder
from .transport import Transport, TransportTimeout

__all__ = ["SerialTransport"]


class SerialTransport(Transport):
    """Bytes over ``port`` (a device such as /dev/ttyUSB1, or any pyserial URL).

    ``exchange`` writes the request and reads until the asked-for number of complete, valid
    frames arrived, or raises :class:`TransportTimeout` after ``timeout`` seconds without them;
    ``drain`` reads until the line has been quiet for ``quiet`` seconds.
    """

    def __init__(self, port, baud=115200, timeout=2.0, quiet=None):
        import serial
        try:
            self.serial = serial.serial_for_url(port, baudrate=baud, timeout=0.05)
        except (serial.SerialException, ValueError, OSError) as e:
            raise OSError(f"cannot open serial port {port}: {e}") from None
        self.port, self.timeout = port, timeout
        # A longest frame's time on the line (10 bits a byte): a device still answering the
        # rest of a damaged frame is never quiet for that long.
        self.quiet = (MAX_PAYLOAD + FRAME_OVERHEAD) * 10 / baud if quiet is None else quiet
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
        transport's ``quiet``, by default the time of a longest frame at the baud rate)."""
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
