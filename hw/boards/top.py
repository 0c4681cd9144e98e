"""The shared board top: UART pins -> UartRx -> accelerator -> UartTx -> pins, the weights in
on-chip memory (or a board's SDRAM: hw/boards/sdram.py), a PLL clock, a power-on and button
reset, and status LEDs.

A board module (``icebreaker.py``, ``ulx3s.py``) describes its board with a :class:`Board`:
the amaranth_boards platform, the core clock, its USB-serial bridge, the pins, the PLL and, when
block RAM is not the right home for the weights, its own weight memory. The UART's baud rate is
the network config's field ``baud`` (configs/<board>.toml): :meth:`Board.top` builds the board
at it.
"""

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Module, ResetSignal, Signal
from amaranth.lib import io
from amaranth.lib.cdc import FFSynchronizer

from contract.config import ConfigError
from contract.registers import weight_bases

from ..params import CoreParams, index_bits
from ..uart import MIN_DIVISOR, bit_period
from ..uart_accelerator import UartAccelerator
from ..weight_memory import OnChipWeightMemory

__all__ = ["Board", "BoardTop", "LED_ROLES", "UsbBridge", "BAUD_TOLERANCE"]

#: What the LEDs show, in the order of ``Board.leds`` (a board with fewer LEDs shows the first).
LED_ROLES = ("heartbeat", "busy", "rx", "tx", "executing", "framing_error", "overrun", "reset")


#: How far a board's UART rate, and its USB bridge's, may be from the asked-for baud rate.
BAUD_TOLERANCE = 0.005


@dataclass(frozen=True)
class UsbBridge:
    """A board's USB-serial bridge, an FTDI chip: the UART rates it makes are
    ``base_hz / d`` for a divisor ``d`` of 1, 1.5 (the two special cases) or ``n + k/8`` with
    ``n >= 2`` and ``k`` in 0..7 (the chips' datasheets, "Baud rates"; FTDI application note
    AN_120, "Aliasing VCP Baud Rates"). ``base_hz`` is its fastest rate."""

    name: str
    base_hz: int

    def rate(self, baud):
        """The rate the bridge makes when asked for ``baud``: the nearest it can (a
        Fraction)."""
        d = Fraction(self.base_hz) / Fraction(baud)
        divisors = {Fraction(1), Fraction(3, 2), Fraction(2)}
        if d > 2:
            divisors |= {Fraction(math.floor(8 * d), 8), Fraction(math.ceil(8 * d), 8)}
        best = min(divisors, key=lambda c: abs(Fraction(self.base_hz) / c - baud))
        return Fraction(self.base_hz) / best


