"""The RTL units of a configuration, named as `lela verilog --unit` names them."""

from amaranth.hdl import signed, unsigned

from hw.core.back_projection import BackProjection
from hw.core.classifier_weights import ClassifierWeights
from hw.core.drain_rounding import DrainRounding
from hw.core.error_stage import ErrorStage
from hw.core.forward_drain import ForwardDrain
from hw.core.training_core import TrainingCore, loop_count_bits
from hw.core.weight_init import WeightInit
from hw.core.weight_updater import WeightUpdater
from hw.lfsr_prng import LfsrPrng
from hw.local_error import LocalErrorUnit
from hw.mac_array import MacArray, accumulator_shape
from hw.params import CoreParams, index_bits
from contract.config import ConfigError
from contract.protocol import MAX_PAYLOAD

__all__ = ["UNITS", "build_unit", "check_rtl_config", "check_buildable", "on_chip_bits",
           "MAX_ON_CHIP_BITS", "MAX_INPUTS"]

#: The most on-chip memory (bits) a generated core may describe. The Verilog names every word of
#: every memory (its initial value): a 64-8000 core (11 Mbit) takes 27 s and 0.6 GB to write,
#: 64-100000 (175 Mbit) minutes and gigabytes (docs/RESULTS.md, issue 13). 2**24 bits is over
#: four times the block RAM of the largest FPGA the project builds for (ULX3S, ECP5-85F: 3.7
#: Mbit).
MAX_ON_CHIP_BITS = 1 << 24

#: The widest input a core can take: a sample (its label and one byte a pixel) travels in one
#: LOAD_BATCH frame, whose payload also carries two header bytes (docs/HOST_INTERFACE.md).
MAX_INPUTS = MAX_PAYLOAD - 3


def _lfsr(cfg):
    """The local-classifier PRNG: one k-bit weight per class each cycle."""
    return LfsrPrng(cfg.lfsr_width, cfg.classifier_bits, cfg.classes)


def _classifier(cfg):
    """The local classifier (or its sign-concordant feedback) regenerated a column a cycle."""
    return ClassifierWeights(cfg.lfsr_width, cfg.classes, cfg.classifier_bits,
                             sign_feedback=cfg.feedback == "sign")


def _mac_array(cfg):
    """Serves the forward pass (weights x activations, fan-in + bias terms) and the weight
    gradient (deltas x activations, one term per sample)."""
    depth = max(max(cfg.fan_in(i) + 1 for i in range(cfg.layers)), cfg.batch)
    a = signed(max(cfg.weight_bits, cfg.delta_bits))
    return MacArray(cfg.array_rows, cfg.array_cols, a, unsigned(cfg.act_bits), depth)


def _local_error(cfg):
    return LocalErrorUnit(cfg.classes, cfg.score_bits, cfg.score_frac, cfg.error_bits)


def _back_projection(cfg):
    """The back projection's drain: a neuron per MAC-array row, a sample per column."""
    p = CoreParams.from_config(cfg)
    sums = accumulator_shape(p.a_shape, p.b_shape, p.depth)
    return BackProjection(p.rows, p.cols, signed(sums.width + 2), p.delta_bits,
                          p.grad_bias_bits, index_bits(max(p.tiles, 2)))


def _updater(cfg):
    """The training core's weight update: a lane per MAC-array row (a weight of a bus word)."""
    p = CoreParams.from_config(cfg)
    sums = accumulator_shape(p.a_shape, p.b_shape, p.depth)
    return WeightUpdater(p.rows, signed(max(sums.width, p.grad_bias_bits) + 1), p.weight_bits,
                         p.round_bits)


def _core_params(cfg):
    p = CoreParams.from_config(cfg)
    return p, accumulator_shape(p.a_shape, p.b_shape, p.depth)


def _drain_rounding(cfg):
    """The rounding stage the forward, score and back-projection drains share."""
    p, sums = _core_params(cfg)
    return DrainRounding(max(p.rows, p.cols), sums)


def _forward_drain(cfg):
    """The forward pass's drain: activations, the ReLU's derivative, dropout."""
    p, sums = _core_params(cfg)
    cw, pbits = loop_count_bits(p), (p.rows - 1).bit_length()
    return ForwardDrain(p.cols, sums, signed(sums.width + 2), p.act_bits, cw + pbits, cw,
                        max(1, pbits), p.dropout)


def _error_stage(cfg):
    """The score drain and the local errors of each sample."""
    p, sums = _core_params(cfg)
    return ErrorStage(p.cols, p.classes, signed(sums.width + 2), p.score_bits, p.score_frac,
                      p.error_bits, index_bits(p.class_tiles * p.rows))


def _weight_init(cfg):
    """The initial weights of a layer, a bus word a cycle."""
    p = CoreParams.from_config(cfg)
    return WeightInit(p.rows, p.weight_bits, p.lfsr_width, loop_count_bits(p))


