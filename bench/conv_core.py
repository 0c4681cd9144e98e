"""A convolutional network's inference on the RTL core (issue 14): the MAC array's busy share
over INFER, against its bound, with every prediction checked against the golden model.

    python bench/conv_core.py [--arch 1x28x28-c16k5-p2-c32k5-p2-f256] [--batches 2]
                              [--checkpoint runs/.../checkpoint.pkl]
    -> bench/results/conv_core.json

With ``--checkpoint`` (a fixed-point ``lela train`` run of a convolutional network), the
device runs that run's trained weights (written over the bus) and the JSON also holds each
layer's error on the images inferred, equal to the golden model's by construction of the
check.

The whole accelerator in Verilator (the fast harness), built with convolutions for the
network on a 4 x 4 array, its weights drawn on the device (INIT_WEIGHTS), Fashion-MNIST test
images in mini-batches of 32. ``infer_cycles`` and ``mac_busy_cycles`` are the device's
counters; the bound is the beats the layers need (``ceil(F/P)`` filter tiles times
``ceil(B/Q)`` sample groups times the output positions times ``K*K*C + 1`` for a convolution,
the fully connected count for a dense layer, plus the local classifiers' beats).
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np                                                  # noqa: E402

from bench.machine import describe                                  # noqa: E402
from contract.architecture import Conv, parse_arch                  # noqa: E402
from contract.config import NetConfig                               # noqa: E402
from host.driver import Accelerator                                 # noqa: E402
from sim.accelerator_sim import build_accelerator, open_accelerator  # noqa: E402
from lela.files import load_checkpoint                              # noqa: E402
from lela.train import net_config, spec_from_checkpoint             # noqa: E402
from sw_model.data import load_dataset                              # noqa: E402
from sw_model.golden_conv import FixedPointConvNet                  # noqa: E402

OUT = os.path.join(ROOT, "bench", "results", "conv_core.json")


def beats(arch, cfg, batch):
    """MAC-array beats of one INFER of ``batch`` samples: each layer's forward pass and its
    local classifier's scores (a beat per output value and class tile)."""
    p, q = cfg.array_rows, cfg.array_cols
    groups, class_tiles = -(-batch // q), -(-cfg.classes // p)
    total = {}
    for i, layer in enumerate(arch.layers):
        tiles = -(-layer.rows // p)
        if isinstance(layer, Conv):
            _, ho, wo = layer.conv_shape
            forward = tiles * groups * ho * wo * (layer.fan_in + 1)
        else:
            forward = tiles * groups * (layer.fan_in + 1)
        total[f"layer_{i}"] = {"forward": forward,
                               "scores": groups * class_tiles * layer.outputs}
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="1x28x28-c16k5-p2-c32k5-p2-f256")
    parser.add_argument("--batches", type=int, default=2, help="mini-batches of 32 inferred")
    parser.add_argument("--checkpoint", help="a fixed-point conv run's checkpoint.pkl: infer "
                        "with its trained weights (default: the device's initial weights)")
    parser.add_argument("--build", default=os.path.join(ROOT, "build", "bench", "conv_core"))
    args = parser.parse_args()
    data = load_dataset("fashion-mnist")
    trained = None
    if args.checkpoint:
        ck = load_checkpoint(os.path.dirname(os.path.abspath(args.checkpoint)))
        spec = spec_from_checkpoint(ck, os.path.dirname(args.checkpoint))
        args.arch = spec.arch
        # The run's formats and seeds (its classifiers); rates do not enter inference, and
        # the device has one bias rate.
        cfg = net_config(spec, data.features, data.classes).replace(
            array_rows=4, array_cols=4, conv=True, layer_lr_shift=())
        trained = ck
    arch = parse_arch(args.arch)
    if trained is None:
        cfg = NetConfig(arch=arch.sizes(), classes=10, batch=32, array_rows=4, array_cols=4,
                        conv=True)
    x = data.x_test[:32 * args.batches].astype(np.int64)
    t0 = time.time()
    exe = build_accelerator(cfg, args.build)
    build_s = time.time() - t0
    golden = FixedPointConvNet(cfg, arch)
    with open_accelerator(exe, seed=1) as link:
        acc = Accelerator(link)
        acc.configure(cfg, arch)
        acc.init_weights()
        if trained is not None:
            golden.restore(trained["model"])
            acc.write_weights([(np.asarray(w, dtype=np.int64), np.asarray(b, dtype=np.int64))
                               for w, b in zip(golden.weights, golden.biases)])
        before = acc.counters()
        t0 = time.time()
        preds = acc.predict(x)
        wall = time.time() - t0
        after = acc.counters()
    want = np.array(golden.predict(x))
    if not np.array_equal(preds, want):
        raise SystemExit("the core's predictions differ from the golden model's")
    delta = {k: after[k] - before[k] for k in ("infer_cycles", "mac_busy_cycles")}
    need = beats(arch, cfg, 32)
    bound = args.batches * sum(v["forward"] + v["scores"] for v in need.values())
    result = {
        "machine": describe(), "date": time.strftime("%Y-%m-%d"),
        "command": "python bench/conv_core.py " + " ".join(sys.argv[1:]),
        "arch": arch.text, "array": "4x4", "batch": 32, "samples": len(x),
        "infer_cycles": delta["infer_cycles"], "mac_busy_cycles": delta["mac_busy_cycles"],
        "mac_busy_share": round(delta["mac_busy_cycles"] / delta["infer_cycles"], 4),
        "beats_needed": bound, "beats_per_layer_and_batch": need,
        "busy_equals_beats_needed": delta["mac_busy_cycles"] == bound,
        "predictions_equal_golden": True,
        **({"checkpoint": os.path.relpath(args.checkpoint, ROOT),
            "checkpoint_epoch": trained["epoch"],
            "test_error_on_these_images": [round(float((p != data.y_test[:len(x)]).mean()), 4)
                                           for p in preds]} if trained is not None else {}),
        "verilator_build_s": round(build_s, 1), "simulation_wall_s": round(wall, 1),
        "simulated_cycles_per_s": round(delta["infer_cycles"] / wall),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(json.dumps({k: v for k, v in result.items() if k != "beats_per_layer_and_batch"},
                     indent=1))


if __name__ == "__main__":
    main()
