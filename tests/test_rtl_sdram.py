"""hw/sdram_controller.py's generated Verilog with the SDRAM device model in cocotb
(sim/tb_sdram.py), on Verilator and Icarus."""

import pytest

from contract.sdram import SdramTiming
from hw.sdram_controller import SdramController
from tests.rtl_sweep import REGRESS, run_case, sweep

CASES = {
    "50mhz-cl2-w64": dict(clock_hz=50e6, cl=2, word_bits=64),
    "143mhz-cl3-w48": dict(clock_hz=143e6, cl=3, word_bits=48),
    "100mhz-cl3-w16": dict(clock_hz=100e6, cl=3, word_bits=16),
}


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=["50mhz-cl2-w64", "143mhz-cl3-w48"], icarus=True))
def test_sdram_controller_verilog(tmp_path_factory, name, sim):
    p = dict(CASES[name], addr_bits=20, powerup=20, seed=5, idle=0.2, stall=0.2,
             bursts=40 if REGRESS else 12, cycles=200_000)
    timing = SdramTiming.derive(clock_hz=p["clock_hz"], cl=p["cl"], powerup_cycles=p["powerup"])
    unit = SdramController(p["addr_bits"], p["word_bits"], timing=timing)
    p["words_per_row"] = 1 << unit.col_word_bits
    run_case(tmp_path_factory, unit, "sdram", p, sim, name)


def test_mistimed_verilog_is_caught(tmp_path_factory):
    """The Verilog of a controller whose tRCD is a clock short: the model names the rule."""
    import dataclasses
    p = dict(CASES["143mhz-cl3-w48"], addr_bits=20, powerup=20, seed=5, idle=0.2, stall=0.2,
             bursts=4, cycles=20_000)
    timing = SdramTiming.derive(clock_hz=p["clock_hz"], cl=p["cl"], powerup_cycles=p["powerup"])
    unit = SdramController(p["addr_bits"], p["word_bits"],
                           timing=dataclasses.replace(timing, rcd=timing.rcd - 1))
    p["words_per_row"] = 1 << unit.col_word_bits
    with pytest.raises(AssertionError, match="tRCD violated: (READ|WRITE) at cycle"):
        run_case(tmp_path_factory, unit, "sdram", p, "verilator", "mistimed")
