"""The architecture syntax (contract/architecture.py): shapes, sizes and one-line refusals."""

import pytest

from contract.architecture import ArchError, Conv, Dense, parse_arch


def test_paper_style_conv_net():
    a = parse_arch("1x28x28-c32k5-p2-c64k5-p2-f512")
    assert a.input_shape == (1, 28, 28) and a.convolutional
    c1, c2, f = a.layers
    assert (c1.conv_shape, c1.out_shape, c1.fan_in) == ((32, 28, 28), (32, 14, 14), 25)
    assert (c2.in_shape, c2.out_shape, c2.fan_in) == ((32, 14, 14), (64, 7, 7), 800)
    assert f == Dense(512, 64 * 7 * 7)
    assert a.sizes() == (784, 32 * 14 * 14, 64 * 7 * 7, 512)
    assert a.text == "1x28x28-c32k5-p2-c64k5-p2-f512"


def test_valid_padding_odd_sizes_and_no_pooling():
    a = parse_arch("3x11x9-c5k4v-c7k3-f10-10")
    assert a.layers[0] == Conv(5, 4, "valid", False, (3, 11, 9))
    assert a.layers[0].out_shape == (5, 8, 6) and a.layers[1].out_shape == (7, 8, 6)
    assert a.sizes() == (297, 240, 336, 10, 10)
    assert a.text == "3x11x9-c5k4v-c7k3-f10-f10"


def test_fully_connected_forms_agree():
    for form in ("784-1000-1000", "784-f1000-f1000", (784, 1000, 1000), [784, 1000, 1000]):
        a = parse_arch(form)
        assert a.sizes() == (784, 1000, 1000) and not a.convolutional
        assert a.text == "784-1000-1000"
    assert parse_arch("1x8x8-10").layers == (Dense(10, 64),)


@pytest.mark.parametrize("text, message", [
    ("1x28x28-c32k4", "layer 1 ('c32k4'): 'same' padding needs an odd kernel"),
    ("1x27x27-c8k3-p2", "layer 2 ('p2'): a 27 x 27 feature map does not divide"),
    ("1x28x28-c8k4v-p2", "layer 2 ('p2'): a 25 x 25 feature map does not divide"),
    ("784-c8k3", "layer 1 ('c8k3'): a convolution needs a channels x height x width input"),
    ("1x28x28-f10-c8k3", "layer 2 ('c8k3'): a convolution needs"),
    ("1x28x28-p2", "layer 1 ('p2'): a pooling follows a convolution"),
    ("1x28x28-c8k3-p2-p2", "layer 3 ('p2'): a pooling follows a convolution, once"),
    ("1x28x28-c8k3-p3", "only 2 x 2 max pooling"),
    ("1x5x5-c8k7v", "a 7 x 7 kernel does not fit the 5 x 5 input"),
    ("1x28x28-c8k17", "a 17 x 17 kernel"),
    ("1x28x28-c0k3", "0 filters"),
    ("abc-10", "the input 'abc' is not a size"),
    ("0x28x28-c8k3", "outside 1.."),
    ("784", "at least one layer"),
    ("784--10", "at least one layer"),
    ("784-x", "layer 1 ('x'): not a layer"),
    ("784-10000000000", "10000000000 neurons"),
])
def test_refusals_are_one_line_naming_the_layer(text, message):
    with pytest.raises(ArchError) as e:
        parse_arch(text)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).startswith(f"arch '{text}'")
