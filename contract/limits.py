"""What a core accepts: every register's range and the rules that tie a layer's geometry
together, derived once from the core's build parameters (docs/HOST_INTERFACE.md, "Range checks").

The RTL's host interface (hw/host_link/) builds its table of per-register limits from
:func:`register_limits`; the host driver (host/checks.py) checks the same before it sends, so a
value the driver lets through is one the device accepts, and one the device refuses the driver
refuses first, naming the same register.
"""

from dataclasses import dataclass

from contract.config import INIT_CHUNK_BITS
from contract.registers import (BN_WORDS, GLOBAL, LAYER, LAYER_BASE, LAYER_STRIDE, conv_fields,
                                weight_bases)

__all__ = ["SHIFT_BITS", "IN_FRAC_BITS", "GEOMETRY", "GEOMETRY_CONV", "Limits", "register_limits",
           "register_name", "tiles_for", "layer_extent", "minimum_values", "conv_problem"]

#: The core reads each shift register's low 5 bits (its rounding shifters' width); a larger
#: value would silently shift by less.
SHIFT_BITS = 5
#: The core reads ``in_frac``'s low 5 bits (the bias input ``1 << in_frac``, 17 bits wide).
IN_FRAC_BITS = 5
#: A layer's geometry: written together (in this order) in one ``WRITE_CONFIG`` frame, and
#: checked together when its last register, ``in_tiles``, is written.
GEOMETRY = ("neurons", "fan_in", "weight_base", "tiles", "in_tiles")
#: ... and on a core built with convolutions, closed by ``conv`` (0 for a fully connected
#: layer; a convolution's fields must agree with the layer's ``fan_in`` and fit the buffers).
GEOMETRY_CONV = GEOMETRY + ("conv",)


@dataclass(frozen=True)
class Limits:
    """The build parameters the range checks derive from (a core's :class:`hw.params.
    CoreParams` has them all; :meth:`for_config` gives those of a core built for a config)."""

    rows: int
    cols: int
    classes: int
    max_batch: int
    max_layers: int
    max_inputs: int
    max_neurons: int
    act_bits: int
    weight_bits: int
    lfsr_width: int
    weight_words: int        # words of weight memory behind the bus
    frozen_layers: bool = True   # the core can run a layer forward only (the ``frozen`` mask)
    batch_norm: bool = False     # the core can batch-normalise its layers' outputs
    resident_samples: int = 0    # training samples the core can hold (STORE_SAMPLES) ...
    resident_inputs: int = 0     # ... of at most this many pixels (its config's N[0])
    conv: bool = False           # the core runs convolutional layers (``conv`` registers)

    @classmethod
    def of(cls, params):
        """The limits of a core with build parameters ``params`` (hw.params.CoreParams)."""
        return cls(rows=params.rows, cols=params.cols, classes=params.classes,
                   max_batch=params.max_batch, max_layers=params.max_layers,
                   max_inputs=params.max_inputs, max_neurons=params.max_neurons,
                   act_bits=params.act_bits, weight_bits=params.weight_bits,
                   lfsr_width=params.lfsr_width,
                   weight_words=params.weight_words or 1 << params.addr_bits,
                   frozen_layers=params.frozen_layers, batch_norm=params.batch_norm,
                   resident_samples=params.resident_samples,
                   resident_inputs=params.resident_inputs, conv=params.conv)

    @classmethod
    def for_config(cls, cfg):
        """The limits of a core built for ``cfg`` (``CoreParams.from_config(cfg)``)."""
        return cls(rows=cfg.array_rows, cols=cfg.array_cols, classes=cfg.classes,
                   max_batch=cfg.batch, max_layers=cfg.layers, max_inputs=max(cfg.arch),
                   max_neurons=max(cfg.arch[1:]), act_bits=cfg.act_bits,
                   weight_bits=cfg.weight_bits, lfsr_width=cfg.lfsr_width,
                   weight_words=max(1, weight_bases(cfg)[1]), batch_norm=cfg.batch_norm,
                   resident_samples=cfg.resident_samples,
                   resident_inputs=cfg.arch[0] if cfg.resident_samples else 0, conv=cfg.conv)

    @property
    def max_tiles(self):
        return tiles_for(self.max_neurons, self.rows)

    @property
    def max_in_tiles(self):
        return tiles_for(self.max_inputs, self.cols)

    @property
    def registers(self):
        return LAYER_BASE + LAYER_STRIDE * self.max_layers


