"""Test inputs shared by the whole-accelerator tests. What the accelerator must write and
answer is sim/scenarios.py's (shared by the Verilator and cocotb benches)."""

__all__ = ["small_config"]


def small_config(path, train=""):
    """Write a small digits network (4 x 4 array, batch 8) as TOML at ``path``; ``train``
    adds lines to its [train] table. Returns the path as a string."""
    path.write_text("[network]\narch = [64, 16, 12]\nclasses = 10\nbatch = 8\n"
                    "[array]\narray_rows = 4\narray_cols = 4\n[train]\n" + train)
    return str(path)
