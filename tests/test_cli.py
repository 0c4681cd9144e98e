import json
import os
import subprocess
import sys

import pytest

from lela.cli import main

QUICK = ["--arch", "64-24-16", "--train-limit", "300", "--quiet"]


def run_cli(args, capsys):
    """``(exit status, stdout, stderr)`` of ``lela args`` (argparse's own exits included)."""
    try:
        code = main(args)
    except SystemExit as e:            # argparse
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("args,message", [
    (["train", "--dataset", "cifar"], "invalid choice: 'cifar'"),
    (["train", "--arch", "64-x"], "not a dash-separated list"),
    (["train", "--arch", "64"], "at least one"),
    (["train", "--epochs", "0"], "must be positive"),
    (["train", "--batch", "-4"], "must be positive"),
    (["train", "--lr", "abc"], "not a number"),
    (["train", "--dropout", "1.5"], "must be in [0, 1)"),
    (["train", "--backend", "serial"], "needs --port"),
    (["train", "--backend", "serial", "--port", "/dev/ttyNOPE", "--epochs", "1"],
     "cannot open serial port /dev/ttyNOPE"),
    (["train", "--arch", "100-20"], "has 64 features"),
    (["train", "--lr", "0.003"], "not a power of two"),
    (["train", "--algo", "bp"], "float only"),
    (["train", "--loss", "hinge"], "invalid choice"),
    (["train", "--dataset", "mnist"], "--data-dir"),
    (["train", "--dataset", "fashion-mnist", "--data-dir", "/nonexistent"], "does not exist"),
    (["train", "--config", "/nonexistent.toml"], "no such config"),
    (["train", "--holdout", "5000"], "hold-out of 5000"),
    (["train", "--batch", "5000"], "'batch'"),
    (["train", "--resume", "/nonexistent-run"], "no checkpoint.pkl"),
    ([], "required"),
])
def test_user_errors_are_one_line(args, message, capsys, tmp_path):
    try:
        code, out, err = run_cli(args + ["--out", str(tmp_path / "o")] if args else args, capsys)
    except SystemExit as e:            # argparse
        code = e.code
        out, err = capsys.readouterr()
    assert code != 0
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("lela: error: ")
    assert message in lines[0]


def test_bad_config_value_is_named(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("arch = [64, 32]\nlfsr_width = 70\n")
    code, _, err = run_cli(["train", "--config", str(cfg), "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and "'lfsr_width'" in err and len(err.strip().splitlines()) == 1


def test_corrupt_checkpoint(tmp_path, capsys):
    (tmp_path / "checkpoint.pkl").write_bytes(b"garbage")
    code, _, err = run_cli(["train", "--resume", str(tmp_path)], capsys)
    assert code == 1 and "unreadable checkpoint" in err


def test_no_traceback_from_the_installed_command(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "lela")
    p = subprocess.run([exe, "train", "--dataset", "mnist", "--data-dir", str(tmp_path)],
                       capture_output=True, text=True)
    assert p.returncode == 1
    assert "Traceback" not in p.stderr
    assert p.stderr.startswith("lela: error: ")


@pytest.mark.parametrize("precision,algo,loss", [
    ("fixed", "lel", "square-hinge"), ("fixed", "lel-sign", "softmax-ce"),
    ("float", "lel", "square-hinge"), ("float", "bp", "softmax-ce")])
def test_resume_equals_uninterrupted(tmp_path, capsys, precision, algo, loss):
    common = ["train", "--precision", precision, "--algo", algo, "--seed", "3",
              "--loss", loss] + QUICK
    if precision == "fixed":
        common += ["--dropout", "0.1"]
    assert main(common + ["--epochs", "3", "--out", str(tmp_path / "full")]) == 0
    assert main(common + ["--epochs", "1", "--out", str(tmp_path / "part")]) == 0
    assert main(["train", "--resume", str(tmp_path / "part"), "--epochs", "3", "--quiet"]) == 0
    capsys.readouterr()
    full = json.loads((tmp_path / "full" / "results.json").read_text())
    part = json.loads((tmp_path / "part" / "results.json").read_text())
    assert full["test_error_per_epoch"] == part["test_error_per_epoch"]
    assert full["train_error_per_epoch"] == part["train_error_per_epoch"]
    assert full.get("weight_hash") == part.get("weight_hash")
    assert part["epochs"] == 3 and part["args"]["epochs"] == 3
    for name in ("results.json", "curves.png", "checkpoint.pkl"):
        assert (tmp_path / "part" / name).exists()


def test_results_contents(tmp_path, capsys):
    assert main(["train", "--epochs", "2", "--out", str(tmp_path)] + QUICK) == 0
    out, _ = capsys.readouterr()
    assert "epoch   2/2  test error per layer:" in out
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["args"]["arch"] == [64, 24, 16]
    assert len(res["test_error_per_epoch"]) == 2 and len(res["test_error_per_epoch"][0]) == 2
    assert 0 < res["test_accuracy"] <= 1 and res["samples_per_second"] > 0
    assert res["test_accuracy"] == pytest.approx(1 - res["test_error_per_epoch"][-1][-1])
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert len(res["weight_hash"]) == 64


def test_help_explains(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for word in ("--dataset", "--arch", "--algo", "--precision", "--resume", "fashion-mnist"):
        assert word in out
