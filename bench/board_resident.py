"""Resident training on the ULX3S (issue 15): the digits training set uploaded once into the
board's block RAM, then whole epochs trained on one TRAIN_EPOCH command each, simulated cycle by
cycle at the board's clock and baud.

    python bench/board_resident.py [--board ulx3s] [--epochs 2]
        -> bench/results/board_resident.json

The board's gateware (its config, configs/ulx3s.toml, with ``resident_samples``) runs in
Verilator behind a pseudo-terminal exactly as bench/board_throughput.py builds it (the UART at
the board's own divisor, every counter kept); the host is :class:`host.driver.Accelerator` over
:class:`host.serial_transport.SerialTransport`. Measured per epoch: the device's ``cycles``
between two READ_COUNTERS (less the line time of one READ_COUNTERS exchange and of the
TRAIN_EPOCH frame and reply, which a longer run amortises: reported beside), ``train_cycles``
(the core busy in TRAIN) and ``mac_busy_cycles``; samples/s at the board's clock against the
array bound (MAC operations a sample over lanes x clock, host/throughput.py) and against the
streamed schedule's measured rate (bench/results/board_throughput.json). Every epoch is checked
against the golden model fed the same order (sw_model/resident.py): the correct counts and,
at the end, every weight. The upload's cycles are reported against its link bound.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.board_throughput import (SIM_TIMEOUT_S, CountingLink, build,   # noqa: E402
                                    check_divisor, delta, git_head)
from contract.protocol import EPOCH_ARGUMENTS, FRAME_OVERHEAD              # noqa: E402
from contract.registers import COUNTERS                                   # noqa: E402
from host.throughput import BITS_PER_BYTE, array_bound, macs_per_sample   # noqa: E402

RESULTS = os.path.join(ROOT, "bench", "results", "board_resident.json")
THROUGHPUT = os.path.join(ROOT, "bench", "results", "board_throughput.json")


def measure(board, cfg, exe, data, epochs):
    from host.driver import Accelerator
    from host.serial_transport import SerialTransport
    from sim.board_sim import SimulatedBoard
    from sw_model.golden import FixedPointNet
    from sw_model.resident import epoch_batches

    divisor = check_divisor(exe, board.divisor)
    f = board.clock_hz
    x, y = data.x_train, data.y_train
    n = len(x)
    counters = len(COUNTERS) + cfg.layers
    read_counters_bytes = 2 * FRAME_OVERHEAD + 1 + 8 * counters
    epoch_frame_bytes = 2 * FRAME_OVERHEAD + EPOCH_ARGUMENTS + 1 + 2 * cfg.layers
    line = lambda nbytes: nbytes * BITS_PER_BYTE * float(divisor)     # noqa: E731
    macs = macs_per_sample(cfg.arch, cfg.classes)
    lanes = cfg.array_rows * cfg.array_cols
    bound = array_bound(macs, lanes, f)
    out = {"samples": n, "batch": cfg.batch, "arch": list(cfg.arch), "clock_hz": f,
           "baud": board.baud, "lanes": lanes, "macs_per_sample": macs,
           "array_bound_samples_per_second": bound, "epochs": []}
    golden = FixedPointNet(cfg)
    with SimulatedBoard(exe) as sim:
        serial = SerialTransport(sim.port, board.baud, timeout=SIM_TIMEOUT_S)
        link = CountingLink(serial)
        acc = Accelerator(link, retries=3)
        acc.configure(cfg)
        acc.init_weights()
        before = acc.counters()
        sent = link.sent
        t0 = time.perf_counter()
        acc.store_samples(x, y)
        upload_wall = time.perf_counter() - t0
        after = acc.counters()
        c = delta(after, before)
        upload_bytes = link.sent - sent
        upload_cycles = c["cycles"] - line(read_counters_bytes)
        out["upload"] = {"bytes_sent": upload_bytes, "cycles": upload_cycles,
                         "seconds_at_clock": upload_cycles / f,
                         "link_bound_seconds": upload_bytes * BITS_PER_BYTE / board.baud,
                         "wall_seconds": upload_wall}
        print(f"{board.name}: {n} samples uploaded, {upload_bytes} bytes in "
              f"{upload_cycles / f:.3f} s at the board's clock", flush=True)
        for epoch in range(epochs):
            seed = cfg.stream_seed("order", epoch)
            before = acc.counters()
            t0 = time.perf_counter()
            got = acc.train_epoch(n, cfg.batch, seed)
            wall = time.perf_counter() - t0
            after = acc.counters()
            c = delta(after, before)
            want = np.zeros(cfg.layers, dtype=np.int64)
            batches = epoch_batches(n, cfg.batch, seed, cfg.lfsr_width)
            for visits in batches:
                want += golden.train_batch(x[visits], y[visits])
            if list(got) != [int(v) for v in want]:
                raise SystemExit(f"epoch {epoch + 1}: the board counted {got}, the golden "
                                 f"model {list(want)}")
            if c["train_commands"] != len(batches):
                raise SystemExit(f"epoch {epoch + 1}: {c['train_commands']} mini-batches, "
                                 f"not {len(batches)}")
            cycles = c["cycles"] - line(read_counters_bytes) - line(epoch_frame_bytes)
            rate = n * f / cycles
            entry = {"epoch": epoch + 1, "seed": seed, "cycles": cycles,
                     "counted_cycles": c["cycles"], "train_cycles": c["train_cycles"],
                     "mac_busy_cycles": c["mac_busy_cycles"],
                     "ext_read_words": c["ext_read_words"],
                     "ext_write_words": c["ext_write_words"],
                     "samples_per_second": rate, "share_of_array_bound": rate / bound,
                     "mac_busy_share": c["mac_busy_cycles"] / cycles,
                     "loading_cycles": cycles - c["train_cycles"],
                     "train_error": [1 - v / n for v in got], "wall_seconds": wall}
            out["epochs"].append(entry)
            print(f"{board.name} epoch {epoch + 1}: {rate:,.0f} samples/s = "
                  f"{100 * rate / bound:.1f} % of the array bound {bound:,.0f} "
                  f"(MAC array busy {100 * entry['mac_busy_share']:.1f} %, "
                  f"{cycles - c['train_cycles']:,.0f} of {cycles:,.0f} cycles copying and "
                  "shuffling)", flush=True)
        for i, (w, b) in enumerate(acc.read_weights()):
            if not (np.array_equal(w, golden.weights[i]) and np.array_equal(b, golden.biases[i])):
                raise SystemExit(f"layer {i}: the board's weights differ from the golden model's")
        out["weight_hash"] = golden.weight_hash()
        serial.close()
    if os.path.exists(THROUGHPUT):
        with open(THROUGHPUT) as fh:
            streamed = json.load(fh).get("schedules", {}).get("boards", {}).get(board.name)
        if streamed:
            rate = streamed["schedules"]["pipelined"]["samples_per_second"]
            out["streamed_samples_per_second"] = rate
            out["resident_over_streamed"] = out["epochs"][-1]["samples_per_second"] / rate
    return out


def main(argv=None):
    from bench.machine import describe
    from contract.config import load_config
    from hw.boards import BOARDS
    from sw_model.data import load_dataset
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="ulx3s", choices=sorted(BOARDS),
                    help="a board whose config holds the digits training set (resident_samples)")
    ap.add_argument("--config", help="a config of the board other than its own (e.g. a larger "
                    "MAC array); default the board's configs/<board>.toml")
    ap.add_argument("--epochs", type=int, default=2, help="epochs to train (default: 2)")
    ap.add_argument("--out", default=RESULTS, help="the JSON to write")
    args = ap.parse_args(argv)
    config_path = args.config or os.path.join(ROOT, BOARDS[args.board].config)
    try:
        cfg = load_config(config_path)
    except (OSError, ValueError) as e:
        raise SystemExit(f"board_resident: {config_path}: {e}")
    board = BOARDS[args.board].for_config(cfg)
    data = load_dataset("digits")
    if cfg.resident_samples < len(data.x_train):
        raise SystemExit(f"{args.board}: its config holds {cfg.resident_samples} samples, "
                         f"digits has {len(data.x_train)} to train on")
    t0 = time.perf_counter()
    exe, build_seconds, overrides = build(board, cfg)
    result = measure(board, cfg, exe, data, args.epochs)
    result.update(command="python bench/board_resident.py" + (
        f" --board {args.board}" if args.board != "ulx3s" else "") + (
        f" --config {args.config}" if args.config else "") + (
        f" --epochs {args.epochs}" if args.epochs != 2 else ""),
        machine=describe(), commit=git_head(), board=args.board,
        config=args.config or BOARDS[args.board].config,
        core_overrides=overrides, build_seconds=build_seconds,
        bench_seconds=time.perf_counter() - t0)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
