"""Fashion-MNIST networks trained through the simulated ULX3S with its weights in SDRAM (issue
16): the board path (UART -> host interface -> core -> SDRAM controller -> I/O registers ->
the C++ SDRAM model, sim/harness/board_sdram.h) in Verilator behind a pseudo-terminal, driven
by the host driver over the serial transport, every mini-batch checked against the golden model.

    python bench/board_sdram.py [--arch 784 256 256 256] [--minibatches 4] [--divisor 8]
        [--check all|tiles] [--board ulx3s-sdram|ulx3s]
        -> bench/results/board_sdram_<arch>.json (board_bram_<arch>.json with --board ulx3s)

``--board ulx3s`` runs the same network with its weights in block RAM (simulated as the
board's on-chip weight memory), for the cycles the SDRAM costs.

The network is configs/ulx3s.toml's (formats, the 4 x 4 array) with ``--arch``'s layers, batch
32, on the first mini-batches of Fashion-MNIST's training set. ``--divisor`` is the UART's
cycles per bit in the simulation (the board's own, 50/3 at its config's 3 Mbaud, would make the
upload of a mini-batch twice as slow to simulate; the core's cycles do not depend on it).

Per mini-batch the device's counters are read before and after TRAIN: ``train_cycles`` (the
core busy), ``mac_busy_cycles`` (the array busy), ``ext_read_words`` / ``ext_write_words`` (P
weights a bus word: SDRAM columns = words / P * 4). From them: the array's share of the TRAIN
cycles, and the SDRAM data bus's (columns moved per TRAIN cycle; one column a clock is its
peak, so a share near 1 means the SDRAM sets the pace). The link's time is the rest of a
mini-batch's cycles (LOAD_BATCH and the replies at ``--divisor``), and is also given at the
board's real baud rate (10 bits a byte).

Weights: ``--check all`` reads every layer back and compares it with the golden model's;
``--check tiles`` (for networks whose weights take too long over the simulated UART) reads the
first two tiles (2 P neurons) of every layer and the whole last layer.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.machine import describe  # noqa: E402
from contract.config import load_config  # noqa: E402
from contract.registers import layer_words, tile_words, weight_bases  # noqa: E402
from host.driver import Accelerator  # noqa: E402
from host.serial_transport import SerialTransport  # noqa: E402
from hw.boards import BOARDS  # noqa: E402
from lela.simulate_board import config_with_arch  # noqa: E402
from sim.board_sim import SimulatedBoard, build_board  # noqa: E402
from sw_model.data import load_dataset  # noqa: E402
from sw_model.golden import FixedPointNet  # noqa: E402

COLUMNS_PER_WORD = 4                # 4 lanes of 16 bits: 64-bit words, 16-bit SDRAM columns


def network_config(arch, out_dir):
    """configs/ulx3s.toml with ``arch`` as its layers, written to ``out_dir``."""
    path = config_with_arch(os.path.join(ROOT, "configs", "ulx3s.toml"), arch,
                            os.path.join(out_dir, "network.toml"))
    return path, load_config(path)


def first_tiles(acc, cfg, i, tiles):
    """Layer ``i``'s first ``tiles`` tiles as ``(weights, biases)`` of their neurons (the
    driver's layout: a tile's word ``c`` holds input ``c`` of its P neurons, then the bias)."""
    p, j = cfg.array_rows, cfg.fan_in(i)
    stride = tile_words(cfg, i)
    tiles = min(tiles, layer_words(cfg, i) // stride)
    words = acc.read_words(acc.bases[i], tiles * stride)
    grid = words.reshape(tiles, stride, p).transpose(0, 2, 1).reshape(tiles * p, stride)
    n = min(tiles * p, cfg.neurons(i))
    return grid[:n, :j], grid[:n, j]


def check_weights(acc, net, cfg, mode):
    """Names of the layers whose weights (all, or the first tiles) differ from the golden's."""
    wrong = []
    if mode == "all":
        for i, (w, b) in enumerate(acc.read_weights()):
            if not (np.array_equal(w, net.weights[i]) and np.array_equal(b, net.biases[i])):
                wrong.append(i)
        return wrong, "every weight of every layer"
    last = cfg.layers - 1
    for i in range(cfg.layers):
        w, b = first_tiles(acc, cfg, i, 10 ** 9 if i == last else 2)
        n = len(b)
        if not (np.array_equal(w, net.weights[i][:n]) and np.array_equal(b, net.biases[i][:n])):
            wrong.append(i)
    return wrong, "the first 2 tiles of each layer and the whole last layer"


