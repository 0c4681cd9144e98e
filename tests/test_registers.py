"""contract/registers.py: the register values a network needs, and what has no register."""

import pytest

from contract.registers import LAYER, register_index, register_values, weight_bases
from contract.config import ConfigError, NetConfig


def test_values_follow_the_config():
    cfg = NetConfig(arch=(13, 11, 7), classes=4, batch=8, array_rows=4, array_cols=4,
                    feedback="sign", dropout=64)
    values = register_values(cfg)
    bases, words = weight_bases(cfg)
    assert bases == [0, 3 * 14] and words == 3 * 14 + 2 * 12
    assert values[register_index("weight_base", 1)] == 42
    assert values[register_index("tiles", 0)] == 3
    assert values[register_index("in_tiles", 1)] == 3
    assert values[register_index("feedback")] == 1
    assert values[register_index("update_shift", 0)] == cfg.update_shift(0)
    assert max(LAYER.values()) < 16


def test_a_loss_without_register_is_refused():
    with pytest.raises(ConfigError, match="'loss'"):
        register_values(NetConfig(arch=(8, 4), loss="softmax-ce"))
