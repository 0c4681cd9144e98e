"""hw/host_link/dispatcher.py: the register writes, replies, core starts and hand-overs the
command dispatcher makes of given frames (Amaranth's simulator, the receiver played by the
testbench); and, through the composed HostInterface, the configuration on a core whose weight
words are narrower than a register."""

import random

import pytest
from amaranth.sim import Simulator

from contract.protocol import Command, Frame, FrameDecoder, Status, encode
from contract.registers import GLOBAL
from hw.core import Op, TrainingCore
from hw.host_link import HostInterface
from hw.host_link.dispatcher import CommandDispatcher
from hw.params import CoreParams


def params(**overrides):
    fields = dict(rows=2, cols=2, classes=4, max_batch=4, max_layers=2, max_inputs=8,
                  max_neurons=8, frame_timeout=30)
    fields.update(overrides)
    return CoreParams(**fields)


def dispatch(frames, p=None, seed=0):
    """Run ``frames`` ((command, payload) pairs) through a dispatcher, playing the receiver
    (payload bytes streamed, then ``received``; the cursor a block RAM read) and the core
    (``done`` a few cycles after ``start``). Returns per frame the events it caused."""
    p = p or params()
    rng = random.Random(seed)
    core = TrainingCore(p)
    core._MustUse__silence = True                       # only its signatures are used
    dut = CommandDispatcher(p, core)
    log = []

    async def tb(ctx):
        async def cycle(state):
            """One cycle: record outputs, then move the cursor as a receiver would."""
            events = log[-1]
            ctx.set(dut.control.done, state.get("done_in") == 1)
            state["done_in"] = max(0, state.get("done_in", 0) - 1)
            if ctx.get(dut.control.reg_we):
                events.append(("reg", ctx.get(dut.control.reg_addr),
                               ctx.get(dut.control.reg_data)))
            if ctx.get(dut.control.load_en):
                label = ctx.get(dut.control.load_label)      # a label has no column
                events.append(("load", ctx.get(dut.control.load_sample), label,
                               None if label else ctx.get(dut.control.load_col),
                               ctx.get(dut.control.load_data)))
            if ctx.get(dut.control.start):
                cmd = dut.control.cmd
                events.append(("start", Op(ctx.get(cmd.op)), ctx.get(cmd.batch),
                               ctx.get(cmd.early_exit), ctx.get(cmd.threshold)))
                state["done_in"] = rng.randrange(1, 6)     # done in the cycle after, or later
            if ctx.get(dut.weights):
                events.append(("weights",))
                state["replied"] = True
            if ctx.get(dut.clear):
                events.append(("clear",))
            if ctx.get(dut.reply.valid):
                events.append(("reply", Status(ctx.get(dut.reply.payload.status)),
                               ctx.get(dut.reply.payload.length)))
                state["replied"] = True
            advance = ctx.get(dut.cursor.advance)
            await ctx.tick()
            payload = state["payload"]
            ctx.set(dut.cursor.data, payload[state["position"]]
                    if state["position"] < len(payload) else 0)
            state["position"] += advance
            ctx.set(dut.cursor.position, state["position"])
            ctx.set(dut.cursor.at_end, state["position"] == len(payload))

        for command, payload in frames:
            log.append([])
            state = {"payload": payload, "position": 0}
            ctx.set(dut.command, command)
            ctx.set(dut.length, len(payload))
            ctx.set(dut.cursor.position, 0)
            ctx.set(dut.cursor.at_end, len(payload) == 0)
            for k, byte in enumerate(payload):
                ctx.set(dut.payload.valid, 1)
                ctx.set(dut.payload.payload.data, byte)
                ctx.set(dut.payload.payload.index, k)
                await cycle(state)
            ctx.set(dut.payload.valid, 0)
            ctx.set(dut.cursor.data, payload[0] if payload else 0)
            await cycle(state)                          # the CRC byte
            ctx.set(dut.received, 1)
            await cycle(state)
            ctx.set(dut.received, 0)
            for _ in range(2000):
                if state.get("replied"):
                    break
                await cycle(state)
            assert state.get("replied"), (command, payload)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return log


def u32s(*values):
    return b"".join(v.to_bytes(4, "little") for v in values)