@dataclass(frozen=True)
class Board:
    """A board: what its top needs to know. Subclasses provide :meth:`clock`.

    ``clock_hz`` is the requested core clock (the PLL output, and the timing constraint);
    ``bridge`` the USB-serial bridge on the other end of its UART. ``baud`` is the UART's rate,
    the network config's ``baud``: :meth:`for_config` sets it (the boards in ``BOARDS`` have
    none). The UART's divisor is ``clock_hz / baud``, fractional where it must be
    (hw/uart.py's ``bit_period``: exact on average).
    """

    name: str
    platform: type
    config: str                          # default network (configs/*.toml)
    clock_hz: int
    bridge: UsbBridge = None
    baud: int = None                     # the config's (for_config)
    uart: tuple = ("uart", 0)
    reset_button: tuple = None           # a (name, number) resource, high when pressed
    leds: tuple = ()                     # (name, number) resources, roles as LED_ROLES
    rx_fifo_depth: int = 16              # the config's rx_buffer (for_config)
    frame_timeout_s: float = 0.5         # a frame that stops arriving for this long is dropped
    reset_s: float = 20e-6               # power-on reset after the PLL locks (iCE40 BRAMs need 3 us)
    core_options: tuple = ()             # (CoreParams field, value) pairs: a leaner core

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def for_config(self, cfg):
        """This board with its UART at the network ``cfg``'s ``baud`` and its receive FIFO
        ``cfg.rx_buffer`` bytes deep (the driver streams that many bytes ahead of a reply)."""
        return self.replace(baud=cfg.baud, rx_fifo_depth=cfg.rx_buffer)

    @property
    def divisor(self):
        """Clock cycles a UART bit: ``clock_hz / baud``, an int or a Fraction (hw/uart.py)."""
        return bit_period(self.clock_hz, self.baud)

    @property
    def line_baud(self):
        """The UART's average rate: ``clock_hz / divisor`` (bits a second, a float)."""
        return float(self.clock_hz / Fraction(self.divisor))

    @property
    def baud_error(self):
        """Relative error of the UART's average rate (within :data:`BAUD_TOLERANCE`)."""
        return float(Fraction(self.clock_hz) / Fraction(self.divisor) / self.baud - 1)

    def baud_problem(self):
        """Why this board's UART cannot run at ``baud`` (one line), or None: a bit shorter than
        hw/uart.py's MIN_DIVISOR cycles, an average rate more than :data:`BAUD_TOLERANCE` off,
        a rate the USB bridge does not make within it or beyond its fastest."""
        if self.baud is None:
            return "no baud rate (Board.for_config gives the board its network's)"
        if self.clock_hz / self.baud < MIN_DIVISOR:
            return (f"{self.baud} baud needs a faster clock than {self.clock_hz} Hz (a bit of "
                    f"at least {MIN_DIVISOR} cycles)")
        if abs(self.baud_error) > BAUD_TOLERANCE:
            return f"{self.baud} baud is {self.baud_error:+.2%} off at {self.clock_hz} Hz"
        if self.bridge is not None:
            if self.baud > self.bridge.base_hz:
                return (f"{self.baud} baud is beyond the {self.bridge.name}, whose UART "
                        f"carries at most {self.bridge.base_hz} baud")
            made = self.bridge.rate(self.baud)
            if abs(made / self.baud - 1) > BAUD_TOLERANCE:
                return (f"the {self.bridge.name} makes {float(made):.0f} baud, not "
                        f"{self.baud} ({float(made / self.baud - 1):+.2%}): ask for a rate "
                        f"{self.bridge.base_hz} / (n + k/8) with n >= 2, or "
                        f"{self.bridge.base_hz} or {self.bridge.base_hz * 2 // 3}")
        return None

    # ---- sizing -----------------------------------------------------------------------
    def weight_words(self, cfg):
        """Words of on-chip weight memory the network needs (layers packed from 0)."""
        return weight_bases(cfg)[1]

    def core_params(self, cfg, **overrides):
        words = self.weight_words(cfg)
        fields = dict(frame_timeout=int(self.frame_timeout_s * self.clock_hz),
                      addr_bits=index_bits(words), **dict(self.core_options))
        fields.update(overrides)
        return CoreParams.from_config(cfg, **fields)

    def top(self, cfg, **overrides):
        """The board's top for network ``cfg``, its UART at ``cfg.baud``."""
        board = self.for_config(cfg)
        return BoardTop(board.core_params(cfg, **overrides), board, board.weight_words(cfg))

    def clock_problem(self):
        """Why this board cannot run its core at ``clock_hz`` (one line), or None: a clock its
        PLL does not make (within 1 kHz)."""
        try:
            _, made_hz = self.pll_settings()
        except ValueError as e:
            return str(e)
        if abs(made_hz - self.clock_hz) > 1e3:
            return f"the PLL makes {made_hz / 1e6:.4f} MHz, not {self.clock_hz / 1e6:g} MHz"
        return None

    def clock(self, m, platform):
        """Add the PLL to ``m``; return ``(clk, locked)``, ``clk`` at :attr:`clock_hz`."""
        problem = self.clock_problem()
        if problem:
            raise ValueError(f"{self.name}: {problem}; pick a reachable clock")
        settings, _ = self.pll_settings()
        clk, locked = Signal(name="clk_core"), Signal(name="pll_locked")
        self.add_pll(m, platform, settings, clk, locked)
        return clk, locked

    # ---- per board --------------------------------------------------------------------
    def pll_settings(self):
        """``(settings, made_hz)``: the PLL's dividers for :attr:`clock_hz` and the clock they
        make."""
        raise NotImplementedError

    def add_pll(self, m, platform, settings, clk, locked):
        """Add the PLL primitive (``m.submodules.pll``) with ``settings`` to ``m``, driving
        ``clk`` and ``locked``."""
        raise NotImplementedError

    def weight_memory(self, params, words, simulated=False):
        """The weight-bus slave holding ``words`` words (block RAM by default). ``simulated``:
        for the board simulation (sim/board_sim.py), with no pads around it."""
        return OnChipWeightMemory(params.addr_bits, params.word_bits, words)

    def add_memory_pads(self, m, platform, link):
        """Connect the weight memory's own pins (``link.sdram``, when it has any) to the
        board's; nothing to do for on-chip memory."""


