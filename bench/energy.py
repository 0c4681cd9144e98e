"""Energy per training sample: local errors from the device's counters, local errors and backprop
from the traffic model (docs/TRAFFIC.md), split into MAC, on-chip SRAM and off-chip DRAM, at the
45 nm energies of Horowitz, ISSCC 2014 (host/energy.py says what is counted and what is not).

    python bench/energy.py   ->  bench/results/energy.json, docs/energy_per_sample.png

Seconds; no simulation. It reads counters recorded by earlier runs:

* 64-128-128, configs/ulx3s.toml (4 x 4 array, batch 32), weights in on-chip block RAM:
  bench/results/accelerator_traffic_ulx3s_64x128x128.json, from
  ``python bench/accelerator.py traffic --config configs/ulx3s.toml --arch 64 128 128``
  (Verilator, about a minute).
* 784-256-256-256 and 784-1000-1000-1000, configs/ulx3s.toml's formats and array, weights in the
  SDRAM: bench/results/board_sdram_<arch>.json (``python bench/board_sdram.py``), and
  784-256-256-256 with its weights in block RAM: board_bram_784x256x256x256.json.

Each network's chip, for the models, holds its working buffer (host.energy.working_buffer_words)
and, when its weights are on chip, all of local errors' weights: backprop gets the same chip.
The bench checks that the local-error model's weight words equal the counters' and its MAC
beats equal ``mac_busy_cycles``, and stops if not.
"""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.machine import describe                                         # noqa: E402
from contract.config import load_config                                     # noqa: E402
from host.energy import (HOROWITZ_45NM_PJ, SOURCE, array_widths, counter_accesses,  # noqa: E402
                         mac_beats, mac_pj, minibatch_energy, model_accesses,
                         working_buffer_words)

RESULTS = os.path.join(ROOT, "bench", "results")
PLOT = os.path.join(ROOT, "docs", "energy_per_sample.png")

#: (name, config, network, weights on chip, recorded counters, where the per-mini-batch
#: counters are in that file)
CASES = [
    ("64-128-128 (digits), weights on chip", "configs/ulx3s.toml", [64, 128, 128], True,
     "accelerator_traffic_ulx3s_64x128x128.json", "counters_per_minibatch"),
    ("784-256-256-256, weights in SDRAM", "configs/ulx3s.toml", [784, 256, 256, 256], False,
     "board_sdram_784x256x256x256.json", "minibatches"),
    ("784-256-256-256, weights on chip", "configs/ulx3s.toml", [784, 256, 256, 256], True,
     "board_bram_784x256x256x256.json", "minibatches"),
    ("784-1000-1000-1000, weights in SDRAM", "configs/ulx3s.toml", [784, 1000, 1000, 1000], False,
     "board_sdram_784x1000x1000x1000.json", "minibatches"),
]
COUNTERS = ("mac_busy_cycles", "ext_read_words", "ext_write_words")
COLUMNS = ("local_errors_measured", "local_errors_model", "backprop_model")


def recorded_counters(name, key):
    """The counters of one mini-batch from a recorded result, checked equal in every
    mini-batch recorded."""
    with open(os.path.join(RESULTS, name)) as f:
        runs = json.load(f)[key]
    counters = [{k: run[k] for k in COUNTERS} for run in runs]
    if any(c != counters[0] for c in counters):
        raise SystemExit(f"{name}: the mini-batches' counters differ: {counters}")
    return counters[0], len(counters)


def _accesses_dict(acc):
    return {"macs": acc.macs, "mac_ops": acc.mac_ops,
            "sram_words": {k: {"words": w, "bits": b} for k, (w, b) in acc.sram.items()},
            "dram_words": {k: {"words": w, "bits": b} for k, (w, b) in acc.dram.items()},
            "sram_bits": acc.bits("sram"), "dram_bits": acc.bits("dram")}


