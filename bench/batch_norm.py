"""Batch normalisation trained by local errors (docs/ARITHMETIC.md, "Batch normalisation"),
with and without, on digits and on Fashion-MNIST.

``digits`` trains configs/digits.toml (64-128-128, batch 32, seed 1) on the bit-exact golden
model for ``--digits-epochs`` epochs without and with batch normalisation, the latter at
several epsilons, and the float reference (symmetric local errors, float64) with the exact
batch-norm backward and with the statistics treated as constants; then layer by layer (half
the epochs each, the other layer frozen) without and with it. Under a minute.

``fashion`` trains the paper's network 784-1000-1000-1000 (batch 32) as bench/fashion_mnist.py
does, with ``--batch-norm``: a learning-rate tuning (2 epochs on 50,000 images, tested on the
held-out 10,000, seed 1), then 10 epochs at the best rate for seeds 1 and 2, fixed point
(golden model) and float local errors. Every run is a plain ``lela train`` command; finished
runs are skipped and interrupted ones resume. The runs without batch normalisation are
bench/fashion_mnist.py's (the same network, seeds and batch order), read from its JSON.

    python bench/batch_norm.py [digits|fashion|summary|all] [--epochs 10] [--jobs 2]

-> ``bench/results/batch_norm.json``.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import fashion_mnist as fm                               # noqa: E402
from bench.machine import describe                                  # noqa: E402
from contract.config import load_config                             # noqa: E402
from sw_model.data import load_dataset                              # noqa: E402
from sw_model.float_ref import FloatNet                             # noqa: E402
from sw_model.golden import FixedPointNet                           # noqa: E402

OUT = os.path.join(ROOT, "bench", "results", "batch_norm.json")
RUNS = os.path.join(ROOT, "runs", "fashion-bn")
# (name, algo, precision, learning rates to try); the name of the run without batch
# normalisation in bench/results/fashion_mnist.json
ALGOS = [
    ("lel-fixed-bn", "lel", "fixed", [2 ** -5, 2 ** -6, 2 ** -7, 2 ** -8], "lel-fixed"),
    ("lel-bn", "lel", "float", [2 ** -7, 2 ** -8, 2 ** -9, 2 ** -10], "lel"),
]
SEEDS = [1, 2]


def _epoch(net, batch, data, seed, epoch):
    """One epoch in lela train's order."""
    order = np.random.default_rng([seed, epoch]).permutation(len(data.x_train))
    for k in range(0, len(order), batch):
        idx = order[k:k + batch]
        net.train_batch(data.x_train[idx], data.y_train[idx])


def _errors(net, data):
    return [round(float((p != data.y_test).mean()) * 100, 2) for p in net.predict(data.x_test)]


def digits(epochs):
    data = load_dataset("digits")
    base = load_config(os.path.join(ROOT, "configs", "digits.toml"))
    runs = {}
    variants = [("fixed, no batch norm", dict(batch_norm=False), "fixed"),
                *[(f"fixed, batch norm, bn_eps_shift {e}", dict(batch_norm=True, bn_eps_shift=e),
                   "fixed") for e in (6, 8, 10, 14)],
                ("float, no batch norm", dict(batch_norm=False), "full"),
                ("float, batch norm, exact backward", dict(batch_norm=True), "full"),
                ("float, batch norm, statistics as constants", dict(batch_norm=True), "const")]
    for name, changes, how in variants:
        cfg = base.replace(**changes)
        if name.startswith("fixed"):
            net = FixedPointNet(cfg)
        else:
            net = FloatNet(cfg, "lel", lr=2.0 ** -cfg.lr_shift, bn_backward=how)
        start, curve = time.time(), []
        for epoch in range(epochs):
            _epoch(net, cfg.batch, data, cfg.seed, epoch)
            curve.append(_errors(net, data))
        runs[name] = {"test_error_per_epoch": curve, "final": curve[-1],
                      "seconds": round(time.time() - start, 1)}
        print(f"{name:45s} " + " / ".join(f"{e:5.2f}" for e in curve[-1]), flush=True)
    for bn in (False, True):
        name = f"fixed, layer by layer, {'batch norm' if bn else 'no batch norm'}"
        cfg = base.replace(batch_norm=bn)
        net, per_stage, stages = FixedPointNet(cfg), epochs // cfg.layers, []
        for layer in range(cfg.layers):
            net.set_frozen([i for i in range(cfg.layers) if i != layer])
            for epoch in range(per_stage):
                _epoch(net, cfg.batch, data, cfg.seed, layer * per_stage + epoch)
            stages.append(_errors(net, data))
        runs[name] = {"epochs_per_layer": per_stage, "test_error_after_each_stage": stages,
                      "final": stages[-1]}
        print(f"{name:45s} " + " / ".join(f"{e:5.2f}" for e in stages[-1]), flush=True)
    return {"config": "configs/digits.toml", "epochs": epochs, "lr": 2.0 ** -base.lr_shift,
            "runs": runs}


