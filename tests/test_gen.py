import subprocess
import os

import pytest

from gen.units import UNITS
from gen.verilog import verilator_waiver_args
from sim.verilator_env import find_verilator, verilator_env
from lela.cli import main

CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "digits.toml")


def test_verilog_is_byte_identical_and_has_no_paths(tmp_path, capsys):
    every = [arg for unit in UNITS for arg in ("--unit", unit)]
    assert main(["verilog", "--config", CONFIG, *every, "-o", str(tmp_path / "a")]) == 0
    assert main(["verilog", "--config", CONFIG, *every, "-o", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    for unit in UNITS:
        a = (tmp_path / "a" / f"lela_{unit}.v").read_bytes()
        assert a == (tmp_path / "b" / f"lela_{unit}.v").read_bytes()
        assert b"/work" not in a and b"/tmp" not in a and b"src =" not in a


@pytest.mark.parametrize("unit", list(UNITS))
def test_verilog_lints_clean_with_the_waiver_list(tmp_path, capsys, unit):
    assert main(["verilog", "--config", CONFIG, "--unit", unit, "-o", str(tmp_path)]) == 0
    capsys.readouterr()
    env = verilator_env()
    verilator = find_verilator(env)
    p = subprocess.run([verilator, "--lint-only", "-Wall", *verilator_waiver_args(),
                        str(tmp_path / f"lela_{unit}.v")], capture_output=True, text=True,
                       env=env)
    assert p.returncode == 0, p.stderr


# make regress: the whole-core harness (HARDWARE holds a store) builds it with warnings fatal.
@pytest.mark.slow
def test_resident_accelerator_lints_clean(tmp_path, capsys):
    """configs/ulx3s.toml builds the resident store, its shuffler and epoch loop (digits.toml
    does not): they lint as clean."""
    ulx3s = os.path.join(os.path.dirname(__file__), "..", "configs", "ulx3s.toml")
    assert main(["verilog", "--config", ulx3s, "-o", str(tmp_path)]) == 0
    capsys.readouterr()
    text = (tmp_path / "lela_accelerator.v").read_text()
    assert "resident" in text and "shuffler" in text
    env = verilator_env()
    p = subprocess.run([find_verilator(env), "--lint-only", "-Wall", *verilator_waiver_args(),
                        str(tmp_path / "lela_accelerator.v")], capture_output=True, text=True,
                       env=env)
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("body,field", [
    ("arch = [64, 0]\n", "arch"),
    ("arch = [64, 32]\nlfsr_width = 70\n", "lfsr_width"),
    ("arch = [64, 32]\nerror_bits = 8\n", "error_bits"),
    ("arch = [64, 32]\nloss = \"softmax-ce\"\n", "loss"),
    ("arch = [64, 32]\narray_rows = -1\n", "array_rows"),
    ("arch = [64, 32]\narray_rows = 3\n", "array_rows"),
])
def test_bad_configs_are_refused_before_elaboration(tmp_path, capsys, body, field):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    assert main(["verilog", "--config", str(path), "-o", str(tmp_path / "v")]) == 1
    err = capsys.readouterr().err
    assert f"'{field}'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "v").exists()


def test_register_map_with_the_accelerator(tmp_path, capsys):
    import json
    from contract.registers import register_index
    from contract.config import load_config
    assert main(["verilog", "--config", CONFIG, "-o", str(tmp_path)]) == 0
    capsys.readouterr()
    regmap = json.loads((tmp_path / "lela_registers.json").read_text())
    cfg = load_config(CONFIG)
    regs = {r["name"]: r for r in regmap["registers"]}
    assert regs["layer1_fan_in"]["value"] == 128
    assert regs["layer0_update_shift"]["index"] == register_index("update_shift", 0)
    assert regs["layer0_update_shift"]["value"] == cfg.update_shift(0)
    header = (tmp_path / "lela_registers.h").read_text()
    assert "#define LELA_CMD_TRAIN 0x07" in header
    assert "#define LELA_FRAME_OVERHEAD 6" in header and regmap["frame"]["overhead"] == 6
    assert f"#define LELA_REG_LAYER0_FORWARD_SHIFT_VALUE {cfg.forward_shift(0)}u" in header
