"""The limits (contract/limits.py) for known builds, and the driver's checks (host/checks.py):
each refuses with one line naming the value, before anything is sent."""

import numpy as np
import pytest

from contract.config import NetConfig, load_config
from contract.limits import Limits, minimum_values, register_limits
from contract.registers import GLOBAL, register_index
from host.checks import check_config
from host.driver import Accelerator
from hw.boards.icebreaker import ICEBREAKER

SMALL = NetConfig(arch=(20, 24, 24, 16), classes=4, batch=8, array_rows=4, array_cols=4,
                  lr_shift=4)


def test_the_icebreaker_limits_by_hand():
    """configs/icebreaker.toml on its board: 64-64 on a 1 x 1 array, 64 tiles of 65 words."""
    cfg = load_config("configs/icebreaker.toml")
    lim = Limits.of(ICEBREAKER.core_params(cfg))
    assert lim.weight_words == 64 * 65
    table = register_limits(lim)
    expect = {GLOBAL["layers"]: (1, 1), GLOBAL["inputs"]: (1, 64),
              GLOBAL["round_seed"]: (1, 2**31 - 1), GLOBAL["bias_shift"]: (0, 31),
              register_index("neurons", 0): (1, 64), register_index("fan_in", 0): (1, 64),
              register_index("weight_base", 0): (0, 4159), register_index("tiles", 0): (1, 64),
              register_index("in_tiles", 0): (1, 64), register_index("in_frac", 0): (0, 8),
              register_index("init_bits", 0): (2, 16), GLOBAL["frozen"]: (0, 0), 10: (0, 0)}
    for index, bounds in expect.items():
        assert table[index] == bounds, index
    assert len(table) == 32                                    # one layer's registers


def test_the_least_values_are_inside_every_build():
    for cfg in (SMALL, load_config("configs/icebreaker.toml")):
        lim = Limits.for_config(cfg)
        for index, (value, (lo, hi)) in enumerate(zip(minimum_values(lim.registers),
                                                      register_limits(lim))):
            assert lo == value <= hi, index


class Recorder:
    """A transport that records what is sent and answers nothing."""

    def __init__(self):
        self.sent = []

    def exchange(self, data, frames=1, timeout=None):
        self.sent.append(data)
        raise AssertionError("the driver sent a frame it should have refused")


@pytest.mark.parametrize("cfg,limits,message", [
    (SMALL.replace(lr_shift=24), None,
     r"^register 'update_shift of layer 0' would be 32, outside the 0\.\.31"),
    (SMALL.replace(arch=(20, 24, 24, 16, 8)), Limits.for_config(SMALL),
     r"^config has 4 hidden layers; the device takes 1\.\.3$"),
    (SMALL.replace(arch=(20, 25, 24, 16)), Limits.for_config(SMALL),
     r"^register 'neurons of layer 0' would be 25, outside the 1\.\.24"),
    (SMALL.replace(classes=5), Limits.for_config(SMALL),
     r"^config field 'classes' is 5; the device is built for 4$"),
    (SMALL.replace(batch=9), Limits.for_config(SMALL), r"^config field 'batch' is 9"),
    (SMALL.replace(batch_norm=True), Limits.for_config(SMALL),
     r"^config field 'batch_norm' is true; the device is built without batch normalisation$"),
])
def test_configure_refuses_before_sending(cfg, limits, message):
    link = Recorder()
    with pytest.raises(ValueError, match=message):
        Accelerator(link, limits=limits).configure(cfg)
    assert link.sent == []


def test_a_batch_normalising_core_checks_every_layer_with_its_five_extra_words():
    """On a core built with batch normalisation a layer's extent has J + 6 words a tile, even
    for a network that does not normalise: one word short of that is refused."""
    lim = Limits.for_config(SMALL.replace(batch_norm=True))
    assert lim.batch_norm and lim.weight_words == 376 + 5 * (6 + 6 + 4)
    short = Limits(**{**lim.__dict__, "weight_words": lim.weight_words - 1})
    with pytest.raises(ValueError, match=r"'weight_base of layer 2'.* past the device's"):
        Accelerator(Recorder(), limits=short).configure(SMALL.replace(batch_norm=True))


def test_a_layer_past_the_weight_memory_is_refused():
    lim = Limits.for_config(SMALL)
    small_memory = Limits(**{**lim.__dict__, "weight_words": 375})     # one word short
    with pytest.raises(ValueError, match=r"'weight_base of layer 2'.* end at word 376, past"):
        Accelerator(Recorder(), limits=small_memory).configure(SMALL)


def configured():
    """A driver that believes it configured SMALL (nothing sent)."""
    acc = Accelerator(Recorder())
    acc.cfg, acc.limits = SMALL, Limits.for_config(SMALL)
    acc.word_bytes = 8
    return acc


@pytest.mark.parametrize("address,count", [(10**6, 1), (375, 2), (376, 1), (-1, 1)])
def test_weight_words_outside_the_memory_are_refused(address, count):
    acc = configured()
    with pytest.raises(ValueError, match=r"^weight words .* outside the device's weight "
                                         r"memory of 376 words$"):
        acc.read_words(address, count)
    with pytest.raises(ValueError, match="outside the device's weight memory"):
        acc.write_words(address, np.zeros((count, 4), dtype=int))
    assert acc.transport.sent == []


@pytest.mark.parametrize("change,message", [
    (("label", 3, 4), r"^sample 3: label 4 outside 0\.\.3$"),
    (("label", 0, 200), r"^sample 0: label 200 outside 0\.\.3$"),
    (("label", 7, -1), r"^sample 7: label -1 outside 0\.\.3$"),
    (("pixel", 2, 256), r"^sample 2: pixel 256 outside 0\.\.255$"),
    (("pixel", 6, -3), r"^sample 6: pixel -3 outside 0\.\.255$"),
])
def test_load_batch_refuses_labels_and_pixels_out_of_range(change, message):
    acc = configured()
    x = np.full((8, 20), 255)
    y = np.full(8, 3)
    what, sample, value = change
    (y if what == "label" else x[sample])[sample if what == "label" else 0] = value
    with pytest.raises(ValueError, match=message):
        acc.load_batch(x, y)
    assert acc.transport.sent == []


def test_pixels_beyond_a_narrow_act_bits_are_refused():
    acc = configured()
    acc.cfg = SMALL.replace(act_bits=6, input_frac=6, act_frac=5)
    with pytest.raises(ValueError, match=r"^sample 0: pixel 64 outside 0\.\.63$"):
        acc.load_batch(np.full((1, 20), 64), [0])


def test_a_16_bit_input_fraction_is_taken():
    """act_bits 16 with input_frac 16 (which the config allows): the core's bias input takes a
    5-bit in_frac, so the driver and the device take 16."""
    cfg = SMALL.replace(act_bits=16, input_frac=16, act_frac=7, weight_bits=16, lr_shift=4)
    lim = Limits.for_config(cfg)
    assert register_limits(lim)[register_index("in_frac", 0)] == (0, 16)
    check_config(cfg, lim)
