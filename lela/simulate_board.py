"""``lela simulate-board``: a board's gateware in Verilator behind a pseudo-terminal, for
``lela train --backend serial`` (or any program that opens a serial port) to talk to as it
would to the board on a USB cable.

The simulation is the board's path from the UART pins inwards: UART, host interface, core and
the board's weight memory (block RAM, or for ``ulx3s-sdram`` the SDRAM controller with the
C++ model of the board's SDRAM on its pins, checking every timing rule). It is built for one
network (the board's config, or ``--config``/``--arch``): the core's address widths are sized
for it. The UART runs at ``--divisor`` clock cycles a bit (a board's real rate would make a
simulated mini-batch's upload tens of times slower to simulate; the core's cycles do not
depend on it), and a simulated mini-batch takes seconds, so ``lela train`` needs a
``--reply-timeout`` of a minute or more for the paper's networks.
"""

import hashlib
import os
import re
import signal
import time

from contract.config import ConfigError, load_config

__all__ = ["simulate_board", "build_simulation", "config_with_arch"]


def config_with_arch(path, arch, out_path):
    """Write the TOML config ``path`` with ``arch`` as its layers to ``out_path``; returns
    ``out_path``."""
    from lela.checks import UserError
    text = open(path).read()
    line = f"arch = [{', '.join(map(str, arch))}]"
    text, n = re.subn(r"^arch\s*=\s*\[[^\]]*\]", line, text, count=1, flags=re.M)
    if n == 0:
        raise UserError(f"--config {path}: has no 'arch = [...]' line to replace with --arch")
    os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
    with open(out_path, "w") as f:
        f.write(text)
    return out_path


def _network_config(board, config, arch, build_root):
    """The config file to build for: ``config`` (default: the board's), with ``arch``'s layers
    when given (written next to the build, so that ``lela train --config`` can use it)."""
    from lela.checks import UserError
    path = config or board.config
    if not os.path.isfile(path):
        raise UserError(f"--config {path}: no such file")
    if arch:
        name = "x".join(map(str, arch))
        path = config_with_arch(path, arch, os.path.join(build_root, f"{board.name}-{name}.toml"))
    return path, load_config(path)


def build_simulation(board, cfg, divisor, build_root):
    """The harness executable of ``board`` built for ``cfg`` with the UART at ``divisor``
    cycles a bit, in ``build_root/<board>-<hash of the three>`` (reused when unchanged)."""
    from sim.board_sim import build_board
    key = hashlib.sha256(repr((board.name, cfg.to_dict(), divisor)).encode()).hexdigest()[:12]
    return build_board(cfg, os.path.join(build_root, f"{board.name}-{key}"), divisor=divisor,
                       board=board)


def simulate_board(board_name, config=None, arch=(), divisor=8, build_root="build/board-sim",
                   log=lambda line: print(line, flush=True)):
    """Build (or reuse) the simulation and serve it until interrupted (Ctrl-C, SIGTERM) or
    until its process ends; returns the harness's last words (the SDRAM model's command
    counts, if any)."""
    from hw.boards import BOARDS
    from lela.checks import UserError
    from sim.board_sim import SimulatedBoard
    board = BOARDS[board_name]
    if divisor < 4:
        raise UserError(f"--divisor {divisor}: the UART needs at least 4 cycles a bit")
    try:
        path, cfg = _network_config(board, config, arch, build_root)
    except ConfigError as e:
        raise UserError(str(e)) from None
    log(f"building the {board.name} simulation for {'-'.join(map(str, cfg.arch))} in "
        f"{build_root} (Verilator; minutes the first time) ...")
    t0 = time.time()
    exe = build_simulation(board, cfg, divisor, build_root)
    log(f"built in {time.time() - t0:.0f} s")
    with SimulatedBoard(exe) as sim:
        log(f"the {board.name} is simulated on {sim.port}: lela train --backend serial "
            f"--port {sim.port} --config {path} --reply-timeout 120 ...  (Ctrl-C stops it)")
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            sim.proc.wait()
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
    last = (sim.stderr or "").strip().splitlines()
    return last[-1] if last else ""
