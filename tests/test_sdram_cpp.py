"""The C++ SDRAM model (sim/harness/sdram_model.h) against the Python one (sim/sdram_model.py)
on the same pin traces: the controller's traffic at two clocks, the controller with a rule
shortened, and the hand-written sequences of tests/test_sdram.py. Both must drive the same DQ
value every clock and reach the same verdict, word for word."""

import dataclasses
import gc
import os
import random
import shutil
import subprocess

import pytest

from contract.sdram import MT48LC16M16A2_6A as PART
from gen.sdram_part import sdram_part_header
from sim.sdram_bench import make_pair, run_phases
from sim.sdram_model import SdramModel, SdramTimingError
from tests import test_sdram as cases

HARNESS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sim",
                       "harness")
PIN_ORDER = ("cke", "cs_n", "ras_n", "cas_n", "we_n", "ba", "a", "dqm", "dq_o", "dq_oe")

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(scope="session")     # built once a worker (xdist interleaves modules)
def replay(tmp_path_factory):
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    d = tmp_path_factory.mktemp("sdram_cpp")
    (d / "sdram_part.h").write_text(sdram_part_header())
    exe = d / "sdram_replay"
    subprocess.run([cxx, "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-I", HARNESS,
                    "-include", str(d / "sdram_part.h"), "-o", str(exe),
                    os.path.join(HARNESS, "sdram_replay.cpp")], check=True)
    return exe


class Recording(SdramModel):
    """The Python model, keeping every clock's pins and what it drove."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.trace, self.outputs, self.verdict = [], [], "OK"

    def step(self, **pins):
        full = dict(cke=1, cs_n=1, ras_n=1, cas_n=1, we_n=1, ba=0, a=0, dqm=0, dq_o=0, dq_oe=0)
        full.update(pins)
        self.trace.append(tuple(int(full[k]) for k in PIN_ORDER))
        try:
            out = super().step(**pins)
        except SdramTimingError as e:
            self.verdict = f"ERROR {e}"
            raise
        self.outputs.append(-1 if out is None else out)
        return out


def run_cpp(exe, model, clock_hz, powerup_ns, max_postponed):
    text = f"{clock_hz!r} {powerup_ns!r} {max_postponed}\n" + "".join(
        " ".join(map(str, pins)) + "\n" for pins in model.trace)
    out = subprocess.run([str(exe)], input=text, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    return [int(v) for v in out[:-1]], out[-1]


def recorded_pair(t, **kw):
    dut, _ = make_pair(t, **kw)
    model = Recording(PART, clock_hz=t.clock_hz, powerup_ns=t.powerup * 1e9 / t.clock_hz,
                      max_postponed=0)
    return dut, model


@pytest.mark.parametrize("clock_hz,cl,word_bits,change", [
    (50e6, 2, 64, None), (143e6, 3, 48, None), (143e6, 3, 16, "rcd"), (143e6, 3, 16, "ras"),
    (143e6, 3, 16, "wr"), (50e6, 2, 64, "refi")])
def test_cpp_model_agrees_on_controller_traffic(replay, clock_hz, cl, word_bits, change):
    t = cases.timing(clock_hz, cl)
    if change == "refi":
        t = dataclasses.replace(t, refi=int(PART.tREFI * clock_hz / 1e9) + 20)
    elif change:
        t = dataclasses.replace(t, **{change: getattr(t, change) - 1})
    dut, model = recorded_pair(t, word_bits=word_bits)
    try:
        run_phases(dut, model, cases.random_phases(dut, random.Random(11)),
                   idle_after=3000 if change == "refi" else 0)
    except SdramTimingError:
        pass
    gc.collect()
    assert (model.verdict == "OK") == (change is None), model.verdict
    outputs, verdict = run_cpp(replay, model, clock_hz, t.powerup * 1e9 / clock_hz, 0)
    assert verdict == model.verdict
    assert outputs == model.outputs


@pytest.mark.parametrize("sequence,message", [
    pytest.param(s, m, id=m.split(" violated")[0]) for s, m in
    cases.test_model_names_the_broken_rule.pytestmark[0].args[1]])
def test_cpp_model_names_the_same_rule(replay, sequence, message):
    model = Recording(PART, clock_hz=143e6, powerup_ns=10 * 1e9 / 143e6)
    p = cases.Pins(model)
    p.nop(10)
    p(cases.PRE, a=1 << 10)
    p.nop(2)
    for _ in range(2):
        p(cases.REF)
        p.nop(8)
    p(cases.MRS, a=cases.mode_register(3))
    p.nop(1)
    with pytest.raises(SdramTimingError):
        for step in sequence:
            if step == cases.NOP:
                p()
            else:
                command, ba, a = step
                p(command, ba=ba, a=a, dq=0x1111 if command == cases.WRITE else None)
    outputs, verdict = run_cpp(replay, model, 143e6, 10 * 1e9 / 143e6, PART.max_postponed)
    assert verdict == model.verdict
    assert outputs == model.outputs
