"""``lela train --arch`` with convolutional networks (the golden model, the float references and
the RTL core; not on a board yet)."""

import json

import pytest

from lela.cli import main
from tests.test_cli import run_cli

ARCH = "1x8x8-c4k3-p2-f32"
QUICK = ["--train-limit", "300", "--quiet"]


def test_one_epoch_on_digits(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run_cli(["train", "--arch", ARCH, "--precision", "float", "--epochs",
                                 "1", "--quiet", "--out", str(out)], capsys)
    assert code == 0, err
    assert "final test accuracy per layer:" in stdout
    res = json.loads((out / "results.json").read_text())
    assert res["status"] == "complete" and res["epochs"] == 1
    assert res["args"]["arch"] == ARCH
    assert res["config"]["arch"] == [64, 4 * 4 * 4, 32]
    errors = res["test_error_per_epoch"]
    assert len(errors) == 1 and len(errors[0]) == 2          # the convolution and f32
    assert all(0 <= e <= 1 for e in errors[0])
    assert len(res["train_error_per_epoch"][0]) == 2
    assert res["samples_per_second"] > 0
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("precision,algo,dtype", [("float", "lel", "float64"),
                                                   ("float", "bp", "float32"),
                                                   ("fixed", "lel-sign", "float64")])
def test_resume_equals_uninterrupted(tmp_path, capsys, precision, algo, dtype):
    common = ["train", "--precision", precision, "--algo", algo, "--seed", "3", "--arch", ARCH,
              "--float-dtype", dtype] + QUICK
    if precision == "fixed":
        common += ["--dropout", "0.2"]
    assert main(common + ["--epochs", "3", "--out", str(tmp_path / "full")]) == 0
    assert main(common + ["--epochs", "1", "--out", str(tmp_path / "part")]) == 0
    # The same network spelt otherwise ('s' padding, a bare size) is the run's own.
    assert main(["train", "--resume", str(tmp_path / "part"), "--epochs", "3", "--quiet",
                 "--arch", "1x8x8-c4k3s-p2-32"]) == 0
    capsys.readouterr()
    full = json.loads((tmp_path / "full" / "results.json").read_text())
    part = json.loads((tmp_path / "part" / "results.json").read_text())
    assert full["test_error_per_epoch"] == part["test_error_per_epoch"]
    assert full["train_error_per_epoch"] == part["train_error_per_epoch"]
    assert part["epochs"] == 3 and part["args"] == full["args"]
    assert part["args"]["arch"] == ARCH
    assert full.get("weight_hash") == part.get("weight_hash")
    if precision == "fixed":
        assert len(full["weight_hash"]) == 64


def test_resume_refuses_another_network(tmp_path, capsys):
    assert main(["train", "--precision", "float", "--arch", ARCH, "--epochs", "1",
                 "--out", str(tmp_path)] + QUICK) == 0
    code, _, err = run_cli(["train", "--resume", str(tmp_path), "--arch", "1x8x8-c8k3-p2-f32"],
                           capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "contradict" in lines[0]
    assert f"--arch 1x8x8-c8k3-p2-f32 (the checkpoint has {ARCH})" in lines[0]


@pytest.mark.parametrize("args,message", [
    (["--arch", ARCH, "--backend", "serial", "--port", "/dev/ttyNOPE"],
     "no board's build runs them yet"),
    (["--arch", ARCH, "--precision", "float", "--batch-norm"], "--batch-norm"),
    (["--arch", "1x8x8-c4k4", "--precision", "float"], "'same' padding needs an odd kernel"),
    (["--arch", "1x7x7-c4k3-p2", "--precision", "float"], "does not divide into 2 x 2"),
    (["--arch", "1x8x8-f32-c4k3", "--precision", "float"], "comes before every fully"),
    (["--arch", "1x10x10-c4k3-p2", "--precision", "float"], "100 values but digits has 64"),
    (["--arch", "2x8x8-c4k3-p2", "--precision", "float"], "128 values but digits has 64"),
    (["--arch", "1x8x8-c4k3-q2", "--precision", "float"], "not a layer"),
    (["--arch", "64-x"], "not a dash-separated list"),
])
def test_refusals_are_one_line(args, message, tmp_path, capsys):
    code, _, err = run_cli(["train", "--epochs", "1", "--out", str(tmp_path / "o")] + args,
                           capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1, err
    assert lines[0].startswith("lela: error: ") and message in lines[0]
    assert not (tmp_path / "o").exists()


def test_fully_connected_runs_keep_their_sizes(tmp_path, capsys):
    assert main(["train", "--precision", "float", "--arch", "64-f24", "--epochs", "1",
                 "--out", str(tmp_path)] + QUICK) == 0
    capsys.readouterr()
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["args"]["arch"] == [64, 24]


def test_fixed_point_conv_is_the_golden_model(tmp_path, capsys):
    """--precision fixed trains sw_model.golden_conv.FixedPointConvNet: its weight hash after one
    epoch is the model's own, trained on the same mini-batches."""
    import numpy as np
    from contract.architecture import parse_arch
    from lela.train import RunSpec, net_config
    from sw_model.data import load_dataset
    from sw_model.golden_conv import FixedPointConvNet
    assert main(["train", "--arch", ARCH, "--epochs", "1", "--out", str(tmp_path)] + QUICK) == 0
    capsys.readouterr()
    res = json.loads((tmp_path / "results.json").read_text())
    data = load_dataset("digits")
    spec = RunSpec(arch=ARCH, epochs=1, train_limit=300)
    cfg = net_config(spec, data.features, data.classes)
    net = FixedPointConvNet(cfg, parse_arch(ARCH))
    x, y = data.x_train[:300], data.y_train[:300]          # --train-limit: the first 300
    order = np.random.default_rng([cfg.seed, 0]).permutation(len(x))   # lela train's order
    for k in range(0, len(order), cfg.batch):
        net.train_batch(x[order[k:k + cfg.batch]], y[order[k:k + cfg.batch]])
    assert res["weight_hash"] == net.weight_hash()


# make regress: it builds its own core with convolutions (about a minute); tests/test_conv_core.py
# trains convolutions on the whole accelerator under make test.
@pytest.mark.slow
def test_rtl_backend_trains_a_convolution_bit_exactly(tmp_path, capsys):
    """``--backend rtl`` with a convolutional ``--arch`` builds a core with convolutions and
    trains on it, every mini-batch checked against the golden model, the weights at the end."""
    out = tmp_path / "run"
    code, stdout, err = run_cli(["train", "--backend", "rtl", "--arch", ARCH, "--epochs", "1",
                                 "--train-limit", "96", "--quiet", "--out", str(out)], capsys)
    assert code == 0, err
    assert "final weights: accelerator" in stdout and ": equal" in stdout
    res = json.loads((out / "results.json").read_text())
    assert res["status"] == "complete" and res["config"]["conv"] is True
    assert res["args"]["arch"] == ARCH
