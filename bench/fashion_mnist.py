"""Fashion-MNIST comparison of BP, FA, float local errors and fixed-point local errors.

Phase ``tune`` trains each algorithm for a few epochs at several learning rates on 50,000
training images and tests on the held-out last 10,000; phase ``final`` trains each algorithm with
its best rate on the full training set for 2 seeds and tests on the test set; phase ``summary``
writes bench/results/fashion_mnist.json (mean and spread of every layer's test error).

Every run is a plain ``lela train`` command (printed, and stored in the JSON); runs that already
finished are skipped and interrupted ones resume from their checkpoints, so the script can be
stopped and restarted. Two runs go in parallel with one BLAS thread each.

    python bench/fashion_mnist.py [tune|final|summary|all] [--epochs 10] [--jobs 2]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT_ = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT_)
from bench.machine import describe   # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = os.path.join(ROOT, "runs", "fashion")
OUT = os.path.join(ROOT, "bench", "results", "fashion_mnist.json")
ARCH = "784-1000-1000-1000"

# (name, algo, precision, learning rates to try)
ALGOS = [
    ("bp", "bp", "float", [2 ** -7, 2 ** -8, 2 ** -9]),
    ("fa", "fa", "float", [2 ** -7, 2 ** -8, 2 ** -9, 2 ** -10]),
    ("lel", "lel", "float", [2 ** -8, 2 ** -9, 2 ** -10]),
    ("lel-sign", "lel-sign", "float", [2 ** -8, 2 ** -9, 2 ** -10]),
    ("lel-fixed", "lel", "fixed", [2 ** -6, 2 ** -7, 2 ** -8]),
]
SEEDS = [1, 2]
# Learning rates the 2-epoch tuning favoured but that diverged in the 10-epoch runs: the next
# smaller rate of the grid is used (the diverged runs are kept under runs/fashion/diverged).
DIVERGED = {"fa": 2 ** -9}


def command(algo, precision, lr, seed, epochs, out, holdout=0):
    cmd = ["lela", "train", "--dataset", "fashion-mnist", "--arch", ARCH, "--algo", algo,
           "--precision", precision, "--lr", repr(lr), "--seed", str(seed), "--batch", "32",
           "--epochs", str(epochs), "--quiet", "--out", out]
    if holdout:
        cmd += ["--holdout", str(holdout)]
        if precision == "float":
            # The tuning runs were made in float32 (then the default); the final runs in float64.
            cmd += ["--float-dtype", "float32"]
    return cmd


def finished(out, epochs):
    """The run in ``out`` trained ``epochs`` epochs, or stopped because it diverged."""
    try:
        with open(os.path.join(out, "results.json")) as f:
            res = json.load(f)
        return res.get("status") == "diverged" or res["epochs"] >= epochs
    except (OSError, ValueError, KeyError):
        return False


def execute(cmd, out, epochs):
    if finished(out, epochs):
        return
    if os.path.exists(os.path.join(out, "checkpoint.pkl")):
        cmd = ["lela", "train", "--resume", out, "--epochs", str(epochs), "--quiet"]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    os.makedirs(out, exist_ok=True)
    print(" ".join(cmd), flush=True)
    exe = os.path.join(os.path.dirname(sys.executable), "lela")
    with open(os.path.join(out, "log.txt"), "a") as log:
        done = subprocess.run([exe] + cmd[1:], env=env, stdout=log, stderr=subprocess.STDOUT)
    # A run that diverged exits 1 with status "diverged" in its results.json: a result.
    if done.returncode and not finished(out, epochs):
        raise subprocess.CalledProcessError(done.returncode, cmd)


def tune_jobs(epochs):
    for name, algo, precision, lrs in ALGOS:
        for lr in lrs:
            out = os.path.join(RUNS, "tune", f"{name}-lr{lr:g}")
            yield command(algo, precision, lr, 1, epochs, out, holdout=10000), out, epochs


def best_lr(name, lrs):
    scored = []
    for lr in lrs:
        if DIVERGED.get(name) is not None and lr >= DIVERGED[name]:
            continue
        try:
            with open(os.path.join(RUNS, "tune", f"{name}-lr{lr:g}", "results.json")) as f:
                res = json.load(f)
        except OSError:
            continue
        err = res["test_error_per_epoch"][-1][-1]
        scored.append((err, lr))
    if not scored:
        raise SystemExit(f"no tuning results for {name}: run the tune phase first")
    return min(scored)[1]


def final_jobs(epochs):
    for name, algo, precision, lrs in ALGOS:
        lr = best_lr(name, lrs)
        for seed in SEEDS:
            out = os.path.join(RUNS, "final", f"{name}-seed{seed}")
            yield command(algo, precision, lr, seed, epochs, out), out, epochs


def run_all(jobs, parallel):
    with ThreadPoolExecutor(parallel) as pool:
        for f in [pool.submit(execute, *job) for job in jobs]:
            f.result()


def seed_summary(runs, epochs=None):
    """The learning rate, epochs and seeds of a set of finished runs (results.json contents),
    and every layer's test error after ``epochs`` epochs (default: the last): mean, spread and
    per seed (%)."""
    import numpy as np
    errs = np.array([r["test_error_per_epoch"][(epochs or len(r["test_error_per_epoch"])) - 1]
                     for r in runs]) * 100
    return {"lr": runs[0]["args"]["lr"],
            "epochs": [epochs or r["epochs"] for r in runs],
            "seeds": [r["args"]["seed"] for r in runs],
            "test_error_mean": errs.mean(axis=0).round(3).tolist(),
            "test_error_spread": (errs.max(axis=0) - errs.min(axis=0)).round(3).tolist(),
            "test_error_per_seed": errs.round(3).tolist(),
            "samples_per_second": [round(r["samples_per_second"], 1) for r in runs]}


def summary(tune_epochs, final_epochs):
    import numpy as np
    table = {"machine": describe(),
             "date": time.strftime("%Y-%m-%d"), "arch": ARCH, "batch": 32,
             "tuning": {}, "final": {}}
    for name, algo, precision, lrs in ALGOS:
        tuning = {}
        for lr in lrs:
            path = os.path.join(RUNS, "tune", f"{name}-lr{lr:g}", "results.json")
            if os.path.exists(path):
                with open(path) as f:
                    tuning[f"{lr:g}"] = json.load(f)["test_error_per_epoch"][-1]
        table["tuning"][name] = {"epochs": tune_epochs, "holdout_error_per_lr": tuning}
        runs = []
        for seed in SEEDS:
            path = os.path.join(RUNS, "final", f"{name}-seed{seed}", "results.json")
            if os.path.exists(path):
                with open(path) as f:
                    runs.append(json.load(f))
        if not runs:
            continue
        table["final"][name] = {
            "algo": algo, "precision": precision, **seed_summary(runs),
            "command": " ".join(command(algo, precision, runs[0]["args"]["lr"], "SEED",
                                        final_epochs, f"runs/fashion/final/{name}-seedSEED")),
        }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(table, f, indent=2)
        f.write("\n")
    print(f"wrote {OUT}")
    for name, row in table["final"].items():
        print(f"{name:10s} " + "  ".join(f"{m:5.2f}±{s / 2:.2f}" for m, s in zip(
            row["test_error_mean"], row["test_error_spread"])))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", nargs="?", default="all",
                        choices=("tune", "final", "summary", "all"))
    parser.add_argument("--tune-epochs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    if args.phase in ("tune", "all"):
        run_all(list(tune_jobs(args.tune_epochs)), args.jobs)
    if args.phase in ("final", "all"):
        run_all(list(final_jobs(args.epochs)), args.jobs)
    if args.phase in ("summary", "all"):
        summary(args.tune_epochs, args.epochs)


if __name__ == "__main__":
    main()
