"""The analytic throughput model (host/throughput.py) and bench/board_throughput.py's epoch
scaling: MAC counts, the link and array bounds, the
frame model of a mini-batch (against the host driver's own frames) and the epoch scaling."""

import os

import numpy as np
import pytest

from bench.board_throughput import epoch_counters, steadiness
from host.throughput import (array_bound, batch_sizes, core_seconds, ecp5_blocks, infer_frames,
                             link_bound, link_seconds, macs_per_sample, minibatch_bytes,
                             read_weights_frames, schedule_for, training_rate)
from contract.config import load_config
from contract.protocol import Command, FrameDecoder, Status, reply
from contract.registers import COUNTERS, layer_words
from host.driver import Accelerator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_macs_per_sample_of_a_tiny_network_by_hand():
    # 4-3-2, 5 classes. Layer 1 (3 neurons on 4 inputs): forward 3*4, scores 3*5, back
    # projection 5*3, gradient 3*4 = 12 + 15 + 15 + 12 = 54. Layer 2 (2 on 3): 6 + 10 + 10 + 6.
    assert macs_per_sample([4, 3, 2], 5) == 54 + 32


def test_link_bound_from_bytes_and_baud():
    # 1152 bytes at 115200 baud, 10 bits a byte: 0.1 s; 8 samples a mini-batch: 80 samples/s.
    assert link_seconds(1152, 115200) == pytest.approx(0.1)
    assert link_bound(1152, 8, 115200) == pytest.approx(80.0)
    assert link_bound(660, 8, 24e6 / 208) == pytest.approx(8 * 24e6 / 208 / 6600)


def test_array_bound():
    # 16 lanes at 50 MHz, 800 MACs a sample: 10**6 samples/s.
    assert array_bound(800, 16, 50e6) == pytest.approx(1e6)


def test_batch_sizes_and_block_rams():
    assert batch_sizes(1437, 32) == [32] * 44 + [29]
    assert batch_sizes(16, 8) == [8, 8]
    assert ecp5_blocks(64, 1024) == 4            # 4 x 1024x18
    assert ecp5_blocks(8, 8192) == 4             # 4 x 2048x9
    assert ecp5_blocks(1, 100) == 1


class FakeDevice:
    """A transport answering every request OK with a body of the right length (no device)."""

    def __init__(self, cfg):
        self.layers, self.word_bytes = cfg.layers, cfg.array_rows * cfg.weight_bits // 8
        self.sent = self.received = 0

    def exchange(self, data, frames=1, timeout=None):
        (frame,) = list(FrameDecoder().feed(data))
        p = frame.payload
        body = {Command.READ_COUNTERS: 8 * (len(COUNTERS) + self.layers),
                Command.TRAIN: 2 * self.layers,
                Command.READ_RESULTS: p[0] * (self.layers + 1) if p else 0,
                Command.READ_WEIGHTS: int.from_bytes(p[4:6], "little") * self.word_bytes,
                }.get(frame.command, 0)
        out = reply(frame.command, Status.OK, bytes(body), frame.tag)
        self.sent += len(data)
        self.received += len(out)
        return out


@pytest.mark.parametrize("config", ["icebreaker", "ulx3s"])
def test_frame_model_equals_the_drivers_frames(config):
    cfg = load_config(os.path.join(ROOT, "configs", f"{config}.toml"))
    counters = len(COUNTERS) + cfg.layers
    link = FakeDevice(cfg)
    acc = Accelerator(link, retries=3)          # lela train --backend serial's driver
    acc.configure(cfg)
    rng = np.random.default_rng(0)
    # The first TRAIN reads the counters (the driver does not know them yet); the others do
    # not (it counts what it got answers for: host/driver.py, Accelerator.expected).
    for b, read in ((cfg.batch, True), (cfg.batch, False), (5, False)):
        before = (link.sent, link.received)
        acc.train_batch(rng.integers(0, 256, (b, cfg.arch[0])), rng.integers(0, 10, b))
        assert (link.sent - before[0], link.received - before[1]) == \
            minibatch_bytes(cfg.arch[0], b, counters, read_counters=read)
    assert acc.counter_reads == 1
    before = link.sent + link.received
    acc.infer(rng.integers(0, 256, (2 * cfg.batch + 3, cfg.arch[0])))
    frames = infer_frames(cfg.arch[0], cfg.batch, counters, 2 * cfg.batch + 3,
                          read_counters=False)
    assert link.sent + link.received - before == sum(f[1] + f[2] for f in frames)
    before = link.sent + link.received
    acc.read_weights()
    frames = [f for i in range(cfg.layers)
              for f in read_weights_frames(layer_words(cfg, i), link.word_bytes)]
    assert link.sent + link.received - before == sum(f[1] + f[2] for f in frames)


