"""Benchmarks of the whole accelerator in Verilator, from its own counters.

    python bench/accelerator.py utilisation   ->  bench/results/accelerator_digits.json
    python bench/accelerator.py traffic       ->  bench/results/accelerator_traffic.json
    python bench/accelerator.py               (both)
    python bench/accelerator.py traffic --config configs/ulx3s.toml --arch 64 128 128
        ->  bench/results/accelerator_traffic_ulx3s_64x128x128.json

``utilisation`` trains one epoch of digits (configs/digits.toml) through the host driver and
reports the share of cycles in which the MAC array took a beat (host loading of every
mini-batch included), cycles per sample against the ideal (MAC operations / lanes), and the
simulation's throughput and the share of wall time spent outside the simulator (Python).
``traffic`` trains mini-batches of random data on a 784-256-256-256 network at batch 32
(configs/digits.toml's formats and 8 x 8 array; ``--config`` and ``--arch`` choose others) and
reports the weight-bus words moved per mini-batch beside the backprop model of docs/TRAFFIC.md.
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
from host.driver import Accelerator                                   # noqa: E402
from contract.config import load_config                                  # noqa: E402
from lela.rtl_backend import build_dir_for                            # noqa: E402
from sim.accelerator_sim import build_accelerator, open_accelerator  # noqa: E402
from sw_model.data import load_dataset                                # noqa: E402
from sw_model.golden import FixedPointNet                             # noqa: E402
from sw_model.traffic import backprop_traffic, local_error_traffic   # noqa: E402

RESULTS = os.path.join(ROOT, "bench", "results")
DEFAULT_TRAFFIC_CONFIG = "configs/digits.toml"
DEFAULT_TRAFFIC_ARCH = [784, 256, 256, 256]


def mac_operations(cfg, samples):
    """Multiply-accumulates of one training pass: forward, scores, back projection, gradient."""
    ops = 0
    for i in range(cfg.layers):
        n, j = cfg.neurons(i), cfg.fan_in(i)
        ops += 2 * n * j + 2 * n * cfg.classes
    return ops * samples


def delta(after, before):
    return {k: after[k] - before[k] for k in after}


def utilisation(args):
    cfg = load_config(os.path.join(ROOT, "configs", "digits.toml"))
    t0 = time.perf_counter()
    exe = build_accelerator(cfg, os.path.join(ROOT, build_dir_for(cfg)))
    build_seconds = time.perf_counter() - t0
    data = load_dataset("digits")
    order = np.random.default_rng([cfg.seed, 0]).permutation(len(data.x_train))
    batches = [order[k:k + cfg.batch] for k in range(0, len(order), cfg.batch)]
    with open_accelerator(exe) as link:
        acc = Accelerator(link)
        acc.configure(cfg)
        acc.init_weights()
        before, h0, w0 = acc.counters(), link.harness_seconds, time.perf_counter()
        for idx in batches:
            acc.train_batch(data.x_train[idx], data.y_train[idx])
        after, h1, w1 = acc.counters(), link.harness_seconds, time.perf_counter()
        exits = []
        for threshold in (None, 1024, 512, 256, 0):
            c0 = acc.counters()
            preds, layer = acc.infer(data.x_test, exit_threshold=threshold)
            c1 = acc.counters()
            final = preds[layer, np.arange(len(layer))]
            exits.append({"threshold": threshold,
                          "accuracy": float((final == data.y_test).mean()),
                          "exit_layer_histogram": np.bincount(layer, minlength=cfg.layers)
                          .tolist(),
                          "infer_cycles": c1["infer_cycles"] - c0["infer_cycles"],
                          "skipped_beats": c1["exit_skipped_beats"] - c0["exit_skipped_beats"]})
    d = delta(after, before)
    n = len(order)
    lanes = cfg.array_rows * cfg.array_cols
    ideal = mac_operations(cfg, n) / lanes
    wall, sim = w1 - w0, h1 - h0
    result = {
        "command": "python bench/accelerator.py utilisation",
        "machine": describe(),
        "config": "configs/digits.toml", "arch": list(cfg.arch), "batch": cfg.batch,
        "array": [cfg.array_rows, cfg.array_cols], "samples": n, "minibatches": len(batches),
        "counters": d,
        "mac_utilisation": d["mac_busy_cycles"] / d["cycles"],
        "mac_utilisation_while_training": d["mac_busy_cycles"] / d["train_cycles"],
        "cycles_per_sample": d["cycles"] / n,
        "ideal_cycles_per_sample": ideal / n,
        "cycles_over_ideal": d["cycles"] / ideal,
        "samples_per_second": n / wall,
        "simulated_cycles_per_second": d["cycles"] / wall,
        "harness_cycles_per_second": d["cycles"] / sim,
        "python_share_of_wall_time": 1 - sim / wall,
        "build_seconds": build_seconds,
        "early_exit_after_one_epoch": exits,
    }
    _write("accelerator_digits.json", result)
    print(f"digits epoch: {n} samples, {d['cycles']} cycles, MAC busy "
          f"{100 * result['mac_utilisation']:.1f} % ({100 * result['mac_utilisation_while_training']:.1f} % "
          f"of TRAIN cycles); {result['cycles_per_sample']:.0f} cycles/sample vs ideal "
          f"{result['ideal_cycles_per_sample']:.0f}; {result['samples_per_second']:.0f} samples/s, "
          f"{result['simulated_cycles_per_second'] / 1e3:.0f} k cycles/s, Python "
          f"{100 * result['python_share_of_wall_time']:.0f} % of wall time")
    for e in exits:
        print(f"  inference, exit threshold {e['threshold']}: accuracy {100 * e['accuracy']:.2f} %, "
              f"exits per layer {e['exit_layer_histogram']}, {e['infer_cycles']} cycles, "
              f"{e['skipped_beats']} MAC beats saved")


def traffic(args):
    cfg = load_config(os.path.join(ROOT, args.config), arch=args.arch)
    inputs = cfg.arch[0]
    exe = build_accelerator(cfg, os.path.join(ROOT, build_dir_for(cfg)))
    rng = np.random.default_rng(0)
    per_batch = []
    golden = FixedPointNet(cfg)
    with open_accelerator(exe, read_latency=8, stall=0.1) as link:
        acc = Accelerator(link)
        acc.configure(cfg)
        acc.init_weights()
        for _ in range(args.minibatches):
            x = rng.integers(0, 256, size=(cfg.batch, inputs))
            y = rng.integers(0, 10, size=cfg.batch)
            before = acc.counters()
            if acc.train_batch(x, y) != golden.train_batch(x, y):
                raise SystemExit("accelerator and golden model disagree")
            per_batch.append(delta(acc.counters(), before))
        bit_exact = acc.weight_hash() == golden.weight_hash()
    b = cfg.batch
    measured = {"weight_read": per_batch[-1]["ext_read_words"],
                "weight_write": per_batch[-1]["ext_write_words"],
                "input_read": b * inputs + b}
    measured["total"] = sum(measured.values())
    buffer = max(b * (cfg.arch[i] + cfg.arch[i + 1]) for i in range(cfg.layers))
    buffer = max(buffer, b * (cfg.arch[-1] + cfg.classes))
    lel = local_error_traffic(cfg.arch, cfg.classes, b, buffer)
    bp = backprop_traffic(cfg.arch, cfg.classes, b, buffer)
    default = (args.config, args.arch) == (DEFAULT_TRAFFIC_CONFIG, DEFAULT_TRAFFIC_ARCH)
    command = f"python bench/accelerator.py traffic --minibatches {args.minibatches}"
    if not default:
        command += f" --config {args.config} --arch {' '.join(map(str, cfg.arch))}"
    result = {
        "command": command,
        "machine": describe(),
        "config": args.config, "array": [cfg.array_rows, cfg.array_cols],
        "arch": list(cfg.arch), "batch": b, "onchip_words": buffer,
        "measured_per_minibatch": measured,
        "counters_per_minibatch": per_batch,
        "local_error_model": lel.as_dict(),
        "backprop_model": bp.as_dict(),
        "measured_equals_local_error_model": measured["total"] == lel.total,
        "backprop_over_measured": bp.total / measured["total"],
        "cycles_per_minibatch": per_batch[-1]["cycles"],
        "bit_exact_with_golden_model": bit_exact,
    }
    name = "accelerator_traffic.json" if default else (
        f"accelerator_traffic_{os.path.splitext(os.path.basename(args.config))[0]}_"
        f"{'x'.join(map(str, cfg.arch))}.json")
    _write(name, result)
    print(f"{'-'.join(map(str, cfg.arch))} batch {b}: measured {measured['total']} words per "
          f"mini-batch (model {lel.total}); backprop model {bp.total}: ratio "
          f"{result['backprop_over_measured']:.2f}; weights bit-exact with the golden model: "
          f"{bit_exact}")


def _write(name, result):
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, name), "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", choices=("utilisation", "traffic", "all"),
                        default="all")
    parser.add_argument("--minibatches", type=int, default=3,
                        help="mini-batches for the traffic measurement")
    parser.add_argument("--config", default=DEFAULT_TRAFFIC_CONFIG,
                        help="config of the traffic measurement (its formats and array)")
    parser.add_argument("--arch", type=int, nargs="+", default=DEFAULT_TRAFFIC_ARCH,
                        help="network of the traffic measurement")
    args = parser.parse_args(argv)
    if args.what in ("utilisation", "all"):
        utilisation(args)
    if args.what in ("traffic", "all"):
        traffic(args)


if __name__ == "__main__":
    main()
