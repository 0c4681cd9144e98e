"""Convolutional layers on the whole accelerator in Verilator (issue 14): the patches walked
from the on-chip input map, pooling, every layer's local classifier over the pooled map, and
training (BACK over the flattened output, the deltas unpooled through the winners, GRAD over
kernel-row tiles), against the golden model (sw_model/golden_conv.py): the initial weights
drawn on the device, every layer's prediction of every sample, and after every mini-batch the
weights, biases and correct counts, with random stalls on the bus and the link. A core built
without convolutions is refused them by the driver."""

import numpy as np
import pytest

from contract.architecture import parse_arch
from contract.config import NetConfig
from contract.limits import Limits, conv_problem
from hw.params import CoreParams
from contract.protocol import Command, Status
from contract.registers import (CONV_FIELDS, LAYER, conv_fields, register_index,
                                register_values)
from host.driver import Accelerator, DeviceError
from sim.accelerator_sim import HarnessBench, build_accelerator, open_accelerator
from sim.scenarios import training_scenario
from sw_model.golden import FixedPointNet
from sw_model.golden_conv import FixedPointConvNet
from sw_model.traffic import local_error_buffer, local_error_traffic
from tests.accelerator_checks import TIMEOUT

# Its own build, so its own group: it runs beside the accelerator group on the other worker.
pytestmark = pytest.mark.xdist_group("accelerator_conv")

STALLS = dict(read_latency=5, stall=0.3, rx_stall=0.2, tx_stall=0.2)

#: The conv core's hardware: one build runs every network below.
CONV_HARDWARE = NetConfig(arch=(96, 72, 30, 18), classes=4, batch=8, array_rows=4,
                          array_cols=4, lr_shift=4, conv=True)

NETWORKS = {
    # "same" padding, pooling, filters filling the array's rows, then a dense top.
    "same-pool": "1x6x6-c4k3-p2-f8",
    # "valid" padding on two channels, five filters (a partial tile), a 1 x 1 convolution
    # without pooling on the pooled map, then a dense layer.
    "valid-partial-1x1": "2x6x8-c5k3v-p2-c3k1-f6",
    # An odd map with a 5 x 5 kernel wider than half of it, no pooling.
    "odd-k5": "1x5x7-c2k5-f5",
}


@pytest.fixture(scope="session")
def conv_harness(tmp_path_factory):
    root = tmp_path_factory.mktemp("accelerator_conv")
    params = CoreParams.from_config(CONV_HARDWARE, frame_timeout=TIMEOUT)
    assert params.conv
    exe = build_accelerator(CONV_HARDWARE, str(root), frame_timeout=TIMEOUT)
    return exe, Limits.of(params)


def _network(name, **changes):
    arch = parse_arch(NETWORKS[name])
    cfg = CONV_HARDWARE.replace(arch=arch.sizes(), **changes)
    return cfg, arch


def _random_weights(net, rng, spread=3):
    """Weights and biases of ``net``'s shapes, wider than the initial ones (so that sums
    clip and saturate as well as pass)."""
    out = []
    for w, b in zip(net.weights, net.biases):
        bits = spread + 1 + int(np.log2(np.abs(w).max() + 1))
        top = 1 << min(bits, 15)
        out.append((rng.integers(-top, top, size=w.shape), rng.integers(-top, top, size=b.shape)))
    return out


@pytest.mark.parametrize("name", list(NETWORKS))
def test_inference_matches_golden(conv_harness, name):
    exe, limits = conv_harness
    cfg, arch = _network(name, seed=len(name))
    golden = FixedPointConvNet(cfg, arch)
    rng = np.random.default_rng(len(name) + 1)
    x = rng.integers(0, 256, size=(cfg.batch * 4 + 3, arch.features))
    with open_accelerator(exe, seed=7, **STALLS) as link:
        acc = Accelerator(link, limits=limits)
        acc.configure(cfg, arch)
        acc.init_weights()
        device = acc.read_weights()
        assert len(device) == cfg.layers
        for (w, b), gw, gb in zip(device, golden.weights, golden.biases):
            np.testing.assert_array_equal(w, gw)
            np.testing.assert_array_equal(b, gb)
        want = np.array(golden.predict(x))
        np.testing.assert_array_equal(acc.predict(x), want)
        # Weights that make the sums clip, saturate and differ more between classes.
        layers = _random_weights(golden, rng)
        acc.write_weights(layers)
        golden.weights = [w for w, _ in layers]
        golden.biases = [np.asarray(b, dtype=golden.biases[i].dtype)
                         for i, (_, b) in enumerate(layers)]
        want = np.array(golden.predict(x))
        top = (1 << cfg.act_bits) - 1
        hidden = np.concatenate([y.ravel() for y in golden.layer_outputs(x)[:-1]])
        assert (hidden == 0).mean() > 0.05 and (hidden == top).mean() > 0.01, "clips, saturates"
        np.testing.assert_array_equal(acc.predict(x), want)