def case(name, config, arch, on_chip, source, key):
    cfg = load_config(os.path.join(ROOT, config), arch=arch)
    counters, minibatches = recorded_counters(source, key)
    buffer = working_buffer_words(cfg)
    weights = sum(n * j + n for j, n in zip(arch[:-1], arch[1:]))
    onchip = buffer + (weights if on_chip else 0)
    measured = counter_accesses(cfg, counters, on_chip)
    lel, lel_traffic = model_accesses(cfg, "local_errors", onchip)
    bp, bp_traffic = model_accesses(cfg, "backprop", onchip)
    lel_weight_words = (2 * weights if on_chip else lel_traffic.weight_read,
                        weights if on_chip else lel_traffic.weight_write)
    checks = {
        "model_weight_words_equal_counters":
            lel_weight_words == (counters["ext_read_words"], counters["ext_write_words"]),
        "model_beats_equal_mac_busy_cycles":
            mac_beats(arch, cfg.classes, cfg.batch, cfg.array_rows, cfg.array_cols)
            == counters["mac_busy_cycles"],
        "model_local_errors_energy_equals_measured":
            minibatch_energy(cfg, lel) == minibatch_energy(cfg, measured),
    }
    if not all(checks.values()):
        raise SystemExit(f"{name}: the local-error model disagrees with the counters: {checks}")
    columns = {}
    for column, acc in zip(COLUMNS, (measured, lel, bp)):
        columns[column] = {"accesses_per_minibatch": _accesses_dict(acc),
                           "pj_per_sample": minibatch_energy(cfg, acc)}
    e_lel, e_bp = columns["local_errors_measured"]["pj_per_sample"], \
        columns["backprop_model"]["pj_per_sample"]
    a, b, acc_bits = array_widths(cfg)
    return {
        "name": name, "config": config, "arch": arch, "classes": cfg.classes,
        "batch": cfg.batch, "array": [cfg.array_rows, cfg.array_cols],
        "weights_on_chip": on_chip, "weights_and_biases": weights,
        "onchip_words": onchip, "working_buffer_words": buffer,
        "counters_source": f"bench/results/{source}", "minibatches_recorded": minibatches,
        "counters_per_minibatch": counters,
        "mac": {"multiply_bits": [a, b], "accumulator_bits": acc_bits,
                "pj": mac_pj(cfg)},
        "local_error_traffic_model": lel_traffic.as_dict(),
        "backprop_traffic_model": bp_traffic.as_dict(),
        "checks": checks, "columns": columns,
        "backprop_over_local_errors": {
            "low": e_bp["total_pj_low"] / e_lel["total_pj_low"],
            "high": e_bp["total_pj_high"] / e_lel["total_pj_high"],
            "dram_low": e_bp["dram_pj_low"] / e_lel["dram_pj_low"]},
    }


def plot(cases, path):
    """Stacked bars per network: MAC, SRAM, DRAM at 1.3 nJ / 64 bits, and the rest of DRAM up
    to 2.6 nJ hatched, for the three columns."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(cases), figsize=(3.2 * len(cases), 4.2))
    labels = ["LEL\nmeasured", "LEL\nmodel", "BP\nmodel"]
    for ax, c in zip(axes, cases):
        e = [c["columns"][k]["pj_per_sample"] for k in COLUMNS]
        nj = [{k: v / 1e3 for k, v in x.items()} for x in e]
        x = range(len(nj))
        mac = [v["mac_pj"] for v in nj]
        sram = [v["sram_pj"] for v in nj]
        low = [v["dram_pj_low"] for v in nj]
        extra = [v["dram_pj_high"] - v["dram_pj_low"] for v in nj]
        ax.bar(x, mac, color="tab:blue", label="MAC")
        ax.bar(x, sram, bottom=mac, color="tab:green", label="on-chip SRAM")
        base = [m + s for m, s in zip(mac, sram)]
        ax.bar(x, low, bottom=base, color="tab:red", label="DRAM (1.3 nJ / 64 bit)")
        ax.bar(x, extra, bottom=[b + d for b, d in zip(base, low)], color="none",
               edgecolor="tab:red", hatch="//", label="DRAM up to 2.6 nJ / 64 bit")
        ax.set_xticks(list(x))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_title(c["name"].replace(", ", ",\n"), fontsize=8)
        ax.set_ylabel("nJ per training sample", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Energy per training sample, 45 nm (Horowitz, ISSCC 2014): local errors (LEL) "
                 "and backprop (BP)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)


def main():
    cases = [case(*c) for c in CASES]
    e = HOROWITZ_45NM_PJ
    result = {
        "command": "python bench/energy.py",
        "machine": describe(),
        "source": SOURCE,
        "table_pj": e,
        "per_bit_pj": {"sram": e["sram_8kb_read_64bit"] / 64,
                       "dram_low": e["dram_64bit_low"] / 64,
                       "dram_high": e["dram_64bit_high"] / 64},
        "counted": "MACs: local errors measured = mac_busy_cycles x lanes, the models = "
                   "host.energy.mac_beats x lanes, each an a x b multiply and an accumulator add; "
                   "SRAM: the weight memory's reads and writes when it is on chip, backprop's "
                   "activations kept on chip; DRAM: weights when external, pixels and labels, "
                   "backprop's spilled activations",
        "not_counted": "the operand buffers feeding the array every beat (weight slab, "
                       "activation, error, delta buffers), the LFSRs, control, the host link, "
                       "leakage, the FPGA's own overheads",
        "cases": cases,
        "plot": os.path.relpath(PLOT, ROOT),
    }
    os.makedirs(RESULTS, exist_ok=True)
    out = os.path.join(RESULTS, "energy.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    plot(cases, PLOT)
    for c in cases:
        print(c["name"])
        for k in COLUMNS:
            v = c["columns"][k]["pj_per_sample"]
            print(f"  {k:22s} MAC {v['mac_pj'] / 1e3:9.1f}  SRAM {v['sram_pj'] / 1e3:8.1f}  "
                  f"DRAM {v['dram_pj_low'] / 1e3:9.1f}-{v['dram_pj_high'] / 1e3:9.1f}  "
                  f"total {v['total_pj_low'] / 1e3:9.1f}-{v['total_pj_high'] / 1e3:9.1f} nJ")
        r = c["backprop_over_local_errors"]
        print(f"  backprop / local errors: {r['low']:.2f}-{r['high']:.2f} in all, "
              f"{r['dram_low']:.2f} in DRAM")
    print(f"wrote {out} and {PLOT}")


if __name__ == "__main__":
    main()