def test_frame_model_of_wide_inputs_splits_load_batch():
    # 784 inputs: (4096 - 2) // 785 = 5 samples a LOAD_BATCH frame, 7 frames for 32, each 8
    # bytes of header and count, 7 status replies; READ_COUNTERS of 13 counters; TRAIN.
    up, down = minibatch_bytes(784, 32, len(COUNTERS) + 2)
    assert up == 7 * 8 + 32 * 785 + 6 + 7
    assert down == 7 * 7 + (7 + 8 * 13) + (7 + 4)


def test_epoch_counters_scale_by_the_full_periods():
    keys = ("cycles", "train_cycles", "mac_busy_cycles", "host_rx_bytes", "host_tx_bytes",
            "train_commands")

    def snap(t):
        return {k: t for k in keys}
    # 6 mini-batches of 4 (the last of 2); simulated: the first 3 and the last, whose
    # driver reads were at 100, 110, 120 (periods of 10) and 135; the window holds 60.
    run = {"sizes": [4, 4, 4, 4, 4, 2], "chosen": [0, 1, 2, 5],
           "window": snap(60),
           "per_batch": [{"samples": 4, "snapshot": snap(100)},
                         {"samples": 4, "snapshot": snap(110)},
                         {"samples": 4, "snapshot": snap(120)},
                         {"samples": 2, "snapshot": snap(135)}]}
    epoch, periods = epoch_counters(run, 4)
    assert len(periods) == 2
    assert epoch == {k: 60 + 2 * 10 for k in keys}


def test_a_torn_counter_read_moves_two_periods_and_is_counted():
    # The read between periods 2 and 3 came out 65 536 cycles high (READ_COUNTERS sends the
    # counters live): period 2 is that much longer, period 3 that much shorter; period 5 is a
    # slow host (not a whole tear).
    base = {"cycles": 1000, "train_cycles": 10, "host_rx_bytes": 5, "host_tx_bytes": 3}
    periods = [dict(base) for _ in range(6)]
    periods[1]["cycles"] += 65536
    periods[2]["cycles"] -= 65536
    periods[4]["cycles"] += 40000
    out = steadiness(periods)
    assert out["cycles"]["torn_looking"] == 2 and out["cycles"]["median"] == 1000
    assert out["cycles"]["mean"] == 1000 + 40000 / 6          # the tear cancels
    assert out["host_tx_bytes"]["torn_looking"] == 0


def test_training_rate_adds_the_link_and_the_core_by_hand():
    # 4-3 (one layer of 3 on 4 inputs), 5 classes: 2*3*4 + 2*3*5 = 54 MACs a sample; batch 2 on
    # 3 lanes at 1 kHz, 1.5 cycles a beat: 1.5 * 54 * 2 / 3 / 1000 = 0.054 s of core.
    assert core_seconds(54, 2, 3, 1000, 1.5) == pytest.approx(0.054)
    nbytes = sum(minibatch_bytes(4, 2, len(COUNTERS) + 1))
    rate, link_s, core_s = training_rate([4, 3], 5, 2, 3, 1000, 9600, 1.5, read_counters=True)
    assert link_s == pytest.approx(nbytes * 10 / 9600)
    assert core_s == pytest.approx(0.054)
    assert rate == pytest.approx(2 / (nbytes * 10 / 9600 + 0.054))
    # Today's driver: no READ_COUNTERS; LOAD_BATCH (6 + 2 + 2 * 5 bytes) and TRAIN (6 + 1),
    # replies 7 and 6 + 1 + 2 (one layer): 41 bytes, 42.7 ms at 9600 baud.
    rate, link_s, _ = training_rate([4, 3], 5, 2, 3, 1000, 9600, 1.5)
    assert link_s == pytest.approx(41 * 10 / 9600)
    assert rate == pytest.approx(2 / (41 * 10 / 9600 + 0.054))
    # Pipelined: the line and the core overlap, the slower sets the pace (here the core).
    assert training_rate([4, 3], 5, 2, 3, 1000, 9600, 1.5, schedule="pipelined")[0] \
        == pytest.approx(2 / 0.054)
    # Resident: no line; the core and 4 + 1 + 7 copy cycles a sample at 1 kHz.
    rate, link_s, core_s = training_rate([4, 3], 5, 2, 3, 1000, 9600, 1.5, schedule="resident")
    assert link_s == 0 and core_s == pytest.approx(0.054 + 2 * 12 / 1000)
    with pytest.raises(ValueError, match="none of"):
        training_rate([4, 3], 5, 2, 3, 1000, 9600, schedule="overlapped")


def test_the_schedule_follows_the_boards_buffers():
    # digits on the ULX3S: a 2,088-byte LOAD_BATCH fits its 8 KiB FIFO; not the iCEBreaker's
    # one byte; a board holding the training set trains resident.
    assert schedule_for(64, 32, 8192) == "pipelined"
    assert schedule_for(64, 32, 2087) == "alternating"
    assert schedule_for(64, 32, 2088) == "pipelined"
    assert schedule_for(64, 8, 1) == "alternating"
    assert schedule_for(64, 32, 8192, resident_samples=1536) == "resident"
