"""Network architectures: fully connected and convolutional, from one syntax.

``784-1000-1000`` is a fully connected network (the input size, then hidden layer sizes).
``1x28x28-c32k5-p2-c64k5-p2-f512`` is a convolutional one: the input's channels x height x
width, then layers: ``c<F>k<K>`` a convolution with ``F`` filters of ``K x K``, stride 1, zero
padding "same" (``K`` odd), or ``c<F>k<K>v`` with no padding ("valid"); ``p2`` a 2 x 2 max
pooling of stride 2 after a convolution; ``f<N>`` (or a bare ``N``) a fully connected layer of
``N`` neurons. Convolutions come first. Every convolution (with its pooling) and every fully
connected layer is one trained layer with its own local classifier, on the layer's output:
the pooled feature map, flattened channel by channel, row by row.

:func:`parse_arch` validates before anything runs; an :class:`ArchError` names the layer.
"""

import re
from dataclasses import dataclass

__all__ = ["ArchError", "Conv", "Dense", "Architecture", "parse_arch", "POOL"]

#: The one pooling: 2 x 2 windows, stride 2.
POOL = 2


class ArchError(ValueError):
    """An architecture that cannot be built; the message names the layer and the problem."""


@dataclass(frozen=True)
class Conv:
    filters: int
    kernel: int
    padding: str                  # "same" or "valid"
    pool: bool                    # followed by a 2 x 2 max pooling
    in_shape: tuple               # (channels, height, width)

    @property
    def conv_shape(self):
        """The convolution's output, before pooling."""
        c, h, w = self.in_shape
        if self.padding == "same":
            return (self.filters, h, w)
        return (self.filters, h - self.kernel + 1, w - self.kernel + 1)

    @property
    def out_shape(self):
        f, h, w = self.conv_shape
        return (f, h // POOL, w // POOL) if self.pool else (f, h, w)

    @property
    def fan_in(self):
        """Inputs of one filter: ``K * K * channels``."""
        return self.kernel * self.kernel * self.in_shape[0]

    @property
    def rows(self):
        """Rows of the weight matrix (one per filter)."""
        return self.filters

    @property
    def outputs(self):
        f, h, w = self.out_shape
        return f * h * w

    @property
    def token(self):
        t = f"c{self.filters}k{self.kernel}" + ("v" if self.padding == "valid" else "")
        return t + (f"-p{POOL}" if self.pool else "")


@dataclass(frozen=True)
class Dense:
    neurons: int
    fan_in: int

    @property
    def outputs(self):
        return self.neurons

    @property
    def rows(self):
        """Rows of the weight matrix (one per neuron)."""
        return self.neurons

    @property
    def token(self):
        return str(self.neurons)


@dataclass(frozen=True)
class Architecture:
    input_shape: tuple            # (features,) or (channels, height, width)
    layers: tuple                 # Conv and Dense, in order

    @property
    def features(self):
        n = 1
        for d in self.input_shape:
            n *= d
        return n

    @property
    def convolutional(self):
        return any(isinstance(layer, Conv) for layer in self.layers)

    def sizes(self):
        """The flattened sizes: the input's, then every layer's output (its local classifier's
        fan-in). For a fully connected network this is the familiar ``(784, 1000, 1000)``."""
        return (self.features,) + tuple(layer.outputs for layer in self.layers)

    @property
    def text(self):
        """The canonical string (``f<N>`` for fully connected layers of a convolutional
        network, bare sizes otherwise)."""
        first = "x".join(map(str, self.input_shape))
        prefix = "f" if self.convolutional else ""
        return "-".join([first] + [layer.token if isinstance(layer, Conv)
                                   else prefix + layer.token for layer in self.layers])


_CONV = re.compile(r"c(\d+)k(\d+)([sv]?)$")
_POOL = re.compile(r"p(\d+)$")
_DENSE = re.compile(r"f?(\d+)$")
_SHAPE = re.compile(r"(\d+)x(\d+)x(\d+)$")
#: Sizes beyond these are refused as typing mistakes before anything is allocated.
MAX_SIZE, MAX_KERNEL = 1 << 31, 15


def parse_arch(text):
    """Parse an architecture string (or a sequence of sizes) into an :class:`Architecture`."""
    if not isinstance(text, str):
        text = "-".join(str(v) for v in text)
    source = f"arch '{text}'"
    tokens = text.strip().lower().split("-")
    if len(tokens) < 2 or not all(tokens):
        raise ArchError(f"{source}: give the input and at least one layer, separated by '-' "
                        "(e.g. 784-128-128 or 1x28x28-c32k5-p2-f128)")
    shape = _input_shape(tokens[0], source)
    layers, flat = [], len(shape) == 1
    for index, token in enumerate(tokens[1:], start=1):
        where = f"{source}: layer {index} ('{token}')"
        if (m := _CONV.match(token)):
            filters, kernel = int(m[1]), int(m[2])
            padding = "valid" if m[3] == "v" else "same"
            if flat:
                raise ArchError(f"{where}: a convolution needs a channels x height x width "
                                "input and comes before every fully connected layer")
            if not 1 <= filters <= MAX_SIZE:
                raise ArchError(f"{where}: {filters} filters (1..{MAX_SIZE})")
            if not 1 <= kernel <= MAX_KERNEL:
                raise ArchError(f"{where}: a {kernel} x {kernel} kernel (1..{MAX_KERNEL})")
            if padding == "same" and kernel % 2 == 0:
                raise ArchError(f"{where}: 'same' padding needs an odd kernel (or write "
                                f"c{filters}k{kernel}v for no padding)")
            c, h, w = shape
            if padding == "valid" and (kernel > h or kernel > w):
                raise ArchError(f"{where}: a {kernel} x {kernel} kernel does not fit the "
                                f"{h} x {w} input without padding")
            layers.append(Conv(filters, kernel, padding, False, shape))
            shape = layers[-1].out_shape
        elif (m := _POOL.match(token)):
            if int(m[1]) != POOL:
                raise ArchError(f"{where}: only 2 x 2 max pooling of stride 2 (p2) exists")
            if not layers or not isinstance(layers[-1], Conv) or layers[-1].pool:
                raise ArchError(f"{where}: a pooling follows a convolution, once")
            c, h, w = shape
            if h % POOL or w % POOL:
                raise ArchError(f"{where}: a {h} x {w} feature map does not divide into "
                                "2 x 2 windows")
            conv = layers.pop()
            layers.append(Conv(conv.filters, conv.kernel, conv.padding, True, conv.in_shape))
            shape = layers[-1].out_shape
        elif (m := _DENSE.match(token)):
            neurons = int(m[1])
            if not 1 <= neurons <= MAX_SIZE:
                raise ArchError(f"{where}: {neurons} neurons (1..{MAX_SIZE})")
            fan_in = 1
            for d in shape:
                fan_in *= d
            layers.append(Dense(neurons, fan_in))
            shape, flat = (neurons,), True
        else:
            raise ArchError(f"{where}: not a layer (c<filters>k<kernel>[v], p2, f<neurons> "
                            "or <neurons>)")
    return Architecture(_input_shape(tokens[0], source), tuple(layers))


def _input_shape(token, source):
    if (m := _SHAPE.match(token)):
        shape = tuple(int(v) for v in m.groups())
    elif token.isdigit():
        shape = (int(token),)
    else:
        raise ArchError(f"{source}: the input '{token}' is not a size (784) or channels x "
                        "height x width (1x28x28)")
    if not all(1 <= v <= MAX_SIZE for v in shape):
        raise ArchError(f"{source}: the input '{token}' has a size outside 1..{MAX_SIZE}")
    return shape
