"""The accelerator configuration: a plain description of sizes, widths, shifts and seeds.

This is the only thing the golden model (sw_model) and the RTL (hw) share. Every derived quantity
(per-layer shifts, seeds, accumulator widths) is computed here from the formulas of
docs/ARITHMETIC.md, so both implementations read the same numbers. A config is validated before
anything uses it; every refusal is a :class:`ConfigError` whose message names the field.
"""

import dataclasses
import tomllib
from dataclasses import dataclass

from contract.lfsr_taps import TAPS

__all__ = ["ConfigError", "NetConfig", "load_config", "read_toml", "flatten_sections",
           "SOFTMAX_ONE_BITS", "softmax_table", "INIT_CHUNK_BITS", "init_bits",
           "auto_classifier_exponent", "ceil_log2", "BAUD_RANGE", "RX_BUFFER_RANGE",
           "RESIDENT_RANGE", "ORDER_DRAW_BITS"]

#: The softmax table holds 2**-f scaled by 2**SOFTMAX_ONE_BITS (ARITHMETIC.md, "Softmax").
SOFTMAX_ONE_BITS = 16

#: The UART rates a config may ask for (field ``baud``): the boards' USB bridges carry up to 3
#: (FT231X) and 12 (FT2232H) Mbaud; each board checks its own (hw/boards/top.py).
BAUD_RANGE = (1200, 12_000_000)

#: The receive buffers a config may ask for (field ``rx_buffer``, bytes): a register (1) up to
#: 64 KiB of block RAM.
RX_BUFFER_RANGE = (1, 1 << 16)
#: The samples a board may hold for resident training (field ``resident_samples``; 0: none):
#: an epoch's counts travel as 16 bits.
RESIDENT_RANGE = (0, (1 << 16) - 1)

#: Width of one chunk of the initial-weight stream; an initial weight is its top ``I`` bits, so
#: a config whose ``I`` exceeds it is refused (ARITHMETIC.md, "What is drawn").
INIT_CHUNK_BITS = 16
#: Bits of one draw of resident training's sample shuffle (ARITHMETIC.md, "Resident
#: training: the sample order"): one 16 x 16-bit product a visit in the hardware.
ORDER_DRAW_BITS = 16


def softmax_table(lut_bits):
    """The integer nearest ``2**16 * 2**(-u / 2**lut_bits)`` for ``u`` in
    ``0 .. 2**lut_bits - 1`` (ARITHMETIC.md, step 4). No entry is a tie (the value is irrational
    for ``u > 0``) and every entry lies at least 2.8e-4 away from a half-integer for
    ``lut_bits <= 12``, so float64 evaluation gives the exact nearest integer
    (tests/test_config.py checks it at 50 digits)."""
    return [int(round(2.0 ** (SOFTMAX_ONE_BITS - u / (1 << lut_bits))))
            for u in range(1 << lut_bits)]


def ceil_log2(n):
    """``ceil(log2(n))`` of a positive integer, in integers: the least ``c`` with ``2**c >= n``."""
    return (n - 1).bit_length()


def _nearest_sqrt_exponent(n):
    """For a positive integer ``n``: ``(a, tie)`` with ``a`` the integer such that
    ``2**(2a-1) <= n < 2**(2a+1)`` (``a = bit_length(n) // 2``), the rounded ``log2(sqrt(n))``,
    and ``tie`` true when ``n == 2**(2a-1)`` exactly, where ``log2(sqrt(n)) = a - 1/2``."""
    a = n.bit_length() // 2
    return a, a > 0 and n == 1 << (2 * a - 1)


