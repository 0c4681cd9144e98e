"""Every board's bitstream (icebreaker, ulx3s, ulx3s-sdram, and ulx3s-conv: the ULX3S with a
core that trains convolutions, configs/ulx3s_conv.toml) at several nextpnr seeds: resources,
Fmax, timing met.

    python bench/bitstreams.py                          # every build, seeds 1 2 3
    python bench/bitstreams.py --board icebreaker --seeds 1 2

writes ``bench/results/bitstreams.json``: per board and seed the logic cells, flip-flops, LUTs,
block RAMs, DSPs, the clock constraint, the Fmax nextpnr reports, whether timing is met and the
build time, with the commit and the machine. Every build gets its own directory
(``build/bench/<board>-seed<N>``), so a board's own ``build/<board>`` is left alone. Seeds only
move placement and routing: synthesis, and so the cell counts, is the same at every seed; the
Fmax is what a seed changes, which is why one seed's margin says little.
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.machine import describe        # noqa: E402
from gen.bitstream import build_bitstream  # noqa: E402

RESULTS = os.path.join(ROOT, "bench", "results", "bitstreams.json")
#: name -> (board, config: None for the board's own)
BUILDS = {"icebreaker": ("icebreaker", None), "ulx3s": ("ulx3s", None),
          "ulx3s-sdram": ("ulx3s-sdram", None),
          "ulx3s-conv": ("ulx3s", os.path.join(ROOT, "configs", "ulx3s_conv.toml"))}
KEPT = ("fits", "timing_met", "fmax_mhz", "clock_mhz", "logic_cells", "ffs", "luts",
        "block_rams", "dsps", "sprams", "build_seconds", "error", "config", "lut_mapping",
        "lut_mapping_fallback")


def commit():
    try:
        out = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "hw", "gen",
                                "contract"], capture_output=True, text=True).stdout.strip()
        return out + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog="Results go to bench/results/bitstreams.json; a board "
                                 "or seed not run keeps its earlier entry there.")
    ap.add_argument("--board", action="append", choices=tuple(BUILDS),
                    help="a build (repeatable; default: all four)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3],
                    help="nextpnr seeds (default: 1 2 3)")
    args = ap.parse_args(argv)
    boards = args.board or list(BUILDS)
    results = {}
    if os.path.exists(RESULTS):
        with open(RESULTS) as f:
            results = json.load(f)
    runs = results.setdefault("runs", {})
    for board in boards:
        for seed in args.seeds:
            out = os.path.join(ROOT, "build", "bench", f"{board}-seed{seed}")
            print(f"{board} seed {seed}: building in {os.path.relpath(out, ROOT)} ...",
                  flush=True)
            start = time.monotonic()
            report = build_bitstream(*BUILDS[board], out, seed=seed)
            entry = {k: report.get(k) for k in KEPT}
            if entry["config"]:
                entry["config"] = os.path.relpath(entry["config"], ROOT)
            entry.update(seed=seed, commit=commit(), wall_seconds=round(time.monotonic() - start))
            runs.setdefault(board, {})[str(seed)] = entry
            print(f"  {entry['logic_cells']} logic cells, {entry['fmax_mhz']} MHz of "
                  f"{entry['clock_mhz']} ({'met' if entry['timing_met'] else 'MISSED'})",
                  flush=True)
    # Merged into the file as it is now: another run of this bench (other boards or seeds, on
    # the other core) may have written it since this one read it.
    if os.path.exists(RESULTS):
        with open(RESULTS) as f:
            latest = json.load(f)
        for board in boards:
            latest.setdefault("runs", {}).setdefault(board, {}).update(
                {str(seed): runs[board][str(seed)] for seed in args.seeds})
        results = latest
    results["machine"] = describe()
    results["command"] = "python bench/bitstreams.py " + " ".join(argv or sys.argv[1:])
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
        f.write("\n")
    missed = [f"{b} seed {s}" for b, seeds in results["runs"].items() for s, e in seeds.items()
              if b in boards and int(s) in args.seeds and not (e["fits"] and e["timing_met"])]
    if missed:
        print("missed timing or did not fit: " + ", ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
