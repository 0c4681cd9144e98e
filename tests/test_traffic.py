import pytest

from sw_model.traffic import backprop_traffic, layer_words, local_error_traffic

ARCH = (784, 256, 256, 256)
B = 32


def test_layer_words():
    assert layer_words((3, 4, 2)) == [3 * 4 + 4, 4 * 2 + 2]


def test_everything_on_chip_costs_only_the_input():
    lel = local_error_traffic(ARCH, 10, B, 10 ** 9)
    bp = backprop_traffic(ARCH, 10, B, 10 ** 9)
    assert lel.total == bp.total == B * 784 + B
    assert lel.resident_layers == (0, 1, 2) and bp.spilled_acts == ()


def test_nothing_resident_streams_every_layer():
    buffer = B * (784 + 256)
    lel = local_error_traffic(ARCH, 10, B, buffer)
    words = sum(layer_words(ARCH))
    assert lel.resident_layers == ()
    assert (lel.weight_read, lel.weight_write) == (2 * words, words)
    assert lel.act_read == lel.act_write == 0


def test_backprop_spills_activations_where_local_errors_need_none():
    """Capacity for all weights but not for every activation: the paper's case."""
    bp_words = layer_words(list(ARCH) + [10])
    cap = sum(bp_words) + B * (784 + 256) + 10
    lel = local_error_traffic(ARCH, 10, B, cap)
    bp = backprop_traffic(ARCH, 10, B, cap)
    assert lel.total == B * 784 + B
    assert bp.resident_layers == (0, 1, 2, 3) and bp.spilled_acts
    spilled = [B * ARCH[a] for a in bp.spilled_acts]
    assert bp.act_read == sum(spilled)
    assert bp.act_write == sum(s for a, s in zip(bp.spilled_acts, spilled) if a)
    assert bp.total > 2 * lel.total


def test_partial_residency_keeps_the_cheapest_layers_streaming():
    words = layer_words(ARCH)
    cap = B * (784 + 256) + words[1] + words[2]           # room for the two small layers
    lel = local_error_traffic(ARCH, 10, B, cap)
    assert lel.resident_layers == (1, 2)
    assert lel.weight_read == 2 * words[0] and lel.weight_write == words[0]


def test_backprop_never_beats_local_errors_on_the_same_chip():
    for arch in (ARCH, (64, 128, 128), (784, 1000, 1000, 1000)):
        words = sum(layer_words(list(arch) + [10]))
        for cap in (words // 8, words // 2, words, words + 50_000, 2 * words):
            try:
                lel = local_error_traffic(arch, 10, B, cap)
            except ValueError:
                continue
            assert backprop_traffic(arch, 10, B, cap).total >= lel.total


def test_too_small_a_chip_is_refused():
    with pytest.raises(ValueError, match="cannot hold"):
        local_error_traffic(ARCH, 10, B, 1000)
    with pytest.raises(ValueError, match="cannot hold"):
        backprop_traffic(ARCH, 10, B, 1000)


CONV = "1x28x28-c32k5-p2-c64k5-p2-f512"


def test_conv_layer_words_and_classifier_bytes():
    from contract.architecture import parse_arch
    from sw_model.traffic import classifier_bytes
    arch = parse_arch(CONV)
    assert layer_words(arch) == [32 * 26, 64 * (800 + 1), 512 * (3136 + 1)]
    rows = classifier_bytes(arch, 10, 4)
    assert [r["outputs"] for r in rows] == [6272, 3136, 512]
    assert [r["classifier_bytes"] for r in rows] == [31360, 15680, 2560]
    assert [r["weight_bytes"] for r in rows] == [1664, 102528, 3212288]
    assert classifier_bytes("784-3", 10, 1)[0]["classifier_bytes"] == 4      # ceil(30 / 8)


def test_conv_buffers_hold_the_pooled_maps_and_their_winners():
    """Local errors' largest working buffer: layer 2's input map, pooled output and its
    winners (2 bits each, 8 to a word); one word less is refused."""
    from contract.architecture import parse_arch
    arch = parse_arch(CONV)
    buffer = B * (6272 + 3136 + 3136 // 8)
    assert buffer > B * (784 + 6272 + 6272 // 8)
    lel = local_error_traffic(arch, 10, B, buffer)
    assert lel.resident_layers == () and lel.total == B * 785 + 3 * sum(layer_words(arch))
    with pytest.raises(ValueError, match="cannot hold"):
        local_error_traffic(arch, 10, B, buffer - 1)
    # Backprop keeps every map and its winners until the error returns.
    everything = sum(layer_words(arch)) + 10 * 513 + buffer
    acts = B * (784 + 6272 + 784 + 3136 + 392 + 512)
    assert backprop_traffic(arch, 10, B, everything + acts).spilled_acts == ()
    short = backprop_traffic(arch, 10, B, everything + acts - 1)
    assert short.total > B * 785 == local_error_traffic(arch, 10, B, everything + acts - 1).total
