"""lela explore: a tiny grid (golden model on digits, 1 epoch on a few hundred samples, the
analytic throughput; no bitstream) on a local Dask cluster: the rows, CSV, JSON and plots,
caching (a rerun computes nothing, a grown grid only the new points), resuming an interrupted or
killed exploration, failing points as rows with their reason, and one-line errors for bad grid
files."""

import csv
import json
import logging
import os
import sys

import pytest

from contract.config import load_config
from host.energy import training_energy
from host.throughput import link_bound, minibatch_bytes, training_rate
from lela.cli import main
from lela.explore.grid import load_grid
from lela.explore.measure import measure_point
from lela.explore.report import pareto
from lela.explore.run import Interrupted, explore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ICEBREAKER = os.path.join(ROOT, "configs", "icebreaker.toml")

ACCURACY = '[measure.accuracy]\ndataset = "digits"\nepochs = 1\ntrain_limit = 300\n'
THROUGHPUT = '[measure.throughput]\nboard = "icebreaker"\n'


def write_grid(tmp_path, vary, measure=ACCURACY + THROUGHPUT, name="grid.toml"):
    path = tmp_path / name
    path.write_text(f'base = "{ICEBREAKER}"\n\n[vary]\n{vary}\n\n{measure}')
    return str(path)


@pytest.fixture(scope="module")
def scheduler():
    """A local cluster of two worker processes, shared by the tests through ``--address`` (the
    path an existing cluster takes)."""
    from distributed import LocalCluster
    if sys.path[:1] != [ROOT]:
        sys.path.insert(0, ROOT)            # spawned workers import this checkout's lela
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster:
        yield cluster.scheduler_address


def run(grid, out, scheduler, **kwargs):
    arrived = []
    summary = explore(grid, str(out), address=scheduler, progress=False, log=lambda *a: None,
                      on_result=lambda tag, result: arrived.append(tag), **kwargs)
    return summary, sorted(arrived)


def rows(out):
    with open(os.path.join(out, "points.csv")) as f:
        return list(csv.DictReader(f))


def cache_files(out):
    return sorted(os.listdir(os.path.join(out, "cache")))


