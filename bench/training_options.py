"""The paper's training options on digits (configs/digits.toml): learning-rate decay and
layer-by-layer training, on the bit-exact golden model (what the device computes), and the
cycles frozen layers save on the device.

    python bench/training_options.py decay       [--epochs 20] [--every 5]
    python bench/training_options.py layerwise   [--epochs 20]
    python bench/training_options.py cycles      [--batches 4]
    python bench/training_options.py             (all three)

-> ``bench/results/training_options.json`` (each part keeps the others' earlier entries).
``decay`` trains with a constant rate and with the shift growing by one every ``--every``
epochs, and reports per epoch the test error of every layer and how much the top layer's
error moves from epoch to epoch. ``layerwise`` trains both layers together for ``--epochs``
epochs, and layer by layer (half the epochs each, the other layer frozen), the same number of
mini-batches. ``cycles`` trains mini-batches on the Verilator harness of digits with no layer,
layer 0 and layer 1 frozen and reads ``train_cycles`` from the device's counters.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.machine import describe                                  # noqa: E402
from contract.config import load_config                             # noqa: E402
from host.driver import Accelerator                                 # noqa: E402
from lela.rtl_backend import build_dir_for                          # noqa: E402
from sim.accelerator_sim import build_accelerator, open_accelerator  # noqa: E402
from sw_model.data import load_dataset                              # noqa: E402
from sw_model.golden import FixedPointNet                           # noqa: E402

RESULTS = os.path.join(ROOT, "bench", "results", "training_options.json")
CONFIG = os.path.join(ROOT, "configs", "digits.toml")


def _test_error(net, data):
    preds = net.predict(data.x_test)
    return [float((p != data.y_test).mean()) for p in preds]


def _epoch(net, cfg, data, epoch):
    """One epoch in lela train's order (a permutation seeded by the config's seed and the
    epoch)."""
    order = np.random.default_rng([cfg.seed, epoch]).permutation(len(data.x_train))
    for k in range(0, len(order), cfg.batch):
        idx = order[k:k + cfg.batch]
        net.train_batch(data.x_train[idx], data.y_train[idx])


def _moves(errors):
    """Epoch-to-epoch moves of the top layer's test error, in points, over the second half."""
    top = [e[-1] for e in errors]
    half = top[len(top) // 2:]
    steps = [abs(b - a) * 100 for a, b in zip(half, half[1:])]
    return {"mean_points": float(np.mean(steps)), "max_points": float(np.max(steps)),
            "mean_error_last_half": float(np.mean(half))}


def decay(args, data):
    runs = {}
    for every in (0, args.every):
        cfg = load_config(CONFIG, lr_decay_epochs=every)
        net = FixedPointNet(cfg)
        errors = []
        for epoch in range(args.epochs):
            net.set_epoch(epoch)
            _epoch(net, cfg, data, epoch)
            errors.append(_test_error(net, data))
        name = "constant" if not every else f"decay every {every}"
        runs[name] = {"lr_decay_epochs": every, "test_error": errors,
                      "final_test_error": errors[-1], "top_layer_moves": _moves(errors),
                      "weight_hash": net.weight_hash()[:16]}
        print(f"{name:>16}: final test error per layer "
              + " ".join(f"{100 * e:5.2f}%" for e in errors[-1])
              + f"; top layer moves {runs[name]['top_layer_moves']['mean_points']:.2f} points an "
              f"epoch on average (max {runs[name]['top_layer_moves']['max_points']:.2f}), mean "
              f"{100 * runs[name]['top_layer_moves']['mean_error_last_half']:.2f}% over the last "
              "half")
    return {"command": f"python bench/training_options.py decay --epochs {args.epochs} "
                       f"--every {args.every}", "epochs": args.epochs, "runs": runs}


def layerwise(args, data):
    cfg = load_config(CONFIG)
    runs = {}
    together = FixedPointNet(cfg)
    for epoch in range(args.epochs):
        _epoch(together, cfg, data, epoch)
    runs["simultaneous"] = {"test_error": _test_error(together, data)}
    staged = FixedPointNet(cfg)
    per_stage = args.epochs // cfg.layers
    stages = []
    for layer in range(cfg.layers):
        staged.set_frozen([i for i in range(cfg.layers) if i != layer])
        for epoch in range(per_stage):
            _epoch(staged, cfg, data, layer * per_stage + epoch)
        stages.append(_test_error(staged, data))
    runs["layerwise"] = {"epochs_per_layer": per_stage, "test_error_after_each_stage": stages,
                         "test_error": stages[-1]}
    for name, run in runs.items():
        print(f"{name:>13}: test error per layer "
              + " ".join(f"{100 * e:5.2f}%" for e in run["test_error"]))
    return {"command": f"python bench/training_options.py layerwise --epochs {args.epochs}",
            "epochs": args.epochs, "runs": runs}


def cycles(args, data):
    cfg = load_config(CONFIG)
    exe = build_accelerator(cfg, os.path.join(ROOT, build_dir_for(cfg)))
    order = np.random.default_rng([cfg.seed, 0]).permutation(len(data.x_train))
    runs = {}
    with open_accelerator(exe) as link:
        acc = Accelerator(link)
        acc.configure(cfg)
        for frozen in ([], [0], [1], [0, 1]):
            acc.init_weights()
            acc.set_frozen(frozen)
            before = acc.counters()
            for k in range(args.batches):
                idx = order[k * cfg.batch:(k + 1) * cfg.batch]
                acc.train_batch(data.x_train[idx], data.y_train[idx])
            after = acc.counters()
            runs[str(frozen)] = {
                "frozen": frozen,
                "train_cycles_per_batch": (after["train_cycles"] - before["train_cycles"])
                / args.batches,
                "weight_words_written_per_batch": (after["ext_write_words"]
                                                   - before["ext_write_words"])
                / cfg.array_rows / args.batches}
        acc.set_frozen([])
    full = runs["[]"]["train_cycles_per_batch"]
    for run in runs.values():
        run["of_all_layers_trained"] = run["train_cycles_per_batch"] / full
        print(f"frozen {str(run['frozen']):>7}: {run['train_cycles_per_batch']:.0f} TRAIN cycles a "
              f"mini-batch ({100 * run['of_all_layers_trained']:.1f} %), "
              f"{run['weight_words_written_per_batch']:.0f} weight words written")
    return {"command": f"python bench/training_options.py cycles --batches {args.batches}",
            "batch": cfg.batch, "batches": args.batches, "runs": runs}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[1:]))
    ap.add_argument("part", nargs="?", choices=("decay", "layerwise", "cycles"),
                    help="one part (default: all)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--every", type=int, default=5, help="decay: epochs per halving")
    ap.add_argument("--batches", type=int, default=4, help="cycles: mini-batches per case")
    args = ap.parse_args(argv)
    data = load_dataset("digits")
    results = {}
    if os.path.exists(RESULTS):
        with open(RESULTS) as f:
            results = json.load(f)
    for name, part in (("decay", decay), ("layerwise", layerwise), ("cycles", cycles)):
        if args.part in (None, name):
            t0 = time.perf_counter()
            results[name] = part(args, data)
            results[name]["seconds"] = round(time.perf_counter() - t0, 1)
            results[name]["machine"] = describe()
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