class BoardTop(Elaboratable):
    """The whole design of a board.

    Parameters
    ----------
    params : CoreParams
        The accelerator.
    board : Board
        Pins, clock and baud rate (:meth:`Board.baud_problem` must find none).
    weight_words : int
        Depth of the on-chip weight memory.
    """

    def __init__(self, params, board, weight_words):
        problem = board.baud_problem()
        if problem:
            self._MustUse__silence = True             # refused: no "never used" warning
            raise ConfigError(f"{board.name}: config field 'baud': {problem}")
        self.params, self.board, self.weight_words = params, board, weight_words


    def elaborate(self, platform):
        m = Module()
        board = self.board

        # ---- clock and reset ------------------------------------------------------------
        clk, locked = board.clock(m, platform)
        m.domains.sync = ClockDomain("sync")
        m.domains.por = ClockDomain("por", reset_less=True, local=True)
        m.d.comb += [ClockSignal("sync").eq(clk), ClockSignal("por").eq(clk)]
        locked_s, pressed = Signal(), Signal()
        m.submodules.lock_sync = FFSynchronizer(locked, locked_s, o_domain="por")
        if board.reset_button is not None:
            m.submodules.button = button = io.Buffer(
                "i", platform.request(*board.reset_button, dir="-"))
            m.submodules.button_sync = FFSynchronizer(button.i, pressed, o_domain="por")
        delay = max(16, int(board.reset_s * board.clock_hz))
        timer, ready = Signal(range(delay + 1)), Signal()
        with m.If(~locked_s | pressed):
            m.d.por += [timer.eq(0), ready.eq(0)]
        with m.Elif(timer == delay):
            m.d.por += ready.eq(1)
        with m.Else():
            m.d.por += timer.eq(timer + 1)
        m.d.comb += ResetSignal("sync").eq(~ready)

        # ---- data path ------------------------------------------------------------------
        m.submodules.link = link = UartAccelerator(self.params, board.divisor,
                                                   board.weight_memory(self.params,
                                                                       self.weight_words),
                                                   board.rx_fifo_depth)
        uart = platform.request(*board.uart, dir="-")
        m.submodules.uart_rx_pin = rx_pin = io.Buffer("i", uart.rx)
        m.submodules.uart_tx_pin = tx_pin = io.Buffer("o", uart.tx)
        m.d.comb += [link.rx.eq(rx_pin.i), tx_pin.o.eq(link.tx)]
        board.add_memory_pads(m, platform, link)

        # ---- LEDs -----------------------------------------------------------------------
        beat = Signal(max(1, (board.clock_hz // 2).bit_length()))   # ~1 Hz
        m.d.por += beat.eq(beat + 1)
        # Flashes last from one to two periods of a ~20-40 ms tick taken from the heartbeat
        # counter: two flip-flops each, no counter of their own.
        tick_bit = max(0, (board.clock_hz // 40).bit_length() - 1)
        tick_prev, tick = Signal(), Signal()
        m.d.sync += tick_prev.eq(beat[tick_bit])
        m.d.comb += tick.eq(beat[tick_bit] & ~tick_prev)

        def flash(event, name):
            held, shown = Signal(name=f"{name}_held"), Signal(name=f"{name}_shown")
            with m.If(tick):
                m.d.sync += [shown.eq(held), held.eq(event)]
            with m.Elif(event):
                m.d.sync += held.eq(1)
            return held | shown

        def sticky(event, name):
            seen = Signal(name=f"{name}_seen")
            with m.If(event):
                m.d.sync += seen.eq(1)
            return seen

        rx_flash, tx_flash = flash(link.rx_byte, "rx"), flash(link.tx_byte, "tx")
        executing = link.executing & ~ResetSignal("sync")
        shows = {
            "heartbeat": beat[-1],
            "busy": rx_flash | tx_flash | executing,
            "rx": rx_flash,
            "tx": tx_flash,
            "executing": executing,
            "framing_error": sticky(link.framing_error, "framing_error"),
            "overrun": sticky(link.overrun, "overrun"),
            "reset": ResetSignal("sync"),
        }
        for role, resource in zip(LED_ROLES, board.leds):
            led = io.Buffer("o", platform.request(*resource, dir="-"))
            m.submodules[f"led_{role}"] = led
            m.d.comb += led.o.eq(shows[role])
        return m
