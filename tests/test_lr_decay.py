"""Learning-rate decay (docs/ARITHMETIC.md, "Learning-rate decay"): the step schedule in the
contract, the golden model and the float reference, and on the device, where the host rewrites
the update shifts between epochs and every weight stays the golden model's."""

import numpy as np
import pytest

from contract.config import ConfigError, NetConfig
from host.driver import Accelerator
from lela.rtl_backend import RtlNet
from sim.accelerator_sim import open_accelerator
from sw_model.float_ref import FloatNet
from sw_model.golden import FixedPointNet
from tests.accelerator_checks import HARDWARE

pytestmark = pytest.mark.xdist_group("accelerator")


def _batches(cfg, count, seed):
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, 256, (cfg.batch, cfg.arch[0]), dtype=np.uint8),
             rng.integers(0, cfg.classes, cfg.batch)) for _ in range(count)]


def test_schedule_steps_every_k_epochs():
    cfg = NetConfig(arch=(64, 16), lr_shift=7, lr_decay_epochs=3)
    assert [cfg.lr_shift_at(e) for e in range(7)] == [7, 7, 7, 8, 8, 8, 9]
    assert cfg.at_epoch(2) is cfg
    assert cfg.at_epoch(3).lr_shift == 8 and cfg.at_epoch(3).update_shift(0) == \
        cfg.update_shift(0) + 1
    assert cfg.at_epoch(6).bias_update_shift() == cfg.bias_update_shift() + 2
    off = NetConfig(arch=(64, 16), lr_shift=7)
    assert [off.lr_shift_at(e) for e in (0, 1, 100)] == [7, 7, 7]


def test_schedule_past_the_formats_is_refused():
    """The epoch whose shift the formats refuse (lr_shift over 40, or sums past the golden
    model's exact range) is named; the epoch before it is taken."""
    cfg = NetConfig(arch=(64, 16), lr_shift=7, lr_decay_epochs=1)
    first_bad = next(e for e in range(40) if _refused(cfg, e))
    assert first_bad > 1
    cfg.at_epoch(first_bad - 1)
    with pytest.raises(ConfigError, match=f"lr_decay_epochs.* {7 + first_bad} by epoch "
                                          f"{first_bad + 1}"):
        cfg.at_epoch(first_bad)
    with pytest.raises(ConfigError, match="lr_decay_epochs"):
        NetConfig(arch=(64, 16), lr_decay_epochs=-1).validate()


def _refused(cfg, epoch):
    try:
        cfg.at_epoch(epoch)
    except ConfigError:
        return True
    return False


def test_golden_model_decays_only_its_update_shifts():
    """With k = 1, epoch 0 trains as without decay; from epoch 1 the updates are halved, so the
    weights part from an undecayed run's (while the PRNG streams stay in step)."""
    cfg = HARDWARE.replace(lr_decay_epochs=1)
    decayed, constant = FixedPointNet(cfg), FixedPointNet(HARDWARE)
    batches = _batches(cfg, 4, 1)
    for x, y in batches[:2]:
        decayed.set_epoch(0)
        assert decayed.train_batch(x, y) == constant.train_batch(x, y)
    assert decayed.weight_hash() == constant.weight_hash()
    decayed.set_epoch(1)
    assert decayed.cfg.lr_shift == HARDWARE.lr_shift + 1
    for x, y in batches[2:]:
        decayed.train_batch(x, y)
        constant.train_batch(x, y)
    assert decayed.weight_hash() != constant.weight_hash()
    # Only the shifts changed: the rounding stream drew as many words in both.
    assert decayed.round_stream.position == constant.round_stream.position


def test_float_reference_halves_its_rate():
    cfg = NetConfig(arch=(64, 16), lr_decay_epochs=2)
    net = FloatNet(cfg, "lel", lr=0.01)
    rates = []
    for epoch in range(5):
        net.set_epoch(epoch)
        rates.append(net.lr)
    assert rates == [0.01, 0.01, 0.005, 0.005, 0.0025]


def test_device_follows_the_schedule_bit_exactly(tiny_harness):
    """Two mini-batches an epoch over three epochs with k = 1: the host rewrites the shifts
    between epochs, and the device's weights equal the golden model's after each epoch."""
    cfg = HARDWARE.replace(lr_decay_epochs=1)
    batches = _batches(cfg, 6, 2)
    with open_accelerator(tiny_harness, seed=3) as link:
        net = RtlNet(cfg, link)
        for epoch in range(3):
            net.set_epoch(epoch)
            assert net.device.cfg.lr_shift == HARDWARE.lr_shift + epoch
            for x, y in batches[2 * epoch:2 * epoch + 2]:
                net.train_batch(x, y)
            net.check()                         # raises on any weight that differs


def test_driver_rewrites_only_the_learning_rate(tiny_harness):
    """A network that differs in more than lr_shift, or shifts past what the device takes, is
    refused before anything is sent; the device then trains on."""
    with open_accelerator(tiny_harness) as link:
        acc = Accelerator(link)
        acc.configure(HARDWARE)
        with pytest.raises(ValueError, match="more than lr_shift"):
            acc.set_learning_rate(HARDWARE.replace(lr_shift=5, seed=9))
        with pytest.raises(ValueError, match="update_shift"):
            acc.set_learning_rate(HARDWARE.replace(lr_shift=24))    # update_shift 32
        assert acc.cfg.lr_shift == HARDWARE.lr_shift
        # Rewritten before any training: the device now trains as a network built at 6.
        acc.set_learning_rate(HARDWARE.replace(lr_shift=6))
        acc.init_weights()
        golden = FixedPointNet(HARDWARE.replace(lr_shift=6))
        for x, y in _batches(HARDWARE, 2, 4):
            assert acc.train_batch(x, y) == golden.train_batch(x, y)
        for (w, b), gw, gb in zip(acc.read_weights(), golden.weights, golden.biases):
            assert np.array_equal(w, gw.astype(np.int64))
            assert np.array_equal(b, gb.astype(np.int64))
