"""What the whole accelerator must write and answer, from the golden model (shared by the
Verilator and cocotb test paths)."""

import numpy as np

from contract.registers import weight_bases

__all__ = ["memory_words", "expected_writes", "read_write_log", "small_config"]


def small_config(path, train=""):
    """Write a small digits network (4 x 4 array, batch 8) as TOML at ``path``; ``train``
    adds lines to its [train] table. Returns the path as a string."""
    path.write_text("[network]\narch = [64, 16, 12]\nclasses = 10\nbatch = 8\n"
                    "[array]\narray_rows = 4\narray_cols = 4\n[train]\n" + train)
    return str(path)


def memory_words(cfg, weights, biases):
    """Layer by layer, the bus words ``(address, [P lanes])`` in memory order
    (docs/HOST_INTERFACE.md, "Weight layout")."""
    p = cfg.array_rows
    bases, _ = weight_bases(cfg)
    out = []
    for i, (w, b) in enumerate(zip(weights, biases)):
        n, j = cfg.neurons(i), cfg.fan_in(i)
        t = -(-n // p)
        grid = np.zeros((t * p, j + 1), dtype=np.int64)
        grid[:n, :j] = w
        grid[:n, j] = b
        words = grid.reshape(t, p, j + 1).transpose(0, 2, 1).reshape(t * (j + 1), p)
        out += [(bases[i] + k, [int(v) for v in word]) for k, word in enumerate(words)]
    return out


def expected_writes(cfg, net):
    """The writes an INIT_WEIGHTS or a TRAIN makes: every layer's words, in memory order."""
    return memory_words(cfg, net.weights, net.biases)


def read_write_log(path, cfg):
    """Records of the harness's ``--write-log``: ``(address, [P signed lanes])``."""
    p, wb = cfg.array_rows, cfg.weight_bits // 8
    raw = open(path, "rb").read()
    size = 4 + p * wb
    if len(raw) % size:
        raise ValueError(f"write log of {len(raw)} bytes is not a whole number of records")
    out = []
    for k in range(0, len(raw), size):
        addr = int.from_bytes(raw[k:k + 4], "little")
        lanes = np.frombuffer(raw[k + 4:k + size], dtype=f"<i{wb}").astype(int).tolist()
        out.append((addr, lanes))
    return out
