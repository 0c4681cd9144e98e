"""The host link under a hostile line (sim/link_fuzzer.py): the device answers every valid frame
with its command and tag, recovers after anything, and the driver never returns a value that
differs from the golden model's. ``LELA_REGRESS=1`` runs ten times the episodes."""

import os

import numpy as np
import pytest

from contract.protocol import DAMAGED, REPLY, Command, Frame
from host.driver import Accelerator
from sim.accelerator_sim import open_accelerator
from sim.link_fuzzer import FaultyLink, FuzzStats, SilentWrongResult, driver_episode, run_fuzz
from sw_model.golden import FixedPointNet
from tests.accelerator_checks import HARDWARE, TIMEOUT

pytestmark = pytest.mark.xdist_group("accelerator")      # tests/conftest.py's tiny_harness

REGRESS = bool(os.environ.get("LELA_REGRESS"))
#: The shared whole-accelerator build: a small core with every feature (dropout, sign
#: feedback, early exit: more states to reach).
CFG = HARDWARE
FRAME_TIMEOUT = TIMEOUT
#: Far longer than any command of CFG takes (a TRAIN is a few thousand cycles): an exchange
#: that reaches it was never answered.
MAX_CYCLES = 200_000
#: ``quiet_cycles``: the driver's drain waits a frame timeout of silence (the device has then
#: answered any frame cut short).
STALLS = dict(read_latency=5, stall=0.2, rx_stall=0.3, tx_stall=0.3,
              quiet_cycles=FRAME_TIMEOUT + 100)
EPISODES = 1000 if REGRESS else 100


@pytest.fixture(scope="module")
def harness(tiny_harness):
    return tiny_harness


class JunkBefore:
    """A link that puts ``junk`` before the first request of ``command``."""

    def __init__(self, link, junk, command):
        self.link, self.junk, self.command, self.done = link, junk, command, False

    def exchange(self, data, frames=1, timeout=None):
        if data and data[1] == self.command and not self.done:
            self.done = True
            data = self.junk + data
        return self.link.exchange(data, frames=frames, max_cycles=MAX_CYCLES)

    def drain(self):
        return self.link.drain()


@pytest.mark.parametrize("junk, command", [
    ("a503ffffff", Command.WRITE_CONFIG),       # a header with an oversized length
    ("a502000500", Command.READ_WEIGHTS),       # a short length: it swallows the request
    ("a5", Command.LOAD_BATCH),                 # a lone SYNC
    ("a506000a00", Command.TRAIN),              # a LOAD_BATCH dropped part-way: batch spoilt
])
def test_junk_before_a_request_does_not_put_the_driver_a_reply_behind(harness, junk, command):
    """The issue's case: noise shaped like a header before a request. The device answers the
    noise; the driver must not take that for the answer, nor any later reply for the next
    request's, and must end with the golden model's numbers."""
    rng = np.random.default_rng(2)
    with open_accelerator(harness, **STALLS) as link:
        noisy = JunkBefore(link, bytes.fromhex(junk), command)
        acc = Accelerator(noisy, retries=2)
        acc.configure(CFG)
        acc.init_weights()
        net = FixedPointNet(CFG)
        for _ in range(2):
            x = rng.integers(0, 256, size=(CFG.batch, CFG.arch[0]))
            y = rng.integers(0, CFG.classes, size=CFG.batch)
            assert acc.train_batch(x, y) == net.train_batch(x, y)
        for i, (w, b) in enumerate(acc.read_weights()):
            assert np.array_equal(w, net.weights[i]) and np.array_equal(b, net.biases[i])
        assert acc.counters()["train_commands"] == 2
        assert noisy.done and acc.resyncs >= 1          # the noise's reply was noticed


def test_link_fuzz(harness):
    with open_accelerator(harness, **STALLS) as link:
        stats = run_fuzz(link, CFG, seed=12, episodes=EPISODES, frame_timeout=FRAME_TIMEOUT,
                         max_cycles=MAX_CYCLES)
    print(f"link fuzz: {stats}")
    assert stats.silent_wrong == 0
    # The run did what it claims: frames by the thousand, faults, answers checked, and both
    # endings of a driver episode (completed, and stopped by an exception).
    assert stats.episodes == EPISODES and stats.frames > 20 * EPISODES
    assert stats.faults > 5 * EPISODES and stats.returned > 2 * EPISODES
    assert stats.raised


def test_the_fuzzer_catches_a_driver_that_ignores_tags(harness, monkeypatch):
    """The check can fail: the driver as it was before the tag (any undamaged reply to its
    command is the answer, nothing drained before a resend) returns wrong values, or fails
    with an error that is not the driver's, under the fuzzer's junk."""
    def any_reply(frame, command, tag):
        return isinstance(frame, Frame) and frame.command == command | REPLY \
            and len(frame.payload) >= 1 and frame.payload[0] not in DAMAGED

    monkeypatch.setattr("host.driver.is_answer", any_reply)
    monkeypatch.setattr(Accelerator, "_drain", lambda self: b"")
    stats = FuzzStats()
    caught = None
    with open_accelerator(harness, **STALLS) as link:
        for episode in range(40):
            rng = np.random.default_rng([7, episode])
            faulty = FaultyLink(link, rng, junk=0.5, fault=0.0, max_cycles=MAX_CYCLES,
                                stats=stats)
            try:
                driver_episode(faulty, rng, CFG, 2, stats)
            except (SilentWrongResult, ValueError) as e:
                caught = e
                break
    assert caught is not None, f"a driver ignoring tags went unnoticed: {stats}"
