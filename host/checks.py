"""The driver's range checks: what the device would refuse with ``BAD_VALUE``, refused before it
is sent, by the same limits (contract/limits.py). Each raises :class:`ValueError` with one line
naming the value."""

import numpy as np

from contract.limits import conv_problem, layer_extent, register_limits, register_name, tiles_for
from contract.registers import GLOBAL, register_index, register_values

__all__ = ["check_config", "check_words", "check_batch", "check_stored", "check_epoch"]

#: Fields a core fixes when it is built: a configuration must have the device's.
_BUILT = (("classes", "classes"), ("act_bits", "act_bits"), ("weight_bits", "weight_bits"),
          ("array_rows", "rows"), ("array_cols", "cols"), ("lfsr_width", "lfsr_width"))


def check_config(cfg, limits, arch=None):
    """Every register value of network ``cfg`` within ``limits``, and each layer's geometry
    (tiles, input tiles, weight extent) as the device checks it; ``arch`` the architecture of
    a convolutional network."""
    if any(cfg.layer_lr_shift):
        raise ValueError("config field 'layer_lr_shift' gives layers their own rates; the "
                         "device's bias update shift is one register for every layer")
    if arch is not None and arch.convolutional and not limits.conv:
        raise ValueError(f"arch {arch.text} has convolutions; the device is built without "
                         "them")
    if cfg.batch_norm and not limits.batch_norm:
        raise ValueError("config field 'batch_norm' is true; the device is built without "
                         "batch normalisation")
    for field, built in _BUILT:
        if getattr(cfg, field) != getattr(limits, built):
            raise ValueError(f"config field '{field}' is {getattr(cfg, field)}; the device is "
                             f"built for {getattr(limits, built)}")
    if not 1 <= cfg.layers <= limits.max_layers:
        raise ValueError(f"config has {cfg.layers} hidden layers; the device takes 1.."
                         f"{limits.max_layers}")
    if cfg.batch > limits.max_batch:
        raise ValueError(f"config field 'batch' is {cfg.batch}; the device holds at most "
                         f"{limits.max_batch} samples")
    table = register_limits(limits)
    values = register_values(cfg, arch)
    for index, value in sorted(values.items()):
        lo, hi = table[index]
        if not lo <= value <= hi:
            raise ValueError(f"register '{register_name(index)}' would be {value}, outside the "
                             f"{lo}..{hi} the device accepts")
    for i in range(cfg.layers):
        def reg(name):
            return values[register_index(name, i)]
        for name, want in (("tiles", tiles_for(reg("neurons"), limits.rows)),
                           ("in_tiles", tiles_for(reg("fan_in"), limits.cols))):
            if reg(name) != want:
                raise ValueError(f"register '{name} of layer {i}' would be {reg(name)}, not "
                                 f"the {want} its size needs")
        if limits.conv:
            problem = conv_problem(values.get(register_index("conv", i), 0), reg("neurons"),
                                   reg("fan_in"), limits)
            if problem:
                raise ValueError(f"register 'conv of layer {i}': {problem}")
        end = reg("weight_base") + layer_extent(reg("tiles"), reg("fan_in"),
                                                limits.batch_norm)
        if end > limits.weight_words:
            raise ValueError(f"register 'weight_base of layer {i}': the layer's weights would "
                             f"end at word {end}, past the device's {limits.weight_words}")
    first_inputs = arch.features if arch is not None else values[register_index("fan_in", 0)]
    if values[GLOBAL["inputs"]] != first_inputs:
        raise ValueError("register 'inputs' differs from layer 0's inputs")


def check_words(address, count, limits):
    """Weight words ``address .. address + count - 1`` inside the device's weight memory."""
    if address < 0 or count < 0 or address + count > limits.weight_words:
        raise ValueError(f"weight words {address}..{address + count - 1} are outside the "
                         f"device's weight memory of {limits.weight_words} words")


def check_batch(x, labels, cfg, most=None, what="a mini-batch"):
    """A mini-batch the device takes: ``N[0]`` pixels a sample, each within ``act_bits``
    (and a byte), one label a sample below ``classes``; at most ``most`` samples (the config's
    ``batch``; :func:`check_stored` for resident training sets)."""
    x, labels = np.asarray(x), np.asarray(labels)
    most = cfg.batch if most is None else most
    if not 1 <= len(x) <= most or len(x) != len(labels):
        raise ValueError(f"{what} holds 1..{most} samples with one label each, "
                         f"not {len(x)} samples and {len(labels)} labels")
    if x.ndim != 2 or x.shape[1] != cfg.arch[0]:
        raise ValueError(f"a sample has {cfg.arch[0]} pixels, not shape {x.shape[1:]}")
    top = min(255, (1 << cfg.act_bits) - 1)
    for what, values, hi in (("pixel", x, top), ("label", labels, cfg.classes - 1)):
        if not np.issubdtype(values.dtype, np.integer):
            raise ValueError(f"{what}s must be integers, not {values.dtype}")
        bad = np.argwhere((values < 0) | (values > hi))
        if len(bad):
            sample = int(bad[0][0])
            raise ValueError(f"sample {sample}: {what} {int(values[tuple(bad[0])])} outside "
                             f"0..{hi}")


def _check_resident(cfg, limits):
    """A core that holds training samples of ``cfg``'s width."""
    if not limits.resident_samples:
        raise ValueError("this core holds no training set (built with resident_samples = 0)")
    if cfg.arch[0] > limits.resident_inputs:
        raise ValueError(f"this core stores samples of at most {limits.resident_inputs} "
                         f"pixels, not {cfg.arch[0]}")


def check_stored(x, labels, cfg, limits, first=0):
    """Samples ``first ..`` of a resident training set (``STORE_SAMPLES``): as
    :func:`check_batch`, within the core's ``resident_samples``."""
    _check_resident(cfg, limits)
    if not 0 <= first < limits.resident_samples:
        raise ValueError(f"first sample {first} outside the core's store of "
                         f"{limits.resident_samples}")
    check_batch(x, labels, cfg, most=limits.resident_samples - first,
                what=f"a training set stored from sample {first}")


def check_epoch(samples, batch, seed, cfg, limits):
    """A ``TRAIN_EPOCH`` the device takes: 1 .. ``resident_samples`` samples, 1 .. ``batch``
    a mini-batch, a seed of ``lfsr_width`` bits."""
    _check_resident(cfg, limits)
    if not 1 <= samples <= limits.resident_samples:
        raise ValueError(f"an epoch visits 1..{limits.resident_samples} stored samples, "
                         f"not {samples}")
    if not 1 <= batch <= min(cfg.batch, limits.max_batch):
        raise ValueError(f"a mini-batch holds 1..{min(cfg.batch, limits.max_batch)} samples, "
                         f"not {batch}")
    if not 0 <= seed < 1 << cfg.lfsr_width:
        raise ValueError(f"the order's seed {seed} does not fit {cfg.lfsr_width} bits")
