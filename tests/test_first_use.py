"""What a new user trips over first (issue 13): every mistake is one line naming the problem, a
non-zero exit and no traceback, found before any work starts; nothing is lost or overwritten."""

import json
import os
import pickle
import tempfile

import numpy as np
import pytest

from lela.cli import main
from tests.test_data import idx_bytes, write_set

QUICK = ["--arch", "64-24-16", "--train-limit", "300", "--quiet"]


def _run(tmp_path):
    """A finished one-epoch run in tmp_path/run; returns its directory."""
    out = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--out", str(out), "--seed", "2"] + QUICK) == 0
    return out


def _write(path, data):
    path.write_bytes(data)
    return str(path)


def _corrupt_gzip(tmp_path):
    write_set(tmp_path, gz=True)
    gz = (tmp_path / "train-images-idx3-ubyte.gz").read_bytes()
    # Garbage in the deflate stream itself: zlib.error, not gzip's own OSError.
    _write(tmp_path / "train-images-idx3-ubyte.gz", gz[:10] + b"\xff" * 40 + gz[50:])
    return ["--dataset", "mnist", "--data-dir", str(tmp_path)]


def _empty_idx(tmp_path):
    def empty(files):
        files["t10k-images-idx3-ubyte"] = idx_bytes(np.zeros((0, 28, 28), np.uint8))
        files["t10k-labels-idx1-ubyte"] = idx_bytes(np.zeros(0, np.uint8))
    write_set(tmp_path, corrupt=empty)
    return ["--dataset", "mnist", "--data-dir", str(tmp_path)]


def _binary_config(tmp_path):
    return ["--config", _write(tmp_path / "c.toml", bytes(range(256)) * 4)]


def _checkpoint(tmp_path, change):
    out = _run(tmp_path)
    with open(out / "checkpoint.pkl", "rb") as f:
        ck = pickle.load(f)
    change(ck)
    (out / "checkpoint.pkl").write_bytes(pickle.dumps(ck))
    return ["--resume", str(out)]


def _verilog(tmp_path, toml):
    return ["verilog", "--config", _write(tmp_path / "c.toml", toml.encode()),
            "-o", str(tmp_path / "v")]


#: (name, command line (a list, or a function of tmp_path giving one), part of the one line).
#: "train" cases get "--out tmp_path/o" unless they name --out or --resume.
CASES = [
    ("lr inf", ["--lr", "inf"], "--lr: inf must be a finite positive number"),
    ("lr nan", ["--lr", "nan"], "--lr: nan must be a finite positive number"),
    ("lr zero", ["--lr", "0"], "--lr: 0 must be a finite positive number"),
    ("lr negative", ["--lr=-0.5"], "--lr: -0.5 must be a finite positive number"),
    ("lr inf float", ["--lr", "inf", "--precision", "float"], "finite positive"),
    ("out is a file", lambda p: ["--out", _write(p / "f", b"x")], "is a file, not a directory"),
    ("out under a file", lambda p: ["--out", os.path.join(_write(p / "f", b"x"), "d")],
     "is a file, not a directory"),
    ("out holds a run", lambda p: ["--out", str(_run(p))] + QUICK, "holds a run already"),
    ("resume contradicted", lambda p: ["--resume", str(_run(p)), "--arch", "64-10", "--lr",
                                       "0.5", "--dataset", "fashion-mnist", "--out", str(p)],
     "contradict its checkpoint: --dataset fashion-mnist (the checkpoint has digits); --arch "
     "64-10 (the checkpoint has 64-24-16); --lr 0.5 (the checkpoint has 0.00390625); --out"),
    ("checkpoint without a key", lambda p: _checkpoint(p, lambda ck: ck.pop("model")),
     "incomplete checkpoint (no 'model')"),
    ("checkpoint with a foreign setting",
     lambda p: _checkpoint(p, lambda ck: ck["spec"].update(colour="red")),
     "unknown run settings colour"),
    ("checkpoint model of another shape",
     lambda p: _checkpoint(p, lambda ck: ck["model"].pop("weights")), "its model does not fit"),
    ("corrupt gzip", _corrupt_gzip, "train-images-idx3-ubyte.gz: corrupt gzip data"),
    ("no samples", _empty_idx, "t10k-images-idx3-ubyte: holds no samples"),
    ("config is a directory", lambda p: ["--config", str(p)], "is a directory, not a config"),
    ("config is binary", _binary_config, "not a text file"),
    ("model too big", ["--arch", "64-100000000"], "the model needs about"),
    ("verilog too wide a layer", lambda p: _verilog(p, "arch = [64, 100000]\n"),
     "more than the 16 Mibit lela generates"),
    ("verilog too many inputs", lambda p: _verilog(p, "arch = [5000, 10]\n"),
     "at most 4093 pixels"),
    ("verilog config is a directory", lambda p: ["verilog", "--config", str(p)],
     "is a directory"),
]


