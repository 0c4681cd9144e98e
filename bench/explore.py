"""The real explorations of docs/RESULTS.md ("Design-space exploration"): each board's grid
(configs/explore/<board>.toml) with `lela explore` on a local cluster, its rows and summary
copied to bench/results/explore_<board>.json with the command, the machine and the commit.

    python bench/explore.py [--boards icebreaker ulx3s] [--workers 1]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.machine import describe                                         # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", nargs="+", default=["icebreaker", "ulx3s"])
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    for board in args.boards:
        grid = os.path.join("configs", "explore", f"{board}.toml")
        out = os.path.join("runs", f"explore-{board}")
        command = [sys.executable, "-m", "lela.cli", "explore", grid, "--out", out,
                   "--workers", str(args.workers), "--quiet"]
        t0 = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=False)
        wall = time.perf_counter() - t0
        with open(os.path.join(ROOT, out, "points.json")) as f:
            result = json.load(f)
        for name in ("grid", "base"):          # the checkout's paths, not this machine's
            result[name] = os.path.relpath(result[name], ROOT)
        result.update(command=f"lela explore {grid} --out {out} --workers {args.workers}",
                      wall_seconds=round(wall, 1), machine=describe(), commit=head)
        dest = os.path.join(ROOT, "bench", "results", f"explore_{board}.json")
        with open(dest, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
        for png in ("pareto_accuracy.png", "pareto_throughput.png"):
            src = os.path.join(ROOT, out, png)
            if os.path.exists(src):
                shutil.copy(src, os.path.join(ROOT, "docs", f"explore_{board}_{png}"))
        print(f"{board}: {wall:.0f} s -> {dest}", flush=True)


if __name__ == "__main__":
    main()
