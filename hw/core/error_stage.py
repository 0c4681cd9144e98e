"""The score drain and the error stage: local scores in, errors and predictions out."""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..arith import saturate, saturate_parts
from ..local_error import LocalErrorUnit
from ..params import index_bits
from ..ram_collisions import read_data

__all__ = ["ErrorStage"]


class ErrorStage(wiring.Component):
    """SCORE's drain, then the local errors of a group of samples (docs/ARITHMETIC.md, steps 3
    and 4).

    The score drain takes the MAC array's ``M y`` sums row by row (a row per class, a lane per
    sample of a group) and writes each class's scores, ``sat(rounded, score_bits)``, into a
    score memory (a word per class, a lane per sample). After a group's last class, the error
    stage walks the group sample by sample, one class a cycle: it reads the class's score (a
    cycle), then the sample's score and label go through the local-error unit (hw/local_error.py,
    a cycle; with ``registered_input``, after a register), whose output is always taken.
    Meanwhile the drain takes no row, so a group's scores are never overwritten before they
    are read: a group costs ``lanes * classes`` cycles of the error stage besides its rows.

    Parameters
    ----------
    lanes, classes : int
        Samples per group; classes.
    rounded_shape : signed shape
        A rounded sum.
    score_bits, score_frac, error_bits : int
        The score's width and fraction bits; an error's width.
    class_bits : int
        Width of a row's class index (rows past the last class are dropped).
    scramble_collisions : bool
        Read a word written in the same cycle as garbage (hw/ram_collisions.py).
    registered_input : bool
        The sample's score (chosen from the word read) and its label are registered before
        they enter the local-error unit: a cycle more from the read to the unit's output,
        and neither the lane choice nor the labels memory's read sits in front of the
        unit's comparisons. And ``row_ready`` comes from a register of its own, decided a
        cycle ahead with the same values: it enables the drain register's shift in the
        scores phase, every element's clock enable.
    rounding_parts : bool
        The rounded sums arrive as their quotients (``rounded``) and rounding bits
        (``round_up``), as ``DrainRounding`` registers them.

    Members
    -------
    row : In(valid, class_index, last, group); row_ready : Out(1)
        A row of scores: its class, whether it is the group's last row, the group. Taken in a
        cycle where ``row.valid`` and ``row_ready``.
    rounded : In(ArrayLayout(rounded_shape, lanes))
        The row's rounded sums, in the cycle after the row (with ``rounding_parts``, their
        quotients).
    round_up : In(lanes)
        With ``rounding_parts``: lane ``q``'s rounded sum is ``rounded[q] + round_up[q]``,
        saturated from the two (``hw.arith.saturate_parts``: no full-width adder in front).
    batch : In(8)
        Samples in the mini-batch: samples from ``batch`` on get zero errors and no result.
    label_addr : Out(8); label : In(label shape)
        The labels memory: ``label`` is the label of sample ``label_addr`` in the same cycle.
    error : Out(valid, sample, class_index, value)
        A sample's error for a class: ``value`` is 0 for a sample past the batch.
    result : Out(valid, sample, prediction, correct, margin)
        A real sample's prediction, whether it is right, and the margin between its two
        highest scores, after its last class.
    busy : Out(1)
        A row or a sample is in the stage.
    """

    def __init__(self, lanes, classes, rounded_shape, score_bits, score_frac, error_bits,
                 class_bits, scramble_collisions=False, registered_input=False,
                 rounding_parts=False):
        self.lanes, self.classes, self.score_bits = lanes, classes, score_bits
        self.rounding_parts = rounding_parts
        self.scramble_collisions = scramble_collisions
        self.registered_input = registered_input
        self.local_error = LocalErrorUnit(classes, score_bits, score_frac, error_bits)
        out = self.local_error.out_layout
        self.row_layout = data.StructLayout({"valid": 1, "class_index": class_bits, "last": 1,
                                             "group": 8})
        super().__init__({
            "row": In(self.row_layout), "row_ready": Out(1),
            "rounded": In(data.ArrayLayout(signed(rounded_shape.width), lanes)),
            "batch": In(8),
            "label_addr": Out(8), "label": In(self.local_error.label_shape),
            "error": Out(data.StructLayout({
                "valid": 1, "sample": 8, "class_index": range(classes),
                "value": out["error"].shape})),
            "result": Out(data.StructLayout({
                "valid": 1, "sample": 8, "prediction": out["prediction"].shape,
                "correct": 1, "margin": out["margin"].shape})),
            "busy": Out(1),
            **({"round_up": In(lanes)} if rounding_parts else {}),
        })

    def elaborate(self, platform):
        m = Module()
        Q, C = self.lanes, self.classes
        qbits, cbits = (Q - 1).bit_length(), index_bits(C)
        score_shape = signed(self.score_bits)
        word = data.ArrayLayout(score_shape, Q)
        scores = Memory(shape=unsigned(Q * self.score_bits), depth=1 << cbits, init=[])
        m.submodules.scores = scores
        s_rd, s_wr = scores.read_port(), scores.write_port()
        m.submodules.local_error = leu = self.local_error

        # The drain: a row is taken when the error stage is idle and the group's last row is
        # not in the write register (its write starts the error stage).
        written = Signal(self.row_layout)
        err_busy, err_busy_next = Signal(), Signal()
        m.d.sync += err_busy.eq(err_busy_next)
        taken = self.row.valid & self.row_ready
        if self.registered_input:
            # Next cycle's value: the error stage busy then, or the group's last row written.
            ready = Signal(init=1)
            m.d.sync += ready.eq(~err_busy_next & ~(taken & self.row.last))
            m.d.comb += self.row_ready.eq(ready)
        else:
            m.d.comb += self.row_ready.eq(~err_busy & ~(written.valid & written.last))
        m.d.sync += written.valid.eq(taken)
        with m.If(taken):
            m.d.sync += [written.class_index.eq(self.row.class_index),
                         written.last.eq(self.row.last), written.group.eq(self.row.group)]
        score_word = Signal(word)
        for q in range(Q):
            m.d.comb += score_word[q].eq(
                saturate_parts(self.rounded[q], self.round_up[q], score_shape)
                if self.rounding_parts else saturate(self.rounded[q], score_shape))
        m.d.comb += [s_wr.en.eq(written.valid & (written.class_index < C)),
                     s_wr.addr.eq(written.class_index[:cbits]),
                     s_wr.data.eq(score_word.as_value())]

        # The error stage: sample `lane` of group `group`, class `cls`.
        lane, group = Signal(max(1, qbits + 1)), Signal(8)
        m.d.comb += err_busy_next.eq(err_busy)
        with m.If(written.valid & written.last):
            m.d.comb += err_busy_next.eq(1)
            m.d.sync += [lane.eq(0), group.eq(written.group)]
        sample = Signal(8)
        cls = Signal(range(C))
        last_class = cls == C - 1
        read = Signal(data.StructLayout({"valid": 1, "sample": 8, "cls": len(cls)}))
        m.d.comb += [sample.eq(Cat(lane[:qbits], group) if qbits else group),
                     s_rd.addr.eq(cls)]
        m.d.sync += [read.valid.eq(err_busy), read.sample.eq(sample), read.cls.eq(cls)]
        s_lanes = data.View(word, read_data(m, s_rd, s_wr, self.scramble_collisions))
        # What enters the local-error unit: the read sample's score and label, as read or
        # registered.
        entering = Signal(data.StructLayout({"valid": 1, "sample": 8, "cls": len(cls),
                                             "beat": leu.in_layout}))
        chosen = [entering.valid.eq(read.valid), entering.sample.eq(read.sample),
                  entering.cls.eq(read.cls),
                  entering.beat.score.eq(s_lanes[read.sample[:qbits]] if qbits
                                         else s_lanes[0]),
                  entering.beat.label.eq(self.label)]
        if self.registered_input:
            m.d.sync += chosen
        else:
            m.d.comb += chosen
        m.d.comb += [leu.i.valid.eq(entering.valid), leu.o.ready.eq(1),
                     leu.i.payload.eq(entering.beat), self.label_addr.eq(read.sample)]
        with m.If(err_busy):
            m.d.sync += cls.eq(Mux(last_class, 0, cls + 1))
            with m.If(last_class):
                m.d.sync += lane.eq(lane + 1)
                with m.If(lane == Q - 1):
                    m.d.comb += err_busy_next.eq(0)

        # The unit's output, a cycle after its input: the place it belongs to.
        out_sample = Signal(8)
        out_cls = Signal.like(cls)
        m.d.sync += [out_sample.eq(entering.sample), out_cls.eq(entering.cls)]
        out = leu.o.payload
        if self.registered_input:
            # Whether the sample is in the batch, compared as it enters (the batch stands
            # still through SCORE): the error's value leaves a register and one LUT.
            in_batch = Signal()
            m.d.sync += in_batch.eq(entering.sample < self.batch)
        else:
            in_batch = out_sample < self.batch
        real = leu.o.valid & in_batch
        m.d.comb += [
            self.error.valid.eq(leu.o.valid), self.error.sample.eq(out_sample),
            self.error.class_index.eq(out_cls), self.error.value.eq(Mux(real, out.error, 0)),
            self.result.valid.eq(real & out.last), self.result.sample.eq(out_sample),
            self.result.prediction.eq(out.prediction), self.result.correct.eq(out.correct),
            self.result.margin.eq(out.margin),
            self.busy.eq(written.valid | err_busy | read.valid | leu.o.valid
                         | (entering.valid if self.registered_input else 0)),
        ]
        return m