def test_early_exit_counts_every_beat_taken_or_saved(conv_harness):
    """With every sample exiting at the first layer, each later layer's beats are either taken
    or counted in ``exit_skipped_beats``: a convolution is run (its scores skipped), not
    counted as a fully connected layer would be."""
    exe, limits = conv_harness
    cfg, arch = _network("valid-partial-1x1", seed=3)
    x = np.random.default_rng(5).integers(0, 256, size=(cfg.batch, arch.features))
    with open_accelerator(exe, seed=3) as link:
        acc = Accelerator(link, limits=limits)
        acc.configure(cfg, arch)
        acc.init_weights()
        before = acc.counters()
        acc.infer(x)
        full = acc.counters()
        _, exits = acc.infer(x, exit_threshold=0)
        early = acc.counters()
    assert exits.max() == 0

    def delta(after, start, name):
        return after[name] - start[name]

    assert delta(full, before, "exit_skipped_beats") == 0
    assert 0 < delta(early, full, "exit_skipped_beats")
    assert delta(early, full, "mac_busy_cycles") + delta(early, full, "exit_skipped_beats") \
        == delta(full, before, "mac_busy_cycles")


def test_a_core_without_convolutions_is_refused_them():
    cfg, arch = _network("same-pool", conv=False)

    class NoLink:
        def exchange(self, *args, **kwargs):
            raise AssertionError("nothing may be sent")
    acc = Accelerator(NoLink(), limits=Limits.for_config(cfg))
    with pytest.raises(ValueError, match="built without them"):
        acc.configure(cfg, arch)


#: Training runs: a network, and the config's changes (dropout, sign-concordant feedback,
#: rounding), each a few mini-batches with stalls.
TRAINING = {
    "same-pool": ("same-pool", dict()),
    "valid-partial-1x1-dropout": ("valid-partial-1x1", dict(dropout=64)),
    "odd-k5-sign-nearest": ("odd-k5", dict(feedback="sign", rounding="nearest-even")),
    # One input tile (K*K*C = 1): the bias gradients are written and read in the same sum.
    "one-tile": ("1x6x6-c4k1-p2-f8", dict()),
}


@pytest.mark.parametrize("name", list(TRAINING))
def test_training_matches_golden_at_every_write(conv_harness, name, tmp_path):
    """TRAIN of a convolutional network (three mini-batches, one partial), then INFER (early
    exit too): every weight-memory write of INIT_WEIGHTS and of each TRAIN, every reply, the
    weights read back after every command and the counters equal the golden model's
    (sim/scenarios.py, the checks of the fully connected core's benches)."""
    exe, limits = conv_harness
    network, changes = TRAINING[name]
    arch = parse_arch(NETWORKS.get(network, network))
    cfg = CONV_HARDWARE.replace(arch=arch.sizes(), seed=len(name), **changes)
    rng = np.random.default_rng(len(name) + 7)
    with HarnessBench(exe, cfg, tmp_path / "writes.bin", seed=len(name), **STALLS) as bench:
        training_scenario(bench, cfg, rng, (8, 5, 8), 11, name, arch=arch, limits=limits)


def test_traffic_counters_equal_the_model(conv_harness):
    """A convolutional mini-batch moves the weight words sw_model.traffic's local-error model
    counts (its weights streamed: read twice, written once; the classifiers regenerated), with
    filters and neurons filling the array's rows so that no padded row is moved."""
    exe, limits = conv_harness
    cfg, arch = _network("same-pool")
    assert all(layer.rows % cfg.array_rows == 0 for layer in arch.layers)
    rng = np.random.default_rng(2)
    with open_accelerator(exe, seed=2, **STALLS) as link:
        acc = Accelerator(link, limits=limits)
        acc.configure(cfg, arch)
        acc.init_weights()
        acc.load_batch(rng.integers(0, 256, size=(cfg.batch, arch.features)),
                       rng.integers(0, cfg.classes, size=cfg.batch))
        loaded = acc.counters()
        acc.command(Command.TRAIN, bytes([cfg.batch]))
        after = acc.counters()
    # A chip of the working buffer only: nothing resident.
    model = local_error_traffic(arch, cfg.classes, cfg.batch,
                                onchip_words=local_error_buffer(arch, cfg.batch))
    assert model.resident_layers == ()
    assert after["ext_read_words"] - loaded["ext_read_words"] == model.weight_read
    assert after["ext_write_words"] - loaded["ext_write_words"] == model.weight_write
    assert model.weight_write == sum(layer.rows * (layer.fan_in + 1) for layer in arch.layers)


