"""UART (8N1) to byte streams: the host link on boards.

``divisor`` is the number of clock cycles per bit (clock / baud), fixed at elaboration. The
receiver synchronises the line with two flip-flops, samples each bit in its middle, drops a byte
whose stop bit is 0 (framing error) and queues received bytes in a small FIFO: the accelerator
holds ``rx.ready`` low while it executes a frame and a UART host cannot be back-pressured. The
host sends one frame and waits for its reply (docs/HOST_INTERFACE.md), so the FIFO only has to
cover the few cycles between the last byte of a frame and the core taking it; it is not a frame
buffer.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

__all__ = ["UartRx", "UartTx", "MIN_DIVISOR"]

#: The smallest divisor: a bit must last long enough to find its middle.
MIN_DIVISOR = 4


def _check_divisor(component, divisor):
    if not isinstance(divisor, int) or divisor < MIN_DIVISOR:
        component._MustUse__silence = True        # not built: no "never used" warning
        raise ValueError(f"UART divisor must be an integer of at least {MIN_DIVISOR} "
                         f"(clock cycles per bit), not {divisor!r}")


class UartRx(wiring.Component):
    """Receiver: ``rx`` line in, bytes out.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit.
    fifo_depth : int
        Received bytes held while ``o`` is not ready (0: no FIFO; a byte not taken before the
        next one completes is lost).

    Members
    -------
    rx : In(1)
        The line (idle high), asynchronous to the clock.
    o : Out(stream.Signature(8))
        Received bytes.
    framing_error : Out(1)
        Pulses when a byte is dropped for a stop bit of 0.
    overrun : Out(1)
        Pulses when a byte is lost because the FIFO is full.
    """

    def __init__(self, divisor, fifo_depth=16):
        _check_divisor(self, divisor)
        self.divisor = divisor
        self.fifo_depth = fifo_depth
        super().__init__({
            "rx": In(1, init=1),
            "o": Out(stream.Signature(8)),
            "framing_error": Out(1),
            "overrun": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        line = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, line, init=1, stages=2)

        timer = Signal(range(self.divisor))
        bit = Signal(range(9))
        shift = Signal(8)
        done = Signal()                   # a byte with a good stop bit, this cycle
        m.d.comb += self.framing_error.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(self.divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):        # to the middle of the start bit
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):        # a glitch, not a start bit
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [timer.eq(self.divisor - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):         # LSB first, each sampled mid-bit
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shift.eq(Cat(shift[1:], line)), timer.eq(self.divisor - 1),
                                 bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    m.d.comb += done.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += self.framing_error.eq(1)
                    m.next = "BREAK"
            with m.State("BREAK"):        # after a framing error, wait for the idle line
                with m.If(line):
                    m.next = "IDLE"

        if self.fifo_depth:
            m.submodules.fifo = fifo = SyncFIFOBuffered(width=8, depth=self.fifo_depth)
            m.d.comb += [
                fifo.w_data.eq(shift), fifo.w_en.eq(done),
                self.overrun.eq(done & ~fifo.w_rdy),
                self.o.payload.eq(fifo.r_data), self.o.valid.eq(fifo.r_rdy),
                fifo.r_en.eq(self.o.ready),
            ]
        else:
            m.d.comb += self.o.payload.eq(shift)
            with m.If(self.o.ready):
                m.d.sync += self.o.valid.eq(0)
            with m.If(done):
                m.d.sync += self.o.valid.eq(1)
            m.d.comb += self.overrun.eq(done & self.o.valid & ~self.o.ready)
        return m


class UartTx(wiring.Component):
    """Transmitter: bytes in, ``tx`` line out (idle high).

    Members
    -------
    i : In(stream.Signature(8))
        Bytes to send; one is taken when the previous one's stop bit has been sent.
    tx : Out(1)
        The line, driven from a flip-flop.
    busy : Out(1)
        High while a byte is on the line.
    """

    def __init__(self, divisor):
        _check_divisor(self, divisor)
        self.divisor = divisor
        super().__init__({
            "i": In(stream.Signature(8)),
            "tx": Out(1, init=1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        bits = Signal(range(11))          # bits still to send, start bit included
        frame = Signal(10, init=0x3FF)    # {stop, data[7:0], start}, sent LSB first
        m.d.comb += [self.i.ready.eq(bits == 0), self.busy.eq(bits != 0),
                     self.tx.eq(frame[0])]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [frame.eq(Cat(Const(0, 1), self.i.payload, Const(1, 1))),
                         bits.eq(10), timer.eq(self.divisor - 1)]
        with m.Elif(bits != 0):
            with m.If(timer != 0):
                m.d.sync += timer.eq(timer - 1)
            with m.Else():
                m.d.sync += [frame.eq(Cat(frame[1:], Const(1, 1))), bits.eq(bits - 1),
                             timer.eq(self.divisor - 1)]
        return m
