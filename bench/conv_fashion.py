"""Convolutional networks trained with local errors on Fashion-MNIST (issue 14): fixed point
(golden model) against the float references, on one conv net sized for these machines.

Like bench/fashion_mnist.py: a learning-rate tuning (``--tune-epochs`` epochs on the first
50,000 training images, tested on the held-out last 10,000, seed 1), then ``--epochs`` epochs at
the best rate for seeds 1 and 2 on the full training set. Every run is a plain ``lela train``
command; finished runs are skipped, interrupted ones resume.

The ``epochs`` phase chooses the epoch count on the held-out part too: seed 1 at the final rate
for ``--epochs`` epochs on the first 50,000 images; the count is the epoch from MIN_EPOCHS on with
the lowest held-out top-layer error (the earlier on a tie). The learning-rate schedule depends on
the epoch index only, so the final table reports the final runs' test error after that many
epochs (runs of ``--epochs`` epochs or more).

    python bench/conv_fashion.py [tune|epochs|final|summary|all] [--algos lel-fixed,lel]

-> ``bench/results/conv_fashion.json``.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import fashion_mnist as fm                               # noqa: E402
from bench.machine import describe                                  # noqa: E402

OUT = os.path.join(ROOT, "bench", "results", "conv_fashion.json")
RUNS = os.path.join(ROOT, "runs", "fashion-conv")
ARCH = "1x28x28-c16k5-p2-c32k5-p2-f256"
# (name, algo, precision, learning rates to try, further lela train options)
TOP3 = ["--layer-lr-shift", "0,0,3"]        # the dense layer on 1568 conv outputs 8x slower
DECAY4 = ["--lr-decay", "4"]
C1TOP3_D4 = ["--layer-lr-shift", "1,0,3"] + DECAY4
ALGOS = [
    ("lel-fixed", "lel", "fixed", [2 ** -8, 2 ** -9, 2 ** -10], []),
    ("lel-fixed-top3", "lel", "fixed", [2 ** -7, 2 ** -8], TOP3),
    # the top3 finals stopped on 4 saturated weights of the first convolution: half its rate
    ("lel-fixed-c1top3", "lel", "fixed", [2 ** -8], ["--layer-lr-shift", "1,0,3"]),
    ("lel", "lel", "float", [2 ** -8, 2 ** -9, 2 ** -10], []),
    ("lel-top3", "lel", "float", [2 ** -7, 2 ** -8], TOP3),
    ("lel-sign", "lel-sign", "float", [2 ** -8, 2 ** -9, 2 ** -10], []),
    ("lel-train", "lel-train", "float", [2 ** -8, 2 ** -9, 2 ** -10], []),
    ("bp", "bp", "float", [2 ** -8, 2 ** -9, 2 ** -10], []),
    ("fa", "fa", "float", [2 ** -9, 2 ** -10, 2 ** -11], []),
    # The 10-epoch table: one recipe for every local-error run (first convolution at half the
    # rate, the dense top layer 8 times slower, every rate halved after epochs 4 and 8), the
    # float references tuned on it; backprop and feedback alignment with the same decay.
    ("lel-fixed-c1top3-d4", "lel", "fixed", [2 ** -8], C1TOP3_D4),
    ("lel-c1top3-d4", "lel", "float", [2 ** -8, 2 ** -9, 2 ** -10], C1TOP3_D4),
    # sign-concordant feedback diverged at 2**-8..2**-10 in tuning: two smaller rates after them
    ("lel-sign-c1top3-d4", "lel-sign", "float", [2 ** -8, 2 ** -9, 2 ** -10, 2 ** -11, 2 ** -12],
     C1TOP3_D4),
    ("lel-train-c1top3-d4", "lel-train", "float", [2 ** -8, 2 ** -9, 2 ** -10], C1TOP3_D4),
    ("bp-d4", "bp", "float", [2 ** -8, 2 ** -9, 2 ** -10], DECAY4),
    ("fa-d4", "fa", "float", [2 ** -9, 2 ** -10, 2 ** -11], DECAY4),
]
SEEDS = [1, 2]
MIN_EPOCHS = 10                                  # the "10+ epochs"


def command(algo, precision, lr, seed, epochs, out, holdout=0, extra=()):
    cmd = fm.command(algo, precision, lr, seed, epochs, out, holdout)
    cmd[cmd.index("--arch") + 1] = ARCH
    if precision == "float" and "--float-dtype" not in cmd:
        # float32 in the final runs too (fashion_mnist.py's use float64): conv references train
        # about twice as fast in it, which is what fits two seeds of five references on 2 cores.
        cmd += ["--float-dtype", "float32"]
    return cmd + list(extra)


def _result(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _selected(names):
    return [a for a in ALGOS if not names or a[0] in names]


def tune_jobs(names, epochs):
    for name, algo, precision, lrs, extra in _selected(names):
        for lr in lrs:
            out = os.path.join(RUNS, "tune", f"{name}-lr{lr:g}")
            yield command(algo, precision, lr, 1, epochs, out, 10000, extra), out, epochs


def best_lr(name, lrs):
    scored = [(res["test_error_per_epoch"][-1][-1], lr) for lr in lrs
              if (res := _result(os.path.join(RUNS, "tune", f"{name}-lr{lr:g}",
                                              "results.json"))) and res["status"] != "diverged"]
    return min(scored)[1] if scored else None


def _tuned(names):
    """The selected runs with their final rate (a single rate is not tuned); those without a
    tuning result yet are skipped, saying so."""
    for name, algo, precision, lrs, extra in _selected(names):
        lr = lrs[0] if len(lrs) == 1 else best_lr(name, lrs)
        if lr is None:
            print(f"{name}: no tuning result yet, skipped")
            continue
        yield name, algo, precision, lr, extra


def epoch_jobs(names, epochs):
    for name, algo, precision, lr, extra in _tuned(names):
        out = os.path.join(RUNS, "epochs", name)
        yield command(algo, precision, lr, 1, epochs, out, 10000, extra), out, epochs


def chosen_epochs(result):
    """The epoch count from MIN_EPOCHS on with the lowest held-out top-layer error (the fewer
    epochs on a tie), or None before the run has reached MIN_EPOCHS."""
    errors = [e[-1] for e in result["test_error_per_epoch"]]
    if len(errors) < MIN_EPOCHS:
        return None
    return min(range(MIN_EPOCHS, len(errors) + 1), key=lambda n: (errors[n - 1], n))


def final_jobs(names, epochs):
    for name, algo, precision, lr, extra in _tuned(names):
        for seed in SEEDS:
            out = os.path.join(RUNS, "final", f"{name}-seed{seed}")
            yield command(algo, precision, lr, seed, epochs, out, extra=extra), out, epochs


def summary(tune_epochs, epochs):
    table = {"machine": describe(), "date": time.strftime("%Y-%m-%d"), "arch": ARCH,
             "batch": 32, "tuning": {}, "epoch_choice": {}, "final": {}}
    for name, algo, precision, lrs, extra in ALGOS:
        tuning = {f"{lr:g}": {"error": res["test_error_per_epoch"][-1], "status": res["status"]}
                  for lr in lrs if (res := _result(os.path.join(
                      RUNS, "tune", f"{name}-lr{lr:g}", "results.json")))}
        if tuning:
            table["tuning"][name] = {"epochs": tune_epochs, "holdout_error_per_lr": tuning}
        held_out = _result(os.path.join(RUNS, "epochs", name, "results.json"))
        chosen = None
        if held_out and held_out["status"] == "complete":
            chosen = chosen_epochs(held_out)
            table["epoch_choice"][name] = {
                "lr": held_out["args"]["lr"], "seed": held_out["args"]["seed"],
                "holdout_error_per_epoch": [round(e[-1] * 100, 3)
                                            for e in held_out["test_error_per_epoch"]],
                "from_epoch": MIN_EPOCHS, "chosen_epochs": chosen}
        # Finished runs only: an interrupted one's last epoch is not the final table's.
        runs = [r for seed in SEEDS if (r := _result(os.path.join(
            RUNS, "final", f"{name}-seed{seed}", "results.json")))
                and r["status"] != "incomplete"]
        if chosen is not None and any(r["epochs"] < chosen for r in runs):
            chosen = None                  # a final run too short for the held-out choice
        if runs:
            table["final"][name] = {
                "algo": algo, "precision": precision, **fm.seed_summary(runs, chosen),
                "epochs_chosen_on_holdout": chosen is not None,
                "command": " ".join(command(algo, precision, runs[0]["args"]["lr"], "SEED",
                                            chosen or runs[0]["epochs"],
                                            f"runs/fashion-conv/final/{name}-seedSEED",
                                            extra=extra))}
    # Runs made on another machine (their run directories are not here) keep their entries.
    earlier = _result(OUT) or {}
    for part in ("tuning", "epoch_choice", "final"):
        table[part] = {**earlier.get(part, {}), **table[part]}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(table, f, indent=2)
        f.write("\n")
    print(f"wrote {OUT}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", nargs="?", default="all",
                        choices=("tune", "epochs", "final", "summary", "all"))
    parser.add_argument("--algos", default="", help="comma-separated names (default: all)")
    parser.add_argument("--tune-epochs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    names = [n for n in args.algos.split(",") if n]
    if args.phase in ("tune", "all"):
        fm.run_all(list(tune_jobs(names, args.tune_epochs)), args.jobs)
    # (At MIN_EPOCHS or fewer there is no count to choose: ``all`` runs no held-out run then.)
    if args.phase == "epochs" or (args.phase == "all" and args.epochs > MIN_EPOCHS):
        fm.run_all(list(epoch_jobs(names, args.epochs)), args.jobs)
    if args.phase in ("final", "all"):
        fm.run_all(list(final_jobs(names, args.epochs)), args.jobs)
    if args.phase in ("summary", "all"):
        summary(args.tune_epochs, args.epochs)


if __name__ == "__main__":
    main()
