"""hw/uart.py in the Amaranth simulator: loopback, framing errors, idle line, the RX FIFO."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from hw.uart import UartRx, UartTx


class Loopback(wiring.Component):
    def __init__(self, divisor, fifo_depth):
        self.utx = UartTx(divisor)
        self.urx = UartRx(divisor, fifo_depth)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.utx, m.submodules.urx = self.utx, self.urx
        m.d.comb += self.urx.rx.eq(self.utx.tx)
        return m


def run(dut, *testbenches, deadline=200_000):
    """Run the testbenches to their end; fail if they need more than ``deadline`` cycles."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for tb in testbenches:
        sim.add_testbench(tb)
    steps = 0
    while sim.advance():
        steps += 1
        assert steps < 4 * deadline, "testbench did not finish"


@pytest.mark.parametrize("divisor,fifo_depth", [(4, 16), (7, 4), (16, 0)])
def test_loopback_random_bytes(divisor, fifo_depth):
    rng = random.Random(divisor)
    data = [rng.randrange(256) for _ in range(60)]
    dut = Loopback(divisor, fifo_depth)
    got, sent = [], []

    async def producer(ctx):
        for byte in data:
            while rng.random() < 0.2:                 # random gaps between bytes
                await ctx.tick().repeat(rng.randint(1, 3 * divisor))
            ctx.set(dut.utx.i.payload, byte)
            ctx.set(dut.utx.i.valid, 1)
            await ctx.tick().until(dut.utx.i.ready)
            sent.append(byte)
            ctx.set(dut.utx.i.valid, 0)

    async def consumer(ctx):
        # With a FIFO the sink may stall (not longer than the FIFO covers); without, it must
        # take every byte at once.
        while len(got) < len(data):
            ready = fifo_depth == 0 or rng.random() < 0.7
            ctx.set(dut.urx.o.ready, ready)
            _, _, valid, payload, overrun, ferr = await ctx.tick().sample(
                dut.urx.o.valid, dut.urx.o.payload, dut.urx.overrun, dut.urx.framing_error)
            assert not overrun and not ferr
            if ready and valid:
                got.append(payload)

    run(dut, producer, consumer)
    assert sent == data
    assert got == data


def _drive_frame(ctx, dut, divisor, byte, stop=1):
    """Send one 8N1 character on ``dut.rx`` (an async generator of ticks)."""
    async def send():
        for level in [0] + [(byte >> k) & 1 for k in range(8)] + [stop]:
            ctx.set(dut.rx, level)
            await ctx.tick().repeat(divisor)
        ctx.set(dut.rx, 1)
    return send()


