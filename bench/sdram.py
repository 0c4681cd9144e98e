"""SDRAM bandwidth of hw/sdram_controller.py against the part's peak, in Amaranth's simulator
with the timing-checking device model (sim/sdram_model.py): long bursts each way, and the
core's weight traffic for a configuration (docs/SDRAM.md).

The core's traffic (hw/core/weight_stream.py, docs/TRAFFIC.md): a layer's forward pass reads
its tiles as bursts of ``fan_in + 1`` words, one after the other; its update reads them again
and writes each word back behind the read: at least ``--trail`` words behind (the update's
pipeline), and the reads held back while ``--skew`` words ahead of the writes (the weight
stream's two 16-word FIFOs full). The bench plays the core as a master that issues every
command as soon as the controller takes it, takes every word as soon as it comes and writes as
soon as it may: what is measured is the memory, not the core.

Peak: 16 bits a clock (one column per clock). Efficiency = columns moved / clocks of the measured
phase (from both sides starting it to the last word taken; a filling phase before it is not
counted, though the last word it writes may spill a few columns into it); the words a clock
follow from the word's columns. Command counts are the measured phase's.

    python bench/sdram.py [--config configs/ulx3s.toml] [--clock 50e6] [--cl 2]

writes bench/results/sdram.json.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.machine import describe                                          # noqa: E402
from contract.config import load_config                                     # noqa: E402
from contract.sdram import MT48LC16M16A2_6A, SdramTiming                    # noqa: E402
from hw.params import CoreParams                                            # noqa: E402
from sim.sdram_bench import make_pair, run_phases                           # noqa: E402


def layer_bursts(cfg, rows):
    """``(base, fan_in + 1, tiles)`` of each layer, packed from address 0 (the host driver's
    layout, docs/HOST_INTERFACE.md)."""
    sizes = list(cfg.arch) + [cfg.classes]
    out, base = [], 0
    for i in range(1, len(sizes)):
        fan_in, neurons = sizes[i - 1], sizes[i]
        tiles = -(-neurons // rows)
        out.append((base, fan_in + 1, tiles))
        base += tiles * (fan_in + 1)
    return out


def scenario(name, timing, word_bits, phases, measured, trail=None, skew=None):
    dut, model = make_pair(timing, word_bits=word_bits, max_postponed=0)
    t0 = time.perf_counter()
    res = run_phases(dut, model, phases, w_idle=0.0, r_stall=0.0, trail=trail,
                     max_skew=skew, max_cycles=2_000_000)
    wall = time.perf_counter() - t0
    if res.mismatches:
        raise SystemExit(f"{name}: {len(res.mismatches)} words read wrong")
    cycles = sum(res.phase_cycles[k] for k in measured)
    beats = sum(res.phase_beats[k] for k in measured)
    words = sum(n for k in measured for _, _, n in phases[k][0] + phases[k][1])
    counts = {k: sum(res.phase_counts[p][k] for p in measured) for k in model.counts}
    row = {"words": words, "columns": beats, "cycles": cycles,
           "columns_per_cycle": round(beats / cycles, 4),
           "words_per_cycle": round(words / cycles, 4),
           "MB_per_s": round(beats * 2 * timing.clock_hz / cycles / 1e6, 2),
           "refreshes": counts["AUTO REFRESH"], "activates": counts["ACTIVE"],
           "precharges": counts["PRECHARGE"],
           "sim_seconds": round(wall, 1)}
    print(f"{name:34s} {row['columns_per_cycle']:.3f} of peak  {row['MB_per_s']:6.1f} MB/s  "
          f"{row['words_per_cycle']:.3f} words/clock  ({cycles} clocks, {wall:.0f} s)",
          flush=True)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=os.path.join(ROOT, "configs", "ulx3s.toml"))
    parser.add_argument("--clock", type=float, default=50e6)
    parser.add_argument("--cl", type=int, default=2)
    parser.add_argument("--long", type=int, default=4096, help="words of the long bursts")
    parser.add_argument("--trail", type=int, default=4)
    parser.add_argument("--skew", type=int, default=32)
    args = parser.parse_args()
    cfg = load_config(args.config)
    params = CoreParams.from_config(cfg)
    timing = SdramTiming.derive(MT48LC16M16A2_6A, clock_hz=args.clock, cl=args.cl,
                                powerup_cycles=20)
    wb = params.word_bits
    n = args.long
    bursts = layer_bursts(cfg, params.rows)
    fill = [("w", base, length * tiles) for base, length, tiles in bursts]
    forward = [("r", base + t * length, length) for base, length, tiles in bursts
               for t in range(tiles)]
    update_w = [("w", b, k) for _, b, k in forward]
    results = {
        "long_read": scenario(f"read burst of {n} words", timing, wb,
                              [([("w", 0, n)], []), ([], [("r", 0, n)])], [1]),
        "long_write": scenario(f"write burst of {n} words", timing, wb,
                               [([("w", 0, n)], [])], [0]),
        "forward": scenario("core forward pass (reads)", timing, wb,
                            [(fill, []), ([], forward)], [1]),
        "update": scenario(f"core update (writes {args.trail}..{args.skew} behind)", timing,
                           wb, [(fill, []), (update_w, forward)], [1], trail=args.trail,
                           skew=args.skew),
    }
    result = {
        "command": "python bench/sdram.py " + " ".join(sys.argv[1:]),
        "machine": describe(), "date": time.strftime("%Y-%m-%d"),
        "part": MT48LC16M16A2_6A.name, "clock_hz": args.clock, "cas_latency": args.cl,
        "timing_cycles": {k: v for k, v in vars(timing).items() if k != "clock_hz"},
        "config": os.path.relpath(args.config, ROOT), "word_bits": wb,
        "columns_per_word": -(-wb // 16), "layers": [
            {"base": b, "burst_words": k, "tiles": t} for b, k, t in bursts],
        "peak_MB_per_s": 2 * args.clock / 1e6, "trail": args.trail, "skew": args.skew,
        "note": "simulated with the device model (Amaranth simulator), not measured on a board",
        "results": results,
    }
    path = os.path.join(ROOT, "bench", "results", "sdram.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()
