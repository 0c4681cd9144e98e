"""UART (8N1) to byte streams: the host link on boards.

``divisor`` is the bit period in clock cycles, ``clock / baud``, fixed at elaboration: an
integer, or a :class:`fractions.Fraction` ``p / q`` when the clock is no whole multiple of the
baud rate (:func:`bit_period` gives it for a board); at least :data:`MIN_DIVISOR`. A fractional
period is kept exactly on average, no bit boundary or sample more than a cycle from its exact
time:

* the transmitter puts the ``k``-th bit boundary of a character ``round(k * p / q)`` cycles
  (halves rounded up) after the character starts, so each bit lasts ``floor(p / q)`` or
  ``ceil(p / q)`` cycles and no error accumulates over the ten bits;
* the receiver samples bit ``j`` (0 the start bit, 1..8 the data, 9 the stop bit)
  ``floor((j + 1/2) * p / q)`` cycles after the cycle in which it saw the start bit's falling
  edge (through its synchroniser), re-aligning on every character.

Both walk their boundaries with a Bresenham accumulator: a remainder in units of
``1 / (2 q)`` cycles that grows by ``2 (p mod q)`` a bit and, when it passes ``2 q``, makes that
bit a cycle longer. With an integer divisor there is no accumulator: every bit lasts
``divisor`` cycles and the receiver samples at ``divisor // 2 + j * divisor``, the same rules.
(On the ULX3S, 50 MHz / 3 Mbaud is 50/3 cycles a bit: bits of 17, 16, 17, 17, 16, ...; the
integer 17 would run 1.96 % slow.)

The receiver synchronises the line with two flip-flops, samples each bit in its middle as
above, drops a byte whose stop bit is 0 (framing error) and queues received bytes in a small
FIFO: the accelerator holds ``rx.ready`` low while it executes a frame and a UART host cannot be
back-pressured. A host that waits for each reply needs only the few cycles between the last byte
of a frame and the core taking it covered; a board built with a deep FIFO (the config's
``rx_buffer``: the ULX3S's 8 KiB, in block RAM) lets the host stream frames behind one that
executes, at most that many bytes (docs/HOST_INTERFACE.md, "Streaming").
"""

from fractions import Fraction

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

__all__ = ["UartRx", "UartTx", "MIN_DIVISOR", "MAX_DENOMINATOR", "bit_period"]

#: The smallest divisor: a bit must last long enough to find its middle.
MIN_DIVISOR = 4

#: The largest denominator :func:`bit_period` uses: the accumulator stays at most 9 bits wide,
#: and the period is within ``1 / (MAX_DENOMINATOR + 1)`` of a cycle of ``clock / baud`` (under
#: 0.1 % of a bit; hw/boards/top.py checks the average rate a board makes).
MAX_DENOMINATOR = 256


def bit_period(clock_hz, baud, max_denominator=MAX_DENOMINATOR):
    """The divisor of ``baud`` at ``clock_hz``: ``clock_hz / baud`` as an ``int`` when it is
    one, else the nearest :class:`~fractions.Fraction` with a denominator of at most
    ``max_denominator``."""
    period = (Fraction(clock_hz) / Fraction(baud)).limit_denominator(max_denominator)
    return int(period) if period.denominator == 1 else period


def _period(component, divisor):
    """``(p, q)`` of a valid divisor ``p / q`` in lowest terms; a ValueError naming it else."""
    valid = isinstance(divisor, (int, Fraction)) and not isinstance(divisor, bool) and \
        divisor >= MIN_DIVISOR
    if not valid:
        component._MustUse__silence = True        # not built: no "never used" warning
        raise ValueError(f"UART divisor must be an integer or a Fraction of at least "
                         f"{MIN_DIVISOR} (clock cycles per bit), not {divisor!r}")
    divisor = Fraction(divisor)
    return divisor.numerator, divisor.denominator


