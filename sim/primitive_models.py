"""The simulation models of the vendor primitives a design instantiates (sim/primitives/*.v).

A board build's Verilog names an ECP5 MULT18X18D where hw/registered_multiplier.py asks for one;
synthesis maps it to the block, a simulator needs a model of it. Every simulation build (the
cocotb units, the Verilator harnesses) adds the models its Verilog needs through
:func:`primitive_models`.
"""

import os
import re

__all__ = ["primitive_models", "PRIMITIVES_DIR"]

PRIMITIVES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "primitives")
#: Each primitive modelled, by the module name an instance of it names.
_MODELLED = ("MULT18X18D",)


def primitive_models(verilog_path):
    """The model files (absolute paths, sorted) of the primitives ``verilog_path`` instantiates."""
    with open(verilog_path) as f:
        text = f.read()
    return [os.path.join(PRIMITIVES_DIR, f"{name}.v") for name in _MODELLED
            if re.search(rf"^\s*{name}\b", text, re.MULTILINE)]
