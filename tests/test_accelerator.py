"""The whole accelerator in Verilator behind the host driver, against the golden model.

One hardware build serves every case: networks, feedback modes, rounding, dropout and seeds
are run-time registers. Every external-memory write is compared (the harness logs them) with
random latency and stalls on the memory port and both host streams. The training, error-frame
and perturbed-model scenarios and their checks are sim/scenarios.py's, which the cocotb bench
(sim/tb_accelerator.py) runs too.
"""

import os

import numpy as np
import pytest

from host.driver import Accelerator, DeviceError
from contract.protocol import Command, Status, encode
from contract.registers import layer_words
from contract.config import NetConfig
from contract.limits import Limits
from sim.accelerator_sim import HarnessBench, build_accelerator, open_accelerator
from sim.scenarios import check_counters, check_inference, check_weights, check_writes, \
    error_frames_scenario, expect_reply, perturbed_scenario, training_scenario
from sw_model.golden import FixedPointNet
from sw_model.traffic import local_error_traffic
from tests.accelerator_checks import HARDWARE, TIMEOUT, NoisyLink

pytestmark = pytest.mark.xdist_group("accelerator")



@pytest.fixture(scope="module")
def harness(tiny_harness):
    return tiny_harness                     # HARDWARE's build (tests/conftest.py)


CASES = {
    "symmetric-stochastic": dict(),
    "sign-nearest": dict(feedback="sign", rounding="nearest-even"),
    "dropout-odd-sizes": dict(arch=(13, 11, 7), dropout=64, seed=3),
    "deep-sign-dropout": dict(dropout=32, feedback="sign", seed=5),
}
STALLS = dict(read_latency=9, stall=0.3, rx_stall=0.3, tx_stall=0.3)


def check_training(harness, cfg, seed, log, **core):
    """Train four mini-batches, then infer (early exit too, if the core has it): every
    external write, every reply, the weights after every command and the counters equal the
    golden model's (sim/scenarios.py, the checks of the cocotb bench)."""
    rng = np.random.default_rng(seed)
    with HarnessBench(harness, cfg, log, seed=seed, **STALLS) as bench:
        training_scenario(bench, cfg, rng, (8, 5, 8, 1), 13, f"seed {seed}", **core)


@pytest.mark.parametrize("case", list(CASES))
def test_training_matches_golden_at_every_write(harness, tmp_path, case):
    check_training(harness, HARDWARE.replace(**CASES[case]), len(case), tmp_path / "writes.bin")


#: Fewer classes than array columns: a back-projection sum (one beat per class) ends before
#: the drain has taken the previous one, so the array stalls its last beat (a frozen beat
#: must keep its tile's classifier weights). Built as a lean core, as on a small FPGA: only the
#: driver's counters, 16 bits wide; no dropout, no sign-concordant feedback, no early exit; and
#: without the MAC array's operand stage (as the 8 x 8 ULX3S config builds it).
FEW_CLASSES = NetConfig(arch=(20, 24, 16), classes=2, batch=8, array_rows=4, array_cols=4,
                        lr_shift=4, operand_stage=False)
LEAN = dict(counter_bits=16, all_counters=False, dropout=False, sign_feedback=False,
            early_exit=False, frozen_layers=False)


@pytest.fixture(scope="session")     # built once a worker (xdist interleaves modules)
def lean_harness(tmp_path_factory):
    root = os.environ.get("LELA_BUILD_CACHE") or str(tmp_path_factory.mktemp("accelerator"))
    return build_accelerator(FEW_CLASSES, os.path.join(root, "accelerator_lean"),
                             frame_timeout=TIMEOUT, **LEAN)


def test_fewer_classes_than_columns_on_a_lean_core(lean_harness, tmp_path):
    check_training(lean_harness, FEW_CLASSES, 0, tmp_path / "writes.bin", early_exit=False,
                   all_counters=False, counter_bits=LEAN["counter_bits"])


def test_lean_core_refuses_what_it_lacks_and_stays_usable(lean_harness):
    cfg = FEW_CLASSES
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, size=(8, cfg.arch[0]))
    y = rng.integers(0, cfg.classes, size=8)
    with open_accelerator(lean_harness, **STALLS) as link:
        acc = Accelerator(link)
        for lacking in (dict(dropout=32), dict(feedback="sign")):
            acc.configure(cfg)
            with pytest.raises(DeviceError, match="UNSUPPORTED"):
                acc.configure(cfg.replace(**lacking))
            with pytest.raises(DeviceError, match="OUT_OF_ORDER"):   # left unconfigured
                acc.load_batch(x, y)
        acc.configure(cfg)
        # No frozen layers: the mask's range is 0..0.
        with pytest.raises(DeviceError, match="BAD_VALUE.*frozen"):
            acc.set_frozen([0])
        with pytest.raises(DeviceError, match="OUT_OF_ORDER"):
            acc.load_batch(x, y)
        acc.configure(cfg)
        acc.set_frozen([])                                          # 0: nothing to refuse
        acc.init_weights()
        net = FixedPointNet(cfg)
        assert acc.train_batch(x, y) == net.train_batch(x, y)
        acc.load_batch(x, y)
        with pytest.raises(DeviceError, match="UNSUPPORTED"):
            acc.command(Command.INFER, bytes([8, 1, 0, 0]))
        preds, _ = acc.infer(x)                                     # still usable
        assert np.array_equal(preds, np.array(net.predict(x)))
        for w_dev, w_net in zip(acc.read_weights(), zip(net.weights, net.biases)):
            assert all(np.array_equal(a, b) for a, b in zip(w_dev, w_net))
        counters = acc.counters()
    # Only the driver's counters, 16 bits wide (read as 64 bits: nothing above bit 15).
    assert all(v < 1 << 16 for v in counters.values())
    assert counters["train_commands"] == 1 and counters["infer_commands"] == 1
    assert counters["cycles"] == 0 and counters["mac_busy_cycles"] == 0