class _Bresenham:
    """The accumulator of a fractional period ``p / q`` (``n = p // q``, ``r = p % q``): at a
    bit boundary whose remainder is ``acc`` (units of ``1 / (2q)``), the next bit lasts
    ``n + carry`` cycles, ``carry = acc + 2r >= 2q``, and the remainder moves on by ``2r``
    modulo ``2q``."""

    def __init__(self, p, q):
        self.n, self.r, self.q = p // q, p % q, q
        self.acc = Signal(range(2 * q), name="phase") if self.r else None

    def next_timer(self, m, domain="sync"):
        """The timer value (cycles of the next bit, less one) as a value, and the update of
        the remainder, added to ``m``."""
        if self.acc is None:
            return Const(self.n - 1)
        total = self.acc + 2 * self.r
        carry = total >= 2 * self.q
        m.d[domain] += self.acc.eq(Mux(carry, total - 2 * self.q, total))
        return Mux(carry, self.n, self.n - 1)

    def start(self, m, remainder, domain="sync"):
        if self.acc is not None:
            m.d[domain] += self.acc.eq(remainder % (2 * self.q))


#: A receive FIFO deeper than this ends in a stage of flip-flops (UartRx).
OUTPUT_STAGE_ABOVE = 64


class UartRx(wiring.Component):
    """Receiver: ``rx`` line in, bytes out.

    Parameters
    ----------
    divisor : int or Fraction
        Clock cycles per bit (the module's docstring: where each bit is sampled).
    fifo_depth : int
        Received bytes held while ``o`` is not ready (0: no FIFO; a byte not taken before the
        next one completes is lost). Above :data:`OUTPUT_STAGE_ABOVE` three more are held in
        the stage of flip-flops the bytes leave from.

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
        self._p, self._q = _period(self, divisor)
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

        p, q = self._p, self._q
        phase = _Bresenham(p, q)
        first = p // (2 * q)              # the start bit's middle: floor(p / 2q) cycles in
        timer = Signal(range(max(phase.n + (phase.r != 0), first)))
        bit = Signal(range(9))
        shift = Signal(8)
        done = Signal()                   # a byte with a good stop bit, this cycle
        m.d.comb += self.framing_error.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(first - 1)
                    phase.start(m, p)     # (2j + 1) p mod 2q at j = 0
                    m.next = "START"
            with m.State("START"):        # to the middle of the start bit
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):        # a glitch, not a start bit
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [timer.eq(phase.next_timer(m)), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):         # LSB first, each sampled mid-bit
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shift.eq(Cat(shift[1:], line)), timer.eq(phase.next_timer(m)),
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
            ]
            out = fifo
            if self.fifo_depth > OUTPUT_STAGE_ABOVE:
                # A FIFO this deep is block RAM, whose read data arrives late in the cycle
                # (an ECP5 DP16KD's clock-to-output is 5.8 ns, of 13.3 at 75 MHz): the bytes
                # leave through three more of flip-flops and LUT RAM instead, at full rate.
                m.submodules.out_stage = out = SyncFIFOBuffered(width=8, depth=3)
                m.d.comb += [out.w_data.eq(fifo.r_data), out.w_en.eq(fifo.r_rdy),
                             fifo.r_en.eq(out.w_rdy)]
            m.d.comb += [
                self.o.payload.eq(out.r_data), self.o.valid.eq(out.r_rdy),
                out.r_en.eq(self.o.ready),
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

    Parameters
    ----------
    divisor : int or Fraction
        Clock cycles per bit (the module's docstring: where each bit boundary lies).

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
        self._p, self._q = _period(self, divisor)
        self.divisor = divisor
        super().__init__({
            "i": In(stream.Signature(8)),
            "tx": Out(1, init=1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        p, q = self._p, self._q
        phase = _Bresenham(p, q)
        first = (2 * p + q) // (2 * q)   # the start bit: round(p / q) cycles, halves up
        timer = Signal(range(phase.n + (phase.r != 0)))
        bits = Signal(range(11))          # bits still to send, start bit included
        frame = Signal(10, init=0x3FF)    # {stop, data[7:0], start}, sent LSB first
        m.d.comb += [self.i.ready.eq(bits == 0), self.busy.eq(bits != 0),
                     self.tx.eq(frame[0])]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [frame.eq(Cat(Const(0, 1), self.i.payload, Const(1, 1))),
                         bits.eq(10), timer.eq(first - 1)]
            phase.start(m, 2 * p + q)     # (2k p + q) mod 2q at the boundary k = 1
        with m.Elif(bits != 0):
            with m.If(timer != 0):
                m.d.sync += timer.eq(timer - 1)
            with m.Else():
                m.d.sync += [frame.eq(Cat(frame[1:], Const(1, 1))), bits.eq(bits - 1),
                             timer.eq(phase.next_timer(m))]
        return m
