"""The ULX3S with its weights in SDRAM, simulated: the board path (UART -> host interface ->
core -> SDRAM controller -> I/O registers) in Verilator with the C++ SDRAM model on the pins
(sim/harness/board_sdram.h), driven through the pseudo-terminal by the serial transport."""

import dataclasses
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from contract.config import load_config
from host.driver import Accelerator
from host.serial_transport import SerialTransport
from hw.boards.ulx3s import ULX3S, ULX3S_SDRAM, Ulx3sBoard
from contract.sdram import MT48LC16M16A2_6A as PART, SdramTiming
from hw.boards.sdram import PAD_READ_DELAY, SdramWeights
from sim.sdram_bench import run_bursts
from sim.sdram_model import SdramModel
from hw.weight_memory import OnChipWeightMemory
from sim.board_sim import SimulatedBoard, build_board
from sw_model.golden import FixedPointNet
from lela.cli import main
from lela.simulate_board import build_simulation
from tests.accelerator_checks import small_config

pytestmark = pytest.mark.xdist_group("board_sdram")


@pytest.fixture(scope="session")     # built once a worker (xdist interleaves modules)
def sdram_board(tmp_path_factory):
    root = tmp_path_factory.mktemp("sdram_board")
    path = small_config(root / "board.toml")
    cfg = load_config(path)
    cache = os.environ.get("LELA_BUILD_CACHE") or str(root)
    # The build `lela simulate-board --divisor 16 --build-dir <cache>/sdram_board_sim` reuses.
    build_root = os.path.join(cache, "sdram_board_sim")
    return cfg, build_simulation(ULX3S_SDRAM, cfg, 16, build_root), path, build_root


def test_the_boards_weight_memories():
    cfg = load_config(ULX3S.config)
    params = ULX3S_SDRAM.core_params(cfg)
    assert isinstance(ULX3S.weight_memory(params, 100), OnChipWeightMemory)
    sdram = ULX3S_SDRAM.weight_memory(params, 100)
    assert isinstance(sdram, SdramWeights) and sdram.pad_registers
    assert not ULX3S_SDRAM.weight_memory(params, 100, simulated=True).pad_registers
    big = dataclasses.replace(params, addr_bits=24)
    ULX3S_SDRAM.weight_memory(big, 1 << 22)           # 32 MB: 2**22 words of 64 bits
    with pytest.raises(ValueError, match="do not fit"):
        ULX3S_SDRAM.weight_memory(big, (1 << 22) + 1)


@pytest.mark.parametrize("read_delay", [PAD_READ_DELAY - 1, PAD_READ_DELAY, PAD_READ_DELAY + 1])
def test_the_weights_through_the_pin_registers(read_delay):
    """The controller behind the register stage (here in the fabric, as simulated) against the
    Python device model: every word read back right with the stage's read delay, and every
    word wrong with one clock more or less."""
    timing = SdramTiming.derive(PART, 50e6, 2, powerup_cycles=20)
    dut = SdramWeights(12, 64, 1000, 50e6, pad_registers=False, timing=timing,
                       read_delay=read_delay)
    model = SdramModel(PART, clock_hz=50e6, powerup_ns=20 * 20, max_postponed=0)
    res = run_bursts(dut, model, [("w", 0, 300), ("r", 0, 300), ("w", 290, 20), ("r", 280, 40)])
    assert res.words_read == 340
    if read_delay == PAD_READ_DELAY:
        assert res.mismatches == []
    else:
        assert len(res.mismatches) > 300


def test_the_sdram_clock_leads_the_core_clock():
    # 50 MHz from a 600 MHz VCO (CLKOP_DIV 12): a lead of 3.3 ns is a lag of 16.7 ns, ten VCO
    # cycles of 1.67 ns (and no eighths).
    assert ULX3S_SDRAM.sdram_clock_phase(12) == (10, 0)
    assert ULX3S_SDRAM.replace(sdram_clock_lead_ns=0).sdram_clock_phase(12) == (12, 0)
    assert ULX3S_SDRAM.replace(sdram_clock_lead_ns=2.5).sdram_clock_phase(12) == (10, 4)


