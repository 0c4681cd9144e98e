"""The MAC array: P x Q multiply-accumulate lanes, one MAC per lane per cycle."""

from math import ceil, log2

from amaranth.hdl import Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .banked_ram import COPY_SUFFIX
from .registered_multiplier import RegisteredMultiplier, check_multiplier

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
    ``last`` beat's sums appear three cycles after it is accepted. Each lane's operand
    registers and multiplier are a :class:`RegisteredMultiplier` (hw/registered_multiplier.py);
    ``multiplier="ecp5"`` makes them an ECP5 MULT18X18D with its own input registers, and
    ``sites`` (one per lane, ``p * Q + q``; hw/dsp_floorplans.py) fixes where each block sits.

    ``row_valids`` (pipelined only): copies of ``i.valid`` arrive on ``row_valids``, one per
    row of lanes, from the producer's own registers; each lane takes a beat by its row's copy,
    so that no net carries ``i.valid`` to every lane (on an 8 x 8 ULX3S build, 14.4 ns from
    the skid buffer's choice to the lanes' valid bits).
    """

    def __init__(self, rows, cols, a_shape, b_shape, depth, pipelined=True, operand_stage=False,
                 sum_register=True, ready_ahead=False, row_valids=False, multiplier="inferred",
                 sites=None):
        if rows <= 0 or cols <= 0 or depth <= 0:
            raise ValueError("MAC array sizes must be positive")
        self.rows, self.cols, self.depth = rows, cols, depth
        if operand_stage and not pipelined:
            raise ValueError("the operand stage is a stage of the pipelined array")
        if not sum_register and not pipelined:
            raise ValueError("only the pipelined array can show its sums from the accumulators")
        if ready_ahead and sum_register:
            raise ValueError("only an array without the sum register waits for a ready ahead")
        if row_valids and not pipelined:
            raise ValueError("only the pipelined array's lanes take beats by copies of i.valid")
        check_multiplier(multiplier)
        if multiplier != "inferred" and not operand_stage:
            raise ValueError(f"the {multiplier} multipliers hold the operand stage's registers: "
                             "they need the operand stage")
        if sites is not None and (multiplier != "ecp5" or len(sites) != rows * cols):
            raise ValueError(f"{len(sites)} sites for the {multiplier} multipliers of "
                             f"{rows * cols} lanes: sites place each lane's ECP5 block")
        self.multiplier, self.sites = multiplier, sites
        self.has_row_valids = row_valids
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
            **({"row_valids": In(rows)} if row_valids else {}),
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
            advance, first, last, lane_steps, waiting = self._pipelined_stages(m)
        else:
            first, last = beat.first, beat.last
            products = [beat.a[p] * beat.b[q] for p in range(P) for q in range(Q)]
            advance = self.i.valid & self.i.ready
            m.d.comb += self.i.ready.eq(~(self.o.valid & beat.last))
            lane_steps = [(advance, first, products[k]) for k in range(P * Q)]
            waiting = []

        # A sum is shown while it is not taken, and from the edge that ends one.
        shown_next = Signal()
        m.d.comb += [self.ending.eq(advance & last),
                     shown_next.eq((self.o.valid & ~self.o.ready) | self.ending)]
        m.d.sync += self.o.valid.eq(shown_next)
        m.d.sync += [w.eq(shown_next & ~self.ready_next) for w in waiting]
        for k, (lane_advance, lane_first, product) in enumerate(lane_steps):
            total = Signal(self.acc_shape, name=f"sum_{k}")
            m.d.comb += total.eq(product + Mux(lane_first, 0, acc[k]))
            with m.If(lane_advance):
                m.d.sync += acc[k].eq(total)
                if self.sum_register:
                    with m.If(last):
                        m.d.sync += sums[k].eq(total)
        return m

    def _pipelined_stages(self, m):
        """The operands' (``operand_stage``) and the products' registers. Returns the shared
        ``advance``, ``first`` and ``last`` of the products' register (the array's handshake
        and ``o``), per lane its own ``advance``, ``first`` and product, and (``ready_ahead``)
        the registers of whether a shown sum waits (the shared one and its copies): each lane's
        clock enables and choice come from its own copies of the shared control registers
        (named as copies, kept apart in synthesis), so that no one net enables every lane's
        flip-flops (on an 8 x 8 ULX3S build, ``advance`` into the accumulators' enables was
        15.9 ns, 10.9 of them the net's routing across the die)."""
        beat = self.i.payload
        P, Q, lanes = self.rows, self.cols, self.rows * self.cols

        # Each control below is a list: element 0 the shared register or signal (the
        # array's handshake), element 1 + k lane k's own copy.
        def copies(name, reset_less=False):
            return [Signal(name=f"{name}_{k}{COPY_SUFFIX}", reset_less=reset_less)
                    for k in range(lanes)]

        def occupied(flags, enters, leaves):
            """A stage's valid bits: set as a beat enters, cleared as it leaves alone."""
            for flag, enter, leave in zip(flags, enters, leaves):
                with m.If(enter):
                    m.d.sync += flag.eq(1)
                with m.Elif(leave):
                    m.d.sync += flag.eq(0)

        # The lanes' copies of the stages' valid bits are cleared in the cycle after a reset
        # (``settling``), from a register per row that the reset sets: the reset's net reaches
        # those, not every lane's copies (14.1 ns of an 8 x 8 ULX3S build). The array takes
        # no beat in that cycle, and the lanes' copies of ``waiting`` become clear in it.
        settling = Signal(init=1)
        row_resets = [Signal(name=f"lanes_reset_{r}{COPY_SUFFIX}", init=1) for r in range(P)]
        m.d.sync += [flag.eq(0) for flag in (settling, *row_resets)]

        def reset_after(flags):
            for k, flag in enumerate(flags):
                with m.If(row_resets[k // Q]):
                    m.d.sync += flag.eq(0)
        # Whether a beat is offered: to the shared stages (none while settling), and to each
        # lane.
        lane_valids = [self.i.valid & ~settling] + [
            self.row_valids[k // Q] if self.has_row_valids else self.i.valid
            for k in range(lanes)]

        # The products' register: a beat's products and whether it starts or ends a sum.
        held, first, last = Signal(), Signal(), Signal()
        held_copies = copies("held", reset_less=True)
        first_copies = copies("first", reset_less=True)
        products = [Signal(self.acc_shape, name=f"product_{k}", reset_less=True)
                    for k in range(lanes)]
        # The sum shown on ``o`` waits in its register (only the next sum's end waits for it
        # to leave) or in the accumulators (nothing is added until it is taken). (Ahead:
        # ``waiting`` is ``o.valid & ~o.ready``, registered from their next values.)
        waiting = []
        if self.sum_register:
            waits = [last & self.o.valid] * (lanes + 1)
        elif self.ready_ahead:
            # (The copies not reset, as the valid bits' copies above.)
            waits = waiting = [Signal(name="waiting")] + copies("waiting", reset_less=True)
        else:
            waits = [self.o.valid & ~self.o.ready] * (lanes + 1)
        helds = [held] + held_copies
        advance = [Signal(name="advance")] + [Signal(name=f"advance_{k}") for k in range(lanes)]
        products_ready = [~h | a for h, a in zip(helds, advance)]
        m.d.comb += [a.eq(h & ~w) for a, h, w in zip(advance, helds, waits)]

        if self.operand_stage:
            # The operands' register: each lane's copies, and the beat's flags.
            staged = Signal(data.StructLayout({"valid": 1, "first": 1, "last": 1}))
            staged_copies = copies("staged", reset_less=True)
            staged_valids = [staged.valid] + staged_copies
            moves = [v & r for v, r in zip(staged_valids, products_ready)]
            frees = [~v | mv for v, mv in zip(staged_valids, moves)]
            accepts = [valid & free for valid, free in zip(lane_valids, frees)]
            m.d.comb += self.i.ready.eq(frees[0] & ~settling)
            occupied(staged_valids, accepts, moves)
            reset_after(staged_copies)
            with m.If(accepts[0]):
                m.d.sync += [staged.first.eq(beat.first), staged.last.eq(beat.last)]
            # Each lane's operand registers are its multiplier's (an ECP5 block's own, with
            # ``multiplier="ecp5"``). A free lane takes whatever is offered, a beat or not (its
            # valid bit says which): ``i.valid`` reaches the valid bits only, not every operand
            # bit's enable (through a skid buffer's choice, 15.1 ns of an 8 x 8 ULX3S build).
            lane_products = []
            for p in range(P):
                for q in range(Q):
                    k = p * Q + q
                    lane = RegisteredMultiplier(
                        self.a_shape, self.b_shape, primitive=self.multiplier,
                        site=None if self.sites is None else self.sites[k])
                    m.submodules[f"multiplier_{k}"] = lane
                    m.d.comb += [lane.a.eq(beat.a[p]), lane.b.eq(beat.b[q]),
                                 lane.load.eq(frees[k + 1])]
                    lane_products.append(lane.product)
            loads, load_first, load_last = moves, staged.first, staged.last
        else:
            m.d.comb += self.i.ready.eq(products_ready[0] & ~settling)
            loads = [valid & r for valid, r in zip(lane_valids, products_ready)]
            load_first, load_last = beat.first, beat.last
            lane_products = [beat.a[p] * beat.b[q] for p in range(P) for q in range(Q)]
        occupied(helds, loads, advance)
        reset_after(held_copies)
        with m.If(loads[0]):
            m.d.sync += [first.eq(load_first), last.eq(load_last)]
        for k, product in enumerate(lane_products):
            with m.If(loads[k + 1]):
                m.d.sync += [first_copies[k].eq(load_first), products[k].eq(product)]
        return (advance[0], first, last, list(zip(advance[1:], first_copies, products)),
                waiting)
