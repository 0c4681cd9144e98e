"""hw/host_link/weight_port.py: the bus commands, words and replies of WRITE_WEIGHTS and
READ_WEIGHTS for given payloads, with the bus and the transmitter stalling at random (Amaranth's
simulator; the receiver, the bus and the transmitter played by the testbench)."""

import random

import pytest
from amaranth.sim import Simulator

from contract.protocol import MAX_PAYLOAD, Command, Status
from hw.host_link.weight_port import WeightPort
from hw.params import CoreParams


def params(rows, pipelined=True):
    return CoreParams(rows=rows, cols=rows, classes=4, max_batch=4, max_layers=2, max_inputs=8,
                      max_neurons=8, addr_bits=20, pipelined=pipelined)


def execute(p, command, payload, memory=None, seed=0):
    """Start the port on a held frame. Returns (events, reply, body bytes sent): events are
    the bus's commands and written words as they are taken."""
    rng = random.Random(seed)
    dut = WeightPort(p)
    events, replies, body = [], [], bytearray()
    words = list(memory or [])

    async def tb(ctx):
        position, reply_seen, body_left, body_index = 0, None, None, 0
        ctx.set(dut.command, command)
        ctx.set(dut.length, len(payload))
        ctx.set(dut.start, 1)
        for cycle in range(20_000):
            ar, aw, w = (rng.random() < 0.5 for _ in range(3))
            ctx.set(dut.mem.ar.ready, ar)
            ctx.set(dut.mem.aw.ready, aw)
            ctx.set(dut.mem.w.ready, w)
            active = body_left is not None and body_left > 0
            ctx.set(dut.body_active, active)
            ctx.set(dut.body_index, body_index)
            tx_ready = active and rng.random() < 0.6
            ctx.set(dut.body.ready, tx_ready)
            r_valid = bool(words) and rng.random() < 0.5
            ctx.set(dut.mem.r.valid, r_valid)
            ctx.set(dut.mem.r.payload, words[0] if words else 0)
            if ctx.get(dut.mem.ar.valid) and ar:
                events.append(("ar", ctx.get(dut.mem.ar.payload.addr),
                               ctx.get(dut.mem.ar.payload.len)))
            if ctx.get(dut.mem.aw.valid) and aw:
                events.append(("aw", ctx.get(dut.mem.aw.payload.addr),
                               ctx.get(dut.mem.aw.payload.len)))
            if ctx.get(dut.mem.w.valid) and w:
                events.append(("w", ctx.get(dut.mem.w.payload)))
            if r_valid and ctx.get(dut.mem.r.ready):
                words.pop(0)
            if ctx.get(dut.body.valid) and tx_ready:
                body.append(ctx.get(dut.body.payload))
                body_left -= 1
                body_index += 1
            if ctx.get(dut.reply.valid):
                assert reply_seen is None
                reply_seen = (Status(ctx.get(dut.reply.payload.status)),
                              ctx.get(dut.reply.payload.length))
                replies.append(reply_seen)
                body_left = reply_seen[1]
            advance = ctx.get(dut.cursor.advance)
            await ctx.tick()
            ctx.set(dut.start, 0)
            # The receiver's cursor: a block RAM read of the byte at the old position.
            ctx.set(dut.cursor.data, payload[position] if position < len(payload) else 0)
            position += advance
            ctx.set(dut.cursor.position, position)
            ctx.set(dut.cursor.at_end, position == len(payload))
            if reply_seen is not None and not body_left:
                break
        for _ in range(10):                 # nothing more once the reply is out
            assert not (ctx.get(dut.mem.ar.valid) or ctx.get(dut.mem.aw.valid)
                        or ctx.get(dut.mem.w.valid) or ctx.get(dut.reply.valid))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert len(replies) == 1
    return events, replies[0], bytes(body)


def lanes(words, p):
    return b"".join(w.to_bytes(p.word_bytes, "little") for w in words)


