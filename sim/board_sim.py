"""The board path in simulation: the UART accelerator in Verilator behind a pseudo-terminal.

    with SimulatedBoard(build_board(cfg, "build/board")) as board:
        link = SerialTransport(board.port)      # the exact transport a user runs on a board

:func:`train_through_a_flip` trains through one flipped bit on the line (the single-bit-flip
sweep of tests/test_board_sim.py and bench/link_integrity.py).
"""

import math
import os
import subprocess
from fractions import Fraction

import numpy as np

from contract.protocol import Command
from gen.sdram_part import sdram_part_header
from gen.verilog import write_verilog
from host.driver import Accelerator, DeviceError, ReplyLost
from host.serial_transport import SerialTransport
from contract.registers import weight_bases
from hw.params import CoreParams, index_bits
from hw.uart_accelerator import UartAccelerator
from hw.weight_memory import OnChipWeightMemory
from sw_model.golden import FixedPointNet

from .harness import compile_harness

__all__ = ["build_board", "SimulatedBoard", "BOARD_CPP", "first_load_batch",
           "train_through_a_flip"]

BOARD_CPP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness",
                         "board_harness.cpp")


def build_board(cfg, build_dir, divisor=16, trace=False, board=None, **overrides):
    """Verilog of a :class:`UartAccelerator` for ``cfg`` (``divisor`` cycles per bit, an int or
    a Fraction as hw/uart.py takes it; the harness's line model runs at the same period) and its
    pseudo-terminal harness; returns the executable. With ``board`` (hw/boards), its core
    options and its weight memory; a board with its weights in SDRAM (``ulx3s-sdram``) gets
    the device model on its SDRAM pins (sim/harness/board_sdram.h). The UART receiver's FIFO
    is ``cfg.rx_buffer`` bytes deep, as on a board (``Board.for_config``)."""
    words = weight_bases(cfg)[1]
    period = Fraction(divisor)
    fields = dict(addr_bits=index_bits(words), frame_timeout=math.ceil(64 * 10 * period),
                  scramble_collisions=True)
    if board is not None:
        fields.update(board.core_options)
    fields.update(overrides)
    params = CoreParams.from_config(cfg, **fields)
    if board is not None:
        memory = board.weight_memory(params, words, simulated=True)
    else:
        memory = OnChipWeightMemory(params.addr_bits, params.word_bits, words)
    fifo = cfg.rx_buffer                 # as Board.for_config builds it
    source = write_verilog(UartAccelerator(params, divisor, memory, fifo), "lela_board",
                           build_dir)
    header = (f"#define DIVISOR_NUM {period.numerator}\n"
              f"#define DIVISOR_DEN {period.denominator}\n")
    if "sdram" in memory.signature.members:
        # The device model on the SDRAM pins, with the part the controller was built for.
        part = sdram_part_header(memory.part).replace("#pragma once\n", "")
        header += (f"#define LELA_SDRAM 1\n#define SDRAM_CLOCK_HZ {memory.timing.clock_hz!r}\n"
                   f"{part}")
    return compile_harness(source, BOARD_CPP, "lela_board", "board_config.h", header,
                           "lela_board_harness", build_dir, trace)


class SimulatedBoard:
    """Runs the harness; :attr:`port` is the pseudo-terminal to open with pyserial.

    ``flip``/``drop``: index of a host byte to damage (line noise): bit ``flip_bit`` of it
    flipped, or the byte dropped."""

    def __init__(self, executable, flip=None, drop=None, vcd=None, flip_bit=4):
        cmd = [executable]
        if flip is not None:
            if not 0 <= flip_bit <= 7:
                raise ValueError(f"flip_bit {flip_bit} outside 0..7")
            cmd += ["--flip", str(flip), "--flip-bit", str(flip_bit)]
        if drop is not None:
            cmd += ["--drop", str(drop)]
        if vcd is not None:
            cmd += ["--vcd", os.fspath(vcd)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("/dev/"):
            err = self.proc.stderr.read().decode(errors="replace")
            raise RuntimeError(f"board harness did not start: {err.strip() or line}")
        self.port = line
        self.stderr = None

    def close(self):
        """Stop the harness; :attr:`stderr` then holds what it wrote there (the SDRAM model's
        command counts, or the rule it saw broken)."""
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.stderr is None:
            self.stderr = self.proc.stderr.read().decode(errors="replace")

    def sdram_commands(self):
        """After :meth:`close`: ``{command: count}`` from the SDRAM model's last line (``cycles``
        too), or None when the harness wrote none."""
        for line in reversed(self.stderr.splitlines()):
            if line.startswith("sdram: "):
                words = line.split()[1:]
                return {k: int(v) for k, v in zip(words[::2], words[1::2])}
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _RecordingLink:
    """A transport that keeps every request it sends."""

    def __init__(self, link):
        self.link, self.sent = link, []

    def exchange(self, data, frames=1, timeout=None):
        if data:
            self.sent.append(bytes(data))
        return self.link.exchange(data, frames=frames, timeout=timeout)


def first_load_batch(exe, cfg, x, y):
    """Where the first LOAD_BATCH frame starts in the host's bytes, and its length (one clean
    run of :func:`train_through_a_flip`'s steps: configure, init, train ``x``, ``y``)."""
    with SimulatedBoard(exe) as sim:
        link = SerialTransport(sim.port, timeout=5)
        rec = _RecordingLink(link)
        acc = Accelerator(rec, retries=3)
        acc.configure(cfg)
        acc.init_weights()
        acc.train_batch(x, y)
        link.close()
    at = next(k for k, frame in enumerate(rec.sent) if frame[1] == Command.LOAD_BATCH)
    return sum(len(frame) for frame in rec.sent[:at]), len(rec.sent[at])


def train_through_a_flip(exe, cfg, batches, byte, bit):
    """A fresh board with bit ``bit`` of host byte ``byte`` flipped on the line: configure,
    train ``batches[0]`` (the flip hits it), then ``batches[1]`` and read the weights. Returns
    ``(outcome, problem)``: ``"right"`` or ``"raised"`` (an exception from the damaged
    mini-batch is allowed: the device is then reset and configured again), and what went
    wrong (a silent wrong result, a device that does not train bit-exactly after it) or
    None."""
    with SimulatedBoard(exe, flip=byte, flip_bit=bit) as sim:
        link = SerialTransport(sim.port, timeout=3)
        try:
            return _train_and_check(Accelerator(link, retries=3), cfg, batches)
        finally:
            link.close()


def _train_and_check(acc, cfg, batches):
    acc.configure(cfg)
    acc.init_weights()
    net = FixedPointNet(cfg)
    (x, y), (x2, y2) = batches
    outcome = "right"
    try:
        got = acc.train_batch(x, y)
    except (ReplyLost, DeviceError):
        outcome = "raised"
        acc.reset()
        acc.configure(cfg)
        acc.init_weights()
        net = FixedPointNet(cfg)
    else:
        want = net.train_batch(x, y)
        if got != want:
            return "wrong", f"silent wrong result {got}, golden {want}"
    if acc.train_batch(x2, y2) != net.train_batch(x2, y2):
        return outcome, "the next mini-batch's correct counts differ from the golden model's"
    for i, (w, b) in enumerate(acc.read_weights()):
        if not (np.array_equal(w, net.weights[i]) and np.array_equal(b, net.biases[i])):
            return outcome, f"layer {i}'s weights differ from the golden model's"
    return outcome, None
