"""The board path simulated: the UART accelerator in Verilator behind a pseudo-terminal, driven
by the serial transport a user runs against a real board."""

import json
import os
from fractions import Fraction

import numpy as np
import pytest

from contract.protocol import FRAME_OVERHEAD
from host.driver import Accelerator
from hw.boards.icebreaker import ICEBREAKER
from host.serial_transport import SerialTransport
from lela.cli import main
from contract.config import load_config
from sim.board_sim import SimulatedBoard, build_board, first_load_batch, train_through_a_flip
from sw_model.golden import FixedPointNet
from tests.accelerator_checks import small_config

pytestmark = pytest.mark.xdist_group("board")

REGRESS = bool(os.environ.get("LELA_REGRESS"))


@pytest.fixture(scope="session")     # built once a worker (xdist interleaves modules)
def board(tmp_path_factory):
    root = tmp_path_factory.mktemp("board")
    # The iCEBreaker's one-byte receiver (configs/icebreaker.toml's rx_buffer: the driver
    # streams nothing ahead of a reply).
    path = small_config(root / "board.toml", train="rx_buffer = 1\n")
    cfg = load_config(path)
    assert cfg.rx_buffer == 1
    cache = os.environ.get("LELA_BUILD_CACHE") or str(root)
    # The iCEBreaker's lean core (its few counters must still recover a lost reply) and its
    # single-port weight memory.
    return path, cfg, build_board(cfg, os.path.join(cache, "board_sim"), board=ICEBREAKER)


@pytest.mark.parametrize("noise", [{}, {"flip": 200}, {"drop": 333}, {"flip": 1500}])
def test_serial_training_is_bit_exact_through_line_noise(board, noise):
    _, cfg, exe = board
    rng = np.random.default_rng(5)
    with SimulatedBoard(exe, **noise) as sim:
        link = SerialTransport(sim.port, timeout=5)
        acc = Accelerator(link, retries=3)
        acc.configure(cfg)
        acc.init_weights()
        net = FixedPointNet(cfg)
        for _ in range(3):
            x = rng.integers(0, 256, size=(8, 64))
            y = rng.integers(0, 10, size=8)
            assert acc.train_batch(x, y) == net.train_batch(x, y)
        for i, (w, b) in enumerate(acc.read_weights()):
            assert np.array_equal(w, net.weights[i]) and np.array_equal(b, net.biases[i])
        assert acc.resends == (1 if noise else 0)
        assert acc.counters()["train_commands"] == 3
        link.close()


def test_lela_train_over_the_serial_backend(board, tmp_path, capsys):
    config, _, exe = board
    with SimulatedBoard(exe) as sim:
        assert main(["train", "--backend", "serial", "--port", sim.port, "--config", config,
                     "--dataset", "digits", "--epochs", "1", "--train-limit", "64", "--quiet",
                     "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert ": equal" in out
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["backend"] == "serial" and res["bit_exact"]
    assert res["counters"]["train_commands"] == 8


def test_every_single_bit_flip_of_a_load_batch_ends_right_or_raises(board):
    """Each bit of the first LOAD_BATCH frame flipped on the line in turn (``make test``: the
    header's high length byte, whose flip once put the driver a reply behind, and a seeded
    sample; ``LELA_REGRESS=1``: every bit): the mini-batch's result is right or the driver
    raises, and the device trains bit-exactly afterwards."""
    _, cfg, exe = board
    rng = np.random.default_rng(12)
    batches = [(rng.integers(0, 256, size=(8, 64)), rng.integers(0, 10, size=8))
               for _ in range(2)]
    start, length = first_load_batch(exe, cfg, *batches[0])
    assert length == FRAME_OVERHEAD + 2 + 8 * 65
    if REGRESS:
        bits = range(8 * length)
    else:
        high_length = 8 * 4 + np.arange(8)             # SYNC, command, tag, length low, high
        bits = sorted(set(high_length.tolist())
                      | set(rng.choice(8 * length, 8, replace=False).tolist()))
    failures, outcomes = [], {}
    for k in bits:
        outcome, wrong = train_through_a_flip(exe, cfg, batches, start + k // 8, k % 8)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if wrong:
            failures.append(f"byte {k // 8} bit {k % 8} of the LOAD_BATCH: {wrong}")
    print(f"single-bit flips of a {length}-byte LOAD_BATCH: {outcomes}")
    assert not failures, "\n".join(failures)


def test_training_at_the_ulx3s_fractional_bit_period(tmp_path_factory):
    """The ULX3S's UART at its config's 3 Mbaud: 50/3 cycles a bit at 50 MHz (hw/uart.py keeps
    the fraction exactly on average) in the RTL's receiver and transmitter and in the harness's
    line model; training is bit-exact, the weights read back, and the device counted every
    byte the host sent (none lost or doubled at the fractional period)."""
    from hw.boards import BOARDS
    ulx3s = BOARDS["ulx3s"]
    divisor = ulx3s.for_config(load_config(ulx3s.config)).divisor
    assert divisor == Fraction(50, 3)
    root = tmp_path_factory.mktemp("board_50_3")
    cfg = load_config(small_config(root / "board.toml"))
    cache = os.environ.get("LELA_BUILD_CACHE") or str(root)
    exe = build_board(cfg, os.path.join(cache, "board_sim_50_3"), divisor=divisor)
    rng = np.random.default_rng(9)

    class Counting:                                   # the bytes the host sends, per request
        def __init__(self, link):
            self.link, self.sent = link, []

        def exchange(self, data, frames=1, timeout=None):
            self.sent.append(len(data))
            return self.link.exchange(data, frames=frames, timeout=timeout)

    with SimulatedBoard(exe) as sim:
        link = SerialTransport(sim.port, 3_000_000, timeout=5)
        counting = Counting(link)
        acc = Accelerator(counting)
        acc.reset()                                   # clears the counters
        acc.configure(cfg)
        acc.init_weights()
        net = FixedPointNet(cfg)
        for _ in range(2):
            x = rng.integers(0, 256, size=(8, 64))
            y = rng.integers(0, 10, size=8)
            assert acc.train_batch(x, y) == net.train_batch(x, y)
        for i, (w, b) in enumerate(acc.read_weights()):
            assert np.array_equal(w, net.weights[i]) and np.array_equal(b, net.biases[i])
        counters = acc.counters()
        assert counters["train_commands"] == 2
        assert counters["host_rx_bytes"] == sum(counting.sent[1:])   # after the RESET
        link.close()
