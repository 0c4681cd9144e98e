"""Divergence detection (lela.divergence), Ctrl-C and interrupted writes (issue 13)."""

import json
import os
import pickle

import numpy as np
import pytest

import lela.files
import lela.train
from contract.config import NetConfig
from lela.cli import main
from lela.divergence import diagnose
from lela.files import atomic_write
from sw_model.data import load_dataset
from sw_model.float_ref import FloatNet
from sw_model.golden import FixedPointNet

CFG = NetConfig(arch=(64, 32, 24), classes=10)
PROBE = load_dataset("digits").x_test[:256]
HEALTHY = ([0.2, 0.3], [0.15, 0.2])            # test error, class share: a learning network
AT_CHANCE = ([0.5, 0.9], [0.3, 0.95])          # top layer at chance, collapsed onto one class
UNLEARNED = ([0.6, 0.9], [0.3, 0.95])          # ... and the layer below it right on 40 % only


def _fixed(**changes):
    """The golden model with ``fill`` of layer ``lN``'s weights at the top of their format."""
    net = FixedPointNet(CFG)
    weights = [np.array(w, order="C") for w in net.weights]
    for layer, fill in changes.items():
        w = weights[int(layer[1:]) - 1]
        w.reshape(-1)[:int(fill * w.size)] = 2 ** 15 - 1
    net.weights = weights                       # through the setter: the model's own layout
    return net


def _small_layer(count):
    """A network whose top layer has 96 weights (32 x 3), ``count`` of them at the limit: a
    small layer in which a handful is over 1 %."""
    net = FixedPointNet(NetConfig(arch=(64, 32, 3), classes=10))
    weights = [np.array(w, order="C") for w in net.weights]
    weights[1].reshape(-1)[:count] = 2 ** 15 - 1
    net.weights = weights
    return net


def _dead_second_layer(net):
    """No unit of layer 2 fires for any input: every weight and bias negative."""
    big = 1.0 if isinstance(net, FloatNet) else 2.0 ** 10
    weights = [np.array(w, order="C") for w in net.weights]
    weights[1][:] = -big
    net.biases[1][:] = -big
    if isinstance(net, FloatNet):
        net.weights[1][:] = weights[1]
    else:
        net.weights = weights
    return net


#: (name, model factory, (test error, shares) now, the epoch before, layer or None, reason part)
DIAGNOSES = [
    ("healthy float", lambda: FloatNet(CFG), HEALTHY, None, None, None),
    ("healthy fixed", lambda: _fixed(), HEALTHY, HEALTHY, None, None),
    ("NaN weight", lambda: _nan(FloatNet(CFG), "w1"), HEALTHY, None, 2, "NaN or infinite"),
    ("inf output", lambda: _nan(FloatNet(CFG, "bp"), "out", np.inf), ([0.9], [1.0]), None,
     3, "weights are NaN or infinite"),
    ("saturation flood", lambda: _fixed(l2=0.02), HEALTHY, None, 2,
     "it has 1.95 % of its weights saturated at ±2**15 (the limit is 1 %)"),
    ("a few saturated, not at chance", lambda: _fixed(l1=0.005), HEALTHY, HEALTHY, None, None),
    # 7 of 96 weights (7.3 %) is not a flood: fewer than FLOOD_WEIGHTS; 8 are.
    ("a handful in a small layer", lambda: _small_layer(7), HEALTHY, HEALTHY, None, None),
    ("a flood in a small layer", lambda: _small_layer(8), HEALTHY, HEALTHY, 2,
     "it has 8.33 % of its weights saturated"),
    ("a few saturated, at chance twice", lambda: _fixed(l1=0.005), UNLEARNED, UNLEARNED, 1,
     "and layer 1 has 0.49 % of its weights saturated at ±2**15 (the limit is 0.1 %)"),
    ("a few saturated, at chance once", lambda: _fixed(l1=0.005), UNLEARNED, HEALTHY, None,
     None),
    ("silent layer at chance", lambda: _dead_second_layer(FloatNet(CFG)), AT_CHANCE, AT_CHANCE,
     2, "of layer 2's units fire for none"),
    ("silent fixed layer at chance", lambda: _dead_second_layer(_fixed()), AT_CHANCE,
     AT_CHANCE, 2, "of layer 2's units fire for none"),
    ("silent layer, first epoch", lambda: _dead_second_layer(FloatNet(CFG)), AT_CHANCE, None,
     None, None),
    ("collapsed above a learned layer", lambda: _fixed(), AT_CHANCE, AT_CHANCE, 2,
     "layer 2 gives one class to 95 %"),
    ("collapsed above an unlearned layer", lambda: _fixed(), UNLEARNED, UNLEARNED, None, None),
    ("collapsed in one epoch only", lambda: _fixed(), AT_CHANCE, ([0.5, 0.9], [0.3, 0.5]),
     None, None),
    ("bp output collapsed", lambda: FloatNet(CFG, "bp"), ([0.9], [1.0]), ([0.9], [1.0]), None,
     None),
]


def _nan(net, name, value=np.nan):
    net.parameters()[name].reshape(-1)[3] = value
    return net


@pytest.mark.parametrize("name,make,now,before,layer,reason", DIAGNOSES,
                         ids=[d[0] for d in DIAGNOSES])
def test_diagnose(name, make, now, before, layer, reason):
    found = diagnose(make(), now[0], now[1], 10, PROBE, before)
    if layer is None:
        assert found is None
    else:
        assert found["layer"] == layer and reason in found["reason"], found


