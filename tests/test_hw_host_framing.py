"""hw/host_link/framing.py: what the frame receiver and transmitter do with given bytes, with
gaps on the input and backpressure on the output (Amaranth's simulator)."""

import random

import pytest
from amaranth.sim import Simulator

from contract.protocol import MAX_PAYLOAD, SYNC, Command, Status, encode, reply
from hw.host_link.framing import FrameReceiver, FrameTransmitter
from hw.params import CoreParams

TIMEOUT = 30


def params(**overrides):
    fields = dict(rows=2, cols=2, classes=4, max_batch=4, max_layers=2, max_inputs=8,
                  max_neurons=8, frame_timeout=TIMEOUT)
    fields.update(overrides)
    return CoreParams(**fields)


def run(dut, testbench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


def receive(chunks, seed=0, read_back=True):
    """Feed ``chunks`` to a receiver (a chunk of bytes, or an int: that many idle cycles), with
    random gaps. Records every event; after each held frame, reads its payload back through the
    cursor (a byte per 2 cycles) and answers ``reply_sent``. Returns the event list."""
    rng = random.Random(seed)
    dut = FrameReceiver(params())
    events = []

    async def tb(ctx):
        async def cycle():
            if ctx.get(dut.received):
                events.append(("received", ctx.get(dut.command), ctx.get(dut.tag),
                               ctx.get(dut.length)))
            if ctx.get(dut.error.valid):
                events.append(("error", Status(ctx.get(dut.error.payload)),
                               ctx.get(dut.dropped)))
            if ctx.get(dut.payload.valid):
                events.append(("byte", ctx.get(dut.payload.payload.data),
                               ctx.get(dut.payload.payload.index)))
            held = ctx.get(dut.received) | ctx.get(dut.error.valid)
            await ctx.tick()
            if held:
                await serve()

        async def serve():
            """The frame is held: rx stays not ready; read the payload, then release it."""
            if read_back and events[-1][0] == "received":
                length, payload = events[-1][3], []
                assert ctx.get(dut.cursor.position) == 0
                for k in range(length):
                    assert not ctx.get(dut.cursor.at_end) and not ctx.get(dut.rx.ready)
                    await ctx.tick()                       # the read is under way
                    payload.append(ctx.get(dut.cursor.data))
                    ctx.set(dut.cursor.advance, 1)
                    await ctx.tick()
                    ctx.set(dut.cursor.advance, 0)
                assert ctx.get(dut.cursor.at_end)
                events.append(("read", bytes(payload)))
            for _ in range(rng.randrange(3)):
                assert not ctx.get(dut.rx.ready)
                await ctx.tick()
            ctx.set(dut.reply_sent, 1)
            await ctx.tick()
            ctx.set(dut.reply_sent, 0)

        for chunk in chunks:
            if isinstance(chunk, int):
                ctx.set(dut.rx.valid, 0)
                for _ in range(chunk):
                    await cycle()
                continue
            for byte in chunk:
                while rng.random() < 0.3:
                    ctx.set(dut.rx.valid, 0)
                    await cycle()
                ctx.set(dut.rx.valid, 1)
                ctx.set(dut.rx.payload, byte)
                while not ctx.get(dut.rx.ready):
                    await cycle()
                await cycle()
            ctx.set(dut.rx.valid, 0)
        for _ in range(TIMEOUT + 5):
            await cycle()

    run(dut, tb)
    return events


def test_a_good_frame_is_held_streamed_and_read_back():
    payload = bytes([7, SYNC, 0, 255, 3])
    events = receive([b"\x13\x37", encode(Command.LOAD_BATCH, payload, tag=0xA5),
                      encode(Command.RESET, tag=0x81)])
    assert events == ([("byte", b, k) for k, b in enumerate(payload)]
                      + [("received", Command.LOAD_BATCH, 0xA5, 5), ("read", payload),
                         ("received", Command.RESET, 0x81, 0), ("read", b"")])


@pytest.mark.parametrize("seed", range(3))
def test_errors_drop_the_frame_and_the_next_frame_is_taken(seed):
    bad = bytearray(encode(Command.TRAIN, b"\x01"))
    bad[-1] ^= 0x10
    events = receive([bytes(bad), encode(Command.TRAIN, b"\x02", tag=3),
                      bytes([SYNC, Command.WRITE_CONFIG]), TIMEOUT + 3,          # header cut
                      encode(Command.INFER, b"\x01\x02\x03\x04")[:6], TIMEOUT + 3,  # payload cut
                      encode(Command.READ_COUNTERS)[:-1], TIMEOUT + 3,          # CRC byte cut
                      bytes([SYNC, 0x0A, 0]) + (MAX_PAYLOAD + 1).to_bytes(2, "little"),
                      encode(Command.READ_COUNTERS)], seed=seed)
    assert [e for e in events if e[0] != "byte"] == [
        ("error", Status.BAD_CRC, 1),
        ("received", Command.TRAIN, 3, 1), ("read", b"\x02"),
        ("error", Status.TIMEOUT, 0),
        ("error", Status.TIMEOUT, 1),
        ("error", Status.TIMEOUT, 1),
        ("error", Status.OVERSIZED, 0),
        ("received", Command.READ_COUNTERS, 0, 0), ("read", b"")]


def test_no_timeout_while_bytes_keep_coming_slowly():
    frame = encode(Command.WRITE_CONFIG, bytes(range(9)))
    chunks = []
    for byte in frame:
        chunks += [bytes([byte]), TIMEOUT - 2]
    events = receive(chunks)
    assert [e for e in events if e[0] != "byte"] == [
        ("received", Command.WRITE_CONFIG, 0, 9), ("read", bytes(range(9)))]


def transmit(command, status, body, seed, tag=0):
    """A transmitter's output for one reply, the body offered with gaps and the output
    back-pressured at random. Returns (bytes, body_index seen per body byte, sent pulses)."""
    rng = random.Random(seed)
    dut = FrameTransmitter(params())
    out, indices, sent = bytearray(), [], []

    async def tb(ctx):
        ctx.set(dut.command, command)
        ctx.set(dut.tag, tag)
        ctx.set(dut.reply.valid, 1)
        ctx.set(dut.reply.payload.status, status)
        ctx.set(dut.reply.payload.length, len(body))
        await ctx.tick()
        ctx.set(dut.reply.valid, 0)
        cycles = 0
        while not sent:
            ready = rng.random() < 0.6
            ctx.set(dut.tx.ready, ready)
            k = ctx.get(dut.body_index)
            offer = ctx.get(dut.body_active) and rng.random() < 0.7
            ctx.set(dut.body.valid, offer)
            ctx.set(dut.body.payload, body[k] if k < len(body) else 0)
            if ctx.get(dut.tx.valid) and ready:
                out.append(ctx.get(dut.tx.payload))
                if ctx.get(dut.body_active):
                    indices.append(k)
            if ctx.get(dut.sent):
                sent.append(len(out))
            await ctx.tick()
            cycles += 1
            assert cycles < 10_000
        for _ in range(5):
            assert not ctx.get(dut.tx.valid)
            await ctx.tick()

    run(dut, tb)
    return bytes(out), indices, sent


@pytest.mark.parametrize("body_length", [0, 1, 2, 17, 300])
def test_the_reply_frame_is_the_contracts_under_backpressure(body_length):
    body = bytes((37 * k + 11) & 0xFF for k in range(body_length))
    tag = (body_length * 77) & 0xFF
    out, indices, sent = transmit(Command.READ_WEIGHTS, Status.OK, body, body_length, tag)
    assert out == reply(Command.READ_WEIGHTS, Status.OK, body, tag)
    assert indices == list(range(body_length))
    assert sent == [len(out)]                       # one pulse, with the CRC byte


def test_an_error_reply_has_no_body():
    out, indices, sent = transmit(0x55, Status.UNKNOWN_COMMAND, b"", seed=9)
    assert out == reply(0x55, Status.UNKNOWN_COMMAND) and indices == []
