"""Board tops: the accelerator behind a UART, with its weights in on-chip memory or SDRAM.

``BOARDS`` maps a board name to its module's :class:`~hw.boards.top.Board` description;
``gen/bitstream.py`` builds them.
"""

from .icebreaker import ICEBREAKER
from .ulx3s import ULX3S, ULX3S_SDRAM

__all__ = ["BOARDS"]

BOARDS = {board.name: board for board in (ICEBREAKER, ULX3S, ULX3S_SDRAM)}
