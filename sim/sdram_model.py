"""A cycle-accurate model of the board's SDRAM (contract/sdram.py's part) that stores data and
checks every timing rule of the part on each command it is given (docs/SDRAM.md).

It is written from the data sheet's command truth table and its timing tables, not from the
controller: each rule is checked in nanoseconds (the number of clocks between two commands times
the clock period against the data sheet's minimum), so the controller's own rounding to cycles
(contract.sdram.SdramTiming) is what is under test. A broken rule raises
:class:`SdramTimingError` naming the rule, the command, its cycle and bank, the earlier command
it is measured from and what the part needs, e.g.::

    tRCD violated: READ at cycle 1234 to bank 2, 1 cycle (7.0 ns) after ACTIVE at cycle 1233;
    needs 18 ns (3 cycles at 143 MHz)

One call of :meth:`SdramModel.step` is one clock: the pins the controller drives in that cycle
(sampled by the device at the cycle's closing edge) in, the value the device drives on DQ in that
cycle out (``None`` while it does not drive: the bench puts junk there, so a controller sampling
the wrong cycle reads garbage). A READ in cycle ``c`` drives its word in cycle ``c + CL``; the
device keeps DQ until tOH after the edge that closes that cycle and releases it only tHZ after
it, so the cycle after the data also belongs to the device: a controller driving DQ in either
cycle is a bus conflict (a WRITE needs one idle bus cycle after read data).

What is modelled: COMMAND INHIBIT, NOP, ACTIVE, READ, WRITE, PRECHARGE (one bank, or all with
A10), AUTO REFRESH, LOAD MODE REGISTER; burst length 1 (the only length the mode register may
select here: another raises :class:`SdramUnsupported`, as do BURST TERMINATE, auto precharge
(A10 on READ/WRITE) and CKE low); DQM on writes (byte enables, latency 0) and reads (output
masked, latency 2). The initialisation is the data sheet's: ``powerup`` ns of NOP or INHIBIT
(a parameter, shortened for simulation; the part's is 100 us), PRECHARGE ALL, at least two AUTO
REFRESH and LOAD MODE REGISTER (the refreshes may come before or after it); nothing else is
accepted before.

Refresh: the part needs 8192 AUTO REFRESH every 64 ms, one per tREFI = 7812.5 ns on average.
From the end of the initialisation the model counts the tREFI periods that have passed against
the refreshes issued: each period adds one due, each REF pays one (at most ``max_postponed``
refreshes ahead are banked, as JEDEC allows pulling in up to 8). More than ``max_postponed``
due at once is a violation (JEDEC: up to 8 may be postponed, i.e. two REFs at most 9 x tREFI
apart). ``max_postponed=0`` asks for a REF in every tREFI period: the strict check the tests
use.
"""

import math

from contract.sdram import MT48LC16M16A2_6A

__all__ = ["SdramModel", "SdramTimingError", "SdramUnsupported", "run_model"]


class SdramTimingError(AssertionError):
    """A command broke one of the part's rules."""


class SdramUnsupported(AssertionError):
    """A command or mode this model does not implement."""


# The command truth table: (RAS#, CAS#, WE#) with CS# low.
_COMMANDS = {
    (1, 1, 1): "NOP", (0, 1, 1): "ACTIVE", (1, 0, 1): "READ", (1, 0, 0): "WRITE",
    (1, 1, 0): "BURST TERMINATE", (0, 1, 0): "PRECHARGE", (0, 0, 1): "AUTO REFRESH",
    (0, 0, 0): "LOAD MODE REGISTER",
}