def run(arch, minibatches, divisor, check, build_root, board="ulx3s-sdram"):
    board = BOARDS[board]
    name = "x".join(map(str, arch))
    cfg_path, cfg = network_config(arch, os.path.join(build_root, name))
    board = board.for_config(cfg)            # its UART at the config's baud
    t0 = time.time()
    exe = build_board(cfg, os.path.join(build_root, name, board.name), divisor=divisor,
                      board=board)
    build_s = time.time() - t0
    data = load_dataset("fashion-mnist")
    b = cfg.batch
    words = weight_bases(cfg)[1]
    out = {"board": board.name, "network": list(arch),
           "config": f"configs/ulx3s.toml with arch {list(arch)}",
           "weight_words": words, "weight_bytes": words * 8, "batch": b, "divisor": divisor,
           "board_baud": board.baud, "board_divisor": str(board.divisor),
           "clock_hz": board.clock_hz,
           "build_seconds": round(build_s, 1), "machine": describe(), "minibatches": []}
    t0 = time.time()
    with SimulatedBoard(exe) as sim:
        link = SerialTransport(sim.port, timeout=600)
        acc = Accelerator(link, retries=0)
        acc.configure(cfg)
        c0 = acc.counters()
        acc.init_weights()
        c1 = acc.counters()
        out["init_cycles"] = c1["cycles"] - c0["cycles"]
        out["configure_init_seconds"] = round(time.time() - t0, 1)
        print(f"{name}: built in {build_s:.0f} s; configured and initialised in "
              f"{out['configure_init_seconds']} s", flush=True)
        net = FixedPointNet(cfg)
        exact = True
        for k in range(minibatches):
            x, y = data.x_train[k * b:(k + 1) * b], data.y_train[k * b:(k + 1) * b]
            t1 = time.time()
            before = acc.counters()
            got = acc.train_batch(x, y)             # LOAD_BATCH, then TRAIN
            after = acc.counters()
            want = net.train_batch(x, y)
            exact &= got == want
            d = {key: after[key] - before[key] for key in after}
            train = d["train_cycles"]
            columns = (d["ext_read_words"] + d["ext_write_words"]) \
                // cfg.array_rows * COLUMNS_PER_WORD
            row = {"correct": list(map(int, got)), "golden": list(map(int, want)),
                   "bit_exact": got == want, "cycles": d["cycles"], "train_cycles": train,
                   "mac_busy_cycles": d["mac_busy_cycles"],
                   "ext_read_words": d["ext_read_words"],
                   "ext_write_words": d["ext_write_words"],
                   "array_share": round(d["mac_busy_cycles"] / train, 4),
                   "sdram_share": round(columns / train, 4),
                   "link_bytes": d["host_rx_bytes"] + d["host_tx_bytes"],
                   "wall_seconds": round(time.time() - t1, 1)}
            out["minibatches"].append(row)
            print(f"  mini-batch {k}: {'bit-exact' if got == want else 'DIFFERS'} "
                  f"{got} train {train} cycles (array {row['array_share']:.2f}, SDRAM "
                  f"{row['sdram_share']:.2f} of them), {row['wall_seconds']} s", flush=True)
        t1 = time.time()
        wrong, what = check_weights(acc, net, cfg, check)
        out["weights_checked"] = what
        out["weights_equal"] = not wrong
        out["weights_wrong_layers"] = wrong
        out["check_seconds"] = round(time.time() - t1, 1)
        link.close()
    out["sdram_model"] = sim.sdram_commands()
    out["harness_stderr"] = sim.stderr.strip()[-2000:]
    out["bit_exact"] = bool(exact) and not wrong
    rows = out["minibatches"]
    train = [r["train_cycles"] for r in rows]
    out["train_cycles_per_minibatch"] = train
    out["link_cycles_per_minibatch_at_board_baud"] = int(
        np.mean([r["link_bytes"] for r in rows]) * 10 * float(board.divisor))
    out["total_seconds"] = round(time.time() - t0, 1)
    print(f"{name}: weights {'equal' if not wrong else f'DIFFER in layers {wrong}'} ({what}); "
          f"bit-exact {out['bit_exact']}; {out['total_seconds']} s", flush=True)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, nargs="+", default=[784, 256, 256, 256])
    parser.add_argument("--minibatches", type=int, default=4)
    parser.add_argument("--divisor", type=int, default=8)
    parser.add_argument("--check", choices=("all", "tiles"), default="all")
    parser.add_argument("--board", choices=("ulx3s-sdram", "ulx3s"), default="ulx3s-sdram")
    parser.add_argument("--build", default=os.path.join(ROOT, "build", "board_sdram"))
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    res = run(args.arch, args.minibatches, args.divisor, args.check, args.build, args.board)
    kind = "sdram" if args.board == "ulx3s-sdram" else "bram"
    out = args.out or os.path.join(ROOT, "bench", "results",
                                   f"board_{kind}_{'x'.join(map(str, args.arch))}.json")
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    print(f"-> {out}")
    return 0 if res["bit_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
