"""Board tops and bitstreams (gen/bitstream.py, hw/boards).

The fast tests elaborate every board's top to RTLIL and Verilog without running a tool; the
slow one builds the iCEBreaker bitstream with the YoWASP tools and checks its report.
"""

import json

import pytest

from gen.bitstream import build_bitstream, prepare
from hw.boards import BOARDS
from hw.boards.icebreaker import ice40_pll_params
from hw.boards.ulx3s import ecp5_pll_params
from lela.config import load_config

REPORT_KEYS = {"board", "device", "clock_mhz", "fmax_mhz", "timing_met", "logic_cells", "luts",
               "ffs", "dsps", "block_rams", "build_seconds", "critical_path", "utilization"}


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_board_top_elaborates(name):
    board, cfg, platform, plan = prepare(name, debug_verilog=True)
    assert cfg == load_config(board.config)
    rtlil, verilog = plan.files["top.il"], plan.files["top.debug.v"]
    pll = {"icebreaker": "SB_PLL40_PAD", "ulx3s": "EHXPLLL"}[name]
    for text in (rtlil, verilog):
        assert pll in text
        assert "accelerator" in text and "uart_rx" in text and "uart_tx" in text
    assert 0.5 * board.divisor * board.baud < board.clock_hz
    assert abs(board.baud_error) < 0.01


def test_board_weight_memory_holds_the_network():
    for board in BOARDS.values():
        cfg = load_config(board.config)
        words = board.weight_words(cfg)
        params = board.core_params(cfg)
        assert (1 << params.addr_bits) >= words
        assert params.frame_timeout >= board.clock_hz // 4


def test_pll_settings():
    assert ice40_pll_params(12e6, 24e6)[:4] == (0, 63, 5, 1)       # icepll -i 12 -o 24
    assert ecp5_pll_params(25e6, 50e6)[:3] == (1, 2, 12)           # ecppll -i 25 -o 50
    for f in (30e6, 36e6, 48e6):
        assert abs(ice40_pll_params(12e6, f)[-1] - f) < 1e3
    for f in (40e6, 62.5e6, 75e6):
        assert abs(ecp5_pll_params(25e6, f)[-1] - f) < 1e3


def test_unreachable_baud_refused():
    cfg = load_config(BOARDS["icebreaker"].config)
    with pytest.raises(ValueError, match="baud"):
        BOARDS["icebreaker"].replace(baud=12_000_000).top(cfg)


@pytest.mark.slow
def test_icebreaker_bitstream(tmp_path):
    report = build_bitstream("icebreaker", None, str(tmp_path))
    assert REPORT_KEYS <= set(report)
    assert json.loads((tmp_path / "report.json").read_text())["fmax_mhz"] == report["fmax_mhz"]
    assert (tmp_path / "top.bin").stat().st_size > 0
    assert report["clock_mhz"] >= 24
    assert report["timing_met"], report["critical_path"]
    assert report["dsps"] <= 8 and report["logic_cells"] <= 5280
