"""A convolutional network's training on the RTL core (issue 14): the MAC array's busy share
over TRAIN, against the beats the steps need, the weight traffic against the traffic model, and
every mini-batch checked against the golden model.

    python bench/conv_train.py [--arch 1x8x8-c8k3-p2-f32] [--dataset digits] [--samples N]
    -> bench/results/conv_train.json (one entry per arch and data set, others kept)

The whole accelerator in Verilator (the fast harness), built with convolutions for the
network on a 4 x 4 array, its weights drawn on the device (INIT_WEIGHTS), the training set's
first ``--samples`` samples (default: all of them, one epoch) in mini-batches of 32, in order.
Each mini-batch's correct counts per layer must equal the golden model's, and the weights at
the end. ``train_cycles`` and ``mac_busy_cycles`` are the device's counters over the TRAIN
commands only; ``beats needed`` counts, per layer and mini-batch, the forward pass
(``T*G*Ho*Wo*(J+1)`` for a convolution, ``T*G*(J+1)`` for a dense layer), the local
classifier's scores (``G*CT*N``), the back projection (``ceil(N/P)*G*C``) and the weight
gradient (``T*C*K*ceil(K/Q)*B*Ho*Wo`` for a convolution, ``T*ceil(J/Q)*B`` for a dense layer),
with ``N`` the layer's (flattened) output, ``T`` its filter or neuron tiles, ``G`` the sample
groups, ``CT`` the class tiles and ``C`` the classes.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np                                                  # noqa: E402

from bench.conv_core import beats as inference_beats                # noqa: E402
from bench.machine import describe                                  # noqa: E402
from contract.architecture import Conv, parse_arch                  # noqa: E402
from contract.config import NetConfig                               # noqa: E402
from host.driver import Accelerator                                 # noqa: E402
from sim.accelerator_sim import build_accelerator, open_accelerator  # noqa: E402
from sw_model.data import load_dataset                              # noqa: E402
from sw_model.golden_conv import FixedPointConvNet                  # noqa: E402
from sw_model.traffic import local_error_buffer, local_error_traffic  # noqa: E402

OUT = os.path.join(ROOT, "bench", "results", "conv_train.json")
ROWS = COLS = 4
BATCH = 32


def ceil(a, b):
    return -(-a // b)


def training_beats(arch, classes, batch):
    """MAC-array beats of one TRAIN of ``batch`` samples, per layer and step: the forward
    pass and scores as INFER runs them (bench/conv_core.py), the back projection and the
    weight gradient."""
    cfg = NetConfig(arch=arch.sizes(), classes=classes, batch=batch, array_rows=ROWS,
                    array_cols=COLS, conv=True)
    beats = inference_beats(arch, cfg, batch)
    groups = ceil(batch, COLS)
    for i, layer in enumerate(arch.layers):
        tiles = ceil(layer.rows, ROWS)
        if isinstance(layer, Conv):
            _, ho, wo = layer.conv_shape
            gradient = (tiles * layer.in_shape[0] * layer.kernel * ceil(layer.kernel, COLS)
                        * batch * ho * wo)
        else:
            gradient = tiles * ceil(layer.fan_in, COLS) * batch
        beats[f"layer_{i}"].update(back=ceil(layer.outputs, ROWS) * groups * classes,
                                   gradient=gradient)
    return beats


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="1x8x8-c8k3-p2-f32")
    parser.add_argument("--dataset", default="digits", choices=["digits", "fashion-mnist"])
    parser.add_argument("--samples", type=int, default=0,
                        help="training samples (default: the whole training set, one epoch)")
    parser.add_argument("--build", default=os.path.join(ROOT, "build", "bench", "conv_train"))
    args = parser.parse_args()
    data = load_dataset(args.dataset)
    arch = parse_arch(args.arch)
    if arch.features != data.features:
        raise SystemExit(f"conv_train: --arch {arch.text} takes {arch.features} values, "
                         f"{args.dataset} has {data.features}")
    samples = args.samples or len(data.x_train)
    x = data.x_train[:samples].astype(np.int64)
    y = data.y_train[:samples]
    cfg = NetConfig(arch=arch.sizes(), classes=data.classes, batch=BATCH, array_rows=ROWS,
                    array_cols=COLS, conv=True)
    t0 = time.time()
    exe = build_accelerator(cfg, os.path.join(args.build, arch.text))
    build_s = time.time() - t0
    golden = FixedPointConvNet(cfg, arch)
    need = training_beats(arch, cfg.classes, BATCH)
    bound = 0
    with open_accelerator(exe, seed=1) as link:
        acc = Accelerator(link)
        acc.configure(cfg, arch)
        acc.init_weights()
        before = acc.counters()
        t0 = time.time()
        for k in range(0, samples, BATCH):
            xb, yb = x[k:k + BATCH], y[k:k + BATCH]
            got = acc.train_batch(xb, yb)
            if list(got) != list(golden.train_batch(xb, yb)):
                raise SystemExit(f"mini-batch {k // BATCH}: correct counts differ from the "
                                 "golden model's")
            bound += sum(sum(v.values()) for v in training_beats(arch, cfg.classes,
                                                                 len(xb)).values())
        wall = time.time() - t0
        after = acc.counters()
        for (w, b), gw, gb in zip(acc.read_weights(), golden.weights, golden.biases):
            if not (np.array_equal(w, gw) and np.array_equal(b, gb)):
                raise SystemExit("the weights after the run differ from the golden model's")
    delta = {k: after[k] - before[k] for k in ("train_cycles", "mac_busy_cycles",
                                               "ext_read_words", "ext_write_words")}
    batches = ceil(samples, BATCH)
    model = local_error_traffic(arch, cfg.classes, BATCH, local_error_buffer(arch, BATCH))
    entry = {
        "machine": describe(), "date": time.strftime("%Y-%m-%d"),
        "command": "python bench/conv_train.py " + " ".join(sys.argv[1:]),
        "arch": arch.text, "dataset": args.dataset, "array": f"{ROWS}x{COLS}", "batch": BATCH,
        "samples": samples, "batches": batches,
        "train_cycles": delta["train_cycles"], "mac_busy_cycles": delta["mac_busy_cycles"],
        "mac_busy_share": round(delta["mac_busy_cycles"] / delta["train_cycles"], 4),
        "beats_needed": bound, "busy_equals_beats_needed": delta["mac_busy_cycles"] == bound,
        "beats_per_layer_and_full_batch": need,
        "weight_words_read": delta["ext_read_words"],
        "weight_words_written": delta["ext_write_words"],
        "traffic_model_per_batch": {"read": model.weight_read, "write": model.weight_write},
        "traffic_equals_model": (delta["ext_read_words"] == batches * model.weight_read
                                 and delta["ext_write_words"] == batches * model.weight_write),
        "correct_counts_and_weights_equal_golden": True,
        "verilator_build_s": round(build_s, 1), "simulation_wall_s": round(wall, 1),
        "simulated_cycles_per_s": round(delta["train_cycles"] / wall),
    }
    runs = []
    if os.path.exists(OUT):
        with open(OUT) as f:
            runs = [r for r in json.load(f)["runs"]
                    if (r["arch"], r["dataset"]) != (entry["arch"], entry["dataset"])]
    runs.append(entry)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"runs": runs}, f, indent=2)
        f.write("\n")
    print(json.dumps({k: v for k, v in entry.items()
                      if k not in ("beats_per_layer_and_full_batch", "machine")}, indent=1))


if __name__ == "__main__":
    main()
