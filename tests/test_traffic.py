import pytest

from sw_model.traffic import backprop_traffic, layer_words, local_error_traffic

ARCH = (784, 256, 256, 256)


def test_layer_words():
    assert layer_words((3, 4, 2)) == [3 * 4 + 4, 4 * 2 + 2]


def test_everything_on_chip_costs_only_the_input():
    lel = local_error_traffic(ARCH, 10, 32, 10 ** 9)
    bp = backprop_traffic(ARCH, 10, 32, 10 ** 9)
    assert lel.weights_on_chip and bp.weights_on_chip and bp.acts_on_chip
    assert lel.total == bp.total == 32 * 784 + 32


def test_weights_off_chip():
    words = sum(layer_words(ARCH))
    cap = 40_000                            # one layer's buffers, not all weights or activations
    lel = local_error_traffic(ARCH, 10, 32, cap)
    assert not lel.weights_on_chip
    per_layer = layer_words(ARCH)
    reads = sum(w if w + 32 * (a + b) <= cap else 2 * w
                for w, a, b in zip(per_layer, ARCH[:-1], ARCH[1:]))
    assert lel.weight_read == reads and lel.weight_write == words
    bp = backprop_traffic(ARCH, 10, 32, cap)
    bp_words = words + 256 * 10 + 10
    assert bp.weight_read == 2 * bp_words and bp.weight_write == bp_words
    assert bp.act_write == 32 * 768 and bp.act_read == 32 * 768 + 32 * 784
    assert bp.total > lel.total


def test_local_errors_need_one_layer_of_buffers():
    with pytest.raises(ValueError, match="cannot hold"):
        local_error_traffic(ARCH, 10, 32, 1000)


def test_backprop_keeps_what_saves_most():
    words = sum(layer_words(ARCH)) + 256 * 10 + 10
    bp = backprop_traffic(ARCH, 10, 32, words + 100)     # weights fit, activations do not too
    assert bp.weights_on_chip and not bp.acts_on_chip
    assert bp.total == 32 * 784 + 32 + 2 * 32 * 768 + 32 * 784
    small = backprop_traffic((64, 32), 10, 8, 8 * (64 + 32 + 10) + 10)
    assert small.acts_on_chip and not small.weights_on_chip
