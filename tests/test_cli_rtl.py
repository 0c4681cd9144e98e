"""`lela train --backend rtl`: the main job on the simulated accelerator, end to end."""

import json

import pytest

from lela.cli import main
from tests.accelerator_checks import small_config

pytestmark = pytest.mark.xdist_group("cli-rtl")

@pytest.fixture
def config(tmp_path):
    """A small accelerator (4 x 4 array, batch 8), so that the build and two epochs stay short."""
    return small_config(tmp_path / "small.toml", 'dropout = 16\nfeedback = "sign"\n')


def test_rtl_run_is_bit_exact_and_resumes(tmp_path, config, capsys):
    common = ["train", "--backend", "rtl", "--config", config, "--dataset", "digits",
              "--train-limit", "120", "--quiet"]
    assert main(common + ["--epochs", "2", "--out", str(tmp_path / "full")]) == 0
    out = capsys.readouterr().out
    assert "golden model" in out and ": equal" in out
    full = json.loads((tmp_path / "full" / "results.json").read_text())
    assert full["backend"] == "rtl" and full["bit_exact"]
    assert full["weight_hash"] == full["golden_weight_hash"]
    counters = full["counters"]
    assert counters["train_cycles"] > 0 and counters["mac_busy_cycles"] > 0
    assert counters["correct_0"] + counters["correct_1"] > 0
    # Resuming restores the device's weights and its rounding and dropout streams.
    assert main(common + ["--epochs", "1", "--out", str(tmp_path / "part")]) == 0
    assert main(["train", "--resume", str(tmp_path / "part"), "--epochs", "2", "--quiet"]) == 0
    capsys.readouterr()
    part = json.loads((tmp_path / "part" / "results.json").read_text())
    assert part["test_error_per_epoch"] == full["test_error_per_epoch"]
    assert part["weight_hash"] == full["weight_hash"]


def test_rtl_backend_refuses_float(capsys):
    assert main(["train", "--backend", "rtl", "--precision", "float"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lela: error: ") and "--backend rtl" in err


# make regress: the whole-core batch-norm tests (tests/test_accelerator_batch_norm.py) run in
# make test; this adds the CLI and resume around the same core, with a build of its own.
@pytest.mark.slow
def test_rtl_batch_norm_run_is_bit_exact_and_resumes(tmp_path, capsys):
    """A batch-normalised network on the simulated core: every mini-batch's counts, and the
    weights, scales and running statistics at every check, equal the golden model's; a resumed
    run restores the device's scales and statistics and ends where the full run ends."""
    config = small_config(tmp_path / "bn.toml", "batch_norm = true\n")
    common = ["train", "--backend", "rtl", "--config", config, "--dataset", "digits",
              "--train-limit", "96", "--quiet"]
    assert main(common + ["--epochs", "2", "--out", str(tmp_path / "full")]) == 0
    full = json.loads((tmp_path / "full" / "results.json").read_text())
    assert full["bit_exact"] and full["config"]["batch_norm"]
    assert main(common + ["--epochs", "1", "--out", str(tmp_path / "part")]) == 0
    assert main(["train", "--resume", str(tmp_path / "part"), "--epochs", "2", "--quiet"]) == 0
    capsys.readouterr()
    part = json.loads((tmp_path / "part" / "results.json").read_text())
    assert part["test_error_per_epoch"] == full["test_error_per_epoch"]
    assert part["weight_hash"] == full["weight_hash"]