def _argv(args, tmp_path):
    argv = args(tmp_path) if callable(args) else list(args)
    if argv[0] not in ("verilog", "bitstream", "program"):
        if "--out" not in argv and "--resume" not in argv:
            argv += ["--out", str(tmp_path / "o")]
        argv = ["train"] + argv
    return argv


def _one_line_error(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as e:                      # argparse
        code = e.code
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1, err
    assert lines[0].startswith("lela: error: ") and "Traceback" not in err
    return out, lines[0]


def _snapshot(root):
    """Every file under ``root`` with its bytes."""
    found = {}
    for path, _, names in os.walk(root):
        for name in names:
            found[os.path.join(path, name)] = open(os.path.join(path, name), "rb").read()
    return found


@pytest.mark.parametrize("name,args,message", CASES, ids=[c[0] for c in CASES])
def test_every_mistake_is_one_line_before_any_work(name, args, message, tmp_path, capsys):
    argv = _argv(args, tmp_path)
    capsys.readouterr()
    before = _snapshot(tmp_path)
    out, line = _one_line_error(argv, capsys)
    assert message in line
    assert "epoch" not in out                    # refused before training
    assert _snapshot(tmp_path) == before         # nothing written, lost or overwritten


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory this process cannot write: chmod for a user, /sys for root (whom the mode
    does not stop)."""
    if os.geteuid() != 0:
        path = tmp_path / "ro"
        path.mkdir()
        path.chmod(0o555)
        yield str(path)
        path.chmod(0o755)
        return
    try:
        tempfile.TemporaryFile(dir="/sys").close()
    except OSError:
        yield "/sys"
    else:
        pytest.skip("no directory here that root cannot write")


@pytest.mark.parametrize("below", ["", "new/run"])
def test_read_only_out_is_refused_before_training(read_only_dir, below, capsys):
    out, line = _one_line_error(["train", "--out", os.path.join(read_only_dir, below)] + QUICK,
                                capsys)
    assert "cannot write in" in line and "epoch" not in out


def test_bitstream_runs_the_checks_of_verilog_before_any_tool(tmp_path, capsys, monkeypatch):
    import gen.bitstream

    def no_tools(*args, **kwargs):
        raise AssertionError("a tool ran before the config was checked")
    monkeypatch.setattr(gen.bitstream, "tool_env", no_tools)
    monkeypatch.setattr(gen.bitstream, "_builtin_yosys", no_tools)
    cfg = tmp_path / "softmax.toml"
    cfg.write_text('arch = [64, 32]\nloss = "softmax-ce"\n')
    lines = []
    for command in ("verilog", "bitstream"):
        argv = [command, "--config", str(cfg), "-o", str(tmp_path / command)]
        if command == "bitstream":
            argv += ["--board", "icebreaker"]
        lines.append(_one_line_error(argv, capsys)[1])
        assert not (tmp_path / command).exists()
    assert lines[0] == lines[1] and "square-hinge only" in lines[0]


@pytest.mark.parametrize("board,baud,message", [
    ("ulx3s", 2_500_000, "the FT231X makes"),          # no rate of the bridge's
    ("ulx3s", 6_000_000, "beyond the FT231X"),
    ("icebreaker", 12_000_000, "needs a faster clock"),
])
def test_a_baud_rate_the_board_cannot_make_is_one_line_before_any_tool(tmp_path, capsys,
                                                                      monkeypatch, board,
                                                                      baud, message):
    import gen.bitstream

    def no_tools(*args, **kwargs):
        raise AssertionError("a tool ran before the baud rate was checked")
    monkeypatch.setattr(gen.bitstream, "tool_env", no_tools)
    monkeypatch.setattr(gen.bitstream, "_builtin_yosys", no_tools)
    cfg = tmp_path / "fast.toml"
    cfg.write_text(f"[network]\narch = [64, 32]\n[link]\nbaud = {baud}\n")
    _, line = _one_line_error(["bitstream", "--board", board, "--config", str(cfg), "-o",
                               str(tmp_path / "out")], capsys)
    assert "field 'baud'" in line and message in line
    assert not (tmp_path / "out").exists()


def test_a_board_that_never_answers_is_one_line_naming_the_port(tmp_path, capsys,
                                                                  monkeypatch):
    import host.serial_transport
    real = host.serial_transport.SerialTransport.__init__

    def fast(self, port, baud=115200, timeout=2.0, quiet=None):
        real(self, port, baud, timeout=0.05, quiet=0.01)     # the 9 s of a real port, shorter
    monkeypatch.setattr(host.serial_transport.SerialTransport, "__init__", fast)
    master, slave = os.openpty()                             # a port nobody answers on
    port = os.ttyname(slave)
    try:
        out, line = _one_line_error(["train", "--backend", "serial", "--port", port, "--out",
                                     str(tmp_path / "o")] + QUICK, capsys)
    finally:
        os.close(master)
        os.close(slave)
    assert f"the board on {port} does not answer" in line
    assert not (tmp_path / "o").exists()


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("config,baud,used", [
    (None, None, 115200),                                   # no config: NetConfig's default
    ("ulx3s.toml", None, 3_000_000),                        # the board config's [link] baud
    ("icebreaker.toml", 921_600, 921_600),                  # --baud overrides it
])
def test_the_serial_backend_talks_at_the_configs_baud_unless_told(tmp_path, capsys,
                                                                  monkeypatch, config, baud,
                                                                  used):
    import host.serial_transport
    real = host.serial_transport.SerialTransport.__init__
    opened = []

    def fast(self, port, baud=115200, timeout=None, quiet=None):
        opened.append(baud)
        real(self, port, baud, timeout=0.05, quiet=0.01)
    monkeypatch.setattr(host.serial_transport.SerialTransport, "__init__", fast)
    master, slave = os.openpty()
    port = os.ttyname(slave)
    argv = ["train", "--backend", "serial", "--port", port, "--out", str(tmp_path / "o")]
    argv += ["--config", os.path.join(ROOT, "configs", config)] if config else []
    argv += ["--baud", str(baud)] if baud else []
    try:
        _, line = _one_line_error(argv + QUICK, capsys)
    finally:
        os.close(master)
        os.close(slave)
    assert opened == [used]
    assert f"its UART at --baud {used} " in line


def test_a_run_records_the_baud_it_used_and_a_resume_may_change_it(tmp_path, capsys):
    out = tmp_path / "run"
    config = os.path.join(ROOT, "configs", "icebreaker.toml")
    assert main(["train", "--epochs", "1", "--out", str(out), "--config", config] + QUICK) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["args"]["baud"] == res["config"]["baud"] == 3_000_000
    assert main(["train", "--resume", str(out), "--epochs", "2", "--baud", "115200",
                 "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["args"]["baud"] == res["config"]["baud"] == 115200 and res["epochs"] == 2
    capsys.readouterr()


def test_the_memory_a_model_needs_is_checked_against_what_is_available(tmp_path, capsys,
                                                                       monkeypatch):
    import lela.checks
    from contract.config import NetConfig
    need, weights = lela.checks.model_bytes(NetConfig(arch=(64, 128, 128)))
    assert weights == 65 * 128 + 129 * 128
    monkeypatch.setattr(lela.checks, "available_memory", lambda: need - 1)
    _, line = _one_line_error(["train", "--out", str(tmp_path / "o")], capsys)
    assert "--arch 64-128-128: the model needs about" in line and "available" in line
    monkeypatch.setattr(lela.checks, "available_memory", lambda: need)
    assert main(["train", "--epochs", "1", "--out", str(tmp_path / "o"), "--quiet"]) == 0
    capsys.readouterr()


def test_top_level_help_names_what_exists(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "later release" not in out
    for command in ("train", "verilog", "bitstream", "program"):
        assert f"    {command}" in out
    assert "RTL" in out and "bitstreams" in out


def test_force_replaces_a_run(tmp_path, capsys):
    out = _run(tmp_path)
    assert main(["train", "--epochs", "1", "--out", str(out), "--force", "--seed", "5"] +
                QUICK) == 0
    capsys.readouterr()
    assert json.loads((out / "results.json").read_text())["args"]["seed"] == 5


def test_resume_accepts_what_agrees_with_its_checkpoint(tmp_path, capsys):
    out = _run(tmp_path)
    assert main(["train", "--resume", str(out), "--epochs", "2", "--arch", "64-24-16", "--lr",
                 "0.00390625", "--seed", "2", "--out", str(out) + "/", "--quiet"]) == 0
    capsys.readouterr()
    assert json.loads((out / "results.json").read_text())["epochs"] == 2


def test_default_learning_rates_come_from_the_tuning(tmp_path, capsys):
    from lela.train import DATASET_LR, DEFAULT_LR
    assert DEFAULT_LR == {
        ("float", "bp"): 2 ** -8, ("float", "fa"): 2 ** -10, ("float", "lel"): 2 ** -8,
        ("float", "lel-sign"): 2 ** -8, ("float", "lel-train"): 2 ** -8,
        ("fixed", "lel"): 2 ** -8, ("fixed", "lel-sign"): 2 ** -8}
    assert DATASET_LR == {("digits", "float", "fa"): 2 ** -7}
    for precision, algo, want in (("fixed", "lel", 2 ** -8), ("float", "bp", 2 ** -8),
                                  ("float", "fa", 2 ** -7)):
        out = tmp_path / f"{precision}-{algo}"
        assert main(["train", "--precision", precision, "--algo", algo, "--epochs", "1",
                     "--out", str(out)] + QUICK) == 0
        res = json.loads((out / "results.json").read_text())
        assert res["lr"] == want and res["args"]["lr"] == want
    capsys.readouterr()


def test_a_format_1_checkpoint_resumes_at_the_old_default(tmp_path, capsys):
    """Before issue 13 a checkpoint recorded lr 0 for the default, then 2**-7 everywhere."""
    full, part = tmp_path / "full", tmp_path / "part"
    common = ["train", "--lr", "0.0078125"] + QUICK
    assert main(common + ["--epochs", "2", "--out", str(full)]) == 0
    assert main(common + ["--epochs", "1", "--out", str(part)]) == 0
    ck = pickle.loads((part / "checkpoint.pkl").read_bytes())
    ck["format"] = 1
    ck["spec"].update(lr=0.0, batch=None, seed=None, loss=None, rounding=None, dropout=None)
    (part / "checkpoint.pkl").write_bytes(pickle.dumps(ck))
    assert main(["train", "--resume", str(part), "--epochs", "2", "--quiet"]) == 0
    capsys.readouterr()
    a, b = (json.loads((d / "results.json").read_text()) for d in (full, part))
    assert a["weight_hash"] == b["weight_hash"] and b["lr"] == 2 ** -7
