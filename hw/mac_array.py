"""The MAC array: P x Q multiply-accumulate lanes, one MAC per lane per cycle."""

from math import ceil, log2

from amaranth.hdl import Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .banked_ram import COPY_SUFFIX

__all__ = ["MacArray", "accumulator_shape"]


def accumulator_shape(a_shape, b_shape, depth):
    """The narrowest accumulator in which no sum of ``depth`` products can overflow."""
    a, b = Shape.cast(a_shape), Shape.cast(b_shape)
    width = a.width + b.width + max(0, ceil(log2(depth)))
    return signed(width) if a.signed or b.signed else unsigned(width)


class MacArray(wiring.Component):
    """Outer-product accumulator: ``acc[p][q] += a[p] * b[q]`` for every beat.

    Parameters
    ----------
    rows, cols : int
        ``P`` and ``Q``: lanes are ``P x Q``.
    a_shape, b_shape : ShapeLike
        Operand shapes (width and signedness).
    depth : int
        Largest number of beats in one accumulation; sizes the accumulators.

    Members
    -------
    i : In(stream.Signature(StructLayout(a, b, first, last)))
        ``first`` starts a new sum (the accumulators are cleared by it); ``last`` ends it.
    o : Out(stream.Signature(ArrayLayout(acc, P * Q)))
        One beat per sum, element ``p * Q + q``.
    ending : Out(1)
        A sum ends at this edge: ``o`` is valid from the next cycle until the sum is taken
        (a consumer may raise ``o.ready`` in that cycle on a registered decision).
    ready_next : In(1)
        (``ready_ahead`` only) What ``o.ready`` will be in the next cycle.

    ``pipelined``: two stages: a beat's ``P x Q`` products are registered (the multipliers'
    own stage: a multiplier, then a 40-bit sum in one cycle was 17 ns of a 75 MHz ULX3S
    build), then added into the accumulators. The sum of a beat accepted with ``last``
    appears on ``o`` two cycles later; accumulation goes on while it waits. The products move
    on every cycle except a ``last`` beat's while a finished sum is still on ``o``; ``i`` is
    ready while the products' register is empty or moving on. Not ``pipelined``: one stage,
    the beat multiplied and added as it is accepted; its sum appears on ``o`` a cycle later,
    and ``i`` stalls only a ``last`` beat while a finished sum is still on ``o``. Either way
    (with the sum register) ``i.ready`` does not depend on ``o.ready``: no combinational path
    runs through the array.

    ``sum_register=False`` (pipelined only): no register of finished sums: ``o`` shows the
    accumulators themselves, valid from the cycle after a ``last`` beat is added until the
    sum is taken, and the products do not move on while a finished sum is shown and not
    taken (``o.valid & ~o.ready``), so that ``i.ready`` depends on ``o.ready`` (the training
    core's drain register takes a sum on a registered ``ready``). A sum taken in the cycle
    it appears costs the array no cycle; one taken a cycle later, one. The sum register's
    ``P x Q`` flip-flops and the wires from each accumulator into them are gone (on an
    8 x 8 ULX3S build, the fabric around the DSP rows had no room for them).

    ``ready_ahead`` (without the sum register): the consumer's ``o.ready`` is a register, and
    it says on ``ready_next`` a cycle ahead what it will be; the array then decides from a
    register of its own whether a shown sum will still wait in the next cycle, so that
    ``i.ready`` depends on registers only again (``o.ready`` into the array's ready, and on
    into everything that stalls with it, was a 75 MHz ULX3S build's slow path).

    ``operand_stage`` (pipelined only): a stage more in front of the products, in which each
    lane registers its own copy of its two operands (kept apart in synthesis by their
    ``_copy`` names), so that no register drives the same operand into several multipliers
    (the operands' routing to the multipliers was 6.9 ns of a 75 MHz ULX3S build's worst
    path). The operands move on whenever the products' register is empty or moving on; a
    ``last`` beat's sums appear three cycles after it is accepted.
    """

    def __init__(self, rows, cols, a_shape, b_shape, depth, pipelined=True, operand_stage=False,
                 sum_register=True, ready_ahead=False):
        if rows <= 0 or cols <= 0 or depth <= 0:
            raise ValueError("MAC array sizes must be positive")
        self.rows, self.cols, self.depth = rows, cols, depth
        if operand_stage and not pipelined:
            raise ValueError("the operand stage is a stage of the pipelined array")
        if not sum_register and not pipelined:
            raise ValueError("only the pipelined array can show its sums from the accumulators")
        if ready_ahead and sum_register:
            raise ValueError("only an array without the sum register waits for a ready ahead")
        self.pipelined, self.operand_stage = pipelined, operand_stage
        self.sum_register, self.ready_ahead = sum_register, ready_ahead
        self.a_shape, self.b_shape = Shape.cast(a_shape), Shape.cast(b_shape)
        self.acc_shape = accumulator_shape(a_shape, b_shape, depth)
        self.in_layout = data.StructLayout({
            "a": data.ArrayLayout(self.a_shape, rows),
            "b": data.ArrayLayout(self.b_shape, cols),
            "first": 1,
            "last": 1,
        })
        super().__init__({
            "i": In(stream.Signature(self.in_layout)),
            "o": Out(stream.Signature(data.ArrayLayout(self.acc_shape, rows * cols))),
            "ending": Out(1),
            **({"ready_next": In(1)} if ready_ahead else {}),
        })

    def elaborate(self, platform):
        m = Module()
        beat = self.i.payload
        P, Q = self.rows, self.cols
        # Pipelined, the sums and products are data, cleared by ``first`` and qualified by
        # their valid bits: not reset, so that the reset's net reaches control flip-flops
        # only (reset to every lane, it missed 75 MHz on a ULX3S). The one-stage array (the
        # iCE40's) keeps them reset: its logic cells pack tighter so.
        reset_less = self.pipelined
        acc = [Signal(self.acc_shape, name=f"acc_{k}", reset_less=reset_less)
               for k in range(P * Q)]
        sums = ([Signal(self.acc_shape, name=f"sum_out_{k}", reset_less=reset_less)
                 for k in range(P * Q)] if self.sum_register else acc)
        m.d.comb += [self.o.payload[k].eq(sums[k]) for k in range(P * Q)]
        if self.pipelined:
            # The products' register: a beat's products and whether it starts or ends a sum.
            held, first, last = Signal(), Signal(), Signal()
            products = [Signal(self.acc_shape, name=f"product_{k}", reset_less=reset_less)
                        for k in range(P * Q)]
            advance, products_ready = Signal(), Signal()
            # The sum shown on ``o`` waits in its register (only the next sum's end waits
            # for it to leave) or in the accumulators (nothing is added until it is taken).
            # (Ahead: ``waiting`` is ``o.valid & ~o.ready``, registered from the next values.)
            waiting = Signal()
            waits = (last & self.o.valid if self.sum_register
                     else waiting if self.ready_ahead else self.o.valid & ~self.o.ready)
            m.d.comb += [advance.eq(held & ~waits),
                         products_ready.eq(~held | advance)]
            if self.operand_stage:
                # The operands' register: each lane's copies, and the beat's flags.
                staged = Signal(data.StructLayout({"valid": 1, "first": 1, "last": 1}))
                a_copies = [Signal(self.a_shape, name=f"operand_a_{k}{COPY_SUFFIX}",
                                   reset_less=True) for k in range(P * Q)]
                b_copies = [Signal(self.b_shape, name=f"operand_b_{k}{COPY_SUFFIX}",
                                   reset_less=True) for k in range(P * Q)]
                move = staged.valid & products_ready
                m.d.comb += self.i.ready.eq(~staged.valid | move)
                with m.If(self.i.valid & self.i.ready):
                    m.d.sync += [staged.valid.eq(1), staged.first.eq(beat.first),
                                 staged.last.eq(beat.last)]
                    for p in range(P):
                        for q in range(Q):
                            m.d.sync += [a_copies[p * Q + q].eq(beat.a[p]),
                                         b_copies[p * Q + q].eq(beat.b[q])]
                with m.Elif(move):
                    m.d.sync += staged.valid.eq(0)
                loads, load_first, load_last = move, staged.first, staged.last
                factors = list(zip(a_copies, b_copies))
            else:
                m.d.comb += self.i.ready.eq(products_ready)
                loads, load_first, load_last = self.i.valid & self.i.ready, beat.first, beat.last
                factors = [(beat.a[p], beat.b[q]) for p in range(P) for q in range(Q)]
            with m.If(loads):
                m.d.sync += [held.eq(1), first.eq(load_first), last.eq(load_last)]
                m.d.sync += [products[k].eq(a * b) for k, (a, b) in enumerate(factors)]
            with m.Elif(advance):
                m.d.sync += held.eq(0)
        else:
            first, last = beat.first, beat.last
            products = [beat.a[p] * beat.b[q] for p in range(P) for q in range(Q)]
            advance = self.i.valid & self.i.ready
            m.d.comb += self.i.ready.eq(~(self.o.valid & beat.last))

        # A sum is shown while it is not taken, and from the edge that ends one.
        shown_next = Signal()
        m.d.comb += [self.ending.eq(advance & last),
                     shown_next.eq((self.o.valid & ~self.o.ready) | self.ending)]
        m.d.sync += self.o.valid.eq(shown_next)
        if self.ready_ahead:
            m.d.sync += waiting.eq(shown_next & ~self.ready_next)
        with m.If(advance):
            for k in range(P * Q):
                total = Signal(self.acc_shape, name=f"sum_{k}")
                m.d.comb += total.eq(products[k] + Mux(first, 0, acc[k]))
                m.d.sync += acc[k].eq(total)
                if self.sum_register:
                    with m.If(last):
                        m.d.sync += sums[k].eq(total)
        return m
