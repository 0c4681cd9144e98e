"""The accelerator's configuration registers and counters (docs/HOST_INTERFACE.md).

Shared by the RTL (which decodes the indices) and the host driver (which computes the values
from a :class:`contract.config.NetConfig`), like :mod:`contract.protocol`.
"""

__all__ = ["GLOBAL", "LAYER", "LAYER_BASE", "LAYER_STRIDE", "COUNTERS", "BN_WORDS",
           "BATCH_NORM", "CONV_FIELDS", "register_index", "weight_bases", "layer_words",
           "tile_words", "register_values", "counter_names", "conv_word", "conv_fields",
           "layer_rows", "layer_fan_in"]

#: Global registers and their indices.
GLOBAL = {"layers": 0, "inputs": 1, "feedback": 2, "rounding": 3, "dropout": 4,
          "keep_scale": 5, "bias_shift": 6, "round_seed": 7, "dropout_seed": 8, "frozen": 9,
          "batch_norm": 10, "bn_act_frac": 11, "bn_weight_frac": 12, "bn_stat_frac": 13,
          "bn_momentum": 14, "bn_eps_log2": 15}
#: The batch normalisation's global registers (written only for a batch-normalised network,
#: except ``batch_norm`` itself, which a core built with it always gets).
BATCH_NORM = ("batch_norm", "bn_act_frac", "bn_weight_frac", "bn_stat_frac", "bn_momentum",
              "bn_eps_log2")
#: Per-layer registers, at ``LAYER_BASE + LAYER_STRIDE * i + offset``.
LAYER = {"neurons": 0, "fan_in": 1, "weight_base": 2, "in_frac": 3, "forward_shift": 4,
         "score_shift": 5, "delta_shift": 6, "update_shift": 7, "init_bits": 8, "init_seed": 9,
         "classifier_seed": 10, "feedback_seed": 11, "tiles": 12, "in_tiles": 13,
         "gamma_shift": 14, "conv": 15}
LAYER_BASE = 16
LAYER_STRIDE = 16
#: Counters in the order READ_COUNTERS returns them; ``correct`` repeats once per layer.
COUNTERS = ("cycles", "mac_busy_cycles", "ext_read_words", "ext_write_words", "host_rx_bytes",
            "host_tx_bytes", "train_cycles", "infer_cycles", "exit_skipped_beats",
            "train_commands", "infer_commands")


def register_index(name, layer=None):
    if layer is None:
        return GLOBAL[name]
    return LAYER_BASE + LAYER_STRIDE * layer + LAYER[name]


def counter_names(layers):
    return list(COUNTERS) + [f"correct_{i}" for i in range(layers)]


#: A convolutional layer's ``conv`` register (docs/HOST_INTERFACE.md, "Convolutional layers"):
#: ``{field: (first bit, bits)}``. A fully connected layer's is 0 (its ``kernel`` is 0). For a
#: convolution ``neurons`` is its filters (the weight rows), ``fan_in`` ``K*K*C``; the core
#: derives its output's size ``F * Ho' * Wo'`` (the local classifier's width) from these.
CONV_FIELDS = {"in_h": (0, 8), "in_w": (8, 8), "kernel": (16, 4), "valid": (20, 1),
               "pool": (21, 1), "channels": (22, 10)}


def conv_word(layer):
    """The ``conv`` register of an architecture layer (contract.architecture ``Conv`` or
    ``Dense``): 0 for a fully connected one."""
    if not hasattr(layer, "kernel"):
        return 0
    c, h, w = layer.in_shape
    fields = {"in_h": h, "in_w": w, "kernel": layer.kernel,
              "valid": int(layer.padding == "valid"), "pool": int(layer.pool), "channels": c}
    word = 0
    for name, value in fields.items():
        at, bits = CONV_FIELDS[name]
        if not 0 <= value < 1 << bits:
            raise ValueError(f"conv register: {name} {value} does not fit {bits} bits")
        word |= value << at
    return word


def conv_fields(word):
    """The fields of a ``conv`` register value (the inverse of :func:`conv_word`)."""
    return {name: (word >> at) & ((1 << bits) - 1) for name, (at, bits) in CONV_FIELDS.items()}


def _layer(arch, i):
    return arch.layers[i] if arch is not None else None


def layer_rows(cfg, i, arch=None):
    """Rows of layer i's weight matrix: its neurons, or a convolution's filters."""
    layer = _layer(arch, i)
    return layer.rows if layer is not None else cfg.neurons(i)