def test_tiny_grid_writes_a_row_per_point_csv_json_and_both_plots(tmp_path, scheduler):
    grid = write_grid(tmp_path, 'arch = [[64, 16], [64, 32]]\nbatch = { from = 4, to = 8, '
                      'times = 2 }')
    out = tmp_path / "out"
    summary, arrived = run(grid, out, scheduler)
    assert arrived == [0, 1, 2, 3]
    table = rows(out)
    # The product of the varied values, the last varying fastest.
    assert [(r["arch"], r["batch"]) for r in table] == [("64-16", "4"), ("64-16", "8"),
                                                       ("64-32", "4"), ("64-32", "8")]
    for r in table:
        assert r["status"] == "ok" and r["reason"] == ""
        assert 0 < float(r["accuracy"]) <= 1
        # The link bound alone (the frames of a mini-batch at the line's rate: the config's
        # 3 Mbaud, 7.5 cycles a bit at 22.5 MHz) is above the predicted rate, which adds the core's
        # time (at 3 Mbaud 58-77 % of it is the link's).
        batch, arch = int(r["batch"]), [int(v) for v in r["arch"].split("-")]
        baud = 22.5e6 / 7.5
        bound = link_bound(sum(minibatch_bytes(arch[0], batch, 9 + len(arch) - 1,
                                               read_counters=False)), batch, baud)
        assert float(r["samples_per_second"]) == pytest.approx(
            training_rate(arch, 10, batch, 1, 22.5e6, baud, 1.02)[0], rel=1e-4)
        assert 0.5 * bound < float(r["samples_per_second"]) < bound
        assert float(r["energy_nj_per_sample"]) > 0
    with open(out / "points.json") as f:
        data = json.load(f)
    assert [p["point"] for p in data["points"]] == [0, 1, 2, 3]
    assert data["point_count"] == 4
    assert data["computed"] == 4 and data["cached"] == 0
    for name in ("pareto_accuracy.png", "pareto_throughput.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_points_accuracy_is_what_lela_train_gives_for_its_config(tmp_path, scheduler):
    from lela.train import RunSpec
    from lela.train import run as train
    grid = write_grid(tmp_path, "arch = [[64, 32]]\nbatch = [8]", measure=ACCURACY)
    out = tmp_path / "out"
    run(grid, out, scheduler)
    # The same network by lela train's own entry: the icebreaker config with 64-32.
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(open(ICEBREAKER).read().replace("arch = [64, 64]", "arch = [64, 32]"))
    results = train(RunSpec(dataset="digits", epochs=1, train_limit=300, config=str(cfg_path)),
                    str(tmp_path / "train"), progress=False, log=lambda *a: None)
    with open(out / "points.json") as f:
        assert json.load(f)["points"][0]["accuracy"] == results["test_accuracy"]
    assert float(rows(out)[0]["accuracy"]) == pytest.approx(results["test_accuracy"], rel=1e-5)


def test_a_second_run_computes_nothing_and_a_grown_grid_only_the_new_points(tmp_path,
                                                                             scheduler):
    out = tmp_path / "out"
    small = write_grid(tmp_path, "arch = [[64, 16]]\nbatch = [4, 8]", name="small.toml")
    first, arrived = run(small, out, scheduler)
    assert first["computed"] == 2 and arrived == [0, 1]
    stamps = {n: os.stat(out / "cache" / n).st_mtime_ns for n in cache_files(out)}
    assert len(stamps) == 4                              # 2 points x 2 measurements
    again, arrived = run(small, out, scheduler)
    assert again["computed"] == 0 and again["cached"] == 2 and arrived == []
    assert {n: os.stat(out / "cache" / n).st_mtime_ns for n in cache_files(out)} == stamps
    assert [float(r["accuracy"]) for r in rows(out)] == pytest.approx(
        [r["accuracy"] for r in json.load(open(out / "points.json"))["points"]], rel=1e-5)
    grown = write_grid(tmp_path, "arch = [[64, 16], [64, 32]]\nbatch = [4, 8]",
                       name="grown.toml")
    more, arrived = run(grown, out, scheduler)
    assert more["cached"] == 2 and more["computed"] == 2 and arrived == [2, 3]
    assert len(rows(out)) == 4


def test_an_interrupted_exploration_resumes_with_only_the_rest(tmp_path, scheduler):
    grid = write_grid(tmp_path, "arch = [[64, 16], [64, 32]]\nbatch = [4, 8]")
    out = tmp_path / "out"
    seen = []

    def ctrl_c(tag, result):        # Ctrl-C in the client once the first result is cached
        seen.append(tag)
        raise KeyboardInterrupt

    with pytest.raises(Interrupted, match="1 of 4 points measured"):
        explore(grid, str(out), address=scheduler, progress=False, log=lambda *a: None,
                on_result=ctrl_c)
    assert len(cache_files(out)) == 2                   # the one point's two measurements
    statuses = [r["status"] for r in rows(out)]
    assert statuses.count("pending") == 3 and statuses[seen[0]] == "ok"
    summary, arrived = run(grid, out, scheduler)
    assert summary["cached"] == 1 and summary["computed"] == 3
    assert sorted(arrived + seen) == [0, 1, 2, 3]
    assert all(r["status"] == "ok" for r in rows(out))


def test_a_killed_exploration_recomputes_only_the_results_it_lost(tmp_path, scheduler):
    grid = write_grid(tmp_path, "arch = [[64, 16]]\nbatch = [4, 8]\narray = [\"1x1\", \"2x2\"]")
    out = tmp_path / "out"
    run(grid, out, scheduler)
    before = rows(out)
    # A kill loses the running points' results: here the accuracy of two of the four points.
    lost = [n for n in cache_files(out) if n.startswith("accuracy-")][:2]
    for name in lost:
        os.remove(out / "cache" / name)
    summary, arrived = run(grid, out, scheduler)
    assert summary["computed"] == 2 and summary["measurements_computed"] == 2
    assert sorted(cache_files(out)) == sorted(set(cache_files(out)) | set(lost))
    assert [r["accuracy"] for r in rows(out)] == [r["accuracy"] for r in before]


def test_failing_points_are_rows_with_their_reason_and_errors_are_retried(tmp_path,
                                                                         scheduler):
    # lr_shift 0 diverges (saturated weights); batch 5000 is beyond the config's 4096;
    # 32 inputs do not match digits' 64 features (refused by the training run on the worker).
    grid = write_grid(tmp_path, "arch = [[64, 16], [32, 16]]\nlr_shift = [0, 7]\n"
                      "batch = [8, 5000]", measure=ACCURACY)
    out = tmp_path / "out"
    summary, _ = run(grid, out, scheduler)
    table = {(r["arch"], r["lr_shift"], r["batch"]): r for r in rows(out)}
    assert len(table) == 8
    diverged = table[("64-16", "0", "8")]
    assert diverged["status"] == "diverged" and "saturated" in diverged["reason"]
    for arch in ("64-16", "32-16"):
        for shift in ("0", "7"):
            r = table[(arch, shift, "5000")]
            assert r["status"] == "refused" and "batch" in r["reason"]
    mismatch = table[("32-16", "7", "8")]
    assert mismatch["status"] == "refused" and "32 inputs" in mismatch["reason"]
    assert table[("64-16", "7", "8")]["status"] == "ok"
    # Refused: the four of batch 5000 and both 32-16 of batch 8.
    assert summary["status_counts"] == {"diverged": 1, "ok": 1, "refused": 6}
    # An error (here: a data set whose files are missing) is a row too, but not cached: a
    # rerun tries it again.
    missing = write_grid(tmp_path, "arch = [[784, 16]]", name="mnist.toml", measure=(
        f'[measure.accuracy]\ndataset = "mnist"\nepochs = 1\ndata_dir = "{tmp_path}/none"\n'))
    out2 = tmp_path / "out2"
    first, _ = run(missing, out2, scheduler)
    assert rows(out2)[0]["status"] == "error" and rows(out2)[0]["reason"]
    assert first["errors_not_cached"] == 1
    again, _ = run(missing, out2, scheduler)
    assert again["computed"] == 1


@pytest.mark.parametrize("baud,line_baud,status", [
    (None, 3e6, "ok"),                   # the config's (configs/icebreaker.toml: 3 Mbaud)
    (115200, 115200.0, "ok"),            # the setting's: 625/3 cycles a bit, exact on average
    (12_000_000, None, "refused"),       # 2 cycles a bit
])
def test_throughput_runs_the_link_at_the_configs_baud_or_the_settings(tmp_path, baud,
                                                                      line_baud, status):
    from lela.explore.measure import throughput
    result = throughput(load_config(ICEBREAKER).to_dict(),
                        {"board": "icebreaker", "baud": baud, "cycles_per_beat": 1.02},
                        str(tmp_path))
    assert result["status"] == status
    if line_baud:
        assert result["line_baud"] == pytest.approx(line_baud, rel=1e-12)
    else:
        assert "faster clock" in result["reason"]


def test_a_grid_may_vary_the_baud_rate(tmp_path):
    grid = load_grid(write_grid(tmp_path, "baud = [115200, 3000000, 300]"))
    points = grid.points()
    assert [p.config["baud"] for p in points[:2]] == [115200, 3000000]
    assert "'baud'" in points[2].refused


def test_a_worker_with_other_lela_source_refuses_its_point():
    cfg = load_config(ICEBREAKER).to_dict()
    result = measure_point({"config": cfg, "source": "0" * 64, "todo": {
        "throughput": {"board": "icebreaker", "baud": None, "cycles_per_beat": 1.0}}})
    assert result["throughput"]["status"] == "error"
    assert "differs" in result["throughput"]["reason"]


def test_explore_on_its_own_local_cluster_from_the_command_line(tmp_path, capsys):
    grid = write_grid(tmp_path, "arch = [[64, 16]]\nbatch = [4, 8]")
    out = tmp_path / "out"
    assert main(["explore", grid, "--out", str(out), "--workers", "1", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "2 points (2 ok): 0 from the cache, 2 measured" in printed
    assert "wrote" in printed and "pareto_accuracy.png" in printed
    with open(out / "explore.json") as f:
        assert json.load(f)["workers"] == 1


BAD_GRIDS = [
    ('base = "{base}"\n[vary]\nwidth = [1]\n' + ACCURACY, "unknown field 'width'"),
    ('base = "{base}"\n[vary]\nbatch = {{ from = 8, to = 4 }}\n' + ACCURACY,
     "'to' (4) is below 'from' (8)"),
    ('base = "{base}"\n[vary]\nbatch = []\n' + ACCURACY, "batch: no values"),
    ('base = "{base}"\n[vary]\narray = ["2by2"]\n' + ACCURACY, "is not ROWSxCOLS"),
    ('base = "{base}"\n[vary]\nbatch = [4]\n', "must name at least one of"),
    ('base = "{base}"\n[vary]\nbatch = [4]\n[measure.speed]\nx = 1\n',
     "unknown measurement [measure.speed]"),
    ('base = "{base}"\n[measure.bitstream]\nboard = "de10"\n', "board 'de10' is not one of"),
    ('base = "{base}"\n[measure.throughput]\n', "needs 'board'"),
    ('base = "{base}"\n[measure.accuracy]\ndataset = "digits"\n', "needs 'epochs'"),
    ('base = "nowhere.toml"\n' + ACCURACY, "no such config file"),
    ('[vary]\nbatch = [4]\n' + ACCURACY, "needs base ="),
    ('base = "{base}"\nbatch = [4 8]\n', "not valid TOML"),
]


@pytest.mark.parametrize("text, message", BAD_GRIDS)
def test_a_bad_grid_file_is_one_line_and_writes_nothing(tmp_path, capsys, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text.format(base=ICEBREAKER))
    out = tmp_path / "out"
    assert main(["explore", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lela: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not out.exists()


def test_cli_refusals_are_one_line(tmp_path, capsys):
    grid = write_grid(tmp_path, "batch = [4]")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["explore", grid, "--out", str(other)]) == 1
    err = capsys.readouterr().err
    assert "not an exploration's" in err and err.count("\n") == 1
    assert os.listdir(other) == ["notes.txt"]
    assert main(["explore", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o")]) == 1
    assert "no such" in capsys.readouterr().err
    assert main(["explore", grid, "--out", str(tmp_path / "o"), "--workers", "2", "--address",
                 "tcp://127.0.0.1:1"]) == 1
    assert "--workers" in capsys.readouterr().err


def test_an_address_where_no_scheduler_answers_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("lela.explore.engine.CONNECT_TIMEOUT_S", 2)
    grid = write_grid(tmp_path, "batch = [4]")
    assert main(["explore", grid, "--out", str(tmp_path / "o"), "--quiet", "--address",
                 "tcp://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert "no Dask scheduler answers" in err and err.count("\n") == 1


def test_grid_ranges_and_the_array_shorthand(tmp_path):
    grid = load_grid(write_grid(tmp_path, 'batch = { from = 4, to = 20, times = 2 }\n'
                                'lr_shift = { from = 6, to = 10, step = 2 }\n'
                                'array = ["2x4", [1, 3]]'))
    assert grid.vary["batch"] == [4, 8, 16]
    assert grid.vary["lr_shift"] == [6, 8, 10]
    points = grid.points()
    assert len(points) == 3 * 3 * 2
    assert (points[0].config["array_rows"], points[0].config["array_cols"]) == (2, 4)
    assert (points[1].config["array_rows"], points[1].config["array_cols"]) == (1, 3)
    assert points[0].config["arch"] == [64, 64]          # the base's, not varied


def test_pareto_front_by_hand():
    # (cost, value): (1, .5) and (2, .6) are the front; (2, .4) is dominated by (1, .5),
    # (3, .6) by (2, .6); a tie with a front point is on the front.
    assert pareto([(1, .5), (2, .6), (2, .4), (3, .6)]) == [0, 1]
    assert pareto([(1, .5), (1, .5)]) == [0, 1]


def test_energy_estimate_by_hand():
    # 64-16 on a 1x1 array, batch 4, 10 classes, 16-bit weights, deltas and errors, 8-bit
    # activations, the weights on chip.
    cfg = load_config(ICEBREAKER, arch=[64, 16], batch=4)
    e = training_energy(cfg)
    beats = 16 * 4 * 65 + 10 * 4 * 16 + 16 * 4 * 10 + 16 * 64 * 4   # fwd, scores, back, grad
    assert e["macs"] == beats / 4
    mult = 0.2 * 16 * 16 / 64                            # 16 x max(8 + 2, 16) bits: 0.8 pJ
    add = 0.1 * (16 + 16 + 7) / 32                       # the sums of up to 65 terms
    assert e["mac_pj"] == pytest.approx(beats / 4 * (mult + add))
    weights = 16 * 65
    assert e["weight_memory_pj"] == pytest.approx(3 * weights * 16 / 4 * 10 / 64)
    assert e["dram_pj_low"] == pytest.approx(65 * 8 * 1300 / 64)   # a sample and its label
    assert e["total_pj"] == pytest.approx(e["mac_pj"] + e["weight_memory_pj"]
                                          + e["dram_pj_low"])


@pytest.mark.parametrize("report, status, words", [
    (dict(fits=False, error="Unable to place cell 'x'", over=["ICESTORM_LC"], timing_met=False,
          fmax_mhz=None, clock_mhz=24.0), "does-not-fit", ["Unable to place", "ICESTORM_LC"]),
    (dict(fits=True, error=None, over=[], timing_met=False, fmax_mhz=21.5, clock_mhz=24.0),
     "timing-missed", ["21.5 MHz", "24.0 MHz"]),
    (dict(fits=True, error=None, over=[], timing_met=True, fmax_mhz=25.1, clock_mhz=24.0),
     "ok", []),
])
def test_a_bitstream_that_does_not_fit_or_misses_timing_is_a_result(monkeypatch, tmp_path,
                                                                    report, status, words):
    # The build itself (minutes) stands in: what build_bitstream reports becomes the status.
    import gen.bitstream
    from lela.explore.measure import bitstream
    monkeypatch.setattr(gen.bitstream, "build_bitstream",
                        lambda board, cfg, out, seed: {**report, "logic_cells": 5300})
    result = bitstream(load_config(ICEBREAKER).to_dict(), {"board": "icebreaker", "seed": 1},
                       str(tmp_path))
    assert result["status"] == status and result["logic_cells"] == 5300
    for word in words:
        assert word in result["reason"]