def test_training_through_the_sdram_is_bit_exact_and_the_counters_match_the_device(
        sdram_board):
    cfg, exe, _, _ = sdram_board
    rng = np.random.default_rng(16)
    with SimulatedBoard(exe) as sim:
        link = SerialTransport(sim.port, timeout=10)
        acc = Accelerator(link, retries=0)
        acc.configure(cfg)
        acc.init_weights()
        net = FixedPointNet(cfg)
        for _ in range(3):
            x = rng.integers(0, 256, size=(8, 64))
            y = rng.integers(0, 10, size=8)
            assert acc.train_batch(x, y) == net.train_batch(x, y)
        for i, (w, b) in enumerate(acc.read_weights()):
            assert np.array_equal(w, net.weights[i]) and np.array_equal(b, net.biases[i])
        counters = acc.counters()
        link.close()
    seen = sim.sdram_commands()
    assert seen is not None, f"no SDRAM report; the harness said: {sim.stderr}"
    rows, beats = 4, 64 // 16                 # P = 4 weights of 16 bits a word: 4 columns
    assert seen["READ"] % beats == 0 and seen["WRITE"] % beats == 0
    assert counters["ext_read_words"] == rows * seen["READ"] // beats > 0
    assert counters["ext_write_words"] == rows * seen["WRITE"] // beats > 0
    assert seen["AUTO_REFRESH"] >= seen["cycles"] // 391 - 1    # one per 7.8 us at 50 MHz


def test_lela_trains_on_the_simulated_sdram_board_over_the_serial_backend(sdram_board,
                                                                          tmp_path, capsys):
    """`lela simulate-board` serves the board on a pseudo-terminal; `lela train --backend
    serial` trains on it unchanged, bit-exactly; SIGTERM (or Ctrl-C) stops the simulation
    cleanly with the SDRAM model's counts."""
    _, _, config, build_root = sdram_board
    sim = subprocess.Popen([sys.executable, "-m", "lela.cli", "simulate-board", "--board",
                            "ulx3s-sdram", "--config", str(config), "--divisor", "16",
                            "--build-dir", build_root], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not any(" is simulated on " in line for line in lines):
            lines.append(sim.stdout.readline())
            assert lines[-1], f"simulate-board ended: {lines} {sim.stderr.read()}"
        assert "built in" in lines[1] and int(lines[1].split()[2]) < 10, lines  # the fixture's
        port = lines[-1].split(" is simulated on ")[1].split(":")[0]
        assert main(["train", "--backend", "serial", "--port", port, "--config", str(config),
                     "--dataset", "digits", "--epochs", "1", "--train-limit", "48", "--quiet",
                     "--holdout", "16",
                     "--reply-timeout", "30", "--out", str(tmp_path)]) == 0
    finally:
        # SIGTERM, as a service manager would stop it (pytest-xdist's workers ignore SIGINT,
        # and their children inherit that); Ctrl-C ends it the same way.
        sim.send_signal(signal.SIGTERM)
        try:
            out, err = sim.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            sim.kill()
            raise
    assert ": equal" in capsys.readouterr().out
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["backend"] == "serial" and res["bit_exact"] and res["args"]["reply_timeout"] == 30
    assert res["counters"]["train_commands"] == 6 and res["counters"]["ext_write_words"] > 0
    assert sim.returncode == 0, err
    assert "stopped the simulated ulx3s-sdram (sdram: " in out, out


def test_simulate_board_refuses_what_no_board_trains(capsys):
    assert main(["simulate-board", "--board", "ulx3s-sdram", "--arch", "1x28x28-c4k3"]) == 1
    assert main(["simulate-board", "--board", "ulx3s", "--config", "no/such.toml"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == ["lela: error: --arch 1x28x28-c4k3: the boards train fully connected networks",
                   "lela: error: --config no/such.toml: no such file"]


@dataclasses.dataclass(frozen=True)
class _SlowRefreshBoard(Ulx3sBoard):
    """The ULX3S-SDRAM whose controller's refresh timer runs 64 clocks long (a refresh every
    ~8.4 us instead of every 7.8 us): the device model on the simulated pins must stop it."""

    def weight_memory(self, params, words, simulated=False):
        good = SdramTiming.derive(PART, self.clock_hz, 2)
        return SdramWeights(params.addr_bits, params.word_bits, words, self.clock_hz,
                            pad_registers=not simulated,
                            timing=dataclasses.replace(good, refi=good.refi + 64))


@pytest.mark.slow
def test_the_board_simulation_stops_a_mistimed_controller_with_the_rule_named(tmp_path):
    cfg = load_config(small_config(tmp_path / "board.toml"))
    exe = build_board(cfg, str(tmp_path / "sim"), board=_SlowRefreshBoard(**{
        f.name: getattr(ULX3S_SDRAM, f.name) for f in dataclasses.fields(ULX3S_SDRAM)}))
    with SimulatedBoard(exe) as sim:
        sim.proc.wait(timeout=60)       # a few refresh periods after power-up
    assert sim.proc.returncode == 2
    assert "SDRAM: refresh interval (tREFI) violated" in sim.stderr
    assert sim.sdram_commands() is None