def test_a_dense_network_trains_after_a_convolutional_one(conv_harness):
    """The driver sets every layer's ``conv`` back to 0: a fully connected network configured
    after a convolutional one trains bit-exactly on the same core."""
    exe, limits = conv_harness
    cfg, arch = _network("same-pool")
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(cfg.batch, arch.features))
    labels = rng.integers(0, cfg.classes, size=cfg.batch)
    with open_accelerator(exe, seed=3) as link:
        acc = Accelerator(link, limits=limits)
        acc.configure(cfg, arch)
        acc.init_weights()
        acc.train_batch(x, labels)
        dense = CONV_HARDWARE.replace(arch=(arch.features, 24, 12))
        acc.configure(dense)
        acc.init_weights()
        golden = FixedPointNet(dense)
        np.testing.assert_array_equal(acc.predict(x), np.array(golden.predict(x)))
        acc.train_batch(x, labels)
        golden.train_batch(x, labels)
        for (w, b), gw, gb in zip(acc.read_weights(), golden.weights, golden.biases):
            np.testing.assert_array_equal(w, gw)
            np.testing.assert_array_equal(b, gb)


def _layer_block(cfg, arch, layer, **changes):
    """WRITE_CONFIG of layer ``layer``'s 16 registers (its geometry transaction, closed by
    ``conv``) as the driver writes them, changed."""
    values = register_values(cfg, arch)
    first = register_index("neurons", layer)
    row = [values.get(first + k, 0) for k in range(16)]
    for name, value in changes.items():
        row[LAYER[name]] = value
    return bytes([first]) + b"".join(v.to_bytes(4, "little") for v in row)


def test_a_conv_register_that_disagrees_is_refused(conv_harness):
    """The device judges each layer's conv register with its geometry (contract.limits.
    conv_problem): a refusal is BAD_VALUE naming it, the network is unusable until written
    well, and then runs bit-exactly."""
    exe, limits = conv_harness
    cfg, arch = _network("valid-partial-1x1")
    word = register_values(cfg, arch)[register_index("conv", 1)]
    fields = conv_fields(word)
    channels_at = CONV_FIELDS["channels"][0]
    wrong = {
        "fan_in": word + (1 << channels_at),                    # K*K*C is not fan_in
        "same-even": word & ~(1 << CONV_FIELDS["valid"][0]) | (2 << CONV_FIELDS["kernel"][0])
        if fields["kernel"] == 1 else None,
        "big-map": word | (255 << CONV_FIELDS["in_h"][0]),      # beyond max_inputs
    }
    x = np.random.default_rng(4).integers(0, 256, size=(5, arch.features))
    with open_accelerator(exe, seed=4) as link:
        acc = Accelerator(link, limits=limits)
        acc.configure(cfg, arch)
        for name, value in wrong.items():
            assert conv_problem(value, 3, 5, limits), name
            status, body = acc.request(Command.WRITE_CONFIG,
                                       _layer_block(cfg, arch, 1, conv=value))
            assert (Status(status), bytes(body)) == (Status.BAD_VALUE,
                                                     bytes([register_index("conv", 1)])), name
            with pytest.raises(DeviceError, match="OUT_OF_ORDER"):
                acc.command(Command.INIT_WEIGHTS)
        acc.configure(cfg, arch)
        acc.init_weights()
        np.testing.assert_array_equal(acc.predict(x),
                                      np.array(FixedPointConvNet(cfg, arch).predict(x)))



def test_the_driver_refuses_a_map_the_buffers_cannot_hold():
    """The driver judges each conv register as the device does (contract.limits.
    conv_problem): an output larger than the core's buffers is refused before anything is
    sent."""
    cfg, arch = _network("odd-k5")                 # 2 x 5 x 7 = 70 outputs

    class NoLink:
        def exchange(self, *args, **kwargs):
            raise AssertionError("nothing may be sent")
    small = Limits.for_config(CONV_HARDWARE.replace(arch=(96, 48, 30, 18)))
    acc = Accelerator(NoLink(), limits=small)
    with pytest.raises(ValueError, match="'conv of layer 0': an output of 70 values, more than 48"):
        acc.configure(cfg, arch)
