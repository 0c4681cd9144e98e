"""host/serial_transport.py's timing at the boards' baud rates: the reply timeout and the quiet
time of ``drain`` scale with a longest frame's time on the line, and never drop below what a
USB-serial bridge's latency needs (on a pseudo-terminal, which takes any rate)."""

import os
import time

import pytest

from contract.protocol import FRAME_OVERHEAD, MAX_PAYLOAD, Command, FrameDecoder, Status, reply
from host.serial_transport import MIN_QUIET_S, TIMEOUT_S, SerialTransport, frame_seconds


@pytest.fixture
def pty():
    master, slave = os.openpty()
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


@pytest.mark.parametrize("baud,timeout,quiet", [
    (3_000_000, TIMEOUT_S, MIN_QUIET_S),            # a longest frame: 13.7 ms
    (12_000_000, TIMEOUT_S, MIN_QUIET_S),
    (115_200, TIMEOUT_S, 41_020 / 115_200),         # 0.356 s, as before
    (9_600, 2 * 41_020 / 9_600, 41_020 / 9_600),    # 4.3 s: the timeout covers a longest reply
])
def test_timeout_and_quiet_time_follow_the_baud_rate(pty, baud, timeout, quiet):
    assert frame_seconds(baud) == (MAX_PAYLOAD + FRAME_OVERHEAD) * 10 / baud
    link = SerialTransport(pty[1], baud)
    try:
        assert link.serial.baudrate == baud
        assert link.timeout == pytest.approx(timeout) and link.quiet == pytest.approx(quiet)
    finally:
        link.close()
    link = SerialTransport(pty[1], baud, timeout=0.5, quiet=0.01)   # given: taken as they are
    assert (link.timeout, link.quiet) == (0.5, 0.01)
    link.close()


def test_an_exchange_and_a_drain_at_3_mbaud(pty):
    master, port = pty
    link = SerialTransport(port, 3_000_000)
    try:
        answer = reply(Command.READ_COUNTERS, Status.OK, b"\x01" * 16)
        os.write(master, answer)
        got = link.exchange(b"", frames=1)
        assert FrameDecoder().feed(got)[0].payload == bytes([Status.OK]) + b"\x01" * 16
        os.write(master, b"\x55" * 10)
        t0 = time.monotonic()
        assert link.drain() == b"\x55" * 10
        assert time.monotonic() - t0 >= MIN_QUIET_S            # not 14 ms: the bridge's latency
    finally:
        link.close()
