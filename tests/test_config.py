import math
from decimal import Decimal, localcontext

import numpy as np
import pytest

from contract.config import (INIT_CHUNK_BITS, ConfigError, NetConfig, auto_classifier_exponent,
                             ceil_log2, init_bits, load_config, softmax_table)


def make(**kw):
    base = dict(arch=[64, 128, 128])
    base.update(kw)
    return NetConfig.from_dict(base)


def test_defaults_are_valid_and_derived_values_consistent():
    cfg = make()
    assert cfg.layers == 2
    assert cfg.forward_shift(0) == cfg.weight_frac + cfg.input_frac - cfg.act_frac
    assert cfg.update_shift(1) == cfg.delta_frac + cfg.act_frac + cfg.lr_shift - cfg.weight_frac
    assert cfg.max_abs_bits() < 53
    assert len({cfg.stream_seed(p, l) for p in ("init", "classifier", "feedback")
                for l in range(3)}) == 9


@pytest.mark.parametrize("kw,field", [
    (dict(arch=[64, 0]), "arch"), (dict(arch=[64]), "arch"), (dict(arch=[64, -3]), "arch"),
    (dict(arch="64-128"), "arch"), (dict(classes=1), "classes"),
    (dict(weight_bits=2), "weight_bits"), (dict(weight_frac=17), "weight_frac"),
    (dict(lfsr_width=2), "lfsr_width"), (dict(lfsr_width=65), "lfsr_width"),
    (dict(seed=0), "seed"), (dict(round_bits=3), "round_bits"),
    (dict(feedback="random"), "feedback"), (dict(rounding="up"), "rounding"),
    (dict(dropout=256), "dropout"), (dict(batch=0), "batch"), (dict(array_rows=0), "array_rows"),
    (dict(classifier_exp=[3]), "classifier_exp"), (dict(score_frac=15), "score_frac"),
    (dict(error_bits=8), "error_bits"), (dict(round_bits=32, batch=4096), "round_bits"),
    (dict(act_frac=8, weight_frac=0, input_frac=0), "act_frac"), (dict(bogus=1), "bogus"),
    (dict(act_bits="8"), "act_bits"), (dict(baud=300), "baud"), (dict(baud=20_000_000), "baud"),
    (dict(baud=3e6), "baud"), (dict(baud=True), "baud"),
    (dict(rx_buffer=0), "rx_buffer"), (dict(rx_buffer=1 << 17), "rx_buffer"),
    (dict(rx_buffer=True), "rx_buffer"), (dict(operand_stage=1), "operand_stage"),
    (dict(drain_row_stage="yes"), "drain_row_stage"),
    (dict(multiplier="dsp48"), "multiplier"),
    (dict(multiplier="ecp5", operand_stage=False), "multiplier"),
    (dict(dsp_floorplan="lfe5u-85f-8x8"), "dsp_floorplan"),
])
def test_out_of_range_fields_are_named(kw, field):
    with pytest.raises(ConfigError, match=f"'{field}'"):
        make(**kw)


