"""The shared board top: UART pins -> UartRx -> accelerator -> UartTx -> pins, the weights in
on-chip memory (or a board's SDRAM: hw/boards/sdram.py), a PLL clock, a power-on and button
reset, and status LEDs.

A board module (``icebreaker.py``, ``ulx3s.py``) describes its board with a :class:`Board`:
the amaranth_boards platform, the core clock, the baud rate, the pins, the PLL and, when block
RAM is not the right home for the weights, its own weight memory.
"""

import dataclasses
from dataclasses import dataclass

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Module, ResetSignal, Signal
from amaranth.lib import io
from amaranth.lib.cdc import FFSynchronizer

from contract.registers import weight_bases

from ..params import CoreParams, index_bits
from ..uart_accelerator import UartAccelerator
from ..weight_memory import OnChipWeightMemory

__all__ = ["Board", "BoardTop", "LED_ROLES"]

#: What the LEDs show, in the order of ``Board.leds`` (a board with fewer LEDs shows the first).
LED_ROLES = ("heartbeat", "busy", "rx", "tx", "executing", "framing_error", "overrun", "reset")


@dataclass(frozen=True)
class Board:
    """A board: what its top needs to know. Subclasses provide :meth:`clock`.

    ``clock_hz`` is the requested core clock (the PLL output, and the timing constraint);
    ``baud`` the UART rate (the divisor is ``round(clock_hz / baud)``).
    """

    name: str
    platform: type
    config: str                          # default network (configs/*.toml)
    clock_hz: int
    baud: int = 115200
    uart: tuple = ("uart", 0)
    reset_button: tuple = None           # a (name, number) resource, high when pressed
    leds: tuple = ()                     # (name, number) resources, roles as LED_ROLES
    rx_fifo_depth: int = 16
    frame_timeout_s: float = 0.5         # a frame that stops arriving for this long is dropped
    reset_s: float = 20e-6               # power-on reset after the PLL locks (iCE40 BRAMs need 3 us)
    core_options: tuple = ()             # (CoreParams field, value) pairs: a leaner core

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    @property
    def divisor(self):
        return round(self.clock_hz / self.baud)

    @property
    def baud_error(self):
        """Relative error of the actual baud rate (keep it under 2 %)."""
        return self.clock_hz / self.divisor / self.baud - 1

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
        return BoardTop(self.core_params(cfg, **overrides), self, self.weight_words(cfg))

    def clock(self, m, platform):
        """Add the PLL to ``m``; return ``(clk, locked)``, ``clk`` at :attr:`clock_hz`."""
        settings, made_hz = self.pll_settings()
        if abs(made_hz - self.clock_hz) > 1e3:
            raise ValueError(f"{self.name}: the PLL makes {made_hz / 1e6:.4f} MHz, not "
                             f"{self.clock_hz / 1e6} MHz; pick a reachable clock")
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
        Pins, clock and baud rate.
    weight_words : int
        Depth of the on-chip weight memory.
    """

    def __init__(self, params, board, weight_words):
        if board.divisor < 4 or abs(board.baud_error) > 0.02:
            self._MustUse__silence = True             # refused: no "never used" warning
        if board.divisor < 4:
            raise ValueError(f"{board.name}: {board.baud} baud needs a faster clock than "
                             f"{board.clock_hz} Hz")
        if abs(board.baud_error) > 0.02:
            raise ValueError(f"{board.name}: {board.baud} baud is {board.baud_error:+.1%} off "
                             f"at {board.clock_hz} Hz")
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
