"""`lela train --lr-decay N` and `--schedule layerwise` (docs/ARITHMETIC.md, "Learning-rate
decay" and "Frozen layers"): what a run does with them, and the one-line refusals."""

import json
import pickle

import numpy as np
import pytest

from lela.cli import main

QUICK = ["--quiet"]            # digits, 64-128-128: an epoch is a fraction of a second


def _train(tmp_path, capsys, *extra, out="run"):
    code = main(["train", *QUICK, "--out", str(tmp_path / out), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _weights(tmp_path, out="run"):
    with open(tmp_path / out / "checkpoint.pkl", "rb") as f:
        return pickle.load(f)["model"]["weights"]


def test_decay_halves_the_rate_every_n_epochs(tmp_path, capsys):
    """Epochs 1-2 as without decay (the same weights), epoch 3 at half the rate (different)."""
    assert _train(tmp_path, capsys, "--epochs", "2", "--lr-decay", "2", out="decay2")[0] == 0
    assert _train(tmp_path, capsys, "--epochs", "2", out="constant2")[0] == 0
    for a, b in zip(_weights(tmp_path, "decay2"), _weights(tmp_path, "constant2")):
        assert np.array_equal(a, b)
    assert _train(tmp_path, capsys, "--epochs", "3", "--lr-decay", "2", out="decay3")[0] == 0
    assert _train(tmp_path, capsys, "--epochs", "3", out="constant3")[0] == 0
    assert any(not np.array_equal(a, b) for a, b in zip(_weights(tmp_path, "decay3"),
                                                        _weights(tmp_path, "constant3")))
    res = json.loads((tmp_path / "decay3" / "results.json").read_text())
    assert res["config"]["lr_decay_epochs"] == 2 and res["args"]["lr_decay"] == 2


def test_layerwise_trains_one_layer_at_a_time(tmp_path, capsys):
    """Two epochs, two layers, nearest-even rounding (no random draws to interleave): layer 1
    ends as after one ordinary epoch (it trained in epoch 1 only, frozen in epoch 2) and
    layer 2 has moved from its initial weights (trained in epoch 2); the untrained top layer
    of epoch 1 is not taken for a divergence."""
    from contract.config import NetConfig
    from sw_model.golden import FixedPointNet
    even = ["--rounding", "nearest-even"]
    assert _train(tmp_path, capsys, "--epochs", "1", *even, out="one")[0] == 0
    code, out, err = _train(tmp_path, capsys, "--epochs", "2", "--schedule", "layerwise",
                            *even, out="lw")
    assert code == 0, err
    res = json.loads((tmp_path / "lw" / "results.json").read_text())
    assert res["status"] == "complete" and res["args"]["schedule"] == "layerwise"
    initial = FixedPointNet(NetConfig.from_dict(res["config"])).weights
    after, one_epoch = _weights(tmp_path, "lw"), _weights(tmp_path, "one")
    assert np.array_equal(after[0], one_epoch[0])
    assert not np.array_equal(after[1], initial[1])
    assert not np.array_equal(after[1], one_epoch[1])


@pytest.mark.parametrize("extra,message", [
    (["--schedule", "layerwise", "--precision", "float"], "only local-error learning"),
    (["--schedule", "layerwise", "--epochs", "1"], "1 epochs cannot train 2 layers"),
    (["--lr-decay", "1", "--epochs", "40"], "--lr-decay"),
    (["--lr-decay", "-1"], "must not be negative"),
    (["--batch-norm", "--algo", "bp", "--precision", "float"], "trained by local errors"),
    (["--batch-norm", "--backend", "serial", "--port", "/dev/null"],
     "built without batch normalisation"),
    (["--batch-norm", "--dropout", "0.1"], "field 'batch_norm'"),
    (["--layer-lr-shift", "0,1,2"], "one shift per hidden layer (2)"),
    (["--layer-lr-shift", "0,-1"], "must not be negative"),
    (["--layer-lr-shift", "0,1", "--backend", "rtl"], "one register for every layer"),
])
def test_schedule_mistakes_are_one_line(tmp_path, capsys, extra, message):
    try:
        code, out, err = _train(tmp_path, capsys, *extra, out="bad")
    except SystemExit as e:                                     # argparse
        code, (out, err) = e.code, capsys.readouterr()
    assert code != 0
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad" / "checkpoint.pkl").exists()


def test_batch_norm_run_resumes_bit_exactly(tmp_path, capsys):
    """The scales and running statistics are in the checkpoint: 1 + 1 epochs equal 2, and the
    run's inference uses them (a net without batch normalisation gives other weights)."""
    assert _train(tmp_path, capsys, "--batch-norm", "--epochs", "2", out="full")[0] == 0
    assert _train(tmp_path, capsys, "--batch-norm", "--epochs", "1", out="part")[0] == 0
    assert main(["train", "--resume", str(tmp_path / "part"), "--epochs", "2", "--quiet"]) == 0
    assert _train(tmp_path, capsys, "--epochs", "2", out="plain")[0] == 0
    runs = {name: json.loads((tmp_path / name / "results.json").read_text())
            for name in ("full", "part", "plain")}
    assert runs["full"]["weight_hash"] == runs["part"]["weight_hash"]
    assert runs["full"]["test_error_per_epoch"] == runs["part"]["test_error_per_epoch"]
    assert runs["full"]["weight_hash"] != runs["plain"]["weight_hash"]
    assert runs["full"]["config"]["batch_norm"] and runs["part"]["args"]["batch_norm"]
    with open(tmp_path / "part" / "checkpoint.pkl", "rb") as f:
        saved = pickle.load(f)["model"]["batch_norm"]
    assert len(saved) == 2 and (saved[1]["gamma"] != 1 << 13).any()


def test_batch_norm_on_a_board_is_refused_before_the_port_is_opened(tmp_path, capsys):
    config = tmp_path / "bn.toml"
    config.write_text("[network]\narch = [64, 16]\nbatch_norm = true\n")
    code, _, err = _train(tmp_path, capsys, "--config", str(config), "--backend", "serial",
                          "--port", str(tmp_path / "no-such-port"), out="bad")
    assert code == 1 and "field 'batch_norm'" in err and len(err.strip().splitlines()) == 1


def test_layer_rates_reach_the_model_and_the_checkpoint(tmp_path, capsys):
    """--layer-lr-shift 0,3: layer 1 trains as without it, layer 2 differently; a resume
    keeps it and refuses another."""
    assert _train(tmp_path, capsys, "--epochs", "1", "--layer-lr-shift", "0,3", out="slow")[0] == 0
    assert _train(tmp_path, capsys, "--epochs", "1", out="plain")[0] == 0
    slow, plain = _weights(tmp_path, "slow"), _weights(tmp_path, "plain")
    assert np.array_equal(slow[0], plain[0]) and not np.array_equal(slow[1], plain[1])
    res = json.loads((tmp_path / "slow" / "results.json").read_text())
    assert res["config"]["layer_lr_shift"] == [0, 3] and res["args"]["layer_lr_shift"] == [0, 3]
    code = main(["train", "--resume", str(tmp_path / "slow"), "--epochs", "2",
                 "--layer-lr-shift", "0,2", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "--layer-lr-shift" in err and len(err.strip().splitlines()) == 1