def test_load_config_file(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[network]\narch = [64, 32]\nclasses = 10\n[format]\nweight_bits = 12\n'
                 'weight_frac = 10\n')
    cfg = load_config(p, batch=16)
    assert cfg.weight_bits == 12 and cfg.batch == 16
    p.write_text("arch = [64, 32\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(p)
    with pytest.raises(ConfigError, match="no such config"):
        load_config(tmp_path / "missing.toml")


def test_shipped_configs_are_valid():
    import glob
    import os
    paths = glob.glob(os.path.join(os.path.dirname(__file__), "..", "configs", "*.toml"))
    assert paths
    for path in paths:
        load_config(path)


def test_derived_constants_match_worked_examples():
    """Numbers worked out by hand from docs/ARITHMETIC.md for the default formats."""
    cfg = make(arch=[784, 1000, 128])
    # E: V*N = 85*1000 = 85000 lies in [2**15, 2**17) -> 8; 85*128 = 10880 in [2**13, 2**15) -> 7
    assert [cfg.classifier_exponent(0), cfg.classifier_exponent(1)] == [8, 7]
    assert cfg.score_shift(0) == 8 + 7 - 10 and cfg.delta_shift(1) == 7 + 10 - 14
    assert cfg.forward_shift(0) == 14 + 8 - 7 and cfg.forward_shift(1) == 14
    assert cfg.update_shift(0) == 14 + 8 + 7 - 14 and cfg.update_shift(1) == 14 + 7 + 7 - 14
    assert cfg.bias_update_shift() == 7
    # I: 784 lies in [2**9, 2**11) -> a = 5, I = 14 - 5 + 1 = 10; 1000 likewise -> 10
    assert [cfg.init_bits(0), cfg.init_bits(1)] == [10, 10]
    # acc_bits = 16 + 8 + 1 + ceil(log2(784 + 256)) = 25 + 11
    assert cfg.acc_bits(0) == 36


def test_stream_seeds_follow_the_documented_mix():
    cfg = make(seed=12345)
    x = 12345 * 0x9E3779B1 + 2 * 0x85EBCA77 + 1 * 0xC2B2AE3D
    x ^= x >> 15
    x = (x * 0x2C1B3C6D) % 2 ** 64
    x ^= x >> 13
    assert cfg.stream_seed("classifier", 1) == x % 2 ** 31


# ---- the derived constants' integer rules (docs/ARITHMETIC.md, "Derived per-layer constants") --

def _old_float_round(wf, n):
    """The formula I was computed with before the integer rule (float log2 and sqrt)."""
    return round(math.log2((1 << wf) / math.sqrt(n)))


def _old_float_init_bits(wf, wb, n):
    return max(2, min(wb, _old_float_round(wf, n) + 1))


def _old_float_exponent(k, n):
    return max(0, round(math.log2(math.sqrt(((1 << k) ** 2 - 1) / 3) * math.sqrt(n))))


# The only (weight_frac, fan_in) in weight_frac 0..32, fan_in 1..2**16 where the old float
# formula and the integer rule disagree (for every weight_bits): exact ties
# weight_frac - log2(sqrt(fan_in)) = 1.5 (fan_in = 2**(2*weight_frac - 3)), which float log2
# evaluates one ulp low (1.4999999999999998) and so rounded to 1 (I = 2); ties to even give 2
# (I = 3). The other ties that float misses by an ulp (-1.5, -0.5, 0.5) round the same either way
# or are hidden by the clamp at 2. No shipped or tested config has one of these.
FLOAT_ULP_INIT_CASES = {(2, 2), (3, 8), (4, 32), (5, 128), (6, 512), (7, 2048), (8, 8192),
                        (9, 32768)}
# Likewise for E: k = 1 (V = 1) and N = 2, log2(sqrt(2)) = 0.5 exactly, which float evaluates
# as 0.5000000000000001 (rounded to 1); ties to even give 0.
FLOAT_ULP_EXPONENT_CASES = {(1, 2)}


def test_init_bits_integer_rule_against_the_old_float_formula_exhaustively():
    """Every weight_frac 0..32 and fan_in 1..2**16 at weight_bits 32, and every valid
    (weight_bits, weight_frac) pair with fan_in 1..1024 (the clamp at weight_bits acts only for
    fan_in <= 2; the clamp at 2 for large fan_in, met in the first loop)."""
    differ = set()
    for wf in range(33):
        for n in range(1, (1 << 16) + 1):
            new = init_bits(wf, 32, n)
            if new != max(2, min(32, _old_float_round(wf, n) + 1)):
                differ.add((wf, n))
                assert new == 3, (wf, n)               # the tie 1.5 -> 2 (even), I = 3
    assert differ <= FLOAT_ULP_INIT_CASES
    for wb in range(4, 33):
        for wf in range(wb + 1):
            for n in range(1, 1025):
                if (wf, n) not in FLOAT_ULP_INIT_CASES:
                    assert init_bits(wf, wb, n) == _old_float_init_bits(wf, wb, n), (wf, wb, n)
                else:
                    assert init_bits(wf, wb, n) == 3


def test_classifier_exponent_integer_rule_against_the_old_float_formula_exhaustively():
    """Every valid classifier_bits and every neuron count 1..2**16."""
    differ = set()
    for k in (1, 2, 4, 8):
        for n in range(1, (1 << 16) + 1):
            if auto_classifier_exponent(k, n) != _old_float_exponent(k, n):
                differ.add((k, n))
    assert differ <= FLOAT_ULP_EXPONENT_CASES
    assert auto_classifier_exponent(1, 2) == 0


@pytest.mark.parametrize("fan_in,exact,rounded", [
    # weight_frac = 14; exact = 14 - log2(sqrt(fan_in)), fan_in an odd power of two: every tie
    (2, 13.5, 14), (8, 12.5, 12), (32, 11.5, 12), (128, 10.5, 10), (512, 9.5, 10),
    (2048, 8.5, 8), (8192, 7.5, 8), (32768, 6.5, 6), (1 << 17, 5.5, 6), (1 << 19, 4.5, 4),
    (1 << 21, 3.5, 4), (1 << 23, 2.5, 2), (1 << 25, 1.5, 2), (1 << 27, 0.5, 0),
    (1 << 29, -0.5, 0), (1 << 31, -1.5, -2),
])
def test_init_bits_ties_go_to_even(fan_in, exact, rounded):
    assert 14 - math.log2(fan_in) / 2 == exact
    assert rounded % 2 == 0 and abs(rounded - exact) == 0.5
    assert init_bits(14, 32, fan_in) == max(2, rounded + 1)
    assert init_bits(14, 32, fan_in + 1) == max(2, math.floor(exact) + 1)   # just past: down
    assert init_bits(14, 32, fan_in - 1) == max(2, math.ceil(exact) + 1)    # just before: up


@pytest.mark.parametrize("neurons,exact,rounded", [
    # classifier_bits = 1 (V = 1): E = log2(sqrt(neurons)); every tie is an odd power of two
    (2, 0.5, 0), (8, 1.5, 2), (32, 2.5, 2), (128, 3.5, 4), (512, 4.5, 4), (2048, 5.5, 6),
    (8192, 6.5, 6), (32768, 7.5, 8), (1 << 17, 8.5, 8), (1 << 19, 9.5, 10),
])
def test_classifier_exponent_ties_go_to_even(neurons, exact, rounded):
    assert math.log2(neurons) / 2 == exact
    assert rounded % 2 == 0 and abs(rounded - exact) == 0.5
    assert auto_classifier_exponent(1, neurons) == rounded


def test_classifier_exponent_has_no_ties_beyond_one_bit():
    """V = (4**k - 1) / 3 is odd and above 1 for k = 2, 4, 8, so V * N is never a power of two."""
    for k, v in ((2, 5), (4, 85), (8, 21845)):
        assert ((1 << 2 * k) - 1) // 3 == v
        for e in range(40):
            assert (1 << e) % v != 0


def test_derived_constants_of_the_document_example():
    """ARITHMETIC.md's worked example: configs/digits.toml (64-128-128, weight_frac 14, k = 4)."""
    cfg = make()
    # fan-in 64: 2**5 <= 64 < 2**7 -> a = 3, no tie, I = 14 - 3 + 1 = 12
    # fan-in 128 = 2**7 = 2**(2*4 - 1): a = 4, tie between 10 and 11 -> 10 (even), I = 11
    assert [cfg.init_bits(0), cfg.init_bits(1)] == [12, 11]
    # V * N = 85 * 128 = 10880, 2**13 <= 10880 < 2**15 -> E = 7 (both layers)
    assert [cfg.classifier_exponent(0), cfg.classifier_exponent(1)] == [7, 7]


def test_initial_weights_wider_than_the_init_chunk_are_refused():
    ok = make(weight_bits=24, weight_frac=18)        # fan-in 64: I = 18 - 3 + 1 = 16
    assert ok.init_bits(0) == INIT_CHUNK_BITS == 16
    with pytest.raises(ConfigError, match="'weight_frac'.*17 bits.*16-bit"):
        make(weight_bits=24, weight_frac=19)          # I = 17
    with pytest.raises(ConfigError, match="'weight_frac'.*layer 1"):
        make(arch=[4096, 2, 5], weight_bits=24, weight_frac=20)   # 4096: I = 15; 2: I = 21
    # weight_bits <= 16 clamps I to at most 16: never refused for this reason
    assert make(arch=[1, 128], weight_bits=16, weight_frac=16).init_bits(0) == 16   # 17 clamped


def test_keep_scale_is_rint_for_every_dropout():
    for dropout in range(256):
        d = 256 - dropout
        cfg = make(dropout=dropout)
        assert cfg.keep_scale() == int(np.rint(65536 / d)), dropout
        assert 2 * (65536 % d) != d                      # never a tie: the tie rule never acts
    assert make(dropout=255).keep_scale() == 1 << 16 and make().keep_scale() == 256


def test_softmax_table_is_the_exact_nearest_integer():
    """50-digit evaluation: every entry is the nearest integer to 2**(16 - u / 2**L), and no
    value lies within 2.8e-4 of a half-integer (so float64 cannot round it the wrong way)."""
    with localcontext() as ctx:
        ctx.prec = 50
        for lut_bits in range(1, 13):
            n = 1 << lut_bits
            for u, t in enumerate(softmax_table(lut_bits)):
                exact = Decimal(2) ** (Decimal(16) - Decimal(u) / n)
                assert abs(exact - t) < Decimal("0.5") - Decimal("2.8e-4"), (lut_bits, u)
    assert softmax_table(6)[0] == 1 << 16 and softmax_table(1) == [65536, 46341]


def test_ceil_log2_is_exact():
    for n in range(1, (1 << 16) + 1):
        assert ceil_log2(n) == math.ceil(math.log2(n))
    for e in range(1, 100):
        assert ceil_log2(1 << e) == e and ceil_log2((1 << e) + 1) == e + 1


def test_baud_is_the_links_and_changes_no_arithmetic(tmp_path):
    """``baud`` (a ``[link]`` section in the boards' configs) is the UART's rate: every derived
    constant, register value, build parameter and trained weight is the same at any baud."""
    from contract.limits import Limits
    from contract.registers import register_values
    from sw_model.golden import FixedPointNet
    p = tmp_path / "c.toml"
    p.write_text('[network]\narch = [64, 16]\nbatch = 4\n[link]\nbaud = 3000000\n')
    fast = load_config(p)
    slow = fast.replace(baud=115200)
    assert fast.baud == 3_000_000 and make().baud == 115200
    assert register_values(fast) == register_values(slow)
    assert Limits.for_config(fast) == Limits.for_config(slow)
    from hw.params import CoreParams
    assert CoreParams.from_config(fast) == CoreParams.from_config(slow)   # the same RTL build
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 256, size=(4, 64)), rng.integers(0, 10, size=4)
    nets = [FixedPointNet(cfg) for cfg in (fast, slow)]
    assert nets[0].train_batch(x, y) == nets[1].train_batch(x, y)
    assert nets[0].weight_hash() == nets[1].weight_hash()


