"""Resident training on the whole accelerator in Verilator: a training set stored on the
device (STORE_SAMPLES) and whole epochs trained from it (TRAIN_EPOCH), bit-exact against the
golden model fed the same mini-batches in the order sw_model/resident.py draws; refusals, a
damaged upload and a lost epoch reply."""

import numpy as np
import pytest

from contract.limits import Limits
from contract.protocol import Command, Status, encode
from host.driver import Accelerator, DeviceError
from sim.accelerator_sim import HarnessBench, open_accelerator
from sim.scenarios import resident_scenario
from sw_model.golden import FixedPointNet
from sw_model.resident import epoch_batches, epoch_order
from tests.accelerator_checks import HARDWARE, NoisyLink

pytestmark = pytest.mark.xdist_group("accelerator")

STALLS = dict(read_latency=9, stall=0.3, rx_stall=0.3, tx_stall=0.3)

CASES = {
    # 37 samples in mini-batches of 8: four whole ones and a last of 5.
    "default": (dict(), 37, 8),
    # Fewer inputs than the core's widest (a stored sample's bytes are not the store's
    # stride), dropout and sign feedback (their streams run on through the epoch), the whole
    # store, one sample a mini-batch at the end.
    "odd-dropout-sign": (dict(arch=(13, 11, 7), dropout=64, feedback="sign", seed=3), 40, 3),
}


@pytest.mark.parametrize("case", list(CASES))
def test_epochs_match_golden_at_every_write(tiny_harness, tmp_path, case):
    changes, samples, batch = CASES[case]
    cfg = HARDWARE.replace(**changes)
    rng = np.random.default_rng(len(case))
    with HarnessBench(tiny_harness, cfg, tmp_path / "writes.bin", seed=5, **STALLS) as bench:
        resident_scenario(bench, cfg, rng, samples, batch, (1, 0x2468ACE), case)


def test_the_order_is_a_shuffle():
    """Every epoch visits each sample once; different seeds give different orders; the first
    visits are spread over the set (not the identity or a rotation)."""
    for n in (1, 2, 7, 40, 1536):
        order = epoch_order(n, 12345)
        assert sorted(order.tolist()) == list(range(n))
    a, b = epoch_order(1536, 1), epoch_order(1536, 2)
    assert (a != b).mean() > 0.9
    assert len(set(a[:100].tolist()) & set(range(100))) < 30
    sizes = [len(v) for v in epoch_batches(37, 8, 9)]
    assert sizes == [8, 8, 8, 8, 5]


