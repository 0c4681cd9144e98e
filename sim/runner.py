"""Build a unit's Verilog and run its cocotb testbench on Verilator or Icarus.

Each case gets its own build directory, so cases run in parallel under pytest-xdist.
"""

import os
import re
import shutil
import xml.etree.ElementTree as ET

from cocotb_tools.runner import get_runner

from gen.verilog import write_verilog
from sim import params as tb_params
from sim.primitive_models import primitive_models
from sim.verilator_env import COCOTB, find_verilator, public_ports_file, verilator_env, \
    waiver_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIMULATORS = ("verilator", "icarus")


#: Yosys's time-zero trigger: a register each module's ``always @*`` processes list, declared
#: with an initial value.
_TRIGGER = re.compile(r"reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+) += 0;")


def _kick_combinational_processes(path):
    """Let Icarus evaluate every ``always @*`` process at time zero. Yosys lists a register
    in each, declared ``= 0`` so that its first value starts them; Icarus (in SystemVerilog
    mode, as cocotb runs it) sets a declaration's value before any process waits, so no
    process sees it, and each waits for an input to change. A register without reset (a data
    register whose valid bit is reset) clocked before then takes X and keeps it. Set it in
    an ``initial #0`` instead: after every process has started waiting."""
    with open(path) as f:
        text = f.read()
    text, count = _TRIGGER.subn(r"reg \1 ;\n  initial #0 \1 = 1'b0;", text)
    with open(path, "w") as f:
        f.write(text)
    return count


def run_unit(component, toplevel, test_module, params, simulator, build_dir, waves=None,
             verilator_args=()):
    """Generate ``component`` as ``toplevel``, build it and run ``sim.<test_module>``.

    ``waves`` defaults to the WAVES environment variable; ``verilator_args`` are added to the
    Verilator build. Only the top level's ports are visible to the bench on Verilator (a
    symbol table of every signal took gcc many minutes on large units)."""
    if waves is None:
        waves = bool(os.environ.get("WAVES"))
    tool_env = verilator_env(COCOTB)
    if simulator == "verilator":
        find_verilator(tool_env)
    elif simulator == "icarus" and not shutil.which("iverilog", path=tool_env["PATH"]):
        raise RuntimeError("iverilog is not installed (Debian package iverilog)")
    os.makedirs(build_dir, exist_ok=True)
    source = write_verilog(component, toplevel, build_dir)
    if simulator == "icarus":
        _kick_combinational_processes(source)
    runner = get_runner(simulator)
    build_args = []
    if simulator == "verilator":
        # Waves: the runner adds --trace (VCD); FST would need liblz4's headers. The runner
        # asks for --public-flat-rw (every signal in the VPI symbol table): turned off, and
        # the control file makes the ports public. Optimisation comes from MAKEFLAGS.
        build_args = [*waiver_args(), "--no-public-flat-rw",
                      public_ports_file(source, toplevel, build_dir), *verilator_args]
    env = {tb_params.ENV: tb_params.encode(params), "PYTHONPATH": ROOT,
           **{k: tool_env[k] for k in ("PATH", "MAKEFLAGS", "OBJCACHE") if k in tool_env}}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        runner.build(sources=[source, *primitive_models(source)], hdl_toplevel=toplevel,
                     build_dir=build_dir, build_args=build_args, timescale=("1ns", "1ps"),
                     waves=waves, always=True, log_file=os.path.join(build_dir, "build.log"))
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