@pytest.mark.parametrize("rows", [1, 2, 4])
@pytest.mark.parametrize("seed", range(2))
def test_write_weights_bursts_the_payloads_words(rows, seed):
    p = params(rows)
    rng = random.Random(seed)
    words = [rng.randrange(1 << p.word_bits) for _ in range(rng.randrange(1, 6))]
    address = rng.randrange((1 << 20) - len(words))
    events, reply, body = execute(p, Command.WRITE_WEIGHTS,
                                  address.to_bytes(4, "little") + lanes(words, p), seed=seed)
    assert events == [("aw", address, len(words))] + [("w", w) for w in words]
    assert reply == (Status.OK, 0) and body == b""


@pytest.mark.parametrize("pipelined", [False, True], ids=["lean", "pipelined"])
@pytest.mark.parametrize("rows", [1, 2, 4])
@pytest.mark.parametrize("seed", range(2))
def test_read_weights_sends_the_bus_words_as_the_body(rows, seed, pipelined):
    """(Pipelined, the body leaves through a queue of two bytes.)"""
    p = params(rows, pipelined)
    rng = random.Random(seed)
    words = [rng.randrange(1 << p.word_bits) for _ in range(rng.randrange(1, 6))]
    address = rng.randrange(1 << 20)
    payload = address.to_bytes(4, "little") + len(words).to_bytes(2, "little")
    events, reply, body = execute(p, Command.READ_WEIGHTS, payload, memory=words, seed=seed)
    assert events == [("ar", address, len(words))]
    assert reply == (Status.OK, len(words) * p.word_bytes)
    assert body == lanes(words, p)


@pytest.mark.parametrize("count", [0, (MAX_PAYLOAD - 1) // 8 + 1])
def test_read_weights_refuses_a_count_no_reply_can_hold(count):
    p = params(4)                                            # 8-byte words
    payload = (5).to_bytes(4, "little") + count.to_bytes(2, "little")
    events, reply, body = execute(p, Command.READ_WEIGHTS, payload)
    assert events == [] and reply == (Status.BAD_LENGTH, 0) and body == b""


def test_the_largest_read_fits():
    p = params(4)
    count = (MAX_PAYLOAD - 1) // 8
    payload = (5).to_bytes(4, "little") + count.to_bytes(2, "little")
    events, reply, body = execute(p, Command.READ_WEIGHTS, payload, memory=range(count))
    assert events == [("ar", 5, count)] and reply == (Status.OK, 8 * count)
    assert body == lanes(range(count), p)


@pytest.mark.parametrize("command", [Command.WRITE_WEIGHTS, Command.READ_WEIGHTS])
@pytest.mark.parametrize("address,words", [
    ((1 << 20) - 2, 3),            # runs one word past the end
    (1 << 20, 1),                  # a bit above the address bits (once taken modulo)
    (10**6 | 1 << 31, 1),          # the top bit
    (0xABC00000, 2),
])
def test_weight_words_outside_the_memory_are_refused(command, address, words):
    """Nothing reaches the bus: the range is judged on all 32 address bits."""
    p = params(2)
    if command == Command.WRITE_WEIGHTS:
        payload = address.to_bytes(4, "little") + lanes(list(range(words)), p)
    else:
        payload = address.to_bytes(4, "little") + words.to_bytes(2, "little")
    events, reply, body = execute(p, command, payload)
    assert events == [] and reply == (Status.BAD_VALUE, 0) and body == b""


def test_the_last_words_of_a_smaller_memory_are_accepted():
    p = CoreParams(rows=2, cols=2, classes=4, max_batch=4, max_layers=2, max_inputs=8,
                   max_neurons=8, addr_bits=20, weight_words=100)
    events, reply, _ = execute(p, Command.WRITE_WEIGHTS, (98).to_bytes(4, "little")
                               + lanes([5, 6], p))
    assert events == [("aw", 98, 2), ("w", 5), ("w", 6)] and reply == (Status.OK, 0)
    events, reply, _ = execute(p, Command.READ_WEIGHTS, (98).to_bytes(4, "little")
                               + (3).to_bytes(2, "little"))
    assert events == [] and reply == (Status.BAD_VALUE, 0)
