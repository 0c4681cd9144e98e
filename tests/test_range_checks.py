"""The device's range checks (issue 12): every refusal is BAD_VALUE naming the register (or the
sample), nothing refused acts, and the device then trains bit-exactly. On the whole accelerator
in Verilator (HARDWARE's build, tests/conftest.py)."""

import numpy as np
import pytest

from contract.limits import Limits, register_limits
from contract.protocol import REPLY, Command, FrameDecoder, Status, encode
from contract.registers import GLOBAL, LAYER, register_index, register_values
from host.driver import Accelerator, DeviceError
from sim.accelerator_sim import open_accelerator
from sw_model.golden import FixedPointNet
from tests.accelerator_checks import HARDWARE

pytestmark = pytest.mark.xdist_group("accelerator")

# HARDWARE by hand: layers of 20 -> 24 -> 24 -> 16 on a 4 x 4 array, so 6 + 6 + 4 tiles of
# 21, 25 and 25 words: 126 + 150 + 100 = 376 words of weight memory.
WORDS = 376


def u32s(*values):
    return b"".join(v.to_bytes(4, "little") for v in values)


def write(acc, index, *values):
    """WRITE_CONFIG from ``index``: ``(status, body)``."""
    return acc.request(Command.WRITE_CONFIG, bytes([index]) + u32s(*values))


def layer_frame(cfg, layer, **changes):
    """Layer ``layer``'s registers (neurons .. in_tiles) as the driver writes them, changed."""
    values = register_values(cfg)
    first = register_index("neurons", layer)
    row = [values[first + k] for k in range(LAYER["in_tiles"] + 1)]
    for name, value in changes.items():
        row[LAYER[name]] = value
    return first, row


def refused(acc, index, *values):
    status, body = write(acc, index, *values)
    return Status(status), bytes(body)


def bad(index):
    return Status.BAD_VALUE, bytes([index])


def trains_bit_exactly(acc, rng, cfg=HARDWARE):
    acc.configure(cfg)
    acc.init_weights()
    net = FixedPointNet(cfg)
    x = rng.integers(0, 256, size=(cfg.batch, cfg.arch[0]))
    y = rng.integers(0, cfg.classes, size=cfg.batch)
    assert acc.train_batch(x, y) == net.train_batch(x, y)
    for (w, b), w_net, b_net in zip(acc.read_weights(), net.weights, net.biases):
        assert np.array_equal(w, w_net) and np.array_equal(b, b_net)


@pytest.fixture
def device(tiny_harness):
    with open_accelerator(tiny_harness) as link:
        acc = Accelerator(link)
        acc.configure(HARDWARE)
        yield acc


def test_the_issue_values_are_refused_then_the_device_trains(device):
    acc = device
    assert refused(acc, GLOBAL["layers"], 200) == bad(GLOBAL["layers"])
    assert refused(acc, GLOBAL["layers"], 0) == bad(GLOBAL["layers"])
    assert refused(acc, register_index("fan_in", 1), 0) == bad(register_index("fan_in", 1))
    assert refused(acc, register_index("tiles", 0), 0) == bad(register_index("tiles", 0))
    index = register_index("weight_base", 1)
    assert refused(acc, index, 10**6) == bad(index)
    with pytest.raises(DeviceError, match="OUT_OF_ORDER"):      # a refusal leaves it unusable
        acc.command(Command.INIT_WEIGHTS)
    with pytest.raises(DeviceError, match=r"BAD_VALUE \(register 'layers', index 0"):
        acc.command(Command.WRITE_CONFIG, bytes([0]) + u32s(200))
    trains_bit_exactly(acc, np.random.default_rng(1))


@pytest.mark.parametrize("name,value", [("layers", 3), ("inputs", 24), ("rounding", 1),
                                        ("dropout", 255), ("keep_scale", 1 << 16),
                                        ("bias_shift", 31), ("round_seed", (1 << 31) - 1)])
def test_each_global_limit_is_exact(device, name, value):
    """The largest value is taken, one more is refused (the least too, one less refused)."""
    index = GLOBAL[name]
    lo, hi = register_limits(Limits.for_config(HARDWARE))[index]
    assert hi == value                                          # this test's own expectation
    assert refused(device, index, hi) == (Status.OK, b"")
    assert refused(device, index, hi + 1) == bad(index)
    assert refused(device, index, lo) == (Status.OK, b"")
    if lo:
        assert refused(device, index, lo - 1) == bad(index)