def _samples(seed, count, cfg=HARDWARE):
    """``count`` random samples and labels of ``cfg``'s network."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, size=(count, cfg.arch[0])),
            rng.integers(0, cfg.classes, size=count))


def _device(link, cfg, retries=0):
    acc = Accelerator(link, retries=retries)
    acc.configure(cfg)
    acc.init_weights()
    return acc


def test_refusals_leave_the_device_usable(tiny_harness):
    """Bad stores and epochs are refused with the status the interface names, nothing runs,
    and the device trains afterwards."""
    cfg = HARDWARE
    x, y = _samples(4, 20)
    with open_accelerator(tiny_harness) as link:
        acc = _device(link, cfg)

        def status(command, payload):
            return acc.request(command, payload)[0]

        # An epoch before anything is stored.
        assert status(Command.TRAIN_EPOCH, (4).to_bytes(2, "little") + bytes([4])
                      + (1).to_bytes(4, "little")) == Status.OUT_OF_ORDER
        acc.store_samples(x, y)
        row = lambda k: bytes([int(y[k])]) + bytes(x[k].astype(np.uint8))
        # A label beyond the classes: BAD_VALUE names the frame's sample 1.
        bad = bytes([int(y[0])]) + bytes(x[0].astype(np.uint8)) + bytes([cfg.classes]) \
            + bytes(x[1].astype(np.uint8))
        assert acc.request(Command.STORE_SAMPLES, (0).to_bytes(2, "little") + bytes([2]) + bad) \
            == (Status.BAD_VALUE, bytes([1]))
        # Past the store's 40 samples; a gap after the stored ones; a wrong length.
        assert status(Command.STORE_SAMPLES, (39).to_bytes(2, "little") + bytes([2])
                      + row(0) + row(1)) == Status.BAD_LENGTH
        assert status(Command.STORE_SAMPLES, (25).to_bytes(2, "little") + bytes([1])
                      + row(0)) == Status.BAD_LENGTH
        assert status(Command.STORE_SAMPLES, (0).to_bytes(2, "little") + bytes([1])
                      + row(0)[:-1]) == Status.BAD_LENGTH
        # The refused store at sample 0 wrote over it: only a fresh store makes 0.. usable.
        assert status(Command.TRAIN_EPOCH, (1).to_bytes(2, "little") + bytes([1])
                      + (1).to_bytes(4, "little")) == Status.OUT_OF_ORDER
        acc.store_samples(x, y)
        # Epoch arguments out of range: BAD_VALUE names samples (0), batch (1), seed (2).
        for body, args in ((0, (0, 4, 1)), (1, (4, 0, 1)), (1, (4, cfg.batch + 1, 1)),
                           (2, (4, 4, 1 << cfg.lfsr_width))):
            payload = args[0].to_bytes(2, "little") + bytes([args[1]]) \
                + args[2].to_bytes(4, "little")
            assert acc.request(Command.TRAIN_EPOCH, payload) == (Status.BAD_VALUE, bytes([body]))
        assert status(Command.TRAIN_EPOCH, (21).to_bytes(2, "little") + bytes([4])
                      + (1).to_bytes(4, "little")) == Status.OUT_OF_ORDER
        assert status(Command.TRAIN_EPOCH, b"\x04\x00\x04") == Status.BAD_LENGTH
        assert acc.counters()["train_commands"] == 0
        # Usable: an epoch over what is stored trains as the golden model does.
        net = FixedPointNet(cfg)
        want = sum(np.asarray(net.train_batch(x[v], y[v])) for v in epoch_batches(20, 8, 7))
        assert acc.train_epoch(20, 8, 7) == list(want)
        # A network with more inputs than a stored sample holds (the build's 20): the device
        # refuses both commands, and the driver before it.
        wide = cfg.replace(arch=(24, 16))
        acc.configure(wide)
        row24 = bytes([0]) + bytes(24)
        assert status(Command.STORE_SAMPLES, (0).to_bytes(2, "little") + bytes([1])
                      + row24) == Status.UNSUPPORTED
        assert status(Command.TRAIN_EPOCH, (1).to_bytes(2, "little") + bytes([1])
                      + (1).to_bytes(4, "little")) == Status.UNSUPPORTED
        checked = Accelerator(link, limits=Limits.for_config(HARDWARE))
        checked.configure(wide)
        with pytest.raises(ValueError, match="at most 20 pixels"):
            checked.store_samples(np.zeros((1, 24), dtype=int), np.zeros(1, dtype=int))
        acc.configure(cfg)
        # RESET forgets the store; so does a new input size.
        acc.reset()
        acc.configure(cfg)
        with pytest.raises(DeviceError, match="OUT_OF_ORDER"):
            acc.train_epoch(1, 1, 1)
        acc.store_samples(x, y)
        acc.configure(cfg.replace(arch=(13, 11, 7)))
        with pytest.raises(DeviceError, match="OUT_OF_ORDER"):
            acc.train_epoch(1, 1, 1)


def test_a_damaged_upload_is_not_used(tiny_harness):
    """A STORE_SAMPLES frame damaged on the line is dropped (its bytes were written as they
    came): the samples from its first on no longer count until stored again; the driver
    re-sends it and the epoch is bit-exact."""
    cfg = HARDWARE
    x, y = _samples(6, 40)
    with open_accelerator(tiny_harness) as link:
        acc = _device(link, cfg)
        acc.store_samples(x, y)
        # Damage sample 3's label on the way (the CRC fails): the device drops the frame.
        frame = bytearray(encode(Command.STORE_SAMPLES, (3).to_bytes(2, "little") + bytes([1])
                                 + bytes([int(y[3])]) + bytes(x[3].astype(np.uint8)), tag=9))
        frame[8] ^= 0x01
        link.exchange(bytes(frame))
        with pytest.raises(DeviceError, match="OUT_OF_ORDER"):
            acc.train_epoch(4, 2, 1)
        acc.train_epoch(3, 3, 1)                 # samples 0..2 still count
        # Through a noisy line with retries: the damaged store is re-sent.
        noisy = NoisyLink(link, {(Command.STORE_SAMPLES, 1): "flip"})
        acc = Accelerator(noisy, retries=3)
        acc.configure(cfg)
        acc.init_weights()
        acc.store_samples(x, y)
        net = FixedPointNet(cfg)
        want = sum(np.asarray(net.train_batch(x[v], y[v])) for v in epoch_batches(40, 8, 5))
        assert acc.train_epoch(40, 8, 5) == list(want)
        for i, (w, b) in enumerate(acc.read_weights()):
            assert np.array_equal(w, net.weights[i]) and np.array_equal(b, net.biases[i])
    assert noisy.damaged == 1


@pytest.mark.parametrize("noise", ["garble", "flip"])
def test_a_lost_epoch_reply_is_resolved_from_the_counters(tiny_harness, noise):
    """An epoch whose reply is lost ("garble": it ran) is not run again: its correct counts
    come from the counters, which moved by its five mini-batches; one whose request was
    damaged ("flip": it did not run) is sent again."""
    cfg = HARDWARE
    x, y = _samples(9, 37)
    with open_accelerator(tiny_harness) as link:
        noisy = NoisyLink(link, {(Command.TRAIN_EPOCH, 2): noise})
        acc = Accelerator(noisy, retries=3)
        acc.configure(cfg)
        acc.init_weights()
        acc.store_samples(x, y)
        net = FixedPointNet(cfg)
        for seed in (1, 2, 3):
            want = sum(np.asarray(net.train_batch(x[v], y[v]))
                       for v in epoch_batches(37, 8, seed))
            assert acc.train_epoch(37, 8, seed) == list(want)
        assert noisy.seen[Command.TRAIN_EPOCH] == 3 + (noise == "flip")
        assert acc.counters()["train_commands"] == 15
        for i, (w, b) in enumerate(acc.read_weights()):
            assert np.array_equal(w, net.weights[i]) and np.array_equal(b, net.biases[i])


def test_lela_train_resident_on_the_device_equals_the_golden_model(tiny_harness):
    """lela train's resident epoch (lela.train._epoch with --resident) on the simulated device
    (RtlNet.train_epoch: the set stored once, one TRAIN_EPOCH an epoch) ends with the golden
    model's weights after the same epochs run from the same order on the golden backend."""
    from lela.rtl_backend import RtlNet
    from lela.train import RunSpec, _epoch
    cfg = HARDWARE
    x, y = _samples(12, 38)
    spec = RunSpec(resident=True, epochs=2)
    with open_accelerator(tiny_harness) as link:
        device = RtlNet(cfg, link)
        golden = FixedPointNet(cfg)
        for epoch in range(2):
            on_device, _ = _epoch(spec, cfg, device, x, y, epoch, progress=False)
            on_golden, _ = _epoch(spec, cfg, golden, x, y, epoch, progress=False)
            assert on_device["train_error"] == on_golden["train_error"]
        assert device.check() == golden.weight_hash()
        assert device.counters()["train_commands"] == 2 * 5


@pytest.mark.parametrize("args,message", [
    (["--precision", "float"], "--resident: the device trains"),
    (["--algo", "lel-train", "--precision", "float"], "--resident: the device trains"),
    (["--backend", "serial", "--port", "/dev/null", "--config", "configs/icebreaker.toml",
      "--arch", "64-64"], "holds 0 samples"),
])
def test_lela_train_resident_refuses_what_the_device_cannot(tmp_path, capsys, args, message):
    from lela.cli import main
    try:
        code = main(["train", "--resident", "--epochs", "1", "--quiet", "--out",
                     str(tmp_path / "run"), *args])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code != 0 and message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
