"""Streaming on the simulated board (issue 15): the next mini-batch's LOAD_BATCH rides behind
TRAIN in the UART receiver's deep FIFO (the config's rx_buffer), and line noise in TRAIN's
frame, in the LOAD_BATCH sent during TRAIN, or in a reply still ends bit-exact with every
TRAIN run once (docs/HOST_INTERFACE.md, "Streaming")."""

import os

import numpy as np
import pytest

from contract.config import load_config
from contract.protocol import FRAME_OVERHEAD, Command, Frame, FrameDecoder
from host.driver import Accelerator
from host.serial_transport import SerialTransport
from sim.board_sim import SimulatedBoard, build_board
from sw_model.golden import FixedPointNet
from tests.accelerator_checks import small_config

pytestmark = pytest.mark.xdist_group("board_stream")

BATCHES = 4
#: The LOAD_BATCH frame of a mini-batch of 8 digits: 8 + 8 x 65 bytes; the FIFO holds two.
LOAD_BYTES = FRAME_OVERHEAD + 2 + 8 * 65
RX_BUFFER = 1024


@pytest.fixture(scope="session")     # built once a worker (xdist interleaves modules)
def board(tmp_path_factory):
    root = tmp_path_factory.mktemp("board_stream")
    # (It also holds 64 samples for resident training: test_lela_train_resident_...)
    path = small_config(root / "board.toml",
                        train=f"rx_buffer = {RX_BUFFER}\nresident_samples = 64\n")
    cfg = load_config(path)
    cache = os.environ.get("LELA_BUILD_CACHE") or str(root)
    return cfg, build_board(cfg, os.path.join(cache, "board_stream")), path


def batches():
    rng = np.random.default_rng(21)
    return [(rng.integers(0, 256, size=(8, 64)), rng.integers(0, 10, size=8))
            for _ in range(BATCHES)]


class Recording:
    """The transport, keeping every request sent; ``garble``: ``(n, what, at)`` damages the
    n-th streamed exchange's received bytes (``flip`` bit 4 of byte ``at``, or ``drop`` it)."""

    def __init__(self, link, garble=None):
        self.link, self.sent, self.garble, self.streamed = link, [], garble, 0

    def exchange(self, data, frames=1, timeout=None):
        if data:
            self.sent.append(bytes(data))
        got = bytearray(self.link.exchange(data, frames=frames, timeout=timeout))
        if frames > 1:
            self.streamed += 1
            if self.garble and self.garble[0] == self.streamed:
                _, what, at = self.garble
                if what == "flip":
                    got[at] ^= 0x10
                else:
                    del got[at]
        return bytes(got)

    def drain(self, quiet=None):
        return self.link.drain(quiet)


def train(exe, cfg, noise=None, garble=None):
    """Configure, init and train :func:`batches` streamed through a fresh board with
    ``noise`` (SimulatedBoard's flip/drop); check every mini-batch and the weights against the
    golden model and that the device ran each TRAIN once. Returns the driver and the
    requests sent."""
    with SimulatedBoard(exe, **(noise or {})) as sim:
        serial = SerialTransport(sim.port, timeout=5)
        link = Recording(serial, garble)
        acc = Accelerator(link, retries=3)
        acc.configure(cfg)
        acc.init_weights()
        net = FixedPointNet(cfg)
        data = batches()
        for k, got in enumerate(acc.train_batches(data)):
            assert got == net.train_batch(*data[k]), f"mini-batch {k}"
        for i, (w, b) in enumerate(acc.read_weights()):
            assert np.array_equal(w, net.weights[i]) and np.array_equal(b, net.biases[i])
        assert acc.counters()["train_commands"] == BATCHES
        serial.close()
    return acc, link.sent


def stream_offsets(sent):
    """Where each streamed exchange (TRAIN, then a LOAD_BATCH) starts in the host's bytes."""
    at, out = 0, []
    for data in sent:
        frames = [e for e in FrameDecoder().feed(data) if isinstance(e, Frame)]
        if len(frames) > 1:
            assert [f.command for f in frames] == [Command.TRAIN, Command.LOAD_BATCH]
            out.append(at)
        at += len(data)
    return out


@pytest.fixture(scope="session")     # built once a worker (xdist interleaves modules)
def clean(board):
    cfg, exe, _ = board
    acc, sent = train(exe, cfg)
    return acc, stream_offsets(sent)


