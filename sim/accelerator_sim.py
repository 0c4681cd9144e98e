"""Build the whole accelerator for a configuration and open the fast simulation transport."""

import os

from gen.verilog import write_verilog
from hw.accelerator import Accelerator
from hw.params import CoreParams
from contract.registers import weight_bases

from .harness import VerilatorTransport, build_harness

__all__ = ["build_accelerator", "open_accelerator"]


def build_accelerator(cfg, build_dir, trace=False, **overrides):
    """Generate ``lela_accelerator`` for ``cfg`` and compile its Verilator harness (cached).

    Returns the harness executable."""
    params = CoreParams.from_config(cfg, **{"scramble_collisions": True, **overrides})
    os.makedirs(build_dir, exist_ok=True)
    source = write_verilog(Accelerator(params), "lela_accelerator", build_dir)
    _, words = weight_bases(cfg)
    return build_harness(source, params.word_bits, params.addr_bits, max(words, 1), build_dir,
                         trace=trace)


def open_accelerator(executable, **options):
    """A :class:`sim.harness.VerilatorTransport` on ``executable`` (see its options)."""
    return VerilatorTransport(executable, **options)
