"""ULX3S-85F (ECP5 LFE5U-85F): 25 MHz oscillator, FTDI FT231X UART, eight LEDs, the PWR button,
32 MB SDRAM.

The core runs from an EHXPLLL. The FT231X carries up to 3 Mbaud (FT231X datasheet, FT_000565:
"Data transfer rates from 300 baud to 3 Mbaud"), configs/ulx3s.toml's rate: at the 50 MHz core
clock 50/3 cycles a bit, which hw/uart.py keeps exactly on average (bits of 16 and 17 cycles;
the nearest integer, 17, would be 1.96 % slow). LEDs 0..7 show ``LED_ROLES``
(hw/boards/top.py): heartbeat, busy, rx, tx, executing, framing error seen, overrun seen,
reset.

Two boards: ``ulx3s`` keeps the weights in block RAM; ``ulx3s-sdram`` in the SDRAM
(hw/boards/sdram.py), with a second PLL output, the SDRAM clock, a little ahead of the core
clock (docs/SDRAM.md, "The board top").
"""

from dataclasses import dataclass
from math import ceil, floor

from amaranth.hdl import ClockDomain, ClockSignal, Instance, Signal
from amaranth.lib import io
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from .sdram import SdramPads, SdramWeights
from .top import Board, UsbBridge

__all__ = ["ULX3S", "ULX3S_SDRAM", "Ulx3sBoard", "ecp5_pll_params"]

CLOCK_IN_HZ = 25_000_000


def ecp5_pll_params(f_in, f_out):
    """``(CLKI_DIV, CLKFB_DIV, CLKOP_DIV, f_actual)`` of EHXPLLL with CLKOP feedback for the
    output closest to ``f_out`` (the search of Trellis' ``ecppll``)."""
    best = None
    for clki_div in range(1, 129):
        f_pfd = f_in / clki_div
        if not 3.125e6 <= f_pfd <= 400e6:
            continue
        for clkfb_div in range(1, 81):
            f = f_pfd * clkfb_div
            # The VCO (f * CLKOP_DIV) must be in 400..800 MHz; take the divider nearest 600.
            divs = [d for d in range(max(1, ceil(400e6 / f)), min(128, floor(800e6 / f)) + 1)]
            if divs and (best is None or abs(f - f_out) < abs(best[-1] - f_out)):
                clkop_div = min(divs, key=lambda d: abs(f * d - 600e6))
                best = (clki_div, clkfb_div, clkop_div, f)
    if best is None:
        raise ValueError(f"no ECP5 PLL setting makes {f_out} Hz from {f_in} Hz")
    return best


@dataclass(frozen=True)
class Ulx3sBoard(Board):
    """``sdram``: the weights in the SDRAM, its clock ``sdram_clock_lead_ns`` ahead of the core
    clock (rounded to the PLL's phase steps: 1/8 of a VCO period)."""

    sdram: bool = False
    sdram_clock_lead_ns: float = 3.3

    def weight_memory(self, params, words, simulated=False):
        if not self.sdram:
            return super().weight_memory(params, words, simulated)
        return SdramWeights(params.addr_bits, params.word_bits, words, self.clock_hz,
                            pad_registers=not simulated)

    def add_memory_pads(self, m, platform, link):
        if self.sdram:
            m.submodules.sdram_pads = SdramPads(platform.request("sdram", 0, dir="-"),
                                                link.sdram, "sdram_clk")

    def sdram_clock_phase(self, clkop_div):
        """``(CPHASE steps, FPHASE eighths)`` of the SDRAM clock's lag behind the core clock,
        in VCO cycles: a lead of ``sdram_clock_lead_ns`` is a lag of one period less that."""
        f_vco = self.clock_hz * clkop_div
        lag_eighths = round((1 / self.clock_hz - self.sdram_clock_lead_ns * 1e-9) * f_vco * 8)
        return divmod(lag_eighths, 8)

    def pll_settings(self):
        *dividers, made_hz = ecp5_pll_params(CLOCK_IN_HZ, self.clock_hz)
        return dividers, made_hz

    def clock_problem(self):
        """The PLL's, and with ``sdram`` a clock too fast for the SDRAM (hw/boards/sdram.py)."""
        problem = super().clock_problem()
        if problem is None and self.sdram:
            try:
                SdramWeights.timing_at(self.clock_hz)
            except ValueError as e:
                problem = str(e)
        return problem

    def add_pll(self, m, platform, settings, clk, locked):
        clki_div, clkfb_div, clkop_div = settings
        m.submodules.clk25 = clk25 = io.Buffer("i", platform.request("clk25", dir="-"))
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=str(CLOCK_IN_HZ / 1e6),
            a_FREQUENCY_PIN_CLKOP=str(self.clock_hz / 1e6),
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=clki_div, p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=clkop_div,
            p_CLKOP_CPHASE=(clkop_div - 1) // 2, p_CLKOP_FPHASE=0,
            p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=clkfb_div,
            i_RST=0, i_STDBY=0, i_CLKI=clk25.i, i_CLKFB=clk,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0,
            o_CLKOP=clk, o_LOCK=locked, **self._sdram_clock(m, clkop_div))

    def _sdram_clock(self, m, clkop_div):
        """The PLL's CLKOS, the SDRAM clock (domain ``sdram_clk``): the core clock's frequency,
        its phase :meth:`sdram_clock_phase` later than CLKOP's."""
        if not self.sdram:
            return {}
        steps, eighths = self.sdram_clock_phase(clkop_div)
        clk = Signal(name="clk_sdram")
        m.domains.sdram_clk = ClockDomain("sdram_clk", reset_less=True, local=True)
        m.d.comb += ClockSignal("sdram_clk").eq(clk)
        return dict(a_FREQUENCY_PIN_CLKOS=str(self.clock_hz / 1e6), p_CLKOS_ENABLE="ENABLED",
                    p_CLKOS_DIV=clkop_div, p_CLKOS_CPHASE=(clkop_div - 1) // 2 + steps,
                    p_CLKOS_FPHASE=eighths, o_CLKOS=clk)


ULX3S = Ulx3sBoard(
    name="ulx3s",
    platform=ULX3S_85F_Platform,
    config="configs/ulx3s.toml",
    clock_hz=50_000_000,
    bridge=UsbBridge("FT231X", 3_000_000),
    reset_button=("button_pwr", 0),
    leds=tuple(("led", k) for k in range(8)),
)

#: The same board with the weights in its SDRAM (``lela bitstream --board ulx3s-sdram``).
ULX3S_SDRAM = ULX3S.replace(name="ulx3s-sdram", sdram=True)
