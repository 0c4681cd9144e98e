"""The ULX3S's SDRAM: the part's geometry and timing, and the cycle counts they give at a clock
(docs/SDRAM.md).

The ULX3S (README and bill of materials of v3.0.3, github.com/emard/ulx3s) carries a Micron
MT48LC16M16A2TG-6A: 256 Mbit, 4 banks x 8192 rows x 512 columns x 16 bits (32 MB), which is what
amaranth-boards' ``SDRAMResource`` of the ULX3S declares (13 address bits, 2 bank bits, 16 data
bits). Other board runs fit pin-compatible 32 MB parts (ISSI IS42S16160, Alliance AS4C16M16SA)
whose -6/-7 grades meet the same numbers or better at 50 MHz; a part slower than the one below
needs its own :class:`SdramPart`.

Numbers from Micron's "256Mb: x4, x8, x16 SDRAM" data sheet (MT48LC64M4A2 / MT48LC32M8A2 /
MT48LC16M16A2), Table 12 "Electrical Characteristics and Recommended AC Operating Conditions"
and Table 13 "AC Functional Characteristics", speed grade -6A, commercial temperature. The
revision letter of the copy read was not visible in it; the values below are those of the -6A
column.

:class:`SdramPart` holds the data sheet's numbers (nanoseconds or clocks, as the data sheet gives
them). :class:`SdramTiming` is what a controller needs at one clock: each rule rounded up to whole
cycles. The device model (sim/sdram_model.py) does not use :class:`SdramTiming`: it checks each
rule against the part's nanoseconds itself.
"""

from dataclasses import dataclass, field
from math import ceil

__all__ = ["SdramPart", "SdramTiming", "MT48LC16M16A2_6A", "cycles_for", "mode_register"]


@dataclass(frozen=True)
class SdramPart:
    """A single-data-rate SDRAM: geometry and the data sheet's timing.

    Times in ns unless the name says ``_clk`` (a count of clocks the data sheet fixes)."""

    name: str
    data_bits: int = 16
    bank_bits: int = 2
    row_bits: int = 13
    col_bits: int = 9
    #: Minimum clock period for each CAS latency (tCK(2), tCK(3)).
    tck_min: dict = field(default_factory=lambda: {2: 10.0, 3: 6.0})
    tRCD: float = 18.0          # ACTIVE to READ or WRITE
    tRP: float = 18.0           # PRECHARGE command period
    tRAS: float = 42.0          # ACTIVE to PRECHARGE, minimum
    tRAS_max: float = 120_000.0  # ACTIVE to PRECHARGE, maximum
    tRC: float = 60.0           # ACTIVE to ACTIVE, same bank
    tRFC: float = 60.0          # AUTO REFRESH period
    tRRD: float = 12.0          # ACTIVE bank a to ACTIVE bank b
    #: WRITE recovery: the last data in to PRECHARGE (manual precharge): 12 ns, and never fewer
    #: than the 2 clocks of the part's "A2" option (tWR = 2 CLK; Table 13's tDPL).
    tWR: float = 12.0
    tWR_clk: int = 2
    tMRD_clk: int = 2           # LOAD MODE REGISTER to any command
    tCCD_clk: int = 1           # READ/WRITE to READ/WRITE (column address change every clock)
    #: Data-out hold time after the clock edge that samples it (tOH) and the time it takes the
    #: outputs to go High-Z (tHZ(2) for CL2 at -6A; tHZ(3) is 5.4 ns).
    tOH: float = 3.0
    tHZ: float = 7.5
    tREF: float = 64e6          # every row refreshed within 64 ms ...
    refresh_rows: int = 8192    # ... by 8192 AUTO REFRESH commands
    #: Power-up: 100 us of COMMAND INHIBIT or NOP before the first command, then PRECHARGE ALL,
    #: at least 2 AUTO REFRESH and LOAD MODE REGISTER (the refreshes may follow the LMR).
    powerup: float = 100_000.0
    init_refreshes: int = 2
    #: JEDEC lets a controller postpone up to 8 AUTO REFRESH commands (and pull in up to 8): the
    #: interval between two REFs may reach 9 x tREFI as long as the average holds.
    max_postponed: int = 8

    @property
    def tREFI(self):
        """The average AUTO REFRESH interval, tREF / rows (7812.5 ns)."""
        return self.tREF / self.refresh_rows

    @property
    def words(self):
        """16-bit locations of the whole part."""
        return 1 << (self.bank_bits + self.row_bits + self.col_bits)


#: The part on the ULX3S (v3.0.x bill of materials): Micron MT48LC16M16A2TG-6A.
MT48LC16M16A2_6A = SdramPart(name="MT48LC16M16A2-6A")


def cycles_for(ns, tck):
    """The fewest whole clocks of ``tck`` ns that last ``ns`` (a data sheet's "round up")."""
    return max(0, ceil(ns / tck - 1e-9))


def mode_register(cas_latency, burst_length=1):
    """The LOAD MODE REGISTER value (A12..A0): burst length (A2..A0; 1 is 000), sequential
    (A3 = 0), CAS latency (A6..A4), standard operation (A8..A7 = 00), programmed burst length
    for writes (A9 = 0)."""
    bl = {1: 0, 2: 1, 4: 2, 8: 3}[burst_length]
    if cas_latency not in (2, 3):
        raise ValueError(f"CAS latency {cas_latency}: the part takes 2 or 3")
    return bl | (cas_latency << 4)


@dataclass(frozen=True)
class SdramTiming:
    """The part's rules in clocks at ``clock_hz`` with CAS latency ``cl``: the controller's
    parameters. ``powerup`` may be shortened for simulation (:meth:`derive`'s
    ``powerup_cycles``); every other field comes from the part."""

    clock_hz: float
    cl: int
    rcd: int
    rp: int
    ras: int
    rc: int
    rfc: int
    rrd: int
    wr: int
    mrd: int
    #: Clocks between AUTO REFRESH commands the controller aims for: tREFI rounded down, less
    #: ``refresh_margin`` (room to finish the word in progress and precharge first).
    refi: int
    powerup: int
    init_refreshes: int

    @classmethod
    def derive(cls, part=MT48LC16M16A2_6A, clock_hz=50e6, cl=2, powerup_cycles=None,
               refresh_margin=32):
        tck = 1e9 / clock_hz
        if cl not in part.tck_min:
            raise ValueError(f"{part.name}: CAS latency {cl} not supported")
        if tck < part.tck_min[cl] - 1e-9:
            raise ValueError(f"{part.name}: {clock_hz / 1e6:g} MHz is too fast for CL{cl} "
                             f"(tCK >= {part.tck_min[cl]} ns)")
        refi = int(part.tREFI // tck) - refresh_margin
        if refi < 16:
            raise ValueError(f"refresh margin {refresh_margin} leaves no refresh interval")
        return cls(
            clock_hz=clock_hz, cl=cl,
            rcd=max(1, cycles_for(part.tRCD, tck)), rp=max(1, cycles_for(part.tRP, tck)),
            ras=max(1, cycles_for(part.tRAS, tck)), rc=max(1, cycles_for(part.tRC, tck)),
            rfc=max(1, cycles_for(part.tRFC, tck)), rrd=max(1, cycles_for(part.tRRD, tck)),
            wr=max(part.tWR_clk, cycles_for(part.tWR, tck)), mrd=part.tMRD_clk,
            refi=refi,
            powerup=(cycles_for(part.powerup, tck) if powerup_cycles is None
                     else powerup_cycles),
            init_refreshes=part.init_refreshes)