def test_config_writes_consecutive_registers_with_full_32_bit_values():
    values = [0x72345678, 0x7FAB00CD]               # the two seeds: each byte its own
    [events] = dispatch([(Command.WRITE_CONFIG, bytes([7]) + u32s(*values))])
    assert events == [("reg", 7 + k, v) for k, v in enumerate(values)] + [("reply", Status.OK, 0)]


def test_a_register_the_lean_core_lacks_is_refused():
    lean = params(dropout=False, sign_feedback=False, early_exit=False)
    events = dispatch([
        (Command.WRITE_CONFIG, bytes([GLOBAL["dropout"]]) + u32s(0)),
        (Command.WRITE_CONFIG, bytes([GLOBAL["rounding"]]) + u32s(1, 1 << 24)),
        (Command.INIT_WEIGHTS, b""),
    ], p=lean)
    assert events == [
        [("reg", GLOBAL["dropout"], 0), ("reply", Status.OK, 0)],
        [("reg", GLOBAL["rounding"], 1), ("reply", Status.UNSUPPORTED, 0)],  # dropout != 0
        [("reply", Status.OUT_OF_ORDER, 0)],            # the configuration is unwritten
    ]


def test_checks_before_anything_acts():
    events = dispatch([
        (Command.RESET, b"\x00"),
        (Command.WRITE_CONFIG, bytes([0]) + b"\x01\x00"),        # not 1 + 4n bytes
        (Command.WRITE_CONFIG, bytes([47]) + u32s(1, 2)),       # past the last register
        (Command.TRAIN, b"\x01"),                               # nothing configured
        (Command.READ_WEIGHTS, b"\x00" * 5),
        (Command.WRITE_WEIGHTS, b"\x00" * 4),                   # no word
        (0x42, b""),
    ])
    assert events == [[("reply", Status.BAD_LENGTH, 0)]] * 3 + [
        [("reply", Status.OUT_OF_ORDER, 0)], [("reply", Status.BAD_LENGTH, 0)],
        [("reply", Status.BAD_LENGTH, 0)], [("reply", Status.UNKNOWN_COMMAND, 0)]]


def test_a_batch_loads_as_it_arrives_then_trains_and_infers():
    inputs = 3
    samples = bytes([2, 10, 11, 12, 1, 20, 21, 22])             # label, 3 pixels; twice
    events = dispatch([
        (Command.WRITE_CONFIG, bytes([0]) + u32s(2, inputs)),
        (Command.LOAD_BATCH, bytes([0, 2]) + samples),
        (Command.TRAIN, b"\x02"),
        (Command.TRAIN, b"\x02"),                               # the batch was used
        (Command.LOAD_BATCH, bytes([0, 2]) + samples),
        (Command.INFER, bytes([1, 1, 0x34, 0x12])),
        (Command.WRITE_WEIGHTS, bytes(4 + 4)),
        (Command.RESET, b""),
    ], seed=1)
    loads = [("load", s, int(c == 0), None if c == 0 else c - 1, samples[4 * s + c])
             for s in range(2) for c in range(inputs + 1)]
    assert events == [
        [("reg", 0, 2), ("reg", 1, inputs), ("reply", Status.OK, 0)],
        loads + [("reply", Status.OK, 0)],
        [("start", Op.TRAIN, 2, 0, 0), ("reply", Status.OK, 2 * 2)],
        [("reply", Status.OUT_OF_ORDER, 0)],
        loads + [("reply", Status.OK, 0)],
        [("start", Op.INFER, 1, 1, 0x1234), ("reply", Status.OK, 0)],
        [("weights",)],
        [("clear",), ("reply", Status.OK, 0)],
    ]


