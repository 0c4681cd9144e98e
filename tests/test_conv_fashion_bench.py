"""bench/conv_fashion.py's epoch choice on held-out data: the epoch count from MIN_EPOCHS on
with the lowest held-out top-layer error (the fewer epochs on a tie), and the final table read
after that many epochs."""

import json

import pytest

from bench import conv_fashion as cf
from bench import fashion_mnist as fm


def _result(top_errors, status="complete", seed=1, lr=2 ** -8):
    per_epoch = [[0.5, 0.2, e] for e in top_errors]
    return {"status": status, "epochs": len(per_epoch), "args": {"lr": lr, "seed": seed},
            "test_error_per_epoch": per_epoch, "samples_per_second": 100.0}


@pytest.mark.parametrize("errors,chosen", [
    ([0.3] * 9 + [0.12, 0.11, 0.115], 11),           # the minimum from epoch 10 on
    ([0.3] * 8 + [0.05, 0.12, 0.13], 10),            # epoch 9's 5 % is before MIN_EPOCHS
    ([0.3] * 9 + [0.12, 0.11, 0.11, 0.11], 11),      # a tie: the fewer epochs
    ([0.3] * 9 + [0.10], 10),
    ([0.3] * 9, None),                               # not yet at MIN_EPOCHS
])
def test_the_epoch_count_is_the_held_out_minimum_from_min_epochs(errors, chosen):
    assert cf.MIN_EPOCHS == 10
    assert cf.chosen_epochs(_result(errors)) == chosen


def test_seed_summary_reads_the_chosen_epoch():
    runs = [_result([0.2, 0.15, 0.12], seed=1), _result([0.22, 0.14, 0.13], seed=2)]
    at2 = fm.seed_summary(runs, 2)
    assert at2["epochs"] == [2, 2] and at2["test_error_mean"][-1] == pytest.approx(14.5)
    assert at2["test_error_per_seed"] == [[50.0, 20.0, 15.0], [50.0, 20.0, 14.0]]
    assert fm.seed_summary(runs)["test_error_mean"][-1] == pytest.approx(12.5)


def test_summary_reports_the_final_runs_after_the_held_out_choice(tmp_path, monkeypatch):
    runs, out = tmp_path / "runs", tmp_path / "conv_fashion.json"
    monkeypatch.setattr(cf, "RUNS", str(runs))
    monkeypatch.setattr(cf, "OUT", str(out))
    name = "lel-fixed-c1top3-d4"
    held_out = [0.3] * 9 + [0.12, 0.10, 0.11]               # chooses 11 epochs
    finals = {1: [0.3] * 10 + [0.111, 0.105], 2: [0.3] * 10 + [0.113, 0.101]}

    def write(path, result):
        path.mkdir(parents=True)
        (path / "results.json").write_text(json.dumps(result))

    write(runs / "epochs" / name, _result(held_out))
    for seed, errors in finals.items():
        write(runs / "final" / f"{name}-seed{seed}", _result(errors, seed=seed))
    cf.summary(2, 12)
    table = json.loads(out.read_text())
    assert table["epoch_choice"][name]["chosen_epochs"] == 11
    final = table["final"][name]
    assert final["epochs_chosen_on_holdout"] and final["epochs"] == [11, 11]
    assert final["test_error_mean"][-1] == pytest.approx(11.2)      # not the 12th epoch's
    assert "--epochs 11 " in final["command"]
    # A held-out run that has not finished chooses nothing: the final runs' last epoch.
    write(runs / "epochs" / "other", _result(held_out, status="incomplete"))
    (runs / "epochs" / name / "results.json").write_text(
        json.dumps(_result(held_out, status="incomplete")))
    out.unlink()
    cf.summary(2, 12)
    final = json.loads(out.read_text())["final"][name]
    assert not final["epochs_chosen_on_holdout"]
    assert final["test_error_mean"][-1] == pytest.approx(10.3)
