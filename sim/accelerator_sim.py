"""Build the whole accelerator for a configuration and open the fast simulation transport.

:class:`HarnessBench` is the Verilator side of the whole-core scenarios (sim/scenarios.py): the
harness's write log gives every weight-memory write, its STATS request the bus counts.
"""

import logging
import os

from gen.verilog import write_verilog
from hw.accelerator import Accelerator
from hw.params import CoreParams
from contract.registers import weight_bases

from .harness import VerilatorTransport, build_harness
from .scenarios import word_lanes

__all__ = ["build_accelerator", "open_accelerator", "HarnessBench", "read_write_log"]

_log = logging.getLogger(__name__)


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


def _record_layout(cfg):
    word_bits = cfg.array_rows * cfg.weight_bits
    return 4 + (word_bits + 7) // 8


def read_write_log(path, cfg, offset=0):
    """Records of the harness's ``--write-log`` from byte ``offset``: ``(address, [P signed
    lanes])`` (a u32 address, then the word's bytes, little endian). Returns them and the
    offset after the last whole record."""
    size = _record_layout(cfg)
    with open(path, "rb") as f:
        f.seek(offset)
        raw = f.read()
    whole = len(raw) - len(raw) % size
    out = []
    for k in range(0, whole, size):
        addr = int.from_bytes(raw[k:k + 4], "little")
        word = int.from_bytes(raw[k + 4:k + size], "little")
        out.append((addr, word_lanes(word, cfg.array_rows, cfg.weight_bits)))
    return out, offset + whole


class HarnessBench:
    """The Verilator harness as a scenario bench (sim/scenarios.py) for a core built for
    ``cfg``'s array and weight width: a context manager that starts the harness with a fresh
    write log at ``write_log`` and ``options`` (seed, stalls: see :class:`VerilatorTransport`)."""

    def __init__(self, executable, cfg, write_log, **options):
        self.cfg = cfg
        self.write_log = os.fspath(write_log)
        if os.path.exists(self.write_log):
            os.remove(self.write_log)       # the harness appends
        self._offset = 0
        self.link = open_accelerator(executable, write_log=self.write_log, **options)

    def exchange(self, data, frames=1, cycles=None):
        if cycles is None:
            return self.link.exchange(data, frames=frames)
        return self.link.exchange(data, frames=frames, max_cycles=cycles)

    def run(self, cycles):
        return self.link.run(cycles)

    def take_writes(self):
        # The harness flushes its write log before it answers a request.
        if not os.path.exists(self.write_log):
            return []
        writes, offset = read_write_log(self.write_log, self.cfg, self._offset)
        if offset != os.path.getsize(self.write_log):
            raise AssertionError(f"write log {self.write_log} ends inside a record")
        self._offset = offset
        return writes

    def bus_errors(self):
        return []       # the harness exits (status 2) on a bus error: the transport raises

    def bus_counts(self):
        stats = self.link.stats()
        return {k: stats[k] for k in ("words_read", "words_written", "rx_bytes")}

    def log(self, message):
        _log.info(message)

    def close(self):
        self.link.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