def test_early_exit_saves_beats(harness):
    cfg = HARDWARE
    rng = np.random.default_rng(1)
    with open_accelerator(harness) as link:
        acc = Accelerator(link)
        acc.configure(cfg)
        acc.init_weights()
        x = rng.integers(0, 256, size=(8, cfg.arch[0]))
        before = acc.counters()
        acc.infer(x)
        full = acc.counters()
        acc.infer(x, exit_threshold=0)        # every sample exits at the first layer
        early = acc.counters()
        _, exits = acc.infer(x, exit_threshold=100)     # some exit early, some go on
        some = acc.counters()

    def delta(after, start, name):
        return after[name] - start[name]

    full_beats = delta(full, before, "mac_busy_cycles")
    assert delta(full, before, "exit_skipped_beats") == 0
    # Every beat is either taken or counted as saved.
    for after, start in ((early, full), (some, early)):
        assert delta(after, start, "mac_busy_cycles") \
            + delta(after, start, "exit_skipped_beats") == full_beats
    assert 0 < delta(some, early, "exit_skipped_beats") < delta(early, full, "exit_skipped_beats")
    assert exits.min() == 0 and exits.max() == cfg.layers - 1
    assert delta(early, full, "infer_cycles") < delta(full, before, "infer_cycles") / 2


def test_traffic_counters_equal_the_model(harness):
    """Weight words moved per mini-batch equal sw_model.traffic's local-error figure."""
    cfg = HARDWARE
    rng = np.random.default_rng(2)
    with open_accelerator(harness, **STALLS) as link:
        acc = Accelerator(link)
        acc.configure(cfg)
        acc.init_weights()
        before = acc.counters()
        x = rng.integers(0, 256, size=(8, cfg.arch[0]))
        acc.load_batch(x, rng.integers(0, 4, size=8))
        loaded = acc.counters()
        acc.command(Command.TRAIN, bytes([8]))
        after = acc.counters()
    buffer = max(cfg.batch * (cfg.arch[i] + cfg.arch[i + 1]) for i in range(cfg.layers))
    model = local_error_traffic(cfg.arch, cfg.classes, cfg.batch, onchip_words=buffer)
    assert model.resident_layers == ()
    assert after["ext_read_words"] - loaded["ext_read_words"] == model.weight_read
    assert after["ext_write_words"] - loaded["ext_write_words"] == model.weight_write
    assert sum(layer_words(cfg, i) for i in range(cfg.layers)) * cfg.array_rows \
        == model.weight_write
    assert loaded["ext_read_words"] == before["ext_read_words"]     # loading moves no weights


def test_error_replies_then_training(harness, tmp_path):
    """Every refusal of the host interface, then bit-exact training (sim/scenarios.py)."""
    with HarnessBench(harness, HARDWARE, tmp_path / "writes.bin", seed=4, **STALLS) as bench:
        error_frames_scenario(bench, HARDWARE, np.random.default_rng(3), TIMEOUT)


def test_perturbed_golden_model_is_caught(harness, tmp_path):
    """The device rounds stochastically, this golden model to nearest even: the write check
    after the first TRAIN must fail and name layer, word and lane."""
    with HarnessBench(harness, HARDWARE, tmp_path / "writes.bin", seed=6, **STALLS) as bench:
        message = perturbed_scenario(bench, HARDWARE, HARDWARE.replace(rounding="nearest-even"),
                                     np.random.default_rng(6))
    assert "device wrote" in message


def test_init_weights_from_another_seed(harness):
    cfg = HARDWARE
    with open_accelerator(harness) as link:
        acc = Accelerator(link)
        acc.configure(cfg)
        acc.init_weights(seed=9)
        other = FixedPointNet(cfg.replace(seed=9))
        for i, (w, b) in enumerate(acc.read_weights()):
            assert np.array_equal(w, other.weights[i]) and not b.any()
        acc.init_weights()
        for i, (w, _) in enumerate(acc.read_weights()):
            assert not np.array_equal(w, other.weights[i])


