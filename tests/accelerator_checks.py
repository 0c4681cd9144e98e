"""Test inputs shared by the whole-accelerator tests. What the accelerator must write and
answer is sim/scenarios.py's (shared by the Verilator and cocotb benches)."""

from contract.config import NetConfig

__all__ = ["small_config", "HARDWARE", "TIMEOUT"]

#: The whole-core tests' hardware (tests/conftest.py builds it once for every module): one
#: build runs any network within its limits.
HARDWARE = NetConfig(arch=(20, 24, 24, 16), classes=4, batch=8, array_rows=4, array_cols=4,
                     lr_shift=4)
#: Cycles before the device drops a frame that stopped arriving.
TIMEOUT = 3000


def small_config(path, train=""):
    """Write a small digits network (4 x 4 array, batch 8) as TOML at ``path``; ``train``
    adds lines to its [train] table. Returns the path as a string."""
    path.write_text("[network]\narch = [64, 16, 12]\nclasses = 10\nbatch = 8\n"
                    "[array]\narray_rows = 4\narray_cols = 4\n[train]\n" + train)
    return str(path)
