"""The operands of a MAC-array beat, chosen by the phase."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..banked_ram import COPY_SUFFIX
from .classifier_weights import from_odd_part
from .sequencer import Phase

__all__ = ["BeatOperands"]


class BeatOperands(wiring.Component):
    """What each phase multiplies (hw/core/training_core.py's table), combinationally from the
    words the beat generator read for the beat:

    ===========  ===================================  =========================================
    phase        ``a`` (a lane per row)               ``b`` (a lane per column)
    ===========  ===================================  =========================================
    ``FWD``      the weight word (neurons of a tile)  the inputs of the sample group; for the
                                                      bias beat the constant 1 (``2**in_frac``);
                                                      0 for a convolution's padding (``pad``)
    ``SCORE``    the classifier weights of class      the layer's outputs of the sample group
                 tile ``m`` (0 past the last class)
    ``BACK``     the feedback weights of class ``k``  the errors of class ``k`` of the group
    ``GRAD``     the deltas of sample ``k``           sample ``k``'s inputs of input tile ``m``
                                                      (0 past the layer's last input); for a
                                                      convolution its patch elements, 0 where
                                                      ``lanes`` is low (padding, or past ``K``)
    ===========  ===================================  =========================================

    Parameters
    ----------
    rows, cols, classes : int
        The MAC array's shape; classes.
    beat_layout : StructLayout
        The MAC array's input beat (``a``, ``b``, ``first``, ``last``).
    act_bits, weight_bits, error_bits, delta_bits, classifier_bits : int
        Operand widths (``classifier_bits`` + 1 is a classifier weight).
    feedback_shape : signed shape
        A feedback weight.
    width : int
        Width of the loop counters.

    Members
    -------
    phase : In(Phase)
    beat : In(StructLayout(first, last, bias, k, m[, pad, lanes]))
        The beat: first and last of its sum, the bias beat (FWD), the inner and mid counters;
        with ``conv``, ``pad``: the patch element is outside the input map (FWD), and
        ``lanes``: the lanes holding a real patch element inside the map (GRAD).
    conv_on : In(1)
        (``conv`` only) The layer is a convolution.
    weights, deltas : In(ArrayLayout(..., rows))
    inputs, outputs, errors : In(ArrayLayout(..., cols))
    classifier : In(ArrayLayout(unsigned(classifier_bits), classes))
        The classifier weights of the beat's neuron, without their constant low bit.
    feedback : In(ArrayLayout(feedback_shape, rows))
        The feedback weights of class ``k``.
    in_frac : In(5); fan_in : In(width)
        The layer's input fraction bits (up to 16: ``act_bits`` can be 16) and inputs.
    centre_inputs, centre_outputs : In(1)
        (``batch_norm`` only) The inputs (the outputs) are batch-normalised activations ``z``,
        stored with the offset ``H = 2**(act_bits - 1)``: they enter the products as ``z - H``
        (docs/ARITHMETIC.md, "Batch normalisation").
    o : Out(beat_layout)
    stall : In(len(held_words))
        (``registered`` only) Hold the registered words: a bit per word held here
        (``held_words``), each from its own copy of the pipe's hold, all alike (one net to
        every word's enables was too slow on an 8 x 8 ULX3S build).

    With ``registered``, ``beat`` and every word (``weights`` to ``feedback``) are registered
    as they arrive, while ``stall`` is low, and ``o`` is the table's function of the registered
    ones: a beat leaves a cycle after its words, and the memories' read data (block RAMs whose
    output is late) ends at a register. ``in_frac``, ``fan_in`` and the ``centre_*`` and
    ``conv_on`` flags are a layer's or a phase's, steady while beats flow, and are not
    registered; ``phase``, as steady, is read through a copy a lane registered every cycle
    (whatever ``stall``), so it must be steady from the cycle before a beat's words arrive.
    Words named in ``registered_at_source`` are taken as they arrive
    (their source registered them, with the same enable: the activation buffers' registered
    reads).
    """

    #: The members ``registered`` holds.
    REGISTERED = ("beat", "weights", "deltas", "inputs", "outputs", "errors", "classifier",
                  "feedback")

    def __init__(self, rows, cols, classes, beat_layout, act_bits, weight_bits, error_bits,
                 delta_bits, classifier_bits, feedback_shape, width, batch_norm=False,
                 conv=False, registered=False, registered_at_source=()):
        self.rows, self.cols, self.classes = rows, cols, classes
        self.act_bits, self.batch_norm, self.conv = act_bits, batch_norm, conv
        self.registered = registered
        self.registered_at_source = tuple(registered_at_source)
        if not set(self.registered_at_source) <= set(self.REGISTERED):
            raise ValueError(f"words registered at their source are among {self.REGISTERED}")
        #: The words ``registered`` holds here, in order: a bit of ``stall`` each.
        self.held_words = tuple(name for name in self.REGISTERED
                                if name not in self.registered_at_source)
        super().__init__({
            "phase": In(Phase),
            "beat": In(data.StructLayout({"first": 1, "last": 1, "bias": 1, "k": width,
                                          "m": width,
                                          **({"pad": 1, "lanes": cols} if conv else {})})),
            "weights": In(data.ArrayLayout(signed(weight_bits), rows)),
            "deltas": In(data.ArrayLayout(signed(delta_bits), rows)),
            "inputs": In(data.ArrayLayout(unsigned(act_bits), cols)),
            "outputs": In(data.ArrayLayout(unsigned(act_bits), cols)),
            "errors": In(data.ArrayLayout(signed(error_bits), cols)),
            "classifier": In(data.ArrayLayout(unsigned(classifier_bits), classes)),
            "feedback": In(data.ArrayLayout(feedback_shape, rows)),
            "in_frac": In(5), "fan_in": In(width),
            "o": Out(beat_layout),
            **({"centre_inputs": In(1), "centre_outputs": In(1)} if batch_norm else {}),
            **({"conv_on": In(1)} if conv else {}),
            **({"stall": In(len(self.held_words))} if registered else {}),
        })

    def _centred(self, lanes, centre):
        """The lanes, or ``z - H`` of each where ``centre``: the top bit inverted, read as
        signed (no adder)."""
        if not self.batch_norm:
            return list(lanes)
        top = self.act_bits - 1
        return [Mux(centre, Cat(v[:top], ~v[top]).as_signed(), v) for v in lanes]

    def _phase(self, m, lane):
        """The phase a lane's choice reads: ``phase``, or (``registered``) its own copy."""
        if not self.registered:
            return self.phase
        copy = Signal(Phase, name=f"phase_{lane}{COPY_SUFFIX}")
        m.d.sync += copy.eq(self.phase)
        return copy

    def elaborate(self, platform):
        m = Module()
        P, Q, C = self.rows, self.cols, self.classes
        qbits = (Q - 1).bit_length()
        words = {name: getattr(self, name) for name in self.REGISTERED}
        if self.registered:
            held = {name: (port if name in self.registered_at_source else
                           Signal.like(port, name=f"held_{name}", reset_less=True))
                    for name, port in words.items()}
            for bit, name in enumerate(self.held_words):
                with m.If(~self.stall[bit]):
                    m.d.sync += held[name].eq(words[name])
            words = held
        beat, o = words["beat"], self.o
        m.d.comb += [o.first.eq(beat.first), o.last.eq(beat.last)]
        # GRAD: whether each lane's column is one of the layer's inputs, from the arriving
        # beat. With the beat held here, the comparison is made as the beat arrives and held
        # with it: a layer register's route into the comparison's carry chain, then the
        # lanes' choice, was 14.5 ns of an 8 x 8 ULX3S build.
        columns_real = [(Cat(Const(q, qbits), self.beat.m) if qbits else self.beat.m)
                        < self.fan_in for q in range(Q)]
        if self.registered and "beat" in self.held_words:
            held_real = Signal(Q, name="held_columns_real", reset_less=True)
            with m.If(~self.stall[self.held_words.index("beat")]):
                m.d.sync += held_real.eq(Cat(*columns_real))
            columns_real = list(held_real)
        # SCORE: the class tile each row's classifier word comes from (``tiles``: none, past
        # the last class). With the beat held here, each row holds its own copy, decoded as
        # the beat arrives: the held ``m``'s comparisons into every row's choice was 13.38 ns
        # of an 8 x 8 ULX3S build.
        tiles = -(-C // P)
        score_tiles = [beat.m] * P
        if self.registered and "beat" in self.held_words:
            arriving = Mux(self.beat.m < tiles, self.beat.m, tiles)
            score_tiles = [Signal(range(tiles + 1), name=f"score_tile_{r}{COPY_SUFFIX}",
                                  reset_less=True) for r in range(P)]
            with m.If(~self.stall[self.held_words.index("beat")]):
                m.d.sync += [tile.eq(arriving) for tile in score_tiles]
        inputs = self._centred(words["inputs"], self.centre_inputs if self.batch_norm else 0)
        outputs = self._centred(words["outputs"],
                                self.centre_outputs if self.batch_norm else 0)
        # Each lane's choice by the phase: pipelined, from its own registered copy of the
        # phase (steady while beats flow; a phase's first beat reaches here cycles after the
        # phase changes), so that no decode of the sequencer's register drives every lane's
        # multiplexers (11.5 ns of routing on an 8 x 8 ULX3S build).
        for r in range(P):
            with m.Switch(self._phase(m, f"a_{r}")):
                with m.Case(Phase.FWD):
                    m.d.comb += o.a[r].eq(words["weights"][r])
                with m.Case(Phase.SCORE):
                    with m.Switch(score_tiles[r]):
                        for tile in range(tiles):
                            with m.Case(tile):
                                if tile * P + r < C:
                                    m.d.comb += o.a[r].eq(
                                        from_odd_part(words["classifier"][tile * P + r]))
                with m.Case(Phase.BACK):
                    m.d.comb += o.a[r].eq(words["feedback"][r])
                with m.Case(Phase.GRAD):
                    m.d.comb += o.a[r].eq(words["deltas"][r])
        for q in range(Q):
            with m.Switch(self._phase(m, f"b_{q}")):
                with m.Case(Phase.FWD):
                    x = Mux(beat.pad, 0, inputs[q]) if self.conv else inputs[q]
                    m.d.comb += o.b[q].eq(Mux(beat.bias, Const(1, 17) << self.in_frac, x))
                with m.Case(Phase.SCORE):
                    m.d.comb += o.b[q].eq(outputs[q])
                with m.Case(Phase.BACK):
                    m.d.comb += o.b[q].eq(words["errors"][q])
                with m.Case(Phase.GRAD):
                    real = columns_real[q]
                    if self.conv:
                        real = Mux(self.conv_on, beat.lanes[q], real)
                    m.d.comb += o.b[q].eq(Mux(real, inputs[q], 0))
        return m