def command(algo, precision, lr, seed, epochs, out, holdout=0):
    cmd = fm.command(algo, precision, lr, seed, epochs, out, holdout)
    return cmd[:2] + ["--batch-norm"] + cmd[2:]


def tune_jobs(epochs):
    for name, algo, precision, lrs, _ in ALGOS:
        for lr in lrs:
            out = os.path.join(RUNS, "tune", f"{name}-lr{lr:g}")
            yield command(algo, precision, lr, 1, epochs, out, holdout=10000), out, epochs


def _result(path):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        return None


def best_lr(name, lrs):
    scored = [(res["test_error_per_epoch"][-1][-1], lr) for lr in lrs
              if (res := _result(os.path.join(RUNS, "tune", f"{name}-lr{lr:g}",
                                              "results.json"))) and res["status"] != "diverged"]
    if not scored:
        raise SystemExit(f"no tuning results for {name}: run the fashion tuning first")
    return min(scored)[1]


def final_jobs(epochs):
    for name, algo, precision, lrs, _ in ALGOS:
        lr = best_lr(name, lrs)
        for seed in SEEDS:
            out = os.path.join(RUNS, "final", f"{name}-seed{seed}")
            yield command(algo, precision, lr, seed, epochs, out), out, epochs


def fashion_summary(tune_epochs, epochs):
    with open(fm.OUT) as f:
        without = json.load(f)["final"]
    table = {"arch": fm.ARCH, "batch": 32, "tuning": {}, "final": {}}
    for name, algo, precision, lrs, plain in ALGOS:
        tuning = {}
        for lr in lrs:
            res = _result(os.path.join(RUNS, "tune", f"{name}-lr{lr:g}", "results.json"))
            if res:
                tuning[f"{lr:g}"] = {"error": res["test_error_per_epoch"][-1],
                                     "status": res["status"]}
        table["tuning"][name] = {"epochs": tune_epochs, "holdout_error_per_lr": tuning}
        runs = [r for seed in SEEDS if (r := _result(os.path.join(
            RUNS, "final", f"{name}-seed{seed}", "results.json")))]
        if not runs:
            continue
        table["final"][name] = {
            "algo": algo, "precision": precision, **fm.seed_summary(runs),
            "without_batch_norm": {k: without[plain][k] for k in
                                   ("lr", "test_error_mean", "test_error_spread",
                                    "test_error_per_seed", "samples_per_second")},
            "command": " ".join(command(algo, precision, runs[0]["args"]["lr"], "SEED", epochs,
                                        f"runs/fashion-bn/final/{name}-seedSEED")),
        }
    return table


def save(part, value):
    table = {}
    if os.path.exists(OUT):
        with open(OUT) as f:
            table = json.load(f)
    table.update({"machine": describe(), "date": time.strftime("%Y-%m-%d"), part: value})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(table, f, indent=2)
        f.write("\n")
    print(f"wrote {OUT} ({part})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", nargs="?", default="all",
                        choices=("digits", "fashion", "summary", "all"))
    parser.add_argument("--digits-epochs", type=int, default=20)
    parser.add_argument("--tune-epochs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    if args.part in ("digits", "all"):
        save("digits", digits(args.digits_epochs))
    if args.part in ("fashion", "all"):
        fm.run_all(list(tune_jobs(args.tune_epochs)), args.jobs)
        fm.run_all(list(final_jobs(args.epochs)), args.jobs)
    if args.part in ("fashion", "summary", "all"):
        save("fashion_mnist", fashion_summary(args.tune_epochs, args.epochs))


if __name__ == "__main__":
    main()
