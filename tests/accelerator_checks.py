"""Test inputs shared by the whole-accelerator tests. What the accelerator must write and
answer is sim/scenarios.py's (shared by the Verilator and cocotb benches)."""

from contract.config import NetConfig

__all__ = ["small_config", "HARDWARE", "TIMEOUT", "NoisyLink"]

#: The whole-core tests' hardware (tests/conftest.py builds it once for every module): one
#: build runs any network within its limits, and holds 40 samples for resident training.
#: (With the drain register's row stage and the lanes' multipliers ECP5 blocks, through their
#: simulation model, as the 8 x 8 ULX3S builds them; the convolutional and batch-normalising
#: harnesses build without either.)
HARDWARE = NetConfig(arch=(20, 24, 24, 16), classes=4, batch=8, array_rows=4, array_cols=4,
                     lr_shift=4, resident_samples=40, drain_row_stage=True, multiplier="ecp5")
#: Cycles before the device drops a frame that stopped arriving.
TIMEOUT = 3000


def small_config(path, train=""):
    """Write a small digits network (4 x 4 array, batch 8) as TOML at ``path``; ``train``
    adds lines to its [train] table. Returns the path as a string."""
    path.write_text("[network]\narch = [64, 16, 12]\nclasses = 10\nbatch = 8\n"
                    "[array]\narray_rows = 4\narray_cols = 4\n[train]\n" + train)
    return str(path)


class NoisyLink:
    """Wraps a transport and damages chosen frames: ``plan[(command, n)]`` is what happens to
    the n-th frame of that command sent (``flip`` or ``drop`` a request byte, or ``garble``
    the reply)."""

    def __init__(self, link, plan):
        self.link, self.plan, self.seen = link, dict(plan), {}
        self.damaged = 0

    def exchange(self, data, frames=1, timeout=None):
        command = data[1] if data else None         # b"": the driver waits for more replies
        n = self.seen[command] = self.seen.get(command, 0) + 1
        what = self.plan.pop((command, n), None)
        self.damaged += what is not None
        data = bytearray(data)
        if what == "flip":
            data[len(data) // 2] ^= 0x10
        elif what == "drop":
            del data[len(data) // 2]
        reply = bytearray(self.link.exchange(bytes(data), frames=frames))
        if what == "garble":
            reply[-2] ^= 0x01
        return bytes(reply)