def test_each_byte_of_a_value_counts(device):
    """The device compares a value with its limit a byte at a time as the bytes arrive: a
    value over the limit in its last byte alone (zero below, so that no other rule refuses
    it) is refused as surely as one over it in its first."""
    index = GLOBAL["dropout"]
    assert register_limits(Limits.for_config(HARDWARE))[index] == (0, 255)
    for byte in (1, 2, 3):
        assert refused(device, index, 1 << (8 * byte)) == bad(index), byte
    assert refused(device, index, 255) == (Status.OK, b"")


@pytest.mark.parametrize("name,good,wrong", [
    ("in_frac", 8, 9), ("forward_shift", 31, 32), ("update_shift", 0, 32),
    ("init_bits", 16, 17), ("init_bits", 2, 1), ("init_seed", 1, 0), ("classifier_seed", 5, 0),
    ("feedback_seed", (1 << 31) - 1, 1 << 31)])
def test_each_layer_limit_is_exact(device, name, good, wrong):
    index = register_index(name, 2)
    assert refused(device, index, good) == (Status.OK, b"")
    assert refused(device, index, wrong) == bad(index)


def test_unused_registers_take_only_zero(device):
    assert refused(device, 10, 0) == (Status.OK, b"")
    assert refused(device, 10, 1) == bad(10)
    assert refused(device, register_index("neurons", 1) + 14, 7) == \
        bad(register_index("neurons", 1) + 14)


def test_the_frozen_mask_has_a_bit_per_layer(device):
    """HARDWARE's core holds 3 layers: masks 0..7."""
    frozen = GLOBAL["frozen"]
    assert refused(device, frozen, 8) == bad(frozen)
    assert refused(device, frozen, 7) == (Status.OK, b"")
    assert refused(device, frozen, 0) == (Status.OK, b"")


@pytest.mark.parametrize("change,named", [
    (dict(tiles=5), "tiles"),              # 24 neurons need ceil(24 / 4) = 6 tiles
    (dict(tiles=7), "tiles"),
    (dict(in_tiles=6), "in_tiles"),        # 20 inputs: 5 input tiles
    (dict(in_tiles=4), "in_tiles"),
    (dict(weight_base=WORDS - 126 + 1), "weight_base"),   # its 126 words would end at 377
])
def test_a_layer_geometry_that_does_not_hold_is_refused(device, change, named):
    first, row = layer_frame(HARDWARE, 0, **change)
    assert refused(device, first, *row) == bad(register_index(named, 0))
    with pytest.raises(DeviceError, match="OUT_OF_ORDER"):
        device.command(Command.INIT_WEIGHTS)
    # The refused frame's transaction is abandoned: the next configuration's first frame
    # (the global registers) does not find it open.
    device.configure(HARDWARE)
    device.command(Command.INIT_WEIGHTS)


def test_the_last_words_of_the_memory_hold_a_layer(device):
    first, row = layer_frame(HARDWARE, 0, weight_base=WORDS - 126)
    assert refused(device, first, *row) == (Status.OK, b"")
    device.command(Command.INIT_WEIGHTS)


def test_geometry_out_of_turn_or_unfinished_is_refused(device, tiny_harness):
    fan_in = register_index("fan_in", 0)
    assert refused(device, fan_in, 20) == bad(fan_in)           # before its neurons
    first, row = layer_frame(HARDWARE, 1)
    in_tiles = register_index("in_tiles", 1)
    assert refused(device, first, *row[:3]) == bad(in_tiles)   # the frame ends too early
    with pytest.raises(DeviceError, match="OUT_OF_ORDER"):
        device.command(Command.INIT_WEIGHTS)
    trains_bit_exactly(device, np.random.default_rng(2))