def layer_fan_in(cfg, i, arch=None):
    """Columns of layer i's weight matrix: its inputs, or a convolution's ``K*K*C``."""
    layer = _layer(arch, i)
    return layer.fan_in if layer is not None else cfg.fan_in(i)


#: A batch-normalised layer's words per tile after its bias: the scale ``g``, then the running
#: mean and variance, each unsigned over two words, low word first (docs/HOST_INTERFACE.md).
BN_WORDS = 5


def tile_words(cfg, i, arch=None):
    """Bus words of one tile of layer i: ``J`` weight words, the bias word and, batch
    normalised, :data:`BN_WORDS` more. ``arch`` (contract.architecture) is given for a
    convolutional network, whose ``cfg.arch`` holds only the flattened sizes."""
    return layer_fan_in(cfg, i, arch) + 1 + (BN_WORDS if cfg.batch_norm else 0)


def layer_words(cfg, i, arch=None):
    """Bus words of layer i: ``ceil(rows/P)`` tiles of :func:`tile_words`."""
    p = cfg.array_rows
    return -(-layer_rows(cfg, i, arch) // p) * tile_words(cfg, i, arch)


def weight_bases(cfg, arch=None):
    """Word address of each layer's weights: packed one after another from 0."""
    bases, at = [], 0
    for i in range(cfg.layers):
        bases.append(at)
        at += layer_words(cfg, i, arch)
    return bases, at


def register_values(cfg, arch=None):
    """``{index: value}`` for every register a network needs (``arch``: a convolutional
    network's architecture, whose layers' ``conv`` registers are written; a fully connected
    network writes none)."""
    from contract.config import ConfigError
    if cfg.loss != "square-hinge":
        raise ConfigError("field 'loss': the accelerator has no register for it; its local "
                          "error is the square hinge")
    p, q = cfg.array_rows, cfg.array_cols
    values = {
        GLOBAL["layers"]: cfg.layers,
        GLOBAL["inputs"]: cfg.arch[0],
        GLOBAL["feedback"]: {"symmetric": 0, "sign": 1}[cfg.feedback],
        GLOBAL["rounding"]: {"stochastic": 0, "nearest-even": 1}[cfg.rounding],
        GLOBAL["dropout"]: cfg.dropout,
        GLOBAL["keep_scale"]: cfg.keep_scale() if cfg.dropout else 0,
        GLOBAL["bias_shift"]: cfg.bias_update_shift(),
        GLOBAL["round_seed"]: cfg.stream_seed("round"),
        GLOBAL["dropout_seed"]: cfg.stream_seed("dropout"),
        GLOBAL["frozen"]: 0,            # layers TRAIN runs forward only: set per stage by the host
    }
    if cfg.batch_norm:
        af = cfg.act_frac
        values.update({
            GLOBAL["batch_norm"]: 1, GLOBAL["bn_act_frac"]: af,
            GLOBAL["bn_weight_frac"]: cfg.weight_frac, GLOBAL["bn_stat_frac"]: cfg.bn_stat_frac,
            GLOBAL["bn_momentum"]: cfg.bn_momentum_shift,
            GLOBAL["bn_eps_log2"]: 2 * af - cfg.bn_eps_shift})
    bases, _ = weight_bases(cfg, arch)
    for i in range(cfg.layers):
        rows, fan_in = layer_rows(cfg, i, arch), layer_fan_in(cfg, i, arch)
        layer = {
            "neurons": rows, "fan_in": fan_in, "weight_base": bases[i],
            "in_frac": cfg.in_frac(i), "forward_shift": cfg.forward_shift(i),
            "score_shift": cfg.score_shift(i), "delta_shift": cfg.delta_shift(i),
            "update_shift": cfg.update_shift(i), "init_bits": cfg.init_bits_for(fan_in),
            "init_seed": cfg.stream_seed("init", i),
            "classifier_seed": cfg.stream_seed("classifier", i),
            "feedback_seed": cfg.stream_seed("feedback", i),
            "tiles": -(-rows // p), "in_tiles": -(-fan_in // q),
        }
        if arch is not None and arch.convolutional:
            layer["conv"] = conv_word(arch.layers[i])
        if cfg.batch_norm:
            layer["gamma_shift"] = cfg.gamma_shift(i)
        for name, value in layer.items():
            values[register_index(name, i)] = value
    return values