def init_bits(weight_frac, weight_bits, fan_in):
    """Bits ``I`` of an initial weight (ARITHMETIC.md, "Derived per-layer constants"):
    ``clamp(rne(weight_frac - log2(sqrt(fan_in))) + 1, 2, weight_bits)`` in integers.

    ``weight_frac - log2(sqrt(fan_in))`` is a tie exactly when ``fan_in`` is an odd power of two
    (``2**(2a-1)``: the value is ``weight_frac - a + 1/2``); the tie goes to the even integer.
    """
    a, tie = _nearest_sqrt_exponent(fan_in)
    r = weight_frac - a
    if tie and r % 2:                  # tie between r and r + 1: the even one
        r += 1
    return max(2, min(weight_bits, r + 1))


def auto_classifier_exponent(classifier_bits, neurons):
    """The automatic classifier exponent ``E`` (ARITHMETIC.md, "Derived per-layer constants"):
    ``rne(log2(sqrt(V * neurons)))`` with ``V = (4**k - 1) / 3`` (an integer: the mean square of
    the odd weights ``-(2**k - 1) .. 2**k - 1``), in integers.

    ``V * neurons`` is an odd power of two (a tie) only for ``k = 1`` (``V = 1``) and ``neurons``
    an odd power of two; the tie goes to the even integer. ``E >= 0`` always.
    """
    v = ((1 << 2 * classifier_bits) - 1) // 3 * neurons
    a, tie = _nearest_sqrt_exponent(v)
    if tie and a % 2:                  # tie between a - 1 and a: the even one
        a -= 1
    return a


class ConfigError(ValueError):
    """A configuration value is out of range; the message names the field."""


_FEEDBACK = ("symmetric", "sign")
_ROUNDING = ("stochastic", "nearest-even")
#: The MAC lanes' and the forward drain's dropout multipliers (a build choice): Yosys's
#: inference, or ECP5 MULT18X18D blocks whose input registers hold the operands
#: (hw/registered_multiplier.py).
MULTIPLIERS = ("inferred", "ecp5")
#: Floorplans of the ECP5 multiplier blocks (a build choice, with ``multiplier = "ecp5"``): each
#: names the MAC array it places, (rows, columns); hw/dsp_floorplans.py holds its sites.
DSP_FLOORPLANS = {"none": None, "lfe5u-85f-8x8": (8, 8)}
_LOSSES = ("square-hinge", "softmax-ce")
# Seed streams: (purpose index, name). Per-layer purposes are mixed with the layer index.
_PURPOSE = {"init": 1, "classifier": 2, "feedback": 3, "round": 4, "dropout": 5,
            "order": 6}


