"""iCEBreaker (iCE40UP5K-SG48): 12 MHz oscillator, FTDI FT2232H UART, two LEDs, one button.

The UP5K has 5280 LUT4s, 8 DSPs (16x16 SB_MAC16), 30 4-Kbit block RAMs and 4 256-Kbit SPRAMs.
The core runs from the PLL (SB_PLL40_PAD on the 12 MHz pad). The FT2232H carries up to
12 Mbaud (FT2232H datasheet, FT_000061: "UART Transfer Data Rate up to 12Mbaud"); at the
22.5 MHz core clock the UART runs configs/icebreaker.toml's 3 Mbaud, 7.5 cycles a bit on average
(hw/uart.py's fractional bit period; 12 Mbaud would be 1.9, below its MIN_DIVISOR; 8 Mbaud,
2.8). The clock is 22.5 MHz, not 24: at 99.6 % of the logic cells the placement varies, and
24 MHz was missed at one nextpnr seed of three (23.84 MHz, the local-error unit's path from the
label through the hinge to the saturated error); 22.5 MHz is the PLL step below that with a
margin (docs/RESULTS.md, "FPGA builds").
"""

from dataclasses import dataclass

from amaranth.hdl import Instance
from amaranth_boards.icebreaker import ICEBreakerPlatform

from ..weight_memory import SinglePortWeightMemory
from .top import Board, UsbBridge

__all__ = ["ICEBREAKER", "IceBreakerBoard", "ice40_pll_params"]

CLOCK_IN_HZ = 12_000_000


def ice40_pll_params(f_in, f_out):
    """``(DIVR, DIVF, DIVQ, FILTER_RANGE, f_actual)`` of SB_PLL40 in SIMPLE feedback mode for
    the output closest to ``f_out`` (the search of icestorm's ``icepll``)."""
    best = None
    for divr in range(16):
        f_pfd = f_in / (divr + 1)
        if not 10e6 <= f_pfd <= 133e6:
            continue
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not 533e6 <= f_vco <= 1066e6:
                continue
            for divq in range(1, 7):
                f = f_vco / (1 << divq)
                if best is None or abs(f - f_out) < abs(best[-1] - f_out):
                    best = (divr, divf, divq, f_pfd, f)
    if best is None:
        raise ValueError(f"no iCE40 PLL setting makes {f_out} Hz from {f_in} Hz")
    divr, divf, divq, f_pfd, f = best
    filter_range = next(k for k, top in enumerate((17e6, 26e6, 44e6, 66e6, 101e6, 1e12), 1)
                        if f_pfd < top)
    return divr, divf, divq, filter_range, f


@dataclass(frozen=True)
class IceBreakerBoard(Board):
    def weight_memory(self, params, words, simulated=False):
        """The weights in SPRAM (single-port RAM primitives behind the bus)."""
        return SinglePortWeightMemory(params.addr_bits, params.word_bits, words)

    def pll_settings(self):
        *dividers, made_hz = ice40_pll_params(CLOCK_IN_HZ, self.clock_hz)
        return dividers, made_hz

    def add_pll(self, m, platform, settings, clk, locked):
        divr, divf, divq, filter_range = settings
        m.submodules.pll = Instance(
            "SB_PLL40_PAD",
            p_FEEDBACK_PATH="SIMPLE", p_DIVR=divr, p_DIVF=divf, p_DIVQ=divq,
            p_FILTER_RANGE=filter_range,
            i_PACKAGEPIN=platform.request("clk12", dir="-").io, i_RESETB=1, i_BYPASS=0,
            o_PLLOUTGLOBAL=clk, o_LOCK=locked)

ICEBREAKER = IceBreakerBoard(
    name="icebreaker",
    platform=ICEBreakerPlatform,
    config="configs/icebreaker.toml",
    clock_hz=22_500_000,
    bridge=UsbBridge("FT2232H", 12_000_000),
    reset_button=("button", 0),
    leds=(("led_g", 0), ("led_r", 0)),          # heartbeat (green), busy (red)
    # A lean core: only the driver's counters (commands, correct predictions), 16 bits (the
    # driver reads their moves modulo 2**16); no dropout, sign-concordant feedback or early
    # exit (the device refuses them: UNSUPPORTED), no frozen layers (BAD_VALUE: range 0..0).
    rx_fifo_depth=1,                            # a register: the host waits for each reply
    core_options=(("counter_bits", 16), ("all_counters", False), ("dropout", False),
                  ("sign_feedback", False), ("early_exit", False), ("frozen_layers", False),
                  ("pipelined", False)),
)