@pytest.mark.parametrize("value", [0x12345678, 0x5EADBEEF])
def test_host_interface_writes_32_bit_registers_on_a_16_bit_word_core(value):
    """One lane of 16-bit weights (the iCEBreaker's core): the weight word is narrower than a
    register, and a register still gets all four of its bytes."""
    p = params(rows=1, cols=1)
    assert p.word_bits == 16
    core = TrainingCore(p)
    core._MustUse__silence = True
    dut = HostInterface(p, core)
    frame = encode(Command.WRITE_CONFIG, bytes([GLOBAL["round_seed"]]) + u32s(value, 3),
                   tag=0x6B)
    writes, replies = [], bytearray()

    async def tb(ctx):
        ctx.set(dut.tx.ready, 1)
        for byte in frame:
            ctx.set(dut.rx.valid, 1)
            ctx.set(dut.rx.payload, byte)
            await ctx.tick().until(dut.rx.ready)
        ctx.set(dut.rx.valid, 0)
        for _ in range(60):
            if ctx.get(dut.control.reg_we):
                writes.append((ctx.get(dut.control.reg_addr), ctx.get(dut.control.reg_data)))
            if ctx.get(dut.tx.valid):
                replies.append(ctx.get(dut.tx.payload))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert writes == [(GLOBAL["round_seed"], value), (GLOBAL["round_seed"] + 1, 3)]
    assert FrameDecoder().feed(bytes(replies)) == [
        Frame(Command.WRITE_CONFIG | 0x80, bytes([Status.OK]), 0x6B)]     # the tag echoed


@pytest.mark.parametrize("act_bits,sample,label,pixel", [
    (8, 1, 4, 255),             # a label of 4 with 4 classes
    (8, 0, 200, 0),
    (6, 1, 3, 64),              # a pixel beyond 6 bits
    (6, 0, 0, 255),
])
def test_a_batch_with_a_value_out_of_range_is_refused(act_bits, sample, label, pixel):
    """BAD_VALUE names the first such sample; the batch cannot be trained until reloaded."""
    good = bytes([3, 10, 11, 12])
    bad = bytes([label, 1, pixel, 2])
    samples = bad + good if sample == 0 else good + bad
    events = dispatch([
        (Command.WRITE_CONFIG, bytes([0]) + u32s(2, 3)),
        (Command.LOAD_BATCH, bytes([0, 2]) + samples),
        (Command.TRAIN, b"\x02"),
        (Command.LOAD_BATCH, bytes([0, 2]) + good + good),
        (Command.TRAIN, b"\x02"),
    ], p=params(act_bits=act_bits))
    assert events[1][-1] == ("reply", Status.BAD_VALUE, 1)
    assert events[2] == [("reply", Status.OUT_OF_ORDER, 0)]
    assert events[3][-1] == ("reply", Status.OK, 0)
    assert events[4] == [("start", Op.TRAIN, 2, 0, 0), ("reply", Status.OK, 2 * 2)]


def test_a_pixel_of_the_full_width_is_taken():
    events = dispatch([
        (Command.WRITE_CONFIG, bytes([0]) + u32s(1, 3)),
        (Command.LOAD_BATCH, bytes([0, 1]) + bytes([3, 63, 0, 63])),
    ], p=params(act_bits=6))
    assert events[1][-1] == ("reply", Status.OK, 0)


@pytest.mark.parametrize("seed", [1, 2])
def test_each_counter_reads_as_one_value_while_it_moves(seed):
    """READ_COUNTERS while every counter moves between the bytes on the line (a carry into
    each byte, as ``cycles`` makes): each counter's eight bytes form the value it held when its
    first byte was taken, never a torn mix of two values."""
    from contract.registers import COUNTERS
    p = params()
    rng = random.Random(seed)
    core = TrainingCore(p)
    core._MustUse__silence = True
    dut = CommandDispatcher(p, core)
    n = len(COUNTERS) + p.max_layers
    got, want = [0] * n, [None] * n

    async def tb(ctx):
        values = [rng.randrange(1 << 64) for _ in range(n)]
        ctx.set(dut.command, Command.READ_COUNTERS)
        ctx.set(dut.body_active, 1)
        index = 0
        while index < 8 * n:
            # Every counter steps across a byte boundary now and then.
            values = [(v + rng.choice([1, 255, 1 << 16, (1 << 24) - 1, 1 << 40])) % (1 << 64)
                      for v in values]
            for k, v in enumerate(values):
                ctx.set(dut.counters[k], v)
            ready = rng.random() < 0.5
            ctx.set(dut.body_index, index)
            ctx.set(dut.body.ready, ready)
            await ctx.delay(0)
            if ready and ctx.get(dut.body.valid):
                k, byte = divmod(index, 8)
                if byte == 0:
                    want[k] = values[k]
                got[k] |= ctx.get(dut.body.payload) << (8 * byte)
                index += 1
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert got == want