def tiles_for(n, size):
    """Tiles of ``size`` that cover ``n``: ``ceil(n / size)``."""
    return -(-n // size)


def layer_extent(tiles, fan_in, batch_norm=False):
    """Words of a layer's weights: ``tiles`` tiles of ``fan_in + 1`` words (bias last), and of
    :data:`BN_WORDS` more on a core built with batch normalisation, which checks every layer's
    extent with them (whether or not the network uses them)."""
    return tiles * (fan_in + 1 + (BN_WORDS if batch_norm else 0))


def _global_ranges(lim):
    seed = (1, (1 << lim.lfsr_width) - 1)       # an LFSR seeded with 0 stays at 0
    shift = (0, (1 << SHIFT_BITS) - 1)
    out = {
        "layers": (1, lim.max_layers), "inputs": (1, lim.max_inputs),
        "feedback": (0, 1), "rounding": (0, 1), "dropout": (0, 255),
        "keep_scale": (0, 1 << 16),             # 2**16 / (256 - dropout), at most 2**16
        "bias_shift": shift, "round_seed": seed, "dropout_seed": seed,
        # A bit per layer; only 0 for a core built without frozen layers (a range, not
        # UNSUPPORTED: the range check costs the iCEBreaker's lean core no logic).
        "frozen": (0, (1 << lim.max_layers) - 1 if lim.frozen_layers else 0),
    }
    # Batch normalisation: only 0 (unused registers) on a core built without it, as
    # ``frozen``. The limits are the config's (contract/config.py): act_frac <= act_bits <= 12,
    # RF <= 16 and 2*act_bits + RF <= 2*weight_bits, eps_log2 = 2*act_frac - bn_eps_shift.
    if lim.batch_norm:
        act = min(lim.act_bits, 12)
        out.update({
            "batch_norm": (0, 1), "bn_act_frac": (0, act),
            "bn_weight_frac": (0, lim.weight_bits - 1),
            "bn_stat_frac": (0, max(0, min(16, 2 * lim.weight_bits - 2 * lim.act_bits))),
            "bn_momentum": (0, 16), "bn_eps_log2": (0, 2 * act)})
    return out


def _layer_ranges(lim):
    seed = (1, (1 << lim.lfsr_width) - 1)
    shift = (0, (1 << SHIFT_BITS) - 1)
    return {
        "neurons": (1, lim.max_neurons), "fan_in": (1, lim.max_inputs),
        "weight_base": (0, lim.weight_words - 1),
        "in_frac": (0, min(lim.act_bits, (1 << IN_FRAC_BITS) - 1)),
        "forward_shift": shift, "score_shift": shift, "delta_shift": shift,
        "update_shift": shift,
        # The top ``init_bits`` bits of a 16-bit chunk; the config's rule gives at least 2.
        "init_bits": (2, min(lim.weight_bits, INIT_CHUNK_BITS)),
        "init_seed": seed, "classifier_seed": seed, "feedback_seed": seed,
        "tiles": (1, lim.max_tiles), "in_tiles": (1, lim.max_in_tiles),
        **({"gamma_shift": shift} if lim.batch_norm else {}),
        # Fields of contract.registers.CONV_FIELDS, checked together with the layer's
        # geometry (GEOMETRY_CONV).
        **({"conv": (0, (1 << 32) - 1)} if lim.conv else {}),
    }


def register_limits(lim):
    """``[(lo, hi)]`` for every register index ``0 .. registers - 1``: the values a write may
    carry. Unused indices take only 0. A layer's geometry must also satisfy the rules of
    :data:`GEOMETRY` (``tiles == ceil(neurons / rows)``, ``in_tiles == ceil(fan_in / cols)``,
    ``weight_base + layer_extent(tiles, fan_in, batch_norm) <= weight_words``)."""
    table = [(0, 0)] * lim.registers
    for name, bounds in _global_ranges(lim).items():
        table[GLOBAL[name]] = bounds
    for layer in range(lim.max_layers):
        for name, bounds in _layer_ranges(lim).items():
            table[LAYER_BASE + LAYER_STRIDE * layer + LAYER[name]] = bounds
    for index, (lo, hi) in enumerate(table):
        if lo > hi:
            raise ValueError(f"register {register_name(index)}: empty range {lo}..{hi}")
    return table


def register_name(index):
    """``'fan_in of layer 1'`` for a register index (contract/registers.py)."""
    if index < LAYER_BASE:
        names = {v: k for k, v in GLOBAL.items()}
        return names.get(index, f"unused register {index}")
    layer, offset = divmod(index - LAYER_BASE, LAYER_STRIDE)
    names = {v: k for k, v in LAYER.items()}
    if offset not in names:
        return f"unused register {index}"
    return f"{names[offset]} of layer {layer}"


def minimum_values(registers):
    """Every register's least value (the same for every build): the register file's contents
    at power-on and its globals after ``RESET``, so that no register ever holds a value the
    checks would refuse (the least geometry, one neuron of one input, fits any memory of two
    words or more)."""
    lows = {GLOBAL["layers"]: 1, GLOBAL["inputs"]: 1, GLOBAL["round_seed"]: 1,
            GLOBAL["dropout_seed"]: 1}
    layer_lows = {"neurons": 1, "fan_in": 1, "tiles": 1, "in_tiles": 1, "init_bits": 2,
                  "init_seed": 1, "classifier_seed": 1, "feedback_seed": 1}
    values = [lows.get(index, 0) for index in range(min(registers, LAYER_BASE))]
    for index in range(LAYER_BASE, registers):
        offset = (index - LAYER_BASE) % LAYER_STRIDE
        name = next((k for k, v in LAYER.items() if v == offset), None)
        values.append(layer_lows.get(name, 0))
    return values


def conv_problem(word, filters, fan_in, lim):
    """What is wrong with a layer's ``conv`` register ``word`` beside its ``neurons``
    (``filters``) and ``fan_in`` on a core of limits ``lim`` (contract/registers.py
    CONV_FIELDS), or None. 0 is a fully connected layer. A convolution needs a map of at least
    1 x 1 x 1 and a kernel of at least 1; "same" padding an odd kernel, "valid" one no larger
    than the map; pooling an even output; ``fan_in == K*K*C``; its input map ``C*H*W`` at most
    ``max_inputs`` and its output ``F * Ho' * Wo'`` at most ``max_neurons`` (the buffers)."""
    if word == 0:
        return None
    f = conv_fields(word)
    h, w, k, c = f["in_h"], f["in_w"], f["kernel"], f["channels"]
    if min(h, w, k, c) == 0:
        return "a map, kernel or channel count of 0"
    if f["valid"]:
        if k > h or k > w:
            return f"a {k} x {k} kernel larger than the {h} x {w} map"
        ho, wo = h - k + 1, w - k + 1
    else:
        if k % 2 == 0:
            return f"'same' padding with the even kernel {k}"
        ho, wo = h, w
    if f["pool"] and (ho % 2 or wo % 2):
        return f"pooling of an odd {ho} x {wo} output"
    if fan_in != k * k * c:
        return f"fan_in {fan_in} is not {k} x {k} x {c}"
    if c * h * w > lim.max_inputs:
        return f"an input map of {c * h * w} values, more than {lim.max_inputs}"
    positions = (ho // 2) * (wo // 2) if f["pool"] else ho * wo
    if filters * positions > lim.max_neurons:
        return f"an output of {filters * positions} values, more than {lim.max_neurons}"
    return None
