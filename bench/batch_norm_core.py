"""Batch normalisation on the training core (the NORM and NORM_BACK phases), in the Verilator
harness: what it costs in cycles, and a digits run on the simulated core.

``cycles``: one core built for configs/digits.toml with batch normalisation (8 x 8 array,
64-128-128, batch 32) trains the same mini-batches with the ``batch_norm`` register off and on;
the core built without it (the configuration as shipped) trains them too. Reports the TRAIN
cycles per mini-batch of each, the normalisation's share, and the INFER cycles.

``train``: ``lela train --backend rtl --batch-norm`` on digits (configs/digits.toml, batch 32,
``--epochs``), every mini-batch checked against the golden model, beside the golden model's
own run without batch normalisation (the same seed and batch order).

    python bench/batch_norm_core.py [cycles|train|all] [--epochs 20]

-> ``bench/results/batch_norm_core.json``.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.machine import describe                                  # noqa: E402
from contract.config import load_config                             # noqa: E402
from host.driver import Accelerator                                 # noqa: E402
from sim.accelerator_sim import build_accelerator, open_accelerator  # noqa: E402

OUT = os.path.join(ROOT, "bench", "results", "batch_norm_core.json")
BUILD = os.path.join(ROOT, "build", "bench_batch_norm")
CONFIG = os.path.join(ROOT, "configs", "digits.toml")


def _train_cycles(exe, cfg, batches, infer_samples):
    """TRAIN cycles of each mini-batch (``batches`` of ``cfg.batch`` random samples, seed 1)
    and the INFER cycles of ``infer_samples``."""
    rng = np.random.default_rng(1)
    with open_accelerator(exe, seed=1) as link:
        acc = Accelerator(link)
        acc.configure(cfg)
        acc.init_weights()
        cycles = []
        for _ in range(batches):
            x = rng.integers(0, 256, size=(cfg.batch, cfg.arch[0]))
            y = rng.integers(0, cfg.classes, size=cfg.batch)
            before = acc.counters()["train_cycles"]
            acc.train_batch(x, y)
            cycles.append(acc.counters()["train_cycles"] - before)
        before = acc.counters()["infer_cycles"]
        acc.infer(rng.integers(0, 256, size=(infer_samples, cfg.arch[0])))
        return cycles, acc.counters()["infer_cycles"] - before


def cycles(batches=4):
    plain = load_config(CONFIG)
    normalised = plain.replace(batch_norm=True)
    bn_core = build_accelerator(normalised, os.path.join(BUILD, "digits-bn"))
    plain_core = build_accelerator(plain, os.path.join(BUILD, "digits"))
    runs = {}
    for name, exe, cfg in (("plain core", plain_core, plain),
                           ("normalising core, batch_norm off", bn_core, plain),
                           ("normalising core, batch_norm on", bn_core, normalised)):
        train, infer = _train_cycles(exe, cfg, batches, cfg.batch)
        runs[name] = {"train_cycles_per_minibatch": train, "infer_cycles": infer}
        print(f"{name}: TRAIN {train} cycles, INFER {infer}", flush=True)
    on = np.mean(runs["normalising core, batch_norm on"]["train_cycles_per_minibatch"])
    off = np.mean(runs["normalising core, batch_norm off"]["train_cycles_per_minibatch"])
    base = np.mean(runs["plain core"]["train_cycles_per_minibatch"])
    return {"config": "configs/digits.toml", "batches": batches, "runs": runs,
            "train_ratio_on_to_off": round(float(on / off), 4),
            "normalisation_share_of_train": round(float((on - off) / on), 4),
            "off_equals_plain_core": bool(off == base)}


def train(epochs):
    from lela.cli import main as lela
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in (("rtl, batch norm", ["--backend", "rtl", "--batch-norm"]),
                            ("golden, without", [])):
            run_dir = os.path.join(tmp, name.replace(", ", "-").replace(" ", "_"))
            start = time.time()
            code = lela(["train", "--dataset", "digits", "--config", CONFIG, "--epochs",
                         str(epochs), "--out", run_dir, "--quiet", *extra])
            if code:
                raise SystemExit(f"lela train {' '.join(extra)} failed ({code})")
            with open(os.path.join(run_dir, "results.json")) as f:
                res = json.load(f)
            out[name] = {"test_error_per_epoch": res["test_error_per_epoch"],
                         "final_test_error": res["test_error_per_epoch"][-1],
                         "bit_exact": res.get("bit_exact"), "seconds": round(time.time() - start, 1),
                         "weight_hash": res.get("weight_hash"),
                         "golden_weight_hash": res.get("golden_weight_hash")}
            print(f"{name}: final test error per layer {out[name]['final_test_error']} "
                  f"({out[name]['seconds']} s)", flush=True)
    return {"config": "configs/digits.toml", "epochs": epochs, "runs": out}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("part", nargs="?", default="all", choices=["cycles", "train", "all"])
    ap.add_argument("--epochs", type=int, default=20)
    args = ap.parse_args()
    table = {}
    if os.path.exists(OUT):
        with open(OUT) as f:
            table = json.load(f)
    if args.part in ("cycles", "all"):
        table["cycles"] = cycles()
    if args.part in ("train", "all"):
        table["train"] = train(args.epochs)
    table.update(machine=describe(), date=time.strftime("%Y-%m-%d"),
                 command=f"python bench/batch_norm_core.py {args.part} --epochs {args.epochs}")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(table, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
