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

__all__ = ["UNITS", "build_unit", "check_rtl_config"]


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


UNITS = {"accelerator": _accelerator, "lfsr": _lfsr, "classifier": _classifier, "mac_array": _mac_array, "local_error": _local_error,
         "back_projection": _back_projection, "updater": _updater,
         "drain_rounding": _drain_rounding, "forward_drain": _forward_drain,
         "error_stage": _error_stage, "weight_init": _weight_init,
         "training_core": _training_core}


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


def build_unit(cfg, name):
    if name not in UNITS:
        raise ConfigError(f"unknown unit {name!r} (choose {', '.join(UNITS)})")
    check_rtl_config(cfg)
    return UNITS[name](cfg)