@pytest.mark.parametrize("noise", ["flip", "drop", "garble"])
def test_driver_recovers_from_line_noise(harness, noise):
    """A damaged request is re-sent; a TRAIN whose reply was lost is not run twice (the
    counters tell); the training stays bit-exact."""
    cfg = HARDWARE
    rng = np.random.default_rng(7)
    plan = {(Command.WRITE_CONFIG, 2): noise, (Command.LOAD_BATCH, 1): noise,
            (Command.TRAIN, 2): noise, (Command.READ_COUNTERS, 3): noise,
            (Command.TRAIN, 4): noise}
    with open_accelerator(harness) as link:
        noisy = NoisyLink(link, plan)
        acc = Accelerator(noisy, retries=3)
        acc.configure(cfg)
        acc.init_weights()
        net = FixedPointNet(cfg)
        for _ in range(4):
            x = rng.integers(0, 256, size=(8, cfg.arch[0]))
            y = rng.integers(0, cfg.classes, size=8)
            assert acc.train_batch(x, y) == net.train_batch(x, y)
        counters = acc.counters()
        for i, (w, b) in enumerate(acc.read_weights()):
            assert np.array_equal(w, net.weights[i]) and np.array_equal(b, net.biases[i])
    assert not noisy.plan and noisy.damaged == 5
    assert acc.resends >= 5 - (noise == "garble") * 2
    assert counters["train_commands"] == 4


@pytest.mark.parametrize("noise", ["garble", "flip"])
def test_a_lost_train_reply_is_resolved_from_the_expected_counters(harness, noise):
    """The driver reads the counters before the first TRAIN only, then counts what it got
    answers for. A TRAIN whose reply is lost ("garble": it ran) is not re-sent, its correct
    counts come from the counters; one whose request is damaged ("flip": it did not run) is
    re-sent once. Either way one READ_COUNTERS resolves it, and the device ran each TRAIN
    once."""
    cfg = HARDWARE
    rng = np.random.default_rng(8)
    with open_accelerator(harness) as link:
        noisy = NoisyLink(link, {(Command.TRAIN, 3): noise})
        acc = Accelerator(noisy, retries=3)
        acc.configure(cfg)
        acc.init_weights()
        net = FixedPointNet(cfg)
        for _ in range(5):
            x = rng.integers(0, 256, size=(8, cfg.arch[0]))
            y = rng.integers(0, cfg.classes, size=8)
            assert acc.train_batch(x, y) == net.train_batch(x, y)
        assert acc.counter_reads == 2         # before the first TRAIN; after the lost reply
        assert noisy.seen[Command.TRAIN] == 5 + (noise == "flip")
        assert acc.resends == (noise == "flip")
        assert acc.counters()["train_commands"] == 5
        assert acc.expected["train_commands"] == 5
        for i, (w, b) in enumerate(acc.read_weights()):
            assert np.array_equal(w, net.weights[i]) and np.array_equal(b, net.biases[i])


def test_scenario_checks_can_fail(harness, tmp_path):
    """Each check of sim/scenarios.py fails on a wrong expectation and says what differs."""
    cfg = HARDWARE
    other = FixedPointNet(cfg.replace(seed=9))      # not the device's initial weights
    with HarnessBench(harness, cfg, tmp_path / "writes.bin") as bench:
        with pytest.raises(AssertionError, match="status OUT_OF_ORDER, expected OK"):
            expect_reply(bench, "TRAIN before WRITE_CONFIG", encode(Command.TRAIN, b"\x01"),
                         Status.OK, Command.TRAIN)
        acc = Accelerator(bench.link)
        acc.configure(cfg)
        acc.init_weights()
        writes = bench.take_writes()
        with pytest.raises(AssertionError, match=r"INIT: weight-memory writes differ .*layer 0 "
                                                 r"word \d+ .*lane \d+ \(neuron \d+\)"):
            check_writes("INIT", writes, cfg, other, command="INIT")
        with pytest.raises(AssertionError, match=r"words written, golden model expects"):
            check_writes("INIT", writes[:-1], cfg, FixedPointNet(cfg), command="INIT")
        with pytest.raises(AssertionError, match="read_weights layer 0: .* weights differ"):
            check_weights("INIT", acc.read_weights(), other)
        with pytest.raises(AssertionError, match="INFER: .* predictions differ"):
            check_inference(bench, acc, cfg, other, np.random.default_rng(0), 16, "other")
        with pytest.raises(AssertionError, match="train_commands = 0, expected 1"):
            check_counters(bench, acc, cfg, np.zeros(cfg.layers, dtype=int), 1, "wrong")


def test_a_core_without_batch_norm_refuses_it_and_stays_usable(harness):
    """The plain core (HARDWARE's build) answers batch_norm = 1 with BAD_VALUE, naming the
    register, and then trains the plain network."""
    normalised = HARDWARE.replace(batch_norm=True, dropout=0)
    with open_accelerator(harness) as link:
        acc = Accelerator(link, limits=Limits.for_config(normalised))   # believes it can
        with pytest.raises(DeviceError, match="BAD_VALUE.*batch_norm"):
            acc.configure(normalised)
        acc.given_limits = None
        acc.configure(HARDWARE)
        acc.init_weights()
        rng = np.random.default_rng(1)
        acc.train_batch(rng.integers(0, 256, (8, 20)), rng.integers(0, 4, 8))
