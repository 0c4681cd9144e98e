"""Digits learning-rate grid behind lela.train's default learning rates (issue 13).

Every algorithm and precision of ``lela train`` on the default digits network (64-128-128,
batch 32), 10 epochs on the first 1 077 training images, top-layer error on the held-out last
360 (``--holdout 360``), seeds 1 and 2, learning rates 2**-5 .. 2**-10. Each run is what
``lela train --dataset digits --holdout 360 --epochs 10 --lr LR --seed S`` trains, without its
divergence check (a diverged rate shows as ~89 % error). Writes bench/results/digits_lr.json.

    python bench/digits_lr.py
"""

import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from bench.machine import describe                                  # noqa: E402
from lela.train import RunSpec, build_model, evaluate, net_config   # noqa: E402
from sw_model.data import load_dataset                              # noqa: E402

OUT = os.path.join(ROOT, "bench", "results", "digits_lr.json")
RUNS = [("fixed", "lel"), ("fixed", "lel-sign"), ("float", "lel"), ("float", "lel-sign"),
        ("float", "lel-train"), ("float", "bp"), ("float", "fa")]
SHIFTS = range(5, 11)
SEEDS = (1, 2)
EPOCHS = 10


def held_out_error(data, precision, algo, lr, seed):
    spec = RunSpec(precision=precision, algo=algo, lr=lr, seed=seed)
    cfg = net_config(spec, data.features, data.classes)
    model = build_model(spec, cfg, log=lambda *a: None)
    for epoch in range(EPOCHS):
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(data.x_train))
        for k in range(0, len(order), cfg.batch):
            idx = order[k:k + cfg.batch]
            model.train_batch(data.x_train[idx], data.y_train[idx])
    errors, _ = evaluate(model, data.x_test, data.y_test, data.classes)
    return errors[-1]


def main():
    data = load_dataset("digits").holdout(360)
    table = {"machine": describe(), "date": time.strftime("%Y-%m-%d"), "arch": "64-128-128",
             "epochs": EPOCHS, "seeds": list(SEEDS), "holdout": 360,
             "top_layer_holdout_error": {}}
    with np.errstate(all="ignore"):
        for precision, algo in RUNS:
            row = {}
            for shift in SHIFTS:
                errs = [held_out_error(data, precision, algo, 2.0 ** -shift, s) for s in SEEDS]
                row[f"2^-{shift}"] = [round(100 * e, 2) for e in errs]
                print(precision, algo, f"2^-{shift}", row[f"2^-{shift}"], flush=True)
            table["top_layer_holdout_error"][f"{algo} ({precision})"] = row
    with open(OUT, "w") as f:
        json.dump(table, f, indent=2)
        f.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
