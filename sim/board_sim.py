"""The board path in simulation: the UART accelerator in Verilator behind a pseudo-terminal.

    with SimulatedBoard(build_board(cfg, "build/board")) as board:
        link = SerialTransport(board.port)      # the exact transport a user runs on a board
"""

import os
import subprocess

from gen.verilog import write_verilog
from contract.registers import weight_bases
from hw.params import CoreParams, index_bits
from hw.uart_accelerator import UartAccelerator
from hw.weight_memory import OnChipWeightMemory

from .harness import compile_harness

__all__ = ["build_board", "SimulatedBoard", "BOARD_CPP"]

BOARD_CPP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness",
                         "board_harness.cpp")


def build_board(cfg, build_dir, divisor=16, trace=False, board=None, **overrides):
    """Verilog of a :class:`UartAccelerator` for ``cfg`` (``divisor`` cycles per bit) and its
    pseudo-terminal harness; returns the executable. With ``board`` (hw/boards), its core
    options and its weight memory."""
    words = weight_bases(cfg)[1]
    fields = dict(addr_bits=index_bits(words), frame_timeout=64 * 10 * divisor,
                  scramble_collisions=True)
    if board is not None:
        fields.update(board.core_options)
    fields.update(overrides)
    params = CoreParams.from_config(cfg, **fields)
    if board is not None:
        memory = board.weight_memory(params, words)
    else:
        memory = OnChipWeightMemory(params.addr_bits, params.word_bits, words)
    fifo = board.rx_fifo_depth if board is not None else 16
    source = write_verilog(UartAccelerator(params, divisor, memory, fifo), "lela_board",
                           build_dir)
    return compile_harness(source, BOARD_CPP, "lela_board", "board_config.h",
                           f"#define DIVISOR {divisor}\n", "lela_board_harness", build_dir,
                           trace)


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

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
