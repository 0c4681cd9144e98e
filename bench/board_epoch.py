"""A Fashion-MNIST epoch on the ULX3S with its weights in SDRAM, predicted from the simulated
board's measured mini-batches (bench/board_sdram.py), beside the backprop traffic model on the
same chip (issue 16).

    python bench/board_epoch.py      # reads bench/results/board_sdram_<arch>.json
        -> bench/results/board_epoch.json

Per network, from the measured mini-batches (the board's 50 MHz clock, batch 32): the TRAIN
cycles, the array's busy cycles and the SDRAM's columns; the link's bytes a mini-batch (LOAD_BATCH,
TRAIN and the counter reads of the bench, as measured by the device's byte counters) at 115 200
baud and at 3 Mbaud (10 bits a byte); an epoch of 60 000 samples (1 875 mini-batches) when loading
and training alternate, as the host does today, and when they overlap (the bound issue 15's
double-buffered input would reach). Shares of a mini-batch's time: the link, the array, and the
rest of TRAIN (the SDRAM's refreshes and row openings, the phases' fill and drain).

Backprop on the same chip (docs/TRAFFIC.md, host.energy.model_accesses): a chip that holds the
working buffer and no weight (as this board's) must spill every activation vector to the SDRAM
and stream its output layer too. Its SDRAM columns a mini-batch (16-bit weights one a column,
8-bit activations two) and its MAC beats on the same 4 x 4 array; its TRAIN cycles estimated as
the local-error run's measured cycles per MAC beat times backprop's beats (array-bound, as the
measured runs are), and the SDRAM bus share that would need.
"""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.machine import describe  # noqa: E402
from contract.config import load_config  # noqa: E402
from host.energy import mac_beats, model_accesses, working_buffer_words  # noqa: E402
from host.throughput import BITS_PER_BYTE  # noqa: E402

NETWORKS = [(784, 256, 256, 256), (784, 1000, 1000, 1000)]
EPOCH_SAMPLES = 60_000
BAUDS = (115_200, 3_000_000)
COLUMN_BITS = 16                       # the SDRAM's data bus


def columns(words_and_bits):
    """SDRAM columns moving ``{name: (words, bits)}`` (bits-wide words packed into columns)."""
    return sum(-(-words * bits // COLUMN_BITS) for words, bits in words_and_bits.values())


def predict(run, cfg):
    """The prediction of one board_sdram run (its JSON) of ``cfg``'s network."""
    rows = run["minibatches"]
    if not run["bit_exact"] or not all(r["bit_exact"] for r in rows):
        raise SystemExit(f"{run['network']}: the simulated run was not bit-exact")
    clock, b = run["clock_hz"], cfg.batch
    mean = lambda key: sum(r[key] for r in rows) / len(rows)  # noqa: E731
    train, busy, link_bytes = mean("train_cycles"), mean("mac_busy_cycles"), mean("link_bytes")
    lel_columns = (mean("ext_read_words") + mean("ext_write_words")) * cfg.weight_bits \
        / COLUMN_BITS
    minibatches = EPOCH_SAMPLES // b
    out = {"network": run["network"], "source": f"bench/results/board_sdram_"
           f"{'x'.join(map(str, run['network']))}.json", "minibatches_measured": len(rows),
           "clock_hz": clock, "batch": b, "train_cycles": train, "mac_busy_cycles": busy,
           "sdram_columns": lel_columns, "link_bytes": link_bytes,
           "epoch_minibatches": minibatches, "per_baud": {}}
    for baud in BAUDS:
        link = link_bytes * BITS_PER_BYTE / baud * clock
        total = link + train
        out["per_baud"][str(baud)] = {
            "link_cycles": round(link), "minibatch_seconds": total / clock,
            "epoch_seconds_alternating": minibatches * total / clock,
            "epoch_seconds_overlapped": minibatches * max(link, train) / clock,
            "samples_per_second_alternating": b * clock / total,
            "share_link": link / total, "share_array": busy / total,
            "share_train_not_array": (train - busy) / total,
            "bound_by": "link" if link > train else "array"}
    onchip = working_buffer_words(cfg)
    bp, traffic = model_accesses(cfg, "backprop", onchip)
    lel, _ = model_accesses(cfg, "local_errors", onchip)
    if lel.macs // (cfg.array_rows * cfg.array_cols) != rows[0]["mac_busy_cycles"]:
        raise SystemExit(f"{run['network']}: the model's MAC beats differ from the counters")
    if columns(lel.dram) - columns({"input": lel.dram["input_read"]}) != lel_columns:
        raise SystemExit(f"{run['network']}: the model's weight columns differ from the counters")
    bp_beats = mac_beats(list(cfg.arch), cfg.classes, b, cfg.array_rows, cfg.array_cols,
                         "backprop")
    bp_sdram = {k: v for k, v in bp.dram.items() if k != "input_read"}   # the input: the link
    bp_columns = columns(bp_sdram)
    bp_train = train / busy * bp_beats
    out["backprop_same_chip"] = {
        "onchip_words": onchip, "spilled_activation_vectors": list(traffic.spilled_acts),
        "weight_words_read_written": [traffic.weight_read, traffic.weight_write],
        "activation_words_written_read": [traffic.act_write, traffic.act_read],
        "sdram_columns": bp_columns, "sdram_columns_vs_local_errors": bp_columns / lel_columns,
        "mac_beats": bp_beats, "mac_beats_vs_local_errors": bp_beats / busy,
        "train_cycles_estimate": bp_train, "sdram_bus_share": bp_columns / bp_train,
        "epoch_seconds_overlapped_3mbaud": minibatches * max(
            link_bytes * BITS_PER_BYTE / BAUDS[-1] * clock, bp_train) / clock}
    return out


def main():
    results = {"machine": describe(), "epoch_samples": EPOCH_SAMPLES, "networks": []}
    for arch in NETWORKS:
        name = "x".join(map(str, arch))
        run = json.load(open(os.path.join(ROOT, "bench", "results", f"board_sdram_{name}.json")))
        cfg = load_config(os.path.join(ROOT, "configs", "ulx3s.toml"), arch=arch)
        p = predict(run, cfg)
        results["networks"].append(p)
        for baud, q in p["per_baud"].items():
            print(f"{name} at {int(baud):>9,} baud: {q['minibatch_seconds'] * 1e3:8.1f} ms a "
                  f"mini-batch, epoch {q['epoch_seconds_alternating']:7.0f} s alternating, "
                  f"{q['epoch_seconds_overlapped']:6.0f} s overlapped ({q['bound_by']}-bound)")
        bp = p["backprop_same_chip"]
        print(f"{name} backprop on the same chip: {bp['sdram_columns_vs_local_errors']:.3f}x the "
              f"SDRAM columns, {bp['mac_beats_vs_local_errors']:.3f}x the MAC beats, SDRAM bus "
              f"{bp['sdram_bus_share']:.0%} busy")
    out = os.path.join(ROOT, "bench", "results", "board_epoch.json")
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
    print(f"-> {out}")


if __name__ == "__main__":
    main()