@dataclass(frozen=True)
class NetConfig:
    """Sizes, number formats and seeds of one network on the accelerator, and the rate of the
    UART a board reaches it by (``baud``: it changes no number the network computes).

    Attributes mirror the TOML keys (see configs/*.toml and docs/ARITHMETIC.md).
    """

    arch: tuple                      # input size, then hidden layer sizes
    classes: int = 10
    act_bits: int = 8                # unsigned pixels and activations
    input_frac: int = 8              # pixel value p / 2**input_frac
    act_frac: int = 7                # hidden activation value y / 2**act_frac (range [0, 2))
    weight_bits: int = 16            # signed weights and biases, value w / 2**weight_frac
    weight_frac: int = 14
    score_bits: int = 16             # signed local scores, value s / 2**score_frac
    score_frac: int = 10
    error_bits: int = 16             # signed errors, same scale as scores
    delta_bits: int = 16             # signed deltas, value d / 2**delta_frac
    delta_frac: int = 14
    classifier_bits: int = 4         # bits of one local-classifier weight
    classifier_exp: tuple = ()       # per layer: M = m / 2**classifier_exp (auto if empty)
    round_bits: int = 16             # random bits per stochastically rounded value
    lr_shift: int = 7                # learning rate 2**-lr_shift
    lr_decay_epochs: int = 0         # lr_shift grows by one every this many epochs (0: never)
    layer_lr_shift: tuple = ()       # per hidden layer, halvings of its rate beyond lr_shift
    feedback: str = "symmetric"      # "symmetric" (K = M) or "sign" (K = sign(M) |M'|)
    loss: str = "square-hinge"       # local loss: "square-hinge" or "softmax-ce" (base 2)
    softmax_lut_bits: int = 6        # softmax: 2**-f looked up from the top bits of f
    rounding: str = "stochastic"     # weight-update rounding: "stochastic" or "nearest-even"
    dropout: int = 0                 # drop probability in 1/256 (0 = off)
    batch_norm: bool = False         # normalise every hidden layer's output over the mini-batch
    bn_momentum_shift: int = 3       # running statistics move 2**-shift of the way per batch
    bn_stat_frac: int = 8            # fraction bits of the running mean and variance
    bn_eps_shift: int = 8            # the variance's epsilon is 2**-bn_eps_shift (value units)
    batch: int = 32                  # largest mini-batch
    lfsr_width: int = 31
    seed: int = 1                    # base seed; every stream's seed derives from it
    array_rows: int = 8              # MAC array P (output neurons) ...
    array_cols: int = 8              # ... x Q samples; fixes the order of dropout draws
    operand_stage: bool = True       # pipelined cores: each MAC lane registers its own copy of
                                     # its operands (a build choice: no number depends on it)
    drain_row_stage: bool = False    # pipelined cores: the drain register's shifts reach its
                                     # elements through a register per row (a build choice)
    multiplier: str = "inferred"     # the MAC lanes' and the dropout's multipliers: "inferred",
                                     # or "ecp5" (their operand registers in MULT18X18D blocks;
                                     # a build choice)
    dsp_floorplan: str = "none"      # with multiplier = "ecp5": the blocks' sites on the die,
                                     # one of DSP_FLOORPLANS (a build choice)
    baud: int = 115200               # the UART's bits a second (boards, --backend serial); no
                                     # number computed depends on it
    rx_buffer: int = 16              # bytes the board's UART receiver holds while a command
                                     # executes (its FIFO); the driver streams that many ahead
    resident_samples: int = 0        # training samples the core holds for TRAIN_EPOCH (0: no
                                     # resident training; ARITHMETIC.md, "Resident training")
    conv: bool = False               # the core runs and trains convolutional layers
                                     # (HOST_INTERFACE.md, "Convolutional layers"); the
                                     # network itself comes from an architecture

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw, source="config"):
        flat = {}
        for key, value in raw.items():
            if isinstance(value, dict):
                for sub, v in value.items():
                    flat[sub] = v
            else:
                flat[key] = value
        names = {f.name for f in dataclasses.fields(cls)}
        for key in flat:
            if key not in names:
                raise ConfigError(f"{source}: unknown field '{key}'")
        if "arch" not in flat:
            raise ConfigError(f"{source}: missing field 'arch'")
        for key in ("arch", "classifier_exp", "layer_lr_shift"):
            if key in flat:
                if not isinstance(flat[key], (list, tuple)):
                    raise ConfigError(f"{source}: field '{key}' must be a list of integers")
                flat[key] = tuple(flat[key])
        cfg = cls(**flat)
        cfg.validate(source)
        return cfg

    def replace(self, **changes):
        cfg = dataclasses.replace(self, **changes)
        cfg.validate()
        return cfg

    def to_dict(self):
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}

    # ---- validation ---------------------------------------------------------------------
    def validate(self, source="config"):
        def fail(name, why):
            raise ConfigError(f"{source}: field '{name}' {why}")

        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.type is int or f.type == "int":
                if not isinstance(v, int) or isinstance(v, bool):
                    fail(f.name, f"must be an integer, not {v!r}")
        if len(self.arch) < 2:
            fail("arch", "must list the input size and at least one hidden layer")
        for n in self.arch:
            if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
                fail("arch", f"sizes must be positive integers, not {n!r}")
        if self.classes < 2:
            fail("classes", "must be at least 2")
        for name, lo, hi in (("act_bits", 2, 16), ("weight_bits", 4, 32), ("score_bits", 4, 32),
                             ("error_bits", 4, 32), ("delta_bits", 4, 32),
                             ("classifier_bits", 1, 8)):
            if not lo <= getattr(self, name) <= hi:
                fail(name, f"must be in {lo}..{hi}, not {getattr(self, name)}")
        for name, bits in (("weight_frac", "weight_bits"), ("score_frac", "score_bits"),
                           ("delta_frac", "delta_bits"), ("input_frac", "act_bits"),
                           ("act_frac", "act_bits")):
            if not 0 <= getattr(self, name) <= getattr(self, bits):
                fail(name, f"must be in 0..{getattr(self, bits)} ({bits})")
        if self.score_frac + 2 > self.score_bits:
            fail("score_frac", "leaves no room for the margin 1.0 (needs score_bits >= "
                 "score_frac + 2)")
        if self.error_bits < self.score_bits:
            fail("error_bits", "must be at least score_bits (an error can reach 1 + |score|)")
        if self.round_bits not in (1, 2, 4, 8, 16, 32):
            fail("round_bits", "must be a power of two up to 32")
        if self.classifier_bits not in (1, 2, 4, 8):
            fail("classifier_bits", "must be 1, 2, 4 or 8")
        if not 0 <= self.lr_shift <= 40:
            fail("lr_shift", "must be in 0..40")
        if self.layer_lr_shift:
            if len(self.layer_lr_shift) != self.layers:
                fail("layer_lr_shift", f"must list one shift per hidden layer ({self.layers})")
            for v in self.layer_lr_shift:
                if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 16:
                    fail("layer_lr_shift", f"shifts must be integers in 0..16, not {v!r}")
        if not 0 <= self.lr_decay_epochs <= 10_000:
            fail("lr_decay_epochs", "must be in 0..10000 (0: a constant learning rate)")
        if self.feedback not in _FEEDBACK:
            fail("feedback", f"must be one of {', '.join(_FEEDBACK)}, not {self.feedback!r}")
        if self.loss not in _LOSSES:
            fail("loss", f"must be one of {', '.join(_LOSSES)}, not {self.loss!r}")
        if not 1 <= self.softmax_lut_bits <= min(12, self.score_frac):
            fail("softmax_lut_bits", "must be in 1..min(12, score_frac)")
        if self.rounding not in _ROUNDING:
            fail("rounding", f"must be one of {', '.join(_ROUNDING)}, not {self.rounding!r}")
        if not 0 <= self.dropout < 256:
            fail("dropout", "is a probability in 1/256 and must be in 0..255")
        if not 1 <= self.batch <= 4096:
            fail("batch", "must be in 1..4096")
        if not isinstance(self.batch_norm, bool):
            fail("batch_norm", f"must be true or false, not {self.batch_norm!r}")
        if not isinstance(self.conv, bool):
            fail("conv", f"must be true or false, not {self.conv!r}")
        if not isinstance(self.operand_stage, bool):
            fail("operand_stage", f"must be true or false, not {self.operand_stage!r}")
        if not isinstance(self.drain_row_stage, bool):
            fail("drain_row_stage", f"must be true or false, not {self.drain_row_stage!r}")
        if self.multiplier not in MULTIPLIERS:
            fail("multiplier", f"must be one of {', '.join(MULTIPLIERS)}, not "
                 f"{self.multiplier!r}")
        if self.multiplier != "inferred" and not self.operand_stage:
            fail("multiplier", f"{self.multiplier!r} puts the operand stage's registers in "
                 "the multiplier blocks: it needs operand_stage = true")
        if self.dsp_floorplan not in DSP_FLOORPLANS:
            fail("dsp_floorplan", f"must be one of {', '.join(DSP_FLOORPLANS)}, not "
                 f"{self.dsp_floorplan!r}")
        placed = DSP_FLOORPLANS[self.dsp_floorplan]
        if placed is not None and self.multiplier != "ecp5":
            fail("dsp_floorplan", f"{self.dsp_floorplan!r} places ECP5 MULT18X18D blocks: it "
                 'needs multiplier = "ecp5"')
        if placed is not None and placed != (self.array_rows, self.array_cols):
            fail("dsp_floorplan", f"{self.dsp_floorplan!r} places the lanes of a {placed[0]} x "
                 f"{placed[1]} array, not {self.array_rows} x {self.array_cols}")
        if not 0 <= self.bn_momentum_shift <= 16:
            fail("bn_momentum_shift", "must be in 0..16")
        if not 0 <= self.bn_stat_frac <= 16:
            fail("bn_stat_frac", "must be in 0..16")
        if not 0 <= self.bn_eps_shift <= 2 * self.act_frac:
            fail("bn_eps_shift", f"must be in 0..2*act_frac ({2 * self.act_frac}): epsilon is "
                 "at least one activation step squared")
        if self.batch_norm:
            if self.dropout:
                fail("batch_norm", "cannot be combined with dropout yet (set dropout = 0): the "
                     "order of the two and the running statistics under dropout are not "
                     "defined in ARITHMETIC.md")
            if self.batch > 256:
                fail("batch_norm", f"needs batch <= 256 (the statistics' widths), not "
                     f"{self.batch}")
            if self.weight_frac < self.act_frac:
                fail("batch_norm", "needs weight_frac >= act_frac (the backward scale's shift)")
            if self.act_bits > 12:
                fail("batch_norm", f"needs act_bits <= 12 (the statistics' widths), not "
                     f"{self.act_bits}")
            if self.weight_bits > 16:
                fail("batch_norm", f"needs weight_bits <= 16 (the running statistics, two "
                     f"weight words each, then stay below 2**32), not {self.weight_bits}")
            if 2 * self.act_bits + self.bn_stat_frac > 2 * self.weight_bits:
                fail("batch_norm", f"needs 2*act_bits + bn_stat_frac <= 2*weight_bits (the "
                     f"running variance fits its two weight words), not "
                     f"{2 * self.act_bits + self.bn_stat_frac} > {2 * self.weight_bits}")
            if self.delta_bits > 20:
                fail("batch_norm", f"needs delta_bits <= 20 (the scale's gradient times the "
                     f"batch reciprocal stays below 2**63), not {self.delta_bits}")
        if self.lfsr_width not in TAPS:
            fail("lfsr_width", f"{self.lfsr_width} has no known maximal-length polynomial "
                 f"(supported {min(TAPS)}..{max(TAPS)})")
        if not 0 < self.seed < (1 << self.lfsr_width):
            fail("seed", "must be in 1..2**lfsr_width - 1")
        if self.array_rows <= 0 or self.array_cols <= 0:
            fail("array_rows" if self.array_rows <= 0 else "array_cols", "must be positive")
        if not BAUD_RANGE[0] <= self.baud <= BAUD_RANGE[1]:
            fail("baud", f"must be in {BAUD_RANGE[0]}..{BAUD_RANGE[1]} (bits a second on the "
                 f"UART), not {self.baud}")
        if not RESIDENT_RANGE[0] <= self.resident_samples <= RESIDENT_RANGE[1]:
            fail("resident_samples", f"must be in {RESIDENT_RANGE[0]}..{RESIDENT_RANGE[1]} "
                 f"(training samples the board holds), not {self.resident_samples}")
        if not RX_BUFFER_RANGE[0] <= self.rx_buffer <= RX_BUFFER_RANGE[1]:
            fail("rx_buffer", f"must be in {RX_BUFFER_RANGE[0]}..{RX_BUFFER_RANGE[1]} (bytes the "
                 f"UART receiver holds), not {self.rx_buffer}")
        if self.classifier_exp and len(self.classifier_exp) != self.layers:
            fail("classifier_exp", f"must list one exponent per hidden layer ({self.layers})")
        for i in range(self.layers):
            if self.init_bits(i) > INIT_CHUNK_BITS:
                fail("weight_frac", f"layer {i}: initial weights would be {self.init_bits(i)} "
                     f"bits wide (fan-in {self.fan_in(i)}), more than the {INIT_CHUNK_BITS}-bit "
                     "chunk of the init stream")
            if self.forward_shift(i) < 0:
                fail("act_frac", f"layer {i}: forward shift would be negative (act_frac > "
                     "weight_frac + input fraction)")
            if self.update_shift(i) < 0:
                fail("lr_shift", f"layer {i}: is too small for these formats (negative update "
                     "shift)")
            if self.score_shift(i) < 0:
                fail("classifier_exp", f"layer {i}: score shift would be negative")
            if self.delta_shift(i) < 0:
                fail("classifier_exp", f"layer {i}: delta shift would be negative")
        if self.bias_update_shift() < 0:
            fail("lr_shift", "is too small for these formats (negative update shift)")
        if max(self.layer_lr_shift, default=0) + self.lr_shift > 40:
            fail("layer_lr_shift", "takes a layer's learning-rate shift past 40")
        if self.batch_norm:
            for i in range(self.layers):
                if self.gamma_shift(i) < 0:
                    fail("lr_shift", f"layer {i}: is too small for these formats (negative "
                         "batch-norm scale update shift)")
        # Exactness of the float64 golden model: every integer it forms stays below 2**53.
        if self.max_abs_bits() >= 53:
            culprit = ("round_bits" if self.grad_bits() + self.round_bits >= 53
                       else "weight_bits")
            fail(culprit, f"makes sums reach 2**{self.max_abs_bits()}, beyond the 2**53 that "
                 "the golden model computes exactly")

    # ---- derived quantities (docs/ARITHMETIC.md) ---------------------------------------
    @property
    def layers(self):
        return len(self.arch) - 1

    def fan_in(self, i):
        return self.arch[i]

    def neurons(self, i):
        return self.arch[i + 1]

    def classifier_exponent(self, i):
        if self.classifier_exp:
            return self.classifier_exp[i]
        return auto_classifier_exponent(self.classifier_bits, self.neurons(i))

    def in_frac(self, i):
        """Fraction bits of layer i's input: pixels for the first layer, else activations."""
        return self.input_frac if i == 0 else self.act_frac

    def score_shift(self, i):
        return self.classifier_exponent(i) + self.act_frac - self.score_frac

    def delta_shift(self, i):
        return self.classifier_exponent(i) + self.score_frac - self.delta_frac

    def forward_shift(self, i):
        return self.weight_frac + self.in_frac(i) - self.act_frac

    def lr_shift_at(self, epoch):
        """The learning-rate shift of epoch ``epoch`` (counted from 0): ``lr_shift``, one more
        every ``lr_decay_epochs`` epochs (docs/ARITHMETIC.md, "Learning-rate decay")."""
        if not self.lr_decay_epochs:
            return self.lr_shift
        return self.lr_shift + epoch // self.lr_decay_epochs

    def at_epoch(self, epoch):
        """This network with epoch ``epoch``'s learning rate (a :class:`ConfigError` if its
        shifts leave the formats' range)."""
        shift = self.lr_shift_at(epoch)
        if shift == self.lr_shift:
            return self
        try:
            return self.replace(lr_shift=shift)
        except ConfigError as e:
            raise ConfigError(f"config: field 'lr_decay_epochs' takes lr_shift to {shift} by "
                              f"epoch {epoch + 1}, which these formats refuse ({e})") from None

    def lr_shift_of(self, i):
        """Layer i's learning-rate shift: ``lr_shift`` plus its ``layer_lr_shift`` (ARITHMETIC.md,
        "Derived per-layer constants"); ``i = None``: ``lr_shift``."""
        extra = self.layer_lr_shift[i] if self.layer_lr_shift and i is not None else 0
        return self.lr_shift + extra

    def update_shift(self, i):
        return self.delta_frac + self.in_frac(i) + self.lr_shift_of(i) - self.weight_frac

    def bias_update_shift(self, i=None):
        """The biases' update shift of layer i (of every layer when no layer has its own
        rate, the device's one register)."""
        return self.delta_frac + self.lr_shift_of(i) - self.weight_frac

    def bn_eps(self):
        """The variance's epsilon in activation integer units squared,
        ``2**(2 * act_frac - bn_eps_shift)`` (ARITHMETIC.md, "Batch normalisation")."""
        return 1 << (2 * self.act_frac - self.bn_eps_shift)

    def gamma_shift(self, i):
        """The shift of the batch-norm scale's update (ARITHMETIC.md, "Batch normalisation")."""
        return self.delta_frac + self.act_frac + self.lr_shift_of(i) - self.weight_frac

    def init_bits(self, i):
        """Bits of the uniform signed integer each initial weight of layer i is drawn as."""
        return self.init_bits_for(self.fan_in(i))

    def init_bits_for(self, fan_in):
        return init_bits(self.weight_frac, self.weight_bits, fan_in)

    def acc_bits(self, i):
        """Signed accumulator width of layer i's forward sum, so that no sum can overflow."""
        terms = self.fan_in(i) + (1 << self.in_frac(i))   # bias enters as b << in_frac
        return self.weight_bits + self.act_bits + 1 + ceil_log2(terms)

    def max_abs_bits(self):
        """log2 bound of the largest integer the golden model forms (see ARITHMETIC.md)."""
        worst = 0
        for i in range(self.layers):
            worst = max(worst, self.acc_bits(i),
                        self.classifier_bits + 1 + self.act_bits + ceil_log2(self.neurons(i)),
                        self.classifier_bits + 1 + self.error_bits + ceil_log2(self.classes))
            # w - (G / 2**shift + r / 2**R) is formed exactly before rounding (golden model).
            shift = self.update_shift(i)
            worst = max(worst, max(self.weight_bits, self.grad_bits() - shift)
                        + max(shift, self.round_bits) + 1)
        # softmax: q << score_frac with q <= 2**SOFTMAX_ONE_BITS
        worst = max(worst, SOFTMAX_ONE_BITS + 1 + self.score_frac + 1)
        return max(worst, self.grad_bits() + self.round_bits)

    def grad_bits(self):
        """Signed width of a weight gradient summed over a full mini-batch."""
        return self.delta_bits + self.act_bits + ceil_log2(self.batch + 1)

    def keep_scale(self):
        """The inverted-dropout scale, ``2**16 / (256 - dropout)`` rounded to the nearest
        integer (ARITHMETIC.md, step 2), in integers. The tie rule (to the even quotient) never
        acts: ``2**16 / d`` is never an odd multiple of 1/2 for ``d`` in 1..256."""
        quotient, remainder = divmod(1 << 16, 256 - self.dropout)
        twice = 2 * remainder
        up = twice > 256 - self.dropout or (twice == 256 - self.dropout and quotient & 1)
        return quotient + up

    def stream_seed(self, purpose, layer=0):
        """Seed of one LFSR stream, derived from the base seed (ARITHMETIC.md, "Seeds")."""
        mask = (1 << self.lfsr_width) - 1
        x = (self.seed * 0x9E3779B1 + _PURPOSE[purpose] * 0x85EBCA77 + layer * 0xC2B2AE3D)
        x ^= x >> 15
        x = (x * 0x2C1B3C6D) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 13
        x &= mask
        return x or 1


def read_toml(path):
    """The table of TOML file ``path``; any problem reading it is one :class:`ConfigError`."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file ({e.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (a TOML config is UTF-8 text)") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None


def flatten_sections(raw):
    """A config file's fields: its tables' (``[network]``, ``[train]``, ...) merged with the
    top-level ones (the sections only group them)."""
    flat = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def load_config(path, **overrides):
    """Load and validate a TOML config; ``overrides`` replace fields before validation."""
    flat = flatten_sections(read_toml(path))
    flat.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return NetConfig.from_dict(flat, source=str(path))
    except TypeError as e:
        raise ConfigError(f"{path}: {e}") from None