def test_rx_drops_a_byte_with_a_bad_stop_bit():
    divisor = 6
    dut = UartRx(divisor, fifo_depth=8)
    frames = [(0x5A, 1), (0xA5, 0), (0x3C, 1), (0x00, 0), (0xFF, 1)]
    got, framing = [], []

    async def line(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(3 * divisor)
        for byte, stop in frames:
            await _drive_frame(ctx, dut, divisor, byte, stop)
            await ctx.tick().repeat(2 * divisor)       # the line idles after a bad stop bit

    async def sink(ctx):
        ctx.set(dut.o.ready, 1)
        async for _, _, valid, payload, ferr in ctx.tick().sample(
                dut.o.valid, dut.o.payload, dut.framing_error):
            if valid:
                got.append(payload)
            if ferr:
                framing.append(1)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(line)
    sim.add_process(sink)
    sim.run_until(len(frames) * 14 * divisor * 1e-6 + 50e-6)
    assert got == [0x5A, 0x3C, 0xFF]
    assert len(framing) == 2


def test_rx_holds_bytes_while_the_sink_stalls():
    divisor = 4
    dut = UartRx(divisor, fifo_depth=8)
    data = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66]
    got = []

    async def line(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(2 * divisor)
        for byte in data:
            await _drive_frame(ctx, dut, divisor, byte)

    async def sink(ctx):
        ctx.set(dut.o.ready, 0)
        await ctx.tick().repeat(len(data) * 11 * divisor)      # all bytes arrive meanwhile
        ctx.set(dut.o.ready, 1)
        while len(got) < len(data):
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid:
                got.append(payload)

    run(dut, line, sink, deadline=2000)
    assert got == data


def test_rx_ignores_a_glitch():
    divisor = 8
    dut = UartRx(divisor, fifo_depth=4)
    got = []

    async def line(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(10)
        ctx.set(dut.rx, 0)                       # shorter than half a bit
        await ctx.tick().repeat(2)
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(3 * divisor)
        await _drive_frame(ctx, dut, divisor, 0x81)
        await ctx.tick().repeat(3 * divisor)

    async def sink(ctx):
        ctx.set(dut.o.ready, 1)
        async for _, _, valid, payload in ctx.tick().sample(dut.o.valid, dut.o.payload):
            if valid:
                got.append(payload)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(line)
    sim.add_process(sink)
    sim.run_until(200e-6)
    assert got == [0x81]


def test_tx_idles_high_and_frames_8n1():
    divisor = 5
    dut = UartTx(divisor)
    levels = []

    async def tb(ctx):
        for _ in range(20):                       # idle: high, ready
            assert ctx.get(dut.tx) == 1 and ctx.get(dut.i.ready) == 1
            await ctx.tick()
        ctx.set(dut.i.payload, 0xB4)
        ctx.set(dut.i.valid, 1)
        await ctx.tick()
        ctx.set(dut.i.valid, 0)
        for _ in range(10 * divisor):
            levels.append(ctx.get(dut.tx))
            await ctx.tick()
        for _ in range(20):
            assert ctx.get(dut.tx) == 1 and ctx.get(dut.i.ready) == 1
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    bits = [levels[k * divisor:(k + 1) * divisor] for k in range(10)]
    assert all(len(set(b)) == 1 for b in bits), "every bit lasts exactly `divisor` cycles"
    bits = [b[0] for b in bits]
    assert bits[0] == 0 and bits[9] == 1
    assert sum(b << k for k, b in enumerate(bits[1:9])) == 0xB4


@pytest.mark.parametrize("divisor,fifo_depth,out_cycles", [(4, 0, 1), (5, 0, 1), (13, 0, 1),
                                                          (8, 4, 2)])
def test_rx_latency_is_two_synchroniser_stages_and_the_output(divisor, fifo_depth, out_cycles):
    """A byte reaches ``o`` a fixed time after its start edge: the stop bit's middle
    (``divisor // 2 + 9 * divisor`` cycles), plus the two synchroniser flip-flops of the
    module's docstring, plus ``o.valid``'s register (1 cycle) or the FIFO (2). The loopback
    tests cannot see a stage more or less: every byte is just later or earlier."""
    dut = UartRx(divisor, fifo_depth=fifo_depth)
    seen = []

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(5)
        cycle = 0
        for level in [0] + [(0xA6 >> k) & 1 for k in range(8)] + [1] * 4:
            ctx.set(dut.rx, level)
            for _ in range(divisor):
                await ctx.tick()
                cycle += 1
                if ctx.get(dut.o.valid):
                    seen.append((cycle, ctx.get(dut.o.payload)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert seen[0] == (divisor // 2 + 9 * divisor + 2 + out_cycles, 0xA6)


def test_tx_busy_exactly_while_a_byte_is_on_the_line():
    """``busy`` from the cycle after the byte is taken to the end of its stop bit, and
    ``i.ready`` its complement."""
    divisor = 4
    dut = UartTx(divisor)
    busy, ready = [], []

    async def tb(ctx):
        for _ in range(5):
            busy.append(ctx.get(dut.busy))
            ready.append(ctx.get(dut.i.ready))
            await ctx.tick()
        ctx.set(dut.i.payload, 0x3C)
        ctx.set(dut.i.valid, 1)
        await ctx.tick()
        ctx.set(dut.i.valid, 0)
        for _ in range(10 * divisor + 5):
            busy.append(ctx.get(dut.busy))
            ready.append(ctx.get(dut.i.ready))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert busy == [0] * 5 + [1] * (10 * divisor) + [0] * 5
    assert ready == [1 - b for b in busy]


def test_divisor_checked():
    with pytest.raises(ValueError, match="divisor"):
        UartTx(2)
    with pytest.raises(ValueError, match="divisor"):
        UartRx(1.5)