def _training_core(cfg):
    """The training core without the host interface (hw/core/training_core.py)."""
    return TrainingCore(CoreParams.from_config(cfg))


def _accelerator(cfg):
    """The whole accelerator: host interface, training core, counters (hw/accelerator.py)."""
    from hw.accelerator import Accelerator
    return Accelerator(CoreParams.from_config(cfg))


def _sdram(cfg):
    """The weight bus served from the ULX3S's SDRAM at the board's 50 MHz, CAS latency 2
    (hw/sdram_controller.py, docs/SDRAM.md); not yet part of a board top."""
    from hw.sdram_controller import SdramController
    p = CoreParams.from_config(cfg)
    return SdramController(p.addr_bits, p.word_bits)


UNITS = {"accelerator": _accelerator, "lfsr": _lfsr, "classifier": _classifier, "mac_array": _mac_array, "local_error": _local_error,
         "back_projection": _back_projection, "updater": _updater,
         "drain_rounding": _drain_rounding, "forward_drain": _forward_drain,
         "error_stage": _error_stage, "weight_init": _weight_init,
         "training_core": _training_core, "sdram": _sdram}


def check_rtl_config(cfg):
    """Refuse what the RTL does not implement yet (the config itself is already valid)."""
    for i in range(cfg.layers):
        for name in ("forward_shift", "score_shift", "delta_shift", "update_shift"):
            if getattr(cfg, name)(i) > 31:
                raise ConfigError(f"field 'lr_shift': layer {i}'s {name.replace('_', ' ')} "
                                  f"{getattr(cfg, name)(i)} exceeds the RTL's 31")
    if cfg.loss != "square-hinge":
        raise ConfigError("field 'loss': the RTL local-error unit implements square-hinge only "
                          "(softmax-ce exists in the golden model)")
    if any(cfg.layer_lr_shift):
        raise ConfigError("field 'layer_lr_shift': the core's bias update shift is one register "
                          "for every layer (per-layer rates exist in the golden model)")
    if cfg.batch_norm:
        for i in range(cfg.layers):
            if cfg.gamma_shift(i) > 31:
                raise ConfigError(f"field 'lr_shift': layer {i}'s scale update shift "
                                  f"{cfg.gamma_shift(i)} exceeds the RTL's 31")


def _buffer_bits(params):
    """A lower bound on the core's on-chip memory that needs no elaboration: its two activation
    buffers (``Q`` banks of ``2**(gbits + cbits)`` activations each, hw/activation_buffer.py)."""
    q = params.cols
    columns = -(-max(params.columns, 1) // q) * q
    depth = 1 << (index_bits(params.groups) + index_bits(columns))
    return 2 * q * depth * params.act_bits


def on_chip_bits(params):
    """Bits of every on-chip memory of the accelerator for ``params`` (buffers, frame buffer,
    register file), counted in its elaborated design; the weight memory is outside it."""
    from amaranth.hdl import Fragment, Shape
    from hw.accelerator import Accelerator

    total = 0
    pending = [Fragment.get(Accelerator(params), None)]
    while pending:
        fragment = pending.pop()
        pending.extend(sub for sub, _, _ in fragment.subfragments)
        data = getattr(fragment, "_data", None)      # an amaranth MemoryInstance's MemoryData
        if data is not None and type(fragment).__name__ == "MemoryInstance":
            total += data.depth * Shape.cast(data.shape).width
    return total


def check_buildable(cfg):
    """Everything that refuses a config for the RTL, checked before any generation, synthesis or
    simulation starts: the core's build parameters (hw.params.CoreParams), what the RTL
    implements (:func:`check_rtl_config`), the widest input a LOAD_BATCH frame carries and the
    on-chip memory the generated core would describe. Raises :class:`ConfigError`."""
    params = CoreParams.from_config(cfg)
    check_rtl_config(cfg)
    if cfg.arch[0] > MAX_INPUTS:
        raise ConfigError(f"field 'arch': {cfg.arch[0]} inputs do not fit the core: a sample "
                          f"travels in one LOAD_BATCH frame, at most {MAX_INPUTS} pixels")
    bits, what = _buffer_bits(params), "at least {} (its activation buffers alone)"
    if bits <= MAX_ON_CHIP_BITS:
        bits, what = on_chip_bits(params), "{}"
    if bits > MAX_ON_CHIP_BITS:
        arch = "-".join(map(str, cfg.arch))
        size = what.format(f"{bits / 2**20:.1f} Mibit")
        raise ConfigError(f"field 'arch': a core for {arch} would hold {size} of on-chip "
                          f"memory, more than the {MAX_ON_CHIP_BITS >> 20} Mibit lela generates "
                          "(MAX_ON_CHIP_BITS in gen/units.py; the buffers grow with the widest "
                          "layer)")
    return params


def build_unit(cfg, name):
    if name not in UNITS:
        raise ConfigError(f"unknown unit {name!r} (choose {', '.join(UNITS)})")
    check_rtl_config(cfg)
    return UNITS[name](cfg)