@pytest.mark.parametrize("command", [Command.READ_WEIGHTS, Command.WRITE_WEIGHTS])
def test_weight_words_past_the_memory_are_refused(device, command):
    def send(address, words):
        if command == Command.READ_WEIGHTS:
            payload = address.to_bytes(4, "little") + words.to_bytes(2, "little")
        else:
            payload = address.to_bytes(4, "little") + bytes(8 * words)
        return Status(device.request(command, payload)[0])
    assert send(10**6, 1) == Status.BAD_VALUE
    assert send(WORDS - 1, 2) == Status.BAD_VALUE
    assert send(WORDS, 1) == Status.BAD_VALUE
    assert send((1 << 32) - 1, 1) == Status.BAD_VALUE
    assert send(WORDS - 2, 2) == Status.OK
    trains_bit_exactly(device, np.random.default_rng(3))


def test_a_label_outside_the_classes_is_refused(device):
    rng = np.random.default_rng(4)
    rows = np.concatenate([rng.integers(0, 4, size=(8, 1)),
                           rng.integers(0, 256, size=(8, 20))], axis=1).astype(np.uint8)
    for label in (4, 200):
        rows[5, 0] = label
        status, body = device.request(Command.LOAD_BATCH, bytes([0, 8]) + rows.tobytes())
        assert (Status(status), bytes(body)) == (Status.BAD_VALUE, bytes([5]))
        with pytest.raises(DeviceError, match="OUT_OF_ORDER"):  # the batch is unusable
            device.command(Command.TRAIN, bytes([8]))
    trains_bit_exactly(device, rng)


#: Cycles from the end of the longest command to RESET's reply: the receiver takes RESET's
#: 5 bytes, the dispatcher answers, the transmitter sends 6 (measured: 14).
RESET_AFTER_COMMAND = 100


def test_reset_answers_once_the_longest_command_ends_then_the_device_trains(tiny_harness):
    """The device takes no byte while a command runs; every command ends (the range checks
    bound its loops), so RESET sent behind the longest one HARDWARE accepts (all of its layers
    at their sizes, a full batch, the whole weight memory) is answered within that command's
    cycles and a few more. The issue's hang first: TRAIN and RESET both answer."""
    rng = np.random.default_rng(6)
    x = rng.integers(0, 256, size=(8, 20))
    y = rng.integers(0, 4, size=8)
    with open_accelerator(tiny_harness) as link:
        acc = Accelerator(link)
        acc.configure(HARDWARE)
        assert refused(acc, GLOBAL["layers"], 200) == bad(GLOBAL["layers"])
        assert Status(acc.request(Command.TRAIN, bytes([8]))[0]) == Status.OUT_OF_ORDER
        acc.reset()
        acc.configure(HARDWARE)
        acc.init_weights()
        acc.load_batch(x, y)
        start = link.cycle
        acc.command(Command.TRAIN, bytes([8]))
        train_cycles = link.cycle - start
        acc.load_batch(x, y)
        start = link.cycle
        out = link.exchange(encode(Command.TRAIN, bytes([8])) + encode(Command.RESET),
                            frames=2, max_cycles=train_cycles + RESET_AFTER_COMMAND)
        reset_cycles = link.cycle - start
        replies = [f for f in FrameDecoder().feed(out)]
        assert [(f.command, f.payload[0]) for f in replies] == [
            (Command.TRAIN | REPLY, Status.OK), (Command.RESET | REPLY, Status.OK)]
        assert train_cycles < reset_cycles <= train_cycles + RESET_AFTER_COMMAND
        print(f"TRAIN {train_cycles} cycles; RESET sent behind it answered after "
              f"{reset_cycles}")
        assert acc.counters()["train_commands"] == 0           # RESET cleared them
        trains_bit_exactly(acc, rng)


def test_a_core_without_convolutions_answers_unsupported(device):
    """A nonzero conv register on a core built without convolutions is UNSUPPORTED (not
    BAD_VALUE: the value is not wrong, the core lacks the feature); it trains bit-exactly
    afterwards."""
    for layer, value in ((0, 1 << 16), (HARDWARE.layers - 1, 1)):
        assert refused(device, register_index("conv", layer), value) == (Status.UNSUPPORTED, b"")
    # Its neighbour's out-of-range value is still BAD_VALUE, and a conv register of 0 is taken.
    index = register_index("in_tiles", 0)
    assert refused(device, index, 0) == bad(index)
    assert refused(device, register_index("conv", 0), 0)[0] == Status.OK
    trains_bit_exactly(device, np.random.default_rng(6))