def _results(out):
    return json.loads((out / "results.json").read_text())


@pytest.mark.parametrize("args,layer,reason", [
    (["--lr", "0.5"], 1, "saturated"),                                   # fixed point
    (["--precision", "float", "--algo", "fa", "--lr", "0.25"], 1, "NaN or infinite"),
])
def test_a_diverging_run_stops_with_one_line(tmp_path, capsys, args, layer, reason):
    out = tmp_path / "run"
    code = main(["train", "--epochs", "3", "--out", str(out), "--quiet"] + args)
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    lr = float(args[args.index("--lr") + 1])
    assert err.startswith(f"lela: error: training diverged at layer {layer} in epoch 1: ")
    assert f"try --lr {lr / 2!r} (half of {lr!r})" in err
    res = _results(out)
    assert res["status"] == "diverged" and res["epochs"] == 1
    d = res["diverged"]
    assert d["layer"] == layer and d["epoch"] == 1 and reason in d["reason"]
    assert d["suggested_lr"] == lr / 2
    assert not (out / "checkpoint.pkl").exists()          # nothing to resume a diverged run from


def test_a_nan_stops_the_epoch_at_its_batch(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", "--epochs", "1", "--out", str(out), "--quiet", "--precision", "float",
          "--algo", "bp", "--lr", "4"])
    capsys.readouterr()
    d = _results(out)["diverged"]
    assert 1 <= d["batch"] < 45                           # digits: 45 mini-batches an epoch


def test_healthy_runs_finish_complete(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "2", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert _results(out)["status"] == "complete"


def _interrupt_at(monkeypatch, batch):
    """Make the run's model raise KeyboardInterrupt (Ctrl-C) at its ``batch``-th mini-batch."""
    real = lela.train.build_model

    def build(spec, cfg, log=print):
        model = real(spec, cfg, log)
        train, count = model.train_batch, [0]

        def train_batch(x, y):
            count[0] += 1
            if count[0] == batch:
                raise KeyboardInterrupt
            return train(x, y)
        model.train_batch = train_batch
        return model
    monkeypatch.setattr(lela.train, "build_model", build)


QUICK = ["--arch", "64-24-16", "--train-limit", "320", "--epochs", "3"]    # 10 batches an epoch


@pytest.mark.parametrize("batch,says,saved", [
    (4, "interrupted in epoch 1/3, before any epoch finished: nothing was saved", None),
    (15, "interrupted in epoch 2/3: {out}/checkpoint.pkl holds epoch 1 (continue with lela "
         "train --resume {out})", 1),
])
def test_ctrl_c_says_what_was_saved(tmp_path, capsys, monkeypatch, batch, says, saved):
    _interrupt_at(monkeypatch, batch)
    out = tmp_path / "run"
    assert main(["train", "--out", str(out)] + QUICK) == 130     # with the progress bar
    err = capsys.readouterr().err
    # A newline first: the progress bar (cleared with a carriage return) held the line.
    assert err.endswith("\nlela: " + says.format(out=out) + "\n"), err
    if saved is None:
        assert not out.exists() or not any(out.iterdir())
    else:
        assert pickle.loads((out / "checkpoint.pkl").read_bytes())["epoch"] == saved
    assert not [n for n in os.listdir(out) if n.startswith(".tmp-")] if out.exists() else True


def test_ctrl_c_in_a_checkpoint_write_keeps_the_last_one(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    writes = [0]
    real = lela.files.os.fsync

    def fsync(fd):
        writes[0] += 1
        if writes[0] == 4:             # epoch 1: checkpoint, results, curves; epoch 2's checkpoint
            raise KeyboardInterrupt
        real(fd)
    monkeypatch.setattr(lela.files.os, "fsync", fsync)
    assert main(["train", "--out", str(out), "--quiet"] + QUICK) == 130
    err = capsys.readouterr().err
    assert err.startswith("\nlela: interrupted in epoch 2/3: ") and "holds epoch 1" in err
    assert pickle.loads((out / "checkpoint.pkl").read_bytes())["epoch"] == 1
    assert sorted(os.listdir(out)) == ["checkpoint.pkl", "curves.png", "results.json"]


@pytest.mark.parametrize("signal", [KeyboardInterrupt, OSError])
def test_atomic_write_removes_its_temporary_file(tmp_path, monkeypatch, signal):
    path = tmp_path / "f"
    path.write_bytes(b"old")

    def fail(fd):
        raise signal
    monkeypatch.setattr(lela.files.os, "fsync", fail)
    with pytest.raises(signal):
        atomic_write(str(path), b"new")
    assert os.listdir(tmp_path) == ["f"] and path.read_bytes() == b"old"


@pytest.mark.parametrize("how", ["resume", "force"])
def test_stale_temporary_files_are_removed_at_the_next_run(tmp_path, capsys, how):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--quiet", "--epochs", "1"] + QUICK[:4]) == 0
    (out / ".tmp-k1ll3d").write_bytes(b"half a checkpoint")
    (out / "notes.txt").write_text("mine")
    again = (["train", "--resume", str(out), "--epochs", "2", "--quiet"] if how == "resume" else
             ["train", "--out", str(out), "--quiet", "--force", "--epochs", "1"] + QUICK[:4])
    assert main(again) == 0
    capsys.readouterr()
    assert not (out / ".tmp-k1ll3d").exists() and (out / "notes.txt").read_text() == "mine"