class SdramModel:
    """The part ``part`` clocked at ``clock_hz``. ``powerup_ns`` overrides the power-up wait
    (simulation); ``max_postponed`` the refresh slack (default the part's, 8)."""

    def __init__(self, part=MT48LC16M16A2_6A, clock_hz=50e6, powerup_ns=None,
                 max_postponed=None):
        self.part = part
        self.tck = 1e9 / clock_hz
        self.mhz = clock_hz / 1e6
        self.powerup_ns = part.powerup if powerup_ns is None else powerup_ns
        self.max_postponed = part.max_postponed if max_postponed is None else max_postponed
        self.banks = 1 << part.bank_bits
        self.cycle = 0
        # Per bank: the open row, None when idle, "?" before the first PRECHARGE (unknown).
        self.row = ["?"] * self.banks
        self.last_act = [None] * self.banks
        self.last_pre = [None] * self.banks
        self.last_write = [None] * self.banks
        self.last_act_any = None            # (cycle, bank)
        self.last_ref = None
        self.last_mrs = None
        self.cl = None                      # from the mode register
        self.precharged_all = False         # the initialisation's PRECHARGE ALL happened
        self.init_refreshes = 0
        self.ready_at = None                # cycle the initialisation completed
        self.refresh_balance = 0            # refreshes paid minus periods passed
        self.next_due_ns = None
        self.last_ref_cycle = None
        self.mem = {}                       # (bank, row, col) -> 16-bit word
        self.out = {}                       # cycle -> (data or None if masked, read cycle)
        self.busy = {}                      # cycle -> read cycle whose output holds DQ
        self.dqm_at = {}                    # cycle -> dqm (kept a few cycles, for reads)
        self.counts = {name: 0 for name in _COMMANDS.values()}

    # ---- the data sheet's rules --------------------------------------------------------------
    def _cycles(self, ns):
        return max(1, math.ceil(ns / self.tck - 1e-9))

    def _need(self, rule, command, bank, since, what, ns, clocks=0):
        """``command`` (this cycle, to ``bank`` or None) must come ``ns`` nanoseconds and
        ``clocks`` clocks after ``what`` issued at cycle ``since`` (None: never issued)."""
        if since is None:
            return
        gap = self.cycle - since
        if gap * self.tck >= ns - 1e-9 and gap >= clocks:
            return
        need = max(self._cycles(ns) if ns else 0, clocks)
        to = f" to bank {bank}" if bank is not None else ""
        plural = "" if gap == 1 else "s"
        wants = f"{ns:g} ns" + (f" and {clocks} clocks" if clocks and ns else "") if ns else \
            f"{clocks} clocks"
        raise SdramTimingError(
            f"{rule} violated: {command} at cycle {self.cycle}{to}, {gap} cycle{plural} "
            f"({gap * self.tck:.1f} ns) after {what} at cycle {since}; needs {wants} "
            f"({need} cycles at {self.mhz:g} MHz)")

    def _fail(self, rule, message):
        raise SdramTimingError(f"{rule} violated: {message} at cycle {self.cycle}")

    # ---- one clock -------------------------------------------------------------------------
    def step(self, cke=1, cs_n=1, ras_n=1, cas_n=1, we_n=1, ba=0, a=0, dqm=0, dq_o=0, dq_oe=0):
        """The pins of this cycle in; the value the device drives on DQ this cycle out (None:
        it does not drive)."""
        c = self.cycle
        if not cke:
            raise SdramUnsupported(f"CKE low at cycle {c}: power-down and self refresh are not "
                                   "modelled")
        self.dqm_at[c] = dqm
        self.dqm_at.pop(c - 4, None)
        # The data bus this cycle: the device's READ output and its hold/release cycle.
        if dq_oe and c in self.busy:
            self._fail("tHZ (bus turnaround)",
                       f"the controller drives DQ while the device still outputs the READ of "
                       f"cycle {self.busy[c]} (its data holds tOH = {self.part.tOH:g} ns past "
                       f"the sampling edge and goes High-Z only tHZ = {self.part.tHZ:g} ns "
                       f"after it)")
        self.busy.pop(c, None)
        drive = None
        if c in self.out:
            data, _ = self.out.pop(c)
            if not self.dqm_at.get(c - 2, 0):      # DQM masks read data 2 clocks later
                drive = data

        command = "INHIBIT" if cs_n else _COMMANDS[(ras_n, cas_n, we_n)]
        if command not in ("INHIBIT", "NOP"):
            self.counts[command] += 1
            self._command(command, ba, a, dqm, dq_o, dq_oe)
        else:
            self.counts["NOP"] += 1
        self._check_open_rows()
        self._check_refresh()
        self.cycle += 1
        return drive

    def _command(self, command, ba, a, dqm, dq_o, dq_oe):
        part, c = self.part, self.cycle
        if c * self.tck < self.powerup_ns - 1e-9:
            self._fail("power-up", f"{command} after {c * self.tck:.0f} ns; the part needs "
                                   f"{self.powerup_ns:g} ns of NOP or COMMAND INHIBIT first")
        self._need("tMRD", command, None, self.last_mrs, "LOAD MODE REGISTER", 0,
                   part.tMRD_clk)
        self._need("tRFC", command, None, self.last_ref, "AUTO REFRESH", part.tRFC)
        if command == "BURST TERMINATE":
            raise SdramUnsupported(f"BURST TERMINATE at cycle {c}: burst length 1 only")
        col_cmd = command in ("READ", "WRITE")
        if command == "ACTIVE" or col_cmd:
            if self.ready_at is None:
                self._fail("initialisation", f"{command} before the initialisation completed "
                           f"(PRECHARGE ALL, {part.init_refreshes} AUTO REFRESH, LOAD MODE "
                           f"REGISTER; so far: precharged={self.precharged_all}, "
                           f"{self.init_refreshes} refreshes, mode set={self.cl is not None})")
        if command == "ACTIVE":
            row = a & ((1 << part.row_bits) - 1)
            if self.row[ba] is not None:
                self._fail("bank state", f"ACTIVE to bank {ba} (row {row}) while row "
                                         f"{self.row[ba]} is open; PRECHARGE it first")
            self._need("tRP", command, ba, self.last_pre[ba], "PRECHARGE", part.tRP)
            self._need("tRC", command, ba, self.last_act[ba], "ACTIVE", part.tRC)
            if self.last_act_any is not None and self.last_act_any[1] != ba:
                self._need("tRRD", command, ba, self.last_act_any[0],
                           f"ACTIVE to bank {self.last_act_any[1]}", part.tRRD)
            self.row[ba] = row
            self.last_act[ba] = c
            self.last_act_any = (c, ba)
        elif col_cmd:
            col = a & ((1 << part.col_bits) - 1)
            if a & (1 << 10):
                raise SdramUnsupported(f"{command} with auto precharge (A10) at cycle {c}")
            if self.row[ba] is None:
                self._fail("bank state", f"{command} to bank {ba} with no row open")
            self._need("tRCD", command, ba, self.last_act[ba], "ACTIVE", part.tRCD)
            key = (ba, self.row[ba], col)
            if command == "WRITE":
                if not dq_oe:
                    self._fail("write data", f"WRITE to bank {ba} with DQ not driven")
                mask = (0 if dqm & 1 else 0x00ff) | (0 if dqm & 2 else 0xff00)
                old = self.mem.get(key, 0)
                self.mem[key] = (old & ~mask & 0xffff) | (dq_o & mask)
                self.last_write[ba] = c
            else:
                at = c + self.cl
                self.out[at] = (self.mem.get(key, 0), c)
                self.busy[at] = c
                self.busy[at + 1] = c
        elif command == "PRECHARGE":
            banks = range(self.banks) if a & (1 << 10) else [ba]
            for b in banks:
                if self.row[b] is None:
                    continue                # a PRECHARGE to an idle bank is a NOP for it
                if self.row[b] != "?":
                    self._need("tRAS", command, b, self.last_act[b], "ACTIVE", part.tRAS)
                    self._need("tWR", command, b, self.last_write[b], "WRITE", part.tWR,
                               part.tWR_clk)
                self.row[b] = None
                self.last_pre[b] = c
            if a & (1 << 10):
                self.precharged_all = True
        elif command in ("AUTO REFRESH", "LOAD MODE REGISTER"):
            if not self.precharged_all:
                self._fail("initialisation", f"{command} before the first PRECHARGE ALL")
            for b in range(self.banks):
                if self.row[b] is not None:
                    self._fail("bank state", f"{command} with row {self.row[b]} of bank {b} "
                                             "open; all banks must be idle")
                self._need("tRP", command, b, self.last_pre[b], f"PRECHARGE of bank {b}",
                           part.tRP)
            if command == "AUTO REFRESH":
                self.last_ref = c
                if self.ready_at is None:
                    self.init_refreshes += 1
                else:
                    self.refresh_balance = min(self.refresh_balance + 1, part.max_postponed)
                    self.last_ref_cycle = c
            else:
                self._mode(a)
                self.last_mrs = c
            if (self.ready_at is None and self.cl is not None
                    and self.init_refreshes >= part.init_refreshes):
                self.ready_at = c
                self.last_ref_cycle = c
                self.next_due_ns = c * self.tck + part.tREFI

    def _mode(self, a):
        bl, bt, cl, op, wb = a & 7, (a >> 3) & 1, (a >> 4) & 7, (a >> 7) & 3, (a >> 9) & 1
        if bl != 0 or wb not in (0, 1) or op != 0:
            raise SdramUnsupported(f"mode register {a:#06x} at cycle {self.cycle}: burst "
                                   "length 1 and standard operation only")
        if cl not in self.part.tck_min:
            self._fail("CAS latency", f"mode register {a:#06x} selects CAS latency {cl}; the "
                                      f"part has {sorted(self.part.tck_min)}")
        if self.tck < self.part.tck_min[cl] - 1e-9:
            self._fail("tCK", f"CAS latency {cl} needs tCK >= {self.part.tck_min[cl]:g} ns; "
                              f"the clock is {self.tck:.2f} ns")
        del bt
        self.cl = cl

    def _check_open_rows(self):
        for b in range(self.banks):
            if self.row[b] not in (None, "?") and self.last_act[b] is not None:
                if (self.cycle - self.last_act[b]) * self.tck > self.part.tRAS_max:
                    self._fail("tRAS(max)", f"row {self.row[b]} of bank {b} open since "
                                            f"ACTIVE at cycle {self.last_act[b]}, over "
                                            f"{self.part.tRAS_max:g} ns")

    def _check_refresh(self):
        if self.next_due_ns is None:
            return
        while self.cycle * self.tck >= self.next_due_ns - 1e-9:
            self.refresh_balance -= 1
            self.next_due_ns += self.part.tREFI
            if self.refresh_balance < -self.max_postponed:
                self._fail("refresh interval (tREFI)",
                           f"{-self.refresh_balance} AUTO REFRESH overdue (last REF at cycle "
                           f"{self.last_ref_cycle}); the part needs {self.part.refresh_rows} "
                           f"every {self.part.tREF / 1e6:g} ms, one per "
                           f"{self.part.tREFI:g} ns on average, at most "
                           f"{self.max_postponed} postponed")

    # ---- inspection --------------------------------------------------------------------------
    def peek(self, bank, row, col):
        return self.mem.get((bank, row, col), 0)

    @property
    def beats(self):
        """READ and WRITE commands so far (one 16-bit word each at burst length 1)."""
        return self.counts["READ"] + self.counts["WRITE"]


def run_model(model, pins, rng, max_cycles=None):
    """An Amaranth testbench (``sim.add_testbench(run_model(...), background=True)``) that
    plays the device on the controller's ``pins`` (hw/sdram_controller.py's ``sdram`` port)
    each cycle: DQ gets the device's output, or a random word when it drives nothing. Past
    ``max_cycles`` it raises TimeoutError (a bench that hangs)."""
    async def testbench(ctx):
        while True:
            if max_cycles is not None and model.cycle >= max_cycles:
                raise TimeoutError(f"the SDRAM bench ran {max_cycles} cycles without finishing")
            out = model.step(
                cke=ctx.get(pins.cke), cs_n=ctx.get(pins.cs_n), ras_n=ctx.get(pins.ras_n),
                cas_n=ctx.get(pins.cas_n), we_n=ctx.get(pins.we_n), ba=ctx.get(pins.ba),
                a=ctx.get(pins.a), dqm=ctx.get(pins.dqm), dq_o=ctx.get(pins.dq_o),
                dq_oe=ctx.get(pins.dq_oe))
            ctx.set(pins.dq_i, rng.getrandbits(16) if out is None else out)
            await ctx.tick()
    return testbench
