"""Training speed of the fixed-point golden model against the float local-error reference.

Both train the same network (784-1000-1000-1000 by default, batch 32) on the same mini-batches
of Fashion-MNIST (random bytes if the data set is not installed). The two are timed in
alternating rounds in one process, so machine noise hits both alike; the reported ratio is the
median of the per-round ratios. Writes bench/results/golden_speed.json.

    python bench/golden_speed.py [--arch 784-1000-1000-1000] [--batches 60] [--rounds 5]
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.machine import describe         # noqa: E402
from contract.config import NetConfig            # noqa: E402
from sw_model.float_ref import FloatNet      # noqa: E402
from sw_model.golden import FixedPointNet    # noqa: E402


def batches(arch, batch, count):
    try:
        from sw_model.data import load_dataset
        d = load_dataset("fashion-mnist")
        if d.features != arch[0]:
            raise ValueError
        source = "fashion-mnist"
        x, y = d.x_train, d.y_train
    except Exception:
        rng = np.random.default_rng(0)
        source = "random bytes"
        x = rng.integers(0, 256, (batch * count, arch[0]), dtype=np.uint8)
        y = rng.integers(0, 10, batch * count)
    return source, [(x[k * batch:(k + 1) * batch], y[k * batch:(k + 1) * batch])
                    for k in range(count)]


def timed(net, data):
    t0 = time.perf_counter()
    for x, y in data:
        net.train_batch(x, y)
    return time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="784-1000-1000-1000")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=60, help="mini-batches per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results",
                                                      "golden_speed.json"))
    args = parser.parse_args()
    arch = tuple(int(v) for v in args.arch.split("-"))
    cfg = NetConfig.from_dict(dict(arch=arch, batch=args.batch))
    source, data = batches(arch, args.batch, args.batches)
    fixed = FixedPointNet(cfg)
    floats = {dt: FloatNet(cfg, "lel", lr=2.0 ** -8, dtype=dt)
              for dt in (np.float32, np.float64)}
    timed(fixed, data[:3])
    for net in floats.values():
        timed(net, data[:3])
    rounds = []
    for r in range(args.rounds):
        t_fixed = timed(fixed, data)
        t32 = timed(floats[np.float32], data)
        t64 = timed(floats[np.float64], data)
        n = args.batch * args.batches
        rounds.append({"fixed": n / t_fixed, "float32": n / t32, "float64": n / t64})
        print(f"round {r + 1}: fixed {n / t_fixed:7.0f}  float32 {n / t32:7.0f}  "
              f"float64 {n / t64:7.0f} samples/s", flush=True)
    ratio32 = statistics.median(x["fixed"] / x["float32"] for x in rounds)
    ratio64 = statistics.median(x["fixed"] / x["float64"] for x in rounds)
    result = {
        "command": "python bench/golden_speed.py " + " ".join(sys.argv[1:]),
        "machine": describe(),
        "date": time.strftime("%Y-%m-%d"),
        "arch": list(arch), "batch": args.batch, "data": source,
        "samples_per_second_median": {k: statistics.median(x[k] for x in rounds)
                                      for k in rounds[0]},
        "rounds": rounds,
        "fixed_over_float32": round(ratio32, 3),
        "fixed_over_float64": round(ratio64, 3),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"fixed-point golden model / float32 reference: {ratio32:.2f}x   "
          f"/ float64 reference: {ratio64:.2f}x")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
