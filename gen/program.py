"""Programming a board with its bitstream: iceprog (iCEBreaker) or openFPGALoader (ULX3S), the
Debian packages fpga-icestorm and openfpgaloader."""

import json
import os
import shutil
import subprocess

__all__ = ["ProgramError", "PROGRAMMERS", "program", "built_baud"]


class ProgramError(Exception):
    """Why the board could not be programmed, in one line."""


#: board: (bitstream file in the build directory, command, Debian package)
PROGRAMMERS = {
    "icebreaker": ("top.bin", ["iceprog", "{bitstream}"], "fpga-icestorm"),
    "ulx3s": ("top.bit", ["openFPGALoader", "--board", "ulx3s", "{bitstream}"],
              "openfpgaloader"),
}
PROGRAMMERS["ulx3s-sdram"] = PROGRAMMERS["ulx3s"]     # the same board, its weights in SDRAM


def program(board, build_dir, runner=subprocess.run):
    """Load ``build_dir``'s bitstream into the board's SRAM; returns the tool's output."""
    if board not in PROGRAMMERS:
        raise ProgramError(f"unknown board {board!r} (choose {', '.join(PROGRAMMERS)})")
    name, command, package = PROGRAMMERS[board]
    bitstream = os.path.join(build_dir, name)
    if not os.path.exists(bitstream):
        raise ProgramError(f"no bitstream at {bitstream}: run `make bitstream BOARD={board}` "
                           "first")
    if shutil.which(command[0]) is None:
        raise ProgramError(f"{command[0]} is not installed (Debian package {package})")
    argv = [part.format(bitstream=bitstream) for part in command]
    result = runner(argv, capture_output=True, text=True)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout or "").strip().splitlines()
        why = lines[-1] if lines else f"exit status {result.returncode}"
        raise ProgramError(f"{command[0]} could not program the {board}: {why} (is the board "
                           "plugged in, and may this user open its USB device?)")
    return result.stdout


def built_baud(build_dir):
    """The baud rate the bitstream in ``build_dir`` was built with (its report.json), or None
    when the report is missing or names none."""
    try:
        with open(os.path.join(build_dir, "report.json")) as f:
            return json.load(f).get("baud")
    except (OSError, ValueError, AttributeError):
        return None
