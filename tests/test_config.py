import pytest

from contract.config import ConfigError, NetConfig, load_config


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
    (dict(act_bits="8"), "act_bits"),
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
    # E = round(log2(sqrt((16**2 - 1) / 3) * sqrt(N))): sqrt(85) = 9.22; N=1000 -> 291.5 -> 8.19
    assert [cfg.classifier_exponent(0), cfg.classifier_exponent(1)] == [8, 7]
    assert cfg.score_shift(0) == 8 + 7 - 10 and cfg.delta_shift(1) == 7 + 10 - 14
    assert cfg.forward_shift(0) == 14 + 8 - 7 and cfg.forward_shift(1) == 14
    assert cfg.update_shift(0) == 14 + 8 + 7 - 14 and cfg.update_shift(1) == 14 + 7 + 7 - 14
    assert cfg.bias_update_shift() == 7
    # I = round(14 - log2(sqrt(784))) + 1 = round(14 - 4.807) + 1 = 10; 1000: round(9.02)+1 = 10
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
