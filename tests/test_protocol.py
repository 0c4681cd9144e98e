import random

import pytest

from contract.protocol import (FRAME_CRC, FRAME_OVERHEAD, MAX_PAYLOAD, SYNC, Command, Frame,
                               FrameDecoder, FrameError, Status, crc8, encode, is_answer, reply)


def test_crc8_check_value():
    # The catalogued check value of CRC-8 (poly 0x07, init 0, no reflection, no xor-out).
    assert crc8(b"123456789") == 0xF4
    assert crc8(b"") == 0


def test_frame_layout():
    raw = encode(Command.TRAIN, b"\x01\x02", tag=0x5C)
    assert raw[0] == SYNC and raw[1] == Command.TRAIN and raw[2] == 0x5C
    assert raw[3:5] == (2).to_bytes(2, "little") and raw[5:7] == b"\x01\x02"
    assert raw[7] == crc8(raw[1:7]) and len(raw) == FRAME_OVERHEAD + 2
    r = reply(Command.TRAIN, Status.OUT_OF_ORDER, tag=0x5C)
    assert r[1] == 0x80 | Command.TRAIN and r[2] == 0x5C and r[5] == Status.OUT_OF_ORDER
    assert FrameDecoder().feed(r) == [Frame(0x80 | Command.TRAIN, bytes([Status.OUT_OF_ORDER]),
                                            0x5C)]


def test_the_tag_is_covered_by_the_crc():
    raw = bytearray(encode(Command.READ_COUNTERS, tag=7))
    raw[2] ^= 0x01
    assert FrameDecoder().feed(bytes(raw))[0][0] == Status.BAD_CRC


def test_an_answer_has_the_requests_command_and_tag_and_an_undamaged_status():
    ok = bytes([Status.OK])
    assert is_answer(Frame(0x80 | Command.TRAIN, ok + b"\x01\x00", 9), Command.TRAIN, 9)
    assert is_answer(Frame(0x80 | Command.TRAIN, bytes([Status.OUT_OF_ORDER]), 9),
                     Command.TRAIN, 9)
    assert not is_answer(Frame(0x80 | Command.TRAIN, ok, 8), Command.TRAIN, 9)        # stale
    assert not is_answer(Frame(0x80 | Command.INFER, ok, 9), Command.TRAIN, 9)        # other
    assert not is_answer(Frame(Command.TRAIN, ok, 9), Command.TRAIN, 9)               # a request
    assert not is_answer(Frame(0x80 | Command.TRAIN, b"", 9), Command.TRAIN, 9)       # no status
    assert not is_answer((Status.BAD_CRC, "noise"), Command.TRAIN, 9)
    for damaged in (Status.BAD_CRC, Status.OVERSIZED, Status.TIMEOUT):
        assert not is_answer(Frame(0x80 | Command.TRAIN, bytes([damaged]), 9), Command.TRAIN, 9)


def test_roundtrip_byte_by_byte():
    frames = [Frame(Command.LOAD_BATCH, bytes(range(256)) * 3, 0xFF), Frame(Command.RESET, b""),
              Frame(Command.READ_COUNTERS, bytes([SYNC]) * 5)]
    stream = b"".join(encode(f.command, f.payload, f.tag) for f in frames)
    d = FrameDecoder()
    events = []
    for byte in stream:
        events += d.feed(bytes([byte]))
    assert events == frames and d.skipped == 0


def test_resynchronises_after_garbage_bad_crc_and_dropped_byte():
    good = encode(Command.INFER, b"abc")
    corrupt = bytearray(encode(Command.TRAIN, b"xyz"))
    corrupt[6] ^= 0x40
    dropped = encode(Command.WRITE_CONFIG, b"0123456789")
    dropped = dropped[:7] + dropped[8:]
    d = FrameDecoder()
    events = d.feed(b"\x00\xff garbage" + good + bytes(corrupt) + good + dropped + good + good)
    frames = [e for e in events if isinstance(e, Frame)]
    errors = [e for e in events if not isinstance(e, Frame)]
    assert frames == [Frame(Command.INFER, b"abc")] * 4
    assert errors and all(e[0] in (Status.BAD_CRC, Status.OVERSIZED) for e in errors)
    assert errors[0][0] == Status.BAD_CRC


def test_oversized_length_is_rejected_at_once():
    d = FrameDecoder(max_payload=16)
    bogus = bytes([SYNC, Command.LOAD_BATCH, 0]) + (17).to_bytes(2, "little")
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
    with pytest.raises(FrameError, match="command 300 does not fit in a byte"):
        encode(300)
    with pytest.raises(FrameError, match="tag 256 does not fit in a byte"):
        encode(Command.RESET, tag=256)


def bitwise_crc8_oracle(data, crc=0):
    """Test oracle only, independent of amaranth.lib.crc: CRC-8 with polynomial 0x07, MSB first,
    no reflection, no final XOR, one bit at a time from its definition."""
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def test_frame_crc_is_the_catalogued_crc8_smbus():
    """The catalogue entry the host and the RTL share is the CRC the wire format names."""
    assert (FRAME_CRC.algorithm.crc_width, FRAME_CRC.algorithm.polynomial,
            FRAME_CRC.algorithm.initial_crc, FRAME_CRC.algorithm.reflect_input,
            FRAME_CRC.algorithm.reflect_output, FRAME_CRC.algorithm.xor_output,
            FRAME_CRC.data_width) == (8, 0x07, 0, False, False, 0, 8)
    rng = random.Random(3)
    for n in [0, 1, 2, 5, 64, 300]:
        data = bytes(rng.randrange(256) for _ in range(n))
        assert crc8(data) == bitwise_crc8_oracle(data)


def test_rtl_frame_crc_matches_the_oracle():
    """The RTL's CRC processor (FRAME_CRC.create()), fed a byte per cycle with gaps and
    restarts, holds the oracle's CRC of the bytes since its last start."""
    from amaranth.sim import Simulator

    dut = FRAME_CRC.create()
    rng = random.Random(7)
    frames = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40))) for _ in range(30)]
    frames += [bytes([b]) for b in range(256)]
    got, want = [], []

    async def tb(ctx):
        for frame in frames:
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            for byte in frame:
                while rng.random() < 0.3:               # an idle cycle must not change the CRC
                    await ctx.tick()
                ctx.set(dut.data, byte)
                ctx.set(dut.valid, 1)
                await ctx.tick()
                ctx.set(dut.valid, 0)
            got.append(ctx.get(dut.crc))
            want.append(bitwise_crc8_oracle(frame))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert got == want


def test_busy_is_retired_and_its_code_reserved():
    """Status 0x06 was BUSY, never sent: no status may take the code (an old host reading it
    must not mistake it for something else)."""
    assert "BUSY" not in Status.__members__
    assert 0x06 not in {int(s) for s in Status}
