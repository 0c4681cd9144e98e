"""The contract: what the RTL, the golden model, the host driver and the generators share.

The configuration and its validation (``config``), the LFSR taps (``lfsr_taps``), the host
frames, commands and statuses (``protocol``), the register map, counters and weight layout
(``registers``), the board SDRAM's geometry and timing (``sdram``). This package imports
nothing else of the repository, so a rule written here is
the same for every side that reads it, and no side can reach another through it.
"""
