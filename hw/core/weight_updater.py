"""The weight update of the gradient phase: a lane per weight of a bus word."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..arith import round_up_bit, saturate, shift_remainder, shift_round_parts
from ..banked_ram import COPY_SUFFIX

__all__ = ["WeightUpdater"]


class WeightUpdater(wiring.Component):
    """``new = sat(old - R(grad, shift), weight_bits)`` for every lane of a weight word.

    ``R`` rounds ``grad / 2**shift`` stochastically with the beat's ``rand`` chunks while
    ``stochastic`` is high, else to nearest-even (docs/ARITHMETIC.md, "Rounding"). Two
    registered stages: the shifted gradient and its rounding bit (one shifter serves both
    roundings); their sum, the update step, clamped to ``weight_bits + 2`` bits (any step
    beyond saturates a weight the same way: ``|old| < 2**(weight_bits - 1)``, and the
    subtraction stays short). The subtraction and saturation are combinational, as the old
    word arrives.

    Parameters
    ----------
    lanes : int
        Weights per word.
    grad_shape : signed shape
        A gradient lane.
    weight_bits, round_bits : int
        A weight's width; the bits of a stochastic-rounding draw.
    registered_input : bool
        A beat (and ``stochastic``) is registered as it is taken, before the first stage, in
        a queue of two: a stage more, neither the writer's choice of gradient nor its memory
        read sits in front of the shifter, and ``i.ready`` is a register's (the queue is not
        full), with nothing of the stages' moves in front of it. A third stage then comes in
        front of the two: the shifter's parts (the quotient, the remainder's top bits and
        its sticky bit) with the draw and ``stochastic``, from which the first forms the
        rounding bit. A beat passes each stage whenever the next is empty or moving.

    Members
    -------
    i : In(stream.Signature(StructLayout(grad, shift, rand)))
        A gradient per lane, its shift (at most 31) and a draw per lane. Taken while the first
        stage is empty or passes its step on (registered: while the input queue is not full).
    stochastic : In(1)
        The rounding of a beat, sampled as it is taken.
    old : In(stream.Signature(ArrayLayout(signed(weight_bits), lanes)))
        The weight word the oldest step applies to; taken with the new word.
    new : Out(stream.Signature(ArrayLayout(signed(weight_bits), lanes)))
        Valid while a step and an old word are both there; the payload is the update of
        whatever ``old`` carries by the last step (valid or not).
    busy : Out(1)
        A beat or a step is in any stage.
    """

    def __init__(self, lanes, grad_shape, weight_bits, round_bits, registered_input=False):
        self.lanes, self.grad_shape = lanes, signed(grad_shape.width)
        self.registered_input = registered_input
        self.weight_bits, self.round_bits = weight_bits, round_bits
        self.word_layout = data.ArrayLayout(signed(weight_bits), lanes)
        self.in_layout = data.StructLayout({
            "grad": data.ArrayLayout(self.grad_shape, lanes),
            "shift": unsigned(5),
            "rand": data.ArrayLayout(unsigned(round_bits), lanes),
        })
        super().__init__({
            "i": In(stream.Signature(self.in_layout)),
            "stochastic": In(1),
            "old": In(stream.Signature(self.word_layout)),
            "new": Out(stream.Signature(self.word_layout)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        lanes = self.lanes
        step_shape = signed(self.weight_bits + 2)
        R = self.round_bits
        # Each stage: a valid bit, and data without reset (the reset's net reaches control
        # flip-flops only). ``rounding``: the quotients and their rounding bits; ``update``:
        # the steps; with ``registered_input``, ``shifted`` in front: the quotients and what
        # their rounding bits are made from.
        rounding = Signal(data.StructLayout({"q": data.ArrayLayout(self.grad_shape, lanes),
                                             "up": lanes}), reset_less=True)
        update = Signal(data.StructLayout({"step": data.ArrayLayout(step_shape, lanes)}),
                        reset_less=True)
        rounding_valid, update_valid = Signal(), Signal()
        move = update_valid & self.old.valid & self.new.ready
        step_take = rounding_valid & (~update_valid | move)
        rounding_free = ~rounding_valid | step_take
        if self.registered_input:
            # A queue of two in LUT RAM, the oldest beat first: ``i.ready`` is its room (from
            # its level register), so the old word's arrival and the new word's taking (which
            # decide when the stages move) do not reach the writer's handshake in the cycle; a
            # take moves the read slot, not the beats. The write slot is written whenever the
            # queue has room, with whatever is offered (a free slot's contents do not matter):
            # the writer's valid reaches the level and the write slot, not every cell's write
            # enable (from the gradient columns' handshake to the queue's cells, 16.03 ns of an
            # 8 x 8 ULX3S build).
            # The shift, the same for every lane, is kept out of the queue: read from its
            # LUT RAM it was one net into every lane's shifter (14.04 ns of an 8 x 8 ULX3S
            # build, 5 of them that net's routing). Each lane holds its own copy of the two
            # slots of it and of the read slot.
            beat_layout = data.StructLayout({
                "grad": data.ArrayLayout(self.grad_shape, lanes),
                "rand": data.ArrayLayout(unsigned(R), lanes), "stochastic": 1})
            m.submodules.queue = queue = Memory(shape=beat_layout, depth=2, init=[])
            queue_write, queue_read = queue.write_port(), queue.read_port(domain="comb")
            level, write_slot, read_slot = Signal(range(3)), Signal(), Signal()
            room, written = level != 2, Signal()
            shifted = Signal(data.StructLayout({
                "q": data.ArrayLayout(self.grad_shape, lanes),
                "top": data.ArrayLayout(unsigned(R), lanes), "sticky": lanes,
                "rand": data.ArrayLayout(unsigned(R), lanes), "stochastic": 1}),
                reset_less=True)
            shifted_valid = Signal()
            shift_pass = shifted_valid & rounding_free
            take = (level != 0) & (~shifted_valid | shift_pass)
            oldest = queue_read.data
            m.d.comb += [written.eq(self.i.valid & room), self.i.ready.eq(room),
                         queue_write.addr.eq(write_slot), queue_write.en.eq(room),
                         queue_write.data.grad.eq(self.i.payload.grad),
                         queue_write.data.rand.eq(self.i.payload.rand),
                         queue_write.data.stochastic.eq(self.stochastic),
                         queue_read.addr.eq(read_slot),
                         self.busy.eq((level != 0) | shifted_valid | rounding_valid
                                      | update_valid)]
            m.d.sync += level.eq(level + written - take)
            with m.If(written):
                m.d.sync += write_slot.eq(~write_slot)
            with m.If(take):
                m.d.sync += read_slot.eq(~read_slot)
            lane_shifts = []
            for r in range(lanes):
                slots = [Signal(5, name=f"shift_{r}_{s}{COPY_SUFFIX}", reset_less=True)
                         for s in range(2)]
                lane_read_slot = Signal(name=f"read_slot_{r}{COPY_SUFFIX}")
                for s, slot in enumerate(slots):
                    with m.If(room & (write_slot == s)):
                        m.d.sync += slot.eq(self.i.payload.shift)
                with m.If(take):
                    m.d.sync += lane_read_slot.eq(~lane_read_slot)
                lane_shifts.append(Mux(lane_read_slot, slots[1], slots[0]))
            with m.If(take):
                m.d.sync += [shifted_valid.eq(1), shifted.stochastic.eq(oldest.stochastic)]
            with m.Elif(shift_pass):
                m.d.sync += shifted_valid.eq(0)
            rounding_take = shift_pass
        else:
            take = rounding_take = self.i.valid & self.i.ready
            m.d.comb += [self.i.ready.eq(rounding_free),
                         self.busy.eq(rounding_valid | update_valid)]
        m.d.comb += [
            self.old.ready.eq(update_valid & self.new.ready),
            self.new.valid.eq(update_valid & self.old.valid),
        ]
        for r in range(lanes):
            updated = Signal(signed(step_shape.width + 1), name=f"updated_{r}")
            m.d.comb += [
                updated.eq(self.old.payload[r] - update.step[r]),
                self.new.payload[r].eq(saturate(updated, signed(self.weight_bits))),
            ]
            if self.registered_input:
                # The shifter, then (a stage later) the draw's addition: the queue's read,
                # the shifter and the addition in one cycle were 15.3 ns of an 8 x 8 ULX3S
                # build; the addition, the increment and the saturation in one, 15.5.
                q, top, sticky = shift_remainder(oldest.grad[r], lane_shifts[r], R)
                with m.If(take):
                    m.d.sync += [shifted.q[r].eq(q), shifted.top[r].eq(top),
                                 shifted.sticky[r].eq(sticky),
                                 shifted.rand[r].eq(oldest.rand[r])]
                q = shifted.q[r]
                up = round_up_bit(q[0], shifted.top[r], shifted.sticky[r], shifted.rand[r], R,
                                  shifted.stochastic)
            else:
                q, up = shift_round_parts(self.i.payload.grad[r], self.i.payload.shift,
                                          self.i.payload.rand[r], R, self.stochastic)
            with m.If(rounding_take):
                m.d.sync += [rounding.q[r].eq(q), rounding.up[r].eq(up)]
            with m.If(step_take):
                m.d.sync += update.step[r].eq(saturate(rounding.q[r] + rounding.up[r],
                                                       step_shape))
        with m.If(rounding_take):
            m.d.sync += rounding_valid.eq(1)
        with m.Elif(step_take):
            m.d.sync += rounding_valid.eq(0)
        with m.If(step_take):
            m.d.sync += update_valid.eq(1)
        with m.Elif(move):
            m.d.sync += update_valid.eq(0)
        return m
