"""Every shipped configuration trains (issue 12): one mini-batch of each ``configs/*.toml``
bit-exactly on the fast Verilator harness (a board's configuration with its board's core
options), each board's configuration through its board simulation (its UART, core options and
weight memory), and the whole core on array shapes from 1 x 1 up (more under LELA_REGRESS=1)."""

import glob
import os

import numpy as np
import pytest

from contract.config import NetConfig, load_config
from contract.limits import Limits
from host.driver import Accelerator
from host.serial_transport import SerialTransport
from hw.boards import BOARDS
from hw.uart import MIN_DIVISOR
from sim.accelerator_sim import build_accelerator, open_accelerator
from sim.board_sim import SimulatedBoard, build_board
from sw_model.golden import FixedPointNet

# No xdist group: each test builds its own model, so they spread over the workers.

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "*.toml")))
REGRESS = bool(os.environ.get("LELA_REGRESS"))


def board_of(path):
    """The board whose configuration ``path`` is, or None."""
    return next((b for b in BOARDS.values() if os.path.join(ROOT, b.config) == path), None)


def build_root(tmp_path_factory, name):
    root = os.environ.get("LELA_BUILD_CACHE") or str(tmp_path_factory.mktemp("shipped"))
    return os.path.join(root, name)


def train_one_batch(acc, cfg, rng):
    """Configure, draw the weights, train one full mini-batch: the correct counts and every
    weight and bias equal the golden model's."""
    acc.configure(cfg)
    acc.init_weights()
    net = FixedPointNet(cfg)
    x = rng.integers(0, 1 << min(8, cfg.act_bits), size=(cfg.batch, cfg.arch[0]))
    y = rng.integers(0, cfg.classes, size=cfg.batch)
    assert acc.train_batch(x, y) == net.train_batch(x, y)
    for i, ((w, b), w_net, b_net) in enumerate(zip(acc.read_weights(), net.weights,
                                                    net.biases)):
        assert np.array_equal(w, w_net), f"layer {i} weights"
        assert np.array_equal(b, b_net), f"layer {i} biases"


def test_every_board_config_is_shipped():
    # (ulx3s-sdram trains the ulx3s's network: two boards, one config.)
    assert {os.path.join(ROOT, b.config) for b in BOARDS.values()} <= set(CONFIGS)
    assert {board_of(path).config for path in CONFIGS if board_of(path)} \
        == {b.config for b in BOARDS.values()}


def _fast_harness_cases():
    """Every config; under ``make test`` the default (digits.toml) only: a board's config
    trains through its board simulation below, and fashion_mnist.toml's 784-wide build is the
    slowest of all (``make regress`` runs them)."""
    return [pytest.param(p, id=os.path.basename(p), marks=() if p.endswith("digits.toml")
                         else pytest.mark.slow) for p in CONFIGS]


#: The SDRAM board's build is the ULX3S's network behind the SDRAM model, which
#: tests/test_board_sdram.py trains through on a small network; here under ``make regress``.
BOARD_CASES = [pytest.param(name, marks=pytest.mark.slow if getattr(BOARDS[name], "sdram", False)
                            else ())
               for name in sorted(BOARDS)]


@pytest.mark.parametrize("path", _fast_harness_cases())
def test_config_trains_a_batch_on_the_fast_harness(tmp_path_factory, path):
    cfg = load_config(path)
    board = board_of(path)
    options = dict(board.core_options) if board else {}
    exe = build_accelerator(cfg, build_root(tmp_path_factory, f"config_{cfg.array_rows}x"
                                            f"{cfg.array_cols}_{os.path.basename(path)}"),
                            **options)
    with open_accelerator(exe, seed=1, read_latency=3, stall=0.2) as link:
        train_one_batch(Accelerator(link), cfg, np.random.default_rng(len(path)))


@pytest.mark.parametrize("name", BOARD_CASES)
def test_board_config_trains_through_its_board_simulation(tmp_path_factory, name):
    board = BOARDS[name]
    cfg = load_config(os.path.join(ROOT, board.config))
    # The shortest bit the UART takes (the board's baud rate is no core option), so that
    # reading the weights back is quick.
    exe = build_board(cfg, build_root(tmp_path_factory, f"board_{name}"), divisor=MIN_DIVISOR,
                      board=board)
    params = board.core_params(cfg)
    with SimulatedBoard(exe) as sim:
        link = SerialTransport(sim.port, timeout=20)
        # The driver checks against the board core's own limits.
        train_one_batch(Accelerator(link, limits=Limits.of(params)), cfg,
                        np.random.default_rng(7))
        link.close()


#: (rows, cols) beside the configurations' 1 x 1 (icebreaker), 4 x 4 (ulx3s) and 8 x 8 (digits,
#: fashion_mnist): non-square ones catch rows and columns mixed up. Under LELA_REGRESS=1, more.
SHAPES = [(1, 2)] + ([(4, 2), (2, 1), (2, 2), (1, 4), (8, 1), (2, 8)] if REGRESS else [])


@pytest.mark.parametrize("rows,cols", SHAPES, ids=[f"{r}x{c}" for r, c in SHAPES])
def test_array_shape_trains_bit_exactly(tmp_path_factory, rows, cols):
    """Sizes that are no multiple of the array (tiles and groups with a remainder)."""
    cfg = NetConfig(arch=(13, 11, 7), classes=3, batch=5, array_rows=rows, array_cols=cols,
                    lr_shift=4)
    exe = build_accelerator(cfg, build_root(tmp_path_factory, f"shape_{rows}x{cols}"))
    with open_accelerator(exe, seed=rows, read_latency=2, stall=0.3) as link:
        train_one_batch(Accelerator(link), cfg, np.random.default_rng(rows * 8 + cols))
