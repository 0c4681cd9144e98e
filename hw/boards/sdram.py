"""The weights in a board's SDRAM: the controller, one register stage on every pin, the pads.

The pins of :class:`~hw.sdram_controller.SdramController` are registered in the fabric; on a
board each of them goes through one more register, in the I/O cell (``io.FFBuffer``), so that
every pin changes at the same moment after the clock edge whatever the fabric's routing. The
device sees the same sequence one clock later, so its read data comes a clock later too, and
then passes the DQ input register: two clocks later than without the stage
(``read_delay=2``).

:class:`SdramWeights` is the weight-bus slave a board top uses. In a board build its ``sdram``
member goes to :class:`SdramPads` (the FFBuffers and the SDRAM clock); in simulation
(``pad_registers=False``) it holds the same registers in the fabric and its ``sdram`` member is
what the device's pins carry, so the Verilator board harness attaches the device model there.
"""

from amaranth.hdl import Const, Elaboratable, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from contract.sdram import MT48LC16M16A2_6A, SdramTiming

from ..sdram_controller import SdramController, sdram_pins_signature
from ..weight_bus import weight_bus_signature

__all__ = ["SdramWeights", "SdramPads", "PAD_READ_DELAY"]

#: Clocks the register stage adds to a READ's data at ``dq_i``: the command leaves a clock
#: later (output registers) and the data arrives a clock later (the DQ input register).
PAD_READ_DELAY = 2

_OUTPUTS = ("cke", "cs_n", "ras_n", "cas_n", "we_n", "ba", "a", "dqm", "dq_o", "dq_oe")


class SdramWeights(wiring.Component):
    """The weight bus served from an SDRAM, through one register stage on every pin.

    Parameters
    ----------
    addr_bits, word_bits : int
        The weight bus's.
    words : int
        Words the network needs; more than the part holds is refused.
    clock_hz : float
        The core clock (the controller's timing is derived for it, CAS latency 2).
    pad_registers : bool
        The register stage is in the I/O cells (:class:`SdramPads`, a board build): ``sdram``
        is then the controller's pins as they are. False (simulation): the stage is here, in
        the fabric, and ``sdram`` carries what the device's pins see.
    timing : contract.sdram.SdramTiming or None
        Instead of the part's at ``clock_hz`` (tests shorten the power-up wait).
    read_delay : int
        The controller's; only tests change it (to see a wrong one caught).

    Members
    -------
    bus : In(weight_bus_signature)
    sdram : Out(sdram_pins_signature)
    ready : Out(1)
        The SDRAM is initialised.
    """

    def __init__(self, addr_bits, word_bits, words, clock_hz, pad_registers=True,
                 part=MT48LC16M16A2_6A, timing=None, read_delay=PAD_READ_DELAY):
        self.timing = self.timing_at(clock_hz, part) if timing is None else timing
        self._controller_args = (addr_bits, word_bits, self.timing, part, read_delay)
        self.word_bits = word_bits
        capacity = self.controller().capacity_words
        if words > capacity:
            self._MustUse__silence = True             # refused: no "never used" warning
            raise ValueError(f"{words} weight words do not fit the {part.name} "
                             f"({capacity} words of {word_bits} bits)")
        self.part, self.pad_registers = part, pad_registers
        super().__init__({"bus": In(weight_bus_signature(addr_bits, word_bits)),
                          "sdram": Out(sdram_pins_signature(part)), "ready": Out(1)})

    @staticmethod
    def timing_at(clock_hz, part=MT48LC16M16A2_6A):
        """The part's timings in cycles at ``clock_hz``, CAS latency 2 (ValueError where the
        part cannot run that fast)."""
        return SdramTiming.derive(part, clock_hz, 2)

    def controller(self):
        """A new controller as this memory builds it (its address map: ``capacity_words``,
        ``location``)."""
        ctl = SdramController(*self._controller_args[:4], read_delay=self._controller_args[4])
        ctl._MustUse__silence = True        # only looked at until elaborate() makes its own
        return ctl

    def elaborate(self, platform):
        m = Module()
        m.submodules.controller = ctl = self.controller()
        wiring.connect(m, wiring.flipped(self.bus), ctl.bus)
        m.d.comb += self.ready.eq(ctl.ready)
        if self.pad_registers:
            wiring.connect(m, ctl.sdram, wiring.flipped(self.sdram))
            return m
        # The I/O cells' registers, in the fabric: outputs one clock later, DQ's input once.
        for name in _OUTPUTS:
            m.d.sync += getattr(self.sdram, name).eq(getattr(ctl.sdram, name))
        m.d.sync += ctl.sdram.dq_i.eq(self.sdram.dq_i)
        return m


class SdramPads(Elaboratable):
    """The SDRAM's pins: every controller pin through an I/O register (``io.FFBuffer``), DQ
    tristate from ``dq_o``/``dq_oe``, and the SDRAM clock from a DDR output register in
    ``clock_domain`` driving 1 then 0 each cycle: that domain's clock leaves through the same
    kind of I/O register as the pins, so only the domain's phase separates its edges from the
    pins' changes (docs/SDRAM.md, "The board top").

    ``resource`` is an amaranth-boards ``SDRAMResource`` requested with ``dir="-"`` (its
    ``cs``, ``we``, ``ras``, ``cas`` pins are inverted there: driving 1 pulls them low)."""

    def __init__(self, resource, pins, clock_domain):
        self.resource, self.pins, self.clock_domain = resource, pins, clock_domain

    def elaborate(self, platform):
        m = Module()
        res, pins = self.resource, self.pins
        outputs = {"clk_en": pins.cke, "cs": ~pins.cs_n, "ras": ~pins.ras_n,
                   "cas": ~pins.cas_n, "we": ~pins.we_n, "ba": pins.ba, "a": pins.a,
                   "dqm": pins.dqm}
        for name, value in outputs.items():
            m.submodules[f"{name}_pad"] = pad = io.FFBuffer("o", getattr(res, name))
            m.d.comb += pad.o.eq(value)
        m.submodules.dq_pad = dq = io.FFBuffer("io", res.dq)
        m.d.comb += [dq.o.eq(pins.dq_o), dq.oe.eq(pins.dq_oe), pins.dq_i.eq(dq.i)]
        m.submodules.clk_pad = clk = io.DDRBuffer("o", res.clk, o_domain=self.clock_domain)
        m.d.comb += clk.o.eq(Const(0b01, 2))       # high in the first half of each cycle
        return m
