"""lela.rtl_backend.RtlNet: the model lela train drives on a device, checked against its golden
twin; the end of an epoch reads the device's weights once (over a UART a read of the paper's
networks takes minutes), and any mini-batch or restore makes the next check read them again."""

import numpy as np
import pytest

from contract.protocol import Command
from lela.rtl_backend import MismatchError, RtlNet
from sim.accelerator_sim import open_accelerator
from tests.accelerator_checks import HARDWARE

pytestmark = pytest.mark.xdist_group("accelerator")


class _Counting:
    """A transport that counts the READ_WEIGHTS requests it carries."""

    def __init__(self, link):
        self.link, self.reads = link, 0

    def exchange(self, data, frames=1, **kw):
        if data and data[1] == Command.READ_WEIGHTS:
            self.reads += 1
        return self.link.exchange(data, frames=frames, **kw)

    def __getattr__(self, name):
        return getattr(self.link, name)


def _batch(seed):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (HARDWARE.batch, HARDWARE.arch[0]), dtype=np.uint8),
            rng.integers(0, HARDWARE.classes, HARDWARE.batch))


def test_the_end_of_an_epoch_reads_the_weights_once(tiny_harness):
    with open_accelerator(tiny_harness, seed=5) as harness:
        link = _Counting(harness)
        net = RtlNet(HARDWARE, link)
        net.train_batch(*_batch(1))
        first = link.reads
        assert first == 0
        hash1 = net.check()
        one_read = link.reads - first
        assert one_read > 0
        state = net.state()
        assert net.weight_hash() == hash1 and link.reads == first + one_read
        net.train_batch(*_batch(2))
        hash2 = net.check()                      # the new weights, read again
        assert hash2 != hash1 and link.reads == first + 2 * one_read
        assert net.weight_hash() == hash2 == net.golden.weight_hash()
        net.restore(state)
        assert net.check() == hash1 and link.reads == first + 3 * one_read


def test_a_device_that_differs_after_a_read_is_still_caught(tiny_harness):
    """The cache never hides a difference: a weight changed behind the model's back after a
    check is read by the next check that follows a mini-batch (if the mini-batch's counts do
    not give it away first)."""
    with open_accelerator(tiny_harness, seed=6) as harness:
        net = RtlNet(HARDWARE, harness)
        net.train_batch(*_batch(3))
        net.check()
        weights = net.device.read_weights()
        weights[0][0][0, 0] += 1
        net.device.write_weights(weights)
        with pytest.raises(MismatchError):
            net.train_batch(*_batch(4))
            net.check()
