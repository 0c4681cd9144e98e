"""A multiplier whose two operands are registered in front of it: the MAC lanes' (hw/mac_array.py's
operand stage). Inferred, the registers are fabric flip-flops and Yosys maps the product to a
multiplier block; on an ECP5 (``primitive="ecp5"``) the registers are a MULT18X18D's own input
registers, so that nothing of the lane's operand stage is left in the fabric around the DSP blocks
(an 8 x 8 ULX3S build spent up to 7.7 ns routing an operand copy to its DSP block, docs/RESULTS.md).
Yosys's ECP5 flow does not pack fabric registers into the block, hence the instance.

Simulating the ECP5 variant needs sim/primitives/MULT18X18D.v (the simulators add it themselves).
"""

from amaranth.hdl import ClockSignal, Const, Instance, Module, Shape, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from contract.config import MULTIPLIERS

from .banked_ram import COPY_SUFFIX

__all__ = ["RegisteredMultiplier", "ECP5_OPERAND_BITS"]

#: A MULT18X18D's operands: 18 bits, each signed or not as SIGNEDA/SIGNEDB say.
ECP5_OPERAND_BITS = 18


def check_multiplier(multiplier):
    """Refuse a multiplier choice that is not one of the config's ``MULTIPLIERS`` (the lanes,
    the forward drain and this block check their argument the same way)."""
    if multiplier not in MULTIPLIERS:
        raise ValueError(f"multiplier {multiplier!r}: must be one of {', '.join(MULTIPLIERS)}")


class RegisteredMultiplier(wiring.Component):
    """``product = a_reg * b_reg``: ``a`` and ``b`` are registered at every edge at which
    ``load`` is high; the product of the registered operands is combinational (its full width,
    signed if either operand is). The operand registers have no reset: whatever holds them says
    whether they hold a beat.

    ``primitive``: one of the config's ``MULTIPLIERS``, ``"inferred"`` or ``"ecp5"`` (each
    operand at most 18 bits). ``site`` (``"ecp5"`` only): the block's place on the die, a
    nextpnr BEL name (hw/dsp_floorplans.py), given to nextpnr as the ``BEL`` attribute."""

    def __init__(self, a_shape, b_shape, primitive="inferred", site=None):
        self.a_shape, self.b_shape = Shape.cast(a_shape), Shape.cast(b_shape)
        check_multiplier(primitive)
        if primitive == "ecp5" and max(self.a_shape.width, self.b_shape.width) > ECP5_OPERAND_BITS:
            raise ValueError(f"multiplier operands of {self.a_shape.width} and "
                             f"{self.b_shape.width} bits: an ECP5 MULT18X18D takes at most "
                             f"{ECP5_OPERAND_BITS}")
        if site is not None and primitive != "ecp5":
            raise ValueError(f"a site ({site!r}) places an ECP5 block: the {primitive} "
                             "multiplier has none")
        self.primitive, self.site = primitive, site
        self.product_shape = (Signal(self.a_shape) * Signal(self.b_shape)).shape()
        super().__init__({
            "a": In(self.a_shape),
            "b": In(self.b_shape),
            "load": In(1),
            "product": Out(self.product_shape),
        })

    def elaborate(self, platform):
        m = Module()
        if self.primitive == "ecp5":
            self._mult18x18d(m)
            return m
        # (Named as copies: hw/mac_array.py's lanes each hold their own, which synthesis keeps
        # apart, gen/bitstream.py.)
        a_reg = Signal(self.a_shape, name=f"operand_a{COPY_SUFFIX}", reset_less=True)
        b_reg = Signal(self.b_shape, name=f"operand_b{COPY_SUFFIX}", reset_less=True)
        with m.If(self.load):
            m.d.sync += [a_reg.eq(self.a), b_reg.eq(self.b)]
        m.d.comb += self.product.eq(a_reg * b_reg)
        return m

    def _mult18x18d(self, m):
        # Each operand extended to 18 bits as its shape says; SIGNEDA/SIGNEDB tell the block
        # how to read them. Only the input registers are used (REG_INPUTA/B on CLK0, enabled
        # by CE0, RST0 held low): the output and pipeline registers' clock enables are not
        # all known to nextpnr's bitstream writer, and the lane's product register stays in
        # the fabric by the accumulator.
        def extended(value, shape):
            wide = Signal(signed(ECP5_OPERAND_BITS) if shape.signed
                          else unsigned(ECP5_OPERAND_BITS))
            m.d.comb += wide.eq(value)
            return wide
        a18, b18 = extended(self.a, self.a_shape), extended(self.b, self.b_shape)
        p36 = Signal(2 * ECP5_OPERAND_BITS)
        ports = {
            **{f"i_A{i}": a18[i] for i in range(ECP5_OPERAND_BITS)},
            **{f"i_B{i}": b18[i] for i in range(ECP5_OPERAND_BITS)},
            **{f"o_P{i}": p36[i] for i in range(2 * ECP5_OPERAND_BITS)},
        }
        placement = {} if self.site is None else {"a_BEL": self.site}
        m.submodules.dsp = Instance(
            "MULT18X18D", **placement,
            p_REG_INPUTA_CLK="CLK0", p_REG_INPUTA_CE="CE0", p_REG_INPUTA_RST="RST0",
            p_REG_INPUTB_CLK="CLK0", p_REG_INPUTB_CE="CE0", p_REG_INPUTB_RST="RST0",
            p_REG_INPUTC_CLK="NONE", p_REG_PIPELINE_CLK="NONE", p_REG_OUTPUT_CLK="NONE",
            p_GSR="DISABLED", p_RESETMODE="SYNC", p_SOURCEB_MODE="B_SHIFT",
            p_MULT_BYPASS="DISABLED", p_CAS_MATCH_REG="FALSE",
            i_CLK0=ClockSignal(), i_CE0=self.load, i_RST0=Const(0),
            i_SIGNEDA=Const(int(self.a_shape.signed)), i_SIGNEDB=Const(int(self.b_shape.signed)),
            i_SOURCEA=Const(0), i_SOURCEB=Const(0),
            **ports)
        m.d.comb += self.product.eq(p36[:self.product_shape.width])
