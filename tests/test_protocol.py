import random

import pytest

from contract.protocol import (MAX_PAYLOAD, SYNC, Command, Frame, FrameDecoder, FrameError, Status,
                           crc8, encode, reply)


def test_crc8_check_value():
    # The catalogued check value of CRC-8 (poly 0x07, init 0, no reflection, no xor-out).
    assert crc8(b"123456789") == 0xF4
    assert crc8(b"") == 0


def test_frame_layout():
    raw = encode(Command.TRAIN, b"\x01\x02")
    assert raw[0] == SYNC and raw[1] == Command.TRAIN
    assert raw[2:4] == (2).to_bytes(2, "little") and raw[4:6] == b"\x01\x02"
    assert raw[6] == crc8(raw[1:6])
    r = reply(Command.TRAIN, Status.OUT_OF_ORDER)
    assert r[1] == 0x80 | Command.TRAIN and r[4] == Status.OUT_OF_ORDER


def test_roundtrip_byte_by_byte():
    frames = [Frame(Command.LOAD_BATCH, bytes(range(256)) * 3), Frame(Command.RESET, b""),
              Frame(Command.READ_COUNTERS, bytes([SYNC]) * 5)]
    stream = b"".join(encode(f.command, f.payload) for f in frames)
    d = FrameDecoder()
    events = []
    for byte in stream:
        events += d.feed(bytes([byte]))
    assert events == frames and d.skipped == 0


def test_resynchronises_after_garbage_bad_crc_and_dropped_byte():
    good = encode(Command.INFER, b"abc")
    corrupt = bytearray(encode(Command.TRAIN, b"xyz"))
    corrupt[5] ^= 0x40
    dropped = encode(Command.WRITE_CONFIG, b"0123456789")
    dropped = dropped[:6] + dropped[7:]
    d = FrameDecoder()
    events = d.feed(b"\x00\xff garbage" + good + bytes(corrupt) + good + dropped + good + good)
    frames = [e for e in events if isinstance(e, Frame)]
    errors = [e for e in events if not isinstance(e, Frame)]
    assert frames == [Frame(Command.INFER, b"abc")] * 4
    assert errors and all(e[0] in (Status.BAD_CRC, Status.OVERSIZED) for e in errors)
    assert errors[0][0] == Status.BAD_CRC


def test_oversized_length_is_rejected_at_once():
    d = FrameDecoder(max_payload=16)
    bogus = bytes([SYNC, Command.LOAD_BATCH]) + (17).to_bytes(2, "little")
    events = d.feed(bogus + encode(Command.RESET))
    assert events[0][0] == Status.OVERSIZED and events[-1] == Frame(Command.RESET, b"")


def test_noise_between_frames_is_skipped():
    rng = random.Random(0)
    payloads = [bytes(rng.randrange(256) for _ in range(rng.randrange(40))) for _ in range(200)]
    stream = bytearray()
    for p in payloads:
        stream += encode(Command.LOAD_BATCH, p)
        if rng.random() < 0.2:
            stream += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6)))
    d = FrameDecoder(max_payload=64)
    got = [e.payload for e in d.feed(bytes(stream)) if isinstance(e, Frame)]
    assert got == payloads


def test_encode_refuses_what_cannot_be_framed():
    with pytest.raises(FrameError, match="exceeds"):
        encode(Command.LOAD_BATCH, bytes(MAX_PAYLOAD + 1))
    with pytest.raises(FrameError, match="byte"):
        encode(300)


def test_rtl_crc8_matches_protocol():
    """hw/host_interface.crc8_next, byte by byte, equals contract.protocol.crc8."""
    import random

    from amaranth.hdl import Module, Signal
    from amaranth.sim import Simulator

    from contract.protocol import crc8
    from hw.host_interface import crc8_next

    crc, byte, out = Signal(8), Signal(8), Signal(8)
    m = Module()
    m.d.comb += out.eq(crc8_next(crc, byte))
    rng = random.Random(7)
    cases = [(rng.randrange(256), rng.randrange(256)) for _ in range(300)]
    cases += [(0, b) for b in range(256)]
    got = []

    async def tb(ctx):
        for c, b in cases:
            ctx.set(crc, c)
            ctx.set(byte, b)
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
    assert got == [crc8(bytes([b]), c) for c, b in cases]