@pytest.mark.parametrize("field,off,on", [("operand_stage", False, True),
                                           ("drain_row_stage", False, True),
                                           ("multiplier", "inferred", "ecp5")])
def test_stages_are_build_choices(tmp_path, field, off, on):
    """``operand_stage``, ``drain_row_stage`` and ``multiplier`` change the RTL build (the
    core's MAC array, its drain register) and nothing else: the same registers, limits and
    trained weights either way."""
    from contract.limits import Limits
    from contract.registers import register_values
    from hw.params import CoreParams
    from sw_model.golden import FixedPointNet
    p = tmp_path / "c.toml"
    p.write_text(f'[network]\narch = [64, 16]\nbatch = 4\n[array]\n{field} = '
                 f'{str(off).lower() if isinstance(off, bool) else repr(off)}\n')
    without = load_config(p)
    staged = without.replace(**{field: on})
    assert getattr(without, field) == off
    assert getattr(make(), field) == (on if field == "operand_stage" else off)   # the defaults
    assert register_values(without) == register_values(staged)
    assert Limits.for_config(without) == Limits.for_config(staged)
    assert getattr(CoreParams.from_config(without), field) == off
    assert getattr(CoreParams.from_config(staged), field) == on
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 256, size=(4, 64)), rng.integers(0, 10, size=4)
    nets = [FixedPointNet(cfg) for cfg in (without, staged)]
    assert nets[0].train_batch(x, y) == nets[1].train_batch(x, y)
    assert nets[0].weight_hash() == nets[1].weight_hash()
