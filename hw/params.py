"""Elaboration-time parameters of the training core, derived from a configuration."""

import dataclasses
from dataclasses import dataclass
from math import ceil, log2

from amaranth.hdl import signed, unsigned

from contract.config import ConfigError
from contract.limits import Limits

from .registered_multiplier import ECP5_OPERAND_BITS

__all__ = ["CoreParams", "index_bits"]


def index_bits(n):
    """Bits of an index ``0 .. n-1`` (at least 1). Not ``amaranth.utils.bits_for``, which
    counts the bits of the value ``n`` itself (``bits_for(4) == 3``, ``index_bits(4) == 2``)."""
    return max(1, (n - 1).bit_length())


def _pow2(n):
    return n > 0 and n & (n - 1) == 0


@dataclass(frozen=True)
class CoreParams:
    """What the Verilog fixes: the array, the widths, the classes and the buffer sizes.

    Sizes, shifts, seeds and modes are run-time registers (contract/registers.py); one core runs
    any network within ``max_layers``, ``max_inputs`` (the widest layer input, pixels
    included), ``max_neurons`` and ``max_batch``.
    """

    rows: int
    cols: int
    classes: int
    max_batch: int
    max_layers: int
    max_inputs: int
    max_neurons: int
    act_bits: int = 8
    weight_bits: int = 16
    score_bits: int = 16
    score_frac: int = 10
    error_bits: int = 16
    delta_bits: int = 16
    classifier_bits: int = 4
    round_bits: int = 16
    lfsr_width: int = 31
    addr_bits: int = 24
    # Words of weight memory behind the bus (0: the whole address space); the host interface
    # refuses weight addresses and layer extents beyond it (contract/limits.py).
    weight_words: int = 0
    frame_timeout: int = 1 << 20
    counter_bits: int = 64            # the counters wrap modulo 2**counter_bits
    all_counters: bool = True         # else only the driver's (commands, correct predictions)
    # Features a small core can be built without (the host interface then refuses a
    # configuration or command that needs one, with Status.UNSUPPORTED).
    dropout: bool = True
    sign_feedback: bool = True
    early_exit: bool = True
    frozen_layers: bool = True        # TRAIN runs the layers of the ``frozen`` mask forward only
    batch_norm: bool = False          # the layers' outputs can be batch-normalised (NORM phases)
    # Training samples held on the device for TRAIN_EPOCH (hw/host_link/resident_trainer.py);
    # 0 builds no store, and STORE_SAMPLES and TRAIN_EPOCH are UNSUPPORTED.
    resident_samples: int = 0
    resident_inputs: int = 0          # pixels a stored sample holds (the config's N[0])
    # Convolutional layers (docs/ARITHMETIC.md, "Convolutional layers", docs/CONV_CORE.md); a
    # core without takes only 0 in the ``conv`` registers.
    conv: bool = False
    # Simulation builds: scramble a block-RAM word read as it is written (hw/ram_collisions.py).
    scramble_collisions: bool = False
    # Registers for a fast clock (an ECP5 above ~60 MHz): the MAC array's products in a
    # stage of their own (hw/mac_array.py: a sum leaves a cycle later), RESET's clear of the
    # core from a register (hw/accelerator.py). The iCE40's lean core has no cells for them.
    pipelined: bool = True
    # Pipelined only: each MAC lane's operands registered in front of its multiplier
    # (hw/mac_array.py's operand stage; the config's ``operand_stage``).
    operand_stage: bool = True
    # Pipelined only: the drain register's shifts through a register per row
    # (hw/core/drain_register.py's ``row_stage``; the config's ``drain_row_stage``).
    drain_row_stage: bool = False
    # The MAC lanes' multipliers, with the operand stage's registers, and the forward drain's
    # dropout multipliers: "inferred" or "ecp5" (hw/registered_multiplier.py; the config's
    # ``multiplier``).
    multiplier: str = "inferred"
    # The "ecp5" blocks' sites on the die, one of the config's DSP_FLOORPLANS
    # (hw/dsp_floorplans.py; the config's ``dsp_floorplan``).
    dsp_floorplan: str = "none"

    @classmethod
    def from_config(cls, cfg, **overrides):
        # The sizes the range checks also derive from come from the contract's one mapping.
        fields = dataclasses.asdict(Limits.for_config(cfg))
        fields.update(
            score_bits=cfg.score_bits, score_frac=cfg.score_frac, error_bits=cfg.error_bits,
            delta_bits=cfg.delta_bits, classifier_bits=cfg.classifier_bits,
            round_bits=cfg.round_bits, operand_stage=cfg.operand_stage,
            drain_row_stage=cfg.drain_row_stage, multiplier=cfg.multiplier,
            dsp_floorplan=cfg.dsp_floorplan)
        fields.update(overrides)
        params = cls(**fields)
        params.check()
        return params

    def check(self):
        if not _pow2(self.rows) or not _pow2(self.cols):
            raise ConfigError("fields 'array_rows' and 'array_cols': the training core needs "
                              f"powers of two, not {self.rows} x {self.cols}")
        if self.max_batch > 255:
            raise ConfigError("field 'batch': the training core takes at most 255 samples")
        if self.classes > 255:
            raise ConfigError("field 'classes': the training core takes at most 255 classes")
        if self.weight_bits not in (8, 16, 32):
            raise ConfigError("field 'weight_bits': the training core's bus carries 8, 16 or "
                              "32-bit weights")
        if not 16 <= self.counter_bits <= 64:
            raise ConfigError("the counters are 16 to 64 bits wide, not "
                              f"{self.counter_bits}")
        if not 0 <= self.weight_words <= 1 << self.addr_bits:
            raise ConfigError(f"{self.weight_words} words of weight memory do not fit "
                              f"{self.addr_bits} address bits")
        if self.resident_samples and not 1 <= self.resident_inputs <= self.max_inputs:
            raise ConfigError(f"resident samples of {self.resident_inputs} pixels on a core "
                              f"of at most {self.max_inputs} inputs")
        if not 0 <= self.resident_samples < 1 << 16:
            raise ConfigError("field 'resident_samples': at most 65535 samples, not "
                              f"{self.resident_samples}")
        if self.max_layers > 15:
            raise ConfigError("field 'arch': the training core takes at most 15 hidden layers")
        if self.multiplier != "inferred" and not (self.pipelined and self.operand_stage):
            raise ConfigError(f"field 'multiplier': {self.multiplier!r} multipliers hold the "
                              "pipelined core's operand stage, which this build has not")
        if (self.multiplier == "ecp5"
                and max(self.a_shape.width, self.b_shape.width) > ECP5_OPERAND_BITS):
            raise ConfigError(f"field 'multiplier': the MAC operands are {self.a_shape.width} "
                              f"and {self.b_shape.width} bits, an ECP5 MULT18X18D takes "
                              f"{ECP5_OPERAND_BITS}")
        if self.dsp_floorplan != "none" and self.multiplier != "ecp5":
            raise ConfigError(f"field 'dsp_floorplan': {self.dsp_floorplan!r} places ECP5 "
                              f"blocks, and this build's multipliers are {self.multiplier!r}")

    # ---- derived ---------------------------------------------------------------------
    @property
    def word_bits(self):
        return self.rows * self.weight_bits

    @property
    def word_bytes(self):
        return self.word_bits // 8

    @property
    def tiles(self):
        return ceil(self.max_neurons / self.rows)

    @property
    def groups(self):
        return ceil(self.max_batch / self.cols)

    @property
    def class_tiles(self):
        return ceil(self.classes / self.rows)

    @property
    def columns(self):
        """Columns of an activation buffer: inputs or neurons (tiles padded)."""
        return max(self.max_inputs, self.tiles * self.rows)

    @property
    def grad_bias_bits(self):
        """A bias gradient: the sum of a mini-batch's deltas; a convolution's sums over every
        pooled position too (at most ``max_neurons`` per filter)."""
        terms = self.max_batch * (self.max_neurons if self.conv else 1)
        return self.delta_bits + ceil(log2(terms + 1))

    @property
    def a_shape(self):
        return signed(max(self.weight_bits, self.delta_bits, self.classifier_bits + 2))

    @property
    def b_shape(self):
        return signed(max(self.act_bits + 2, self.error_bits))

    @property
    def depth(self):
        """The most beats of one MAC-array sum. A convolution's weight gradient sums over every
        sample and conv output position (at most the input map, ``max_inputs``)."""
        grad = self.max_batch * self.max_inputs if self.conv else self.max_batch
        return max(self.max_inputs + 1, self.max_neurons, self.classes, grad)

    @property
    def label_shape(self):
        return unsigned(index_bits(self.classes + 1))