def test_clean_run_streams_every_next_batch(clean):
    acc, offsets = clean
    # Mini-batch 0 is loaded stop-and-wait; each TRAIN but the last carries the next LOAD.
    assert len(offsets) == BATCHES - 1 and acc.pipelined == BATCHES - 1
    assert LOAD_BYTES <= RX_BUFFER == acc.rx_buffer
    assert acc.fallbacks == 0 and acc.resends == 0 and acc.resyncs == 0
    assert acc.counter_reads == 1                       # before the first TRAIN only


TRAIN_BYTES = FRAME_OVERHEAD + 1


@pytest.mark.parametrize("where,what,at", [
    # (a) TRAIN(0)'s frame (the first streamed exchange): its B byte flipped (BAD_CRC: TRAIN
    # does not run, the LOAD_BATCH behind it does and overwrites the input buffer), its CRC
    # byte dropped.
    ("train", "flip", 5), ("train", "drop", 6),
    # (b) LOAD_BATCH(1), sent during TRAIN(0): a pixel flipped, a pixel dropped.
    ("load", "flip", 300), ("load", "drop", 301),
])
def test_noise_in_a_streamed_exchange(board, clean, where, what, at):
    cfg, exe, _ = board
    _, offsets = clean
    byte = offsets[0] + at + (TRAIN_BYTES if where == "load" else 0)
    acc, _ = train(exe, cfg, noise={what: byte})
    assert acc.fallbacks == 1
    # A TRAIN that did not run was re-sent once, after its batch was loaded again.
    assert acc.resends == (where == "train")


@pytest.mark.parametrize("what,at", [("flip", 5), ("drop", 9), ("flip", 14)])
def test_noise_in_a_streamed_reply(board, what, at):
    """TRAIN(0)'s reply (7 + 2 x 2 bytes: its status at 5, its counts from 6) or the
    LOAD_BATCH's behind it (from 11) damaged on the way back: TRAIN ran; its counts come from
    its answer or the counters, and it is not re-sent."""
    cfg, exe, _ = board
    acc, _ = train(exe, cfg, garble=(1, what, at))
    assert acc.fallbacks == 1 and acc.resends == 0


def test_lela_train_streams_over_the_serial_backend(board, tmp_path, capsys, monkeypatch):
    """``lela train --backend serial``: the epoch loop passes each next mini-batch, and with
    the config's deep rx_buffer every TRAIN but the epoch's last carries it; bit-exact."""
    import json

    from lela.cli import main
    cfg, exe, config = board
    streamed = []
    stream_train = Accelerator._stream_train

    def counting(self, *args):
        streamed.append(1)
        return stream_train(self, *args)
    monkeypatch.setattr(Accelerator, "_stream_train", counting)
    with SimulatedBoard(exe) as sim:
        # A simulated board's replies take as long as the machine's load makes them: the
        # documented knob for that, not the real board's default.
        assert main(["train", "--backend", "serial", "--port", sim.port, "--reply-timeout",
                     "60", "--config", config, "--dataset", "digits", "--epochs", "1",
                     "--train-limit", "64", "--quiet", "--out", str(tmp_path)]) == 0
    assert ": equal" in capsys.readouterr().out
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["backend"] == "serial" and res["bit_exact"]
    assert res["counters"]["train_commands"] == 8 and len(streamed) == 7


def test_lela_train_resident_over_the_serial_backend(board, tmp_path, capsys):
    """``lela train --resident --backend serial``: the 64 samples stored once, each epoch one
    TRAIN_EPOCH (8 mini-batches of 8); bit-exact against the golden twin, and the final
    weights equal those of ``--resident`` on the golden backend (the same order)."""
    import json

    from lela.cli import main
    _, exe, config = board
    args = ["train", "--config", config, "--dataset", "digits", "--epochs", "2",
            "--train-limit", "64", "--resident", "--quiet"]
    with SimulatedBoard(exe) as sim:
        assert main([*args, "--backend", "serial", "--port", sim.port, "--reply-timeout", "60",
                     "--out", str(tmp_path / "board")]) == 0
    assert ": equal" in capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "golden")]) == 0
    on_board = json.loads((tmp_path / "board" / "results.json").read_text())
    on_golden = json.loads((tmp_path / "golden" / "results.json").read_text())
    assert on_board["bit_exact"] and on_board["counters"]["train_commands"] == 16
    assert on_board["weight_hash"] == on_golden["weight_hash"]
    assert on_board["train_error_per_epoch"] == on_golden["train_error_per_epoch"]
