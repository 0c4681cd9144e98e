"""Verilog generation: byte-identical from run to run (no source locations, no paths)."""

import os

from amaranth.back import verilog

__all__ = ["to_verilog", "write_verilog", "LINT_WAIVERS"]

#: Verilator warnings waived for Amaranth's output, each for a reason (see docs/RESULTS.md).
LINT_WAIVERS = {
    # Amaranth sizes every intermediate value itself and emits explicit widening and
    # truncating assignments; Verilator flags each as a width mismatch.
    "WIDTHEXPAND": "Amaranth widens operands explicitly",
    "WIDTHTRUNC": "Amaranth truncates results explicitly",
    # Amaranth widens intermediate values (so no sum can overflow) and then uses only the low
    # bits of some of them; the unused upper bits of these `$N` temporaries are flagged.
    "UNUSEDSIGNAL": "upper bits of Amaranth's widened temporaries",
    # Amaranth declares every register with its reset value (`reg x = 1'h0;`) for FPGA
    # power-up and assigns it in an always block.
    "PROCASSINIT": "register declarations carry their power-up value",
    # A unit with submodules is written as several modules in one file
    # (`lela_classifier.classifier` beside `lela_classifier`).
    "DECLFILENAME": "submodules share their parent's file",
    # Amaranth writes each FSM output as a `casez` over the states that drive it, without a
    # default arm (the other states keep the default assigned before the case).
    "CASEINCOMPLETE": "FSM output cases list only the states that drive them",
}


def verilator_waiver_args():
    return [f"-Wno-{name}" for name in sorted(LINT_WAIVERS)]


def to_verilog(component, name):
    """Return the Verilog text of a :class:`wiring.Component` as module ``name``."""
    text = verilog.convert(component, name=name, emit_src=False, strip_internal_attrs=True)
    return text


def write_verilog(component, name, directory):
    """Write ``directory/name.v``; returns its path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{name}.v")
    text = to_verilog(component, name)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    return path
