"""The training core: one MAC array sequenced through every step of local-error learning.

For each layer the core runs four phases over the mini-batch (docs/ARITHMETIC.md, "One training
step"), each a loop nest of MAC-array beats ``(outer, mid, inner)``:

===========  ==================  ======================  ====================  ===============
phase        outer               mid                     inner (one beat)      rows x columns
===========  ==================  ======================  ====================  ===============
``FWD``      output tile ``t``   sample group ``g``      input ``j``, bias     neurons x samples
``SCORE``    sample group ``g``  class tile              neuron ``n``          classes x samples
``BACK``     output tile ``t``   sample group ``g``      class ``c``           neurons x samples
``GRAD``     output tile ``t``   input tile              sample ``b``          neurons x inputs
===========  ==================  ======================  ====================  ===============

A convolution (a core built with ``CoreParams.conv``, a layer whose ``conv`` register is set)
runs ``FWD`` with a fourth loop between ``mid`` and ``inner``: the output positions, which the
patch walker (patch_walker.py) steps through, giving each beat's input column of the patch (or
padding, a zero operand); ``inner`` runs over the patch ``K*K*C`` and the bias. Filters tile the
array like neurons. The forward drain pools each window's four sums (forward_drain.py) and
writes the pooled row to its column ``f * S + s'`` of the flattened output, which ``SCORE``
reads as a fully connected layer's (``S`` and the output's size from conv_geometry.py).
``BACK`` and ``GRAD`` of a convolution are wired in by convolution.py: ``BACK`` over the
flattened output, ``GRAD`` over kernel-row input tiles with every sample at every position in
one sum.

A beat generator walks the nest and reads the operands (stage 0 -> 1), which are selected and
registered (stage 2) on their way into the MAC array; the array sums; a drain per phase turns
each finished sum into activations, scores and errors, deltas, or weight updates while the
array already sums the next. Weights stream over the weight bus
(hw/weight_bus.py): read once into a ping-pong slab for the forward pass, then read, updated in
place and written back in the gradient phase.

A core built with batch normalisation (``CoreParams.batch_norm``) runs two more phases when the
``batch_norm`` register is set: ``NORM`` after ``FWD`` normalises the layer's outputs in place,
a neuron at a time (normalise_phase.py), and ``NORM_BACK`` after ``BACK`` turns the projected
errors into deltas through the normalisation, a tile at a time (normalise_backward_phase.py);
``GRAD`` then updates each tile's scale after its bias. Its operands ``z`` enter the products
as ``z - H`` (beat_operands.py).

The core composes the components of this package and says nothing itself of how any of them
works: the register file (register_file.py) and the current layer's copy (layer_registers.py);
the sequencer (sequencer.py), which only orders layers and phases; the beat generator's loop
nest (loop_nest.py) and operand selection (beat_operands.py); the weight-bus master
(weight_stream.py) and the forward pass's weight slab (weight_slab.py); the local classifier
and its feedback (classifier_weights.py, feedback_registers.py); the drain register
(drain_register.py) and the drains' shared rounding stage (drain_rounding.py); the forward
drain (forward_drain.py), the score drain and error stage (error_stage.py), the back
projection's drain (back_projection.py), the gradient drain's column walk and the weight update
(gradient_columns.py, weight_updater.py); the weight initialisation (weight_init.py); and what
early exit saves (exit_savings.py). ``elaborate`` wires them in sections: a method each here,
the drains in drains.py, the phase control in phase_control.py.
"""

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from contract.batch_norm import XHAT_BITS
from contract.registers import BATCH_NORM, GLOBAL, LAYER

from ..activation_buffer import ActivationBuffer
from ..lfsr_prng import LfsrPrng
from ..params import index_bits
from ..ram_collisions import read_data
from ..weight_bus import weight_bus_signature
from .beat_generator import wire_beat_generator
from .classifier_weights import ClassifierWeights
from .conv_geometry import ConvGeometry, conv_layout
from .convolution import wire_conv_training
from .drains import wire_column_drains, wire_row_drains
from .layer_registers import LayerRegisters
from .normalisation import wire_normalisation
from .phase_control import wire_phase_control
from .register_file import RegisterFile
from .sequencer import Op, Sequencer, command_layout
from .weight_slab import WeightSlab
from .weight_stream import WeightStream

__all__ = ["TrainingCore", "Op", "loop_count_bits"]


def loop_count_bits(params):
    """Width of the loop counters and sizes: wide enough for the largest loop of any phase."""
    p = params
    return index_bits(max(p.columns, p.depth, p.tiles, p.groups, p.class_tiles,
                          -(-p.max_inputs // p.cols)) + 2)


class TrainingCore(wiring.Component):
    """The sequencer, the MAC array, the on-chip buffers and the weight-bus master.

    Members
    -------
    control : In(control_signature)
        From the host interface: register writes (``reg_*``, contract/registers.py); ``cmd`` (op,
        batch, early_exit, threshold), taken when ``start`` is high and the core is idle;
        ``busy``, and ``done`` pulsing when a command finishes; ``load_*`` writes a pixel (or,
        with ``load_label``, a label) of the input mini-batch (idle only); ``res_*`` the layer
        predictions and exit layer of a sample of the last command (a cycle after the address);
        ``correct`` the correct predictions per layer of the last ``TRAIN``.
    mac_busy : Out
        High in cycles where the MAC array takes a beat.
    skipped : Out
        MAC beats early exit saved in this cycle.
    mem : Out(weight_bus_signature)
        The weight-bus master.
    """

    def __init__(self, params):
        p = self.params = params
        self.cmd_layout = command_layout
        self.count_bits = loop_count_bits(p)
        # The batch normalisation's scale gradient, P2 (hw/core/batch_norm_backward.py).
        self.scale_grad_bits = p.delta_bits + XHAT_BITS + 9
        self.buffer_cols = max(p.columns, 1)
        self.control_signature = wiring.Signature({
            "reg_we": Out(1), "reg_addr": Out(8), "reg_data": Out(32),
            "start": Out(1), "cmd": Out(self.cmd_layout),
            "busy": In(1), "done": In(1),
            "load_en": Out(1), "load_label": Out(1), "load_sample": Out(8),
            "load_col": Out(index_bits(self.buffer_cols)), "load_data": Out(8),
            "res_sample": Out(8), "res_layer": Out(4),
            "res_pred": In(p.label_shape), "res_exit": In(4),
            "correct": In(data.ArrayLayout(16, p.max_layers)),
        })
        super().__init__({
            "control": In(self.control_signature),
            "mac_busy": Out(1), "skipped": Out(32),
            "mem": Out(weight_bus_signature(p.addr_bits, p.word_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        k = SimpleNamespace()           # the core's parts and signals, shared by the sections
        self._layer_context(m, k)
        self._memories(m, k)
        wire_beat_generator(self, m, k)
        wire_row_drains(self, m, k)
        wire_column_drains(self, m, k)
        wire_phase_control(self, m, k)
        if self.params.batch_norm:
            wire_normalisation(self, m, k)
        if self.params.conv:
            wire_conv_training(self, m, k)
        return m

    def _sizes(self):
        p = self.params
        return (p.rows, p.cols, p.classes, (p.rows - 1).bit_length(), (p.cols - 1).bit_length(),
                p.class_tiles, self.count_bits)

    def _safe(self, m, rd, wr):
        return read_data(m, rd, wr, self.params.scramble_collisions)

    @staticmethod
    def _chunks(lfsr, bits, lanes):
        return [lfsr.o.payload[i * bits:(i + 1) * bits] for i in range(lanes)]

    def _layer_context(self, m, k):
        """The registers, the sequencer, the current layer's sizes and the PRNGs."""
        p, ctl = self.params, self.control
        P, Q, C, _, qbits, _, cw = self._sizes()
        # ---- registers: a memory, plus a copy of each global register ---------------------
        absent = (() if p.frozen_layers else ("frozen",)) + (() if p.batch_norm
                                                            else BATCH_NORM)
        k.regs = regs = RegisterFile(p.max_layers, p.scramble_collisions, absent=absent)
        m.submodules.registers = regs
        m.d.comb += [regs.write.en.eq(ctl.reg_we), regs.write.addr.eq(ctl.reg_addr),
                     regs.write.data.eq(ctl.reg_data)]
        greg = regs.globals
        k.n_layers = greg.layers[:4]
        # A feature the core is built without is off (the host interface refuses to turn it on).
        if p.dropout:
            k.dropout, k.keep_scale = greg.dropout[:8], greg.keep_scale[:17]
        else:
            k.dropout, k.keep_scale = Const(0, 8), Const(0, 17)
        k.stochastic = greg.rounding[0] == 0
        sign_mode = greg.feedback[0] if p.sign_feedback else Const(0, 1)
        k.bias_shift = greg.bias_shift[:5]
        k.bn = greg.batch_norm[0] if p.batch_norm else Const(0, 1)

        k.sequencer = sequencer = Sequencer(p.early_exit, p.frozen_layers, p.batch_norm,
                                               registered_begin=p.pipelined)
        m.submodules.sequencer = sequencer
        m.d.comb += [sequencer.start.eq(ctl.start), sequencer.command.eq(ctl.cmd),
                     sequencer.layers.eq(k.n_layers),
                     ctl.busy.eq(sequencer.busy), ctl.done.eq(sequencer.done)]
        k.cmd, k.layer = sequencer.cmd, sequencer.layer
        if p.frozen_layers:
            m.d.comb += sequencer.frozen.eq(greg.frozen.bit_select(k.layer, 1))
        current = LayerRegisters([name for name in LAYER
                                  if (name != "gamma_shift" or p.batch_norm)
                                  and (name != "conv" or p.conv)])
        m.submodules.layer_registers = current
        m.d.comb += [current.copy.eq(sequencer.copy), current.layer.eq(k.layer),
                     regs.read_addr.eq(current.read_addr), current.read_data.eq(regs.read_data),
                     sequencer.copied.eq(current.copied)]
        k.cur = cur = {name: current.current[name] for name in current.names}
        k.N, k.J = cur["neurons"][:cw], cur["fan_in"][:cw]
        k.T, k.JT = cur["tiles"][:cw], cur["in_tiles"][:cw]
        # A convolution's sizes beyond its registers (``neurons`` is its filters); ``N_out``
        # is the layer's output, its local classifier's width.
        if p.conv:
            k.conv = data.View(conv_layout, cur["conv"][:conv_layout.size])
            k.geometry = geometry = ConvGeometry(cw, cw, P, Q)
            m.submodules.conv_geometry = geometry
            m.d.comb += [geometry.conv.eq(k.conv), geometry.filters.eq(k.N)]
            k.conv_on = geometry.conv_on
            k.N_out = Mux(k.conv_on, geometry.width, k.N)
        else:
            k.conv_on, k.N_out = Const(0, 1), k.N
        k.B = k.cmd.batch
        k.G = Signal(8)
        m.d.comb += k.G.eq((k.B + Q - 1) >> qbits)
        k.training = k.cmd.op == Op.TRAIN
        k.xsel = k.layer[0]                  # buffer holding this layer's input
        k.phase, k.running = sequencer.phase, sequencer.running
        k.phase_is = sequencer.phase_is
        k.alive = Signal(p.max_batch)
        k.skip_en = ((k.cmd.op == Op.INFER) & k.cmd.early_exit if p.early_exit
                     else Const(0, 1))

        # ---- PRNGs ----------------------------------------------------------------------
        # The local classifier M (SCORE) and its feedback K (BACK's K registers), replayed
        # from the layer's seeds.
        # (Pipelined, the loop nest's issue, late in its cycle, reaches only the PRNGs'
        # own registers of it, not their states' enables: a 75 MHz ULX3S build's slow path.)
        k.cls_gen = cls_gen = ClassifierWeights(p.lfsr_width, C, p.classifier_bits,
                                                p.sign_feedback,
                                                registered_controls=p.pipelined)
        k.round_lfsr = round_lfsr = LfsrPrng(p.lfsr_width, p.round_bits, P)
        m.submodules.classifier_weights = cls_gen
        m.submodules.round_prng = round_lfsr
        m.d.comb += cls_gen.seed.eq(cur["classifier_seed"])

        def seed_on_write(lfsr, register):
            """``lfsr`` restarts from its seed register as the host writes it."""
            written = ctl.reg_we & (ctl.reg_addr == GLOBAL[register])
            if p.pipelined:
                # A cycle after the write, from the register's copy: the host interface's
                # decode of a write does not reach the PRNG's state in the same cycle.
                loaded = Signal(name=f"{register}_written")
                m.d.sync += loaded.eq(written)
                m.d.comb += [lfsr.seed.eq(k.regs.globals[register]), lfsr.load.eq(loaded)]
            else:
                m.d.comb += [lfsr.seed.eq(ctl.reg_data), lfsr.load.eq(written)]

        seed_on_write(round_lfsr, "round_seed")
        if p.sign_feedback:
            m.d.comb += [cls_gen.feedback_seed.eq(cur["feedback_seed"]),
                         cls_gen.sign.eq(sign_mode)]
        if p.dropout:
            m.submodules.dropout_prng = k.drop_lfsr = LfsrPrng(p.lfsr_width, 8, Q)
            seed_on_write(k.drop_lfsr, "dropout_seed")

    def _memories(self, m, k):
        """The activation buffers, the weight slab, the per-layer memories, the results, and
        the weight-bus master."""
        p, ctl = self.params, self.control
        P, Q, C, _, _, _, cw = self._sizes()
        k.bufs = [ActivationBuffer(Q, p.groups, self.buffer_cols, p.act_bits,
                                   p.scramble_collisions, any_start=p.conv,
                                   registered_write=p.pipelined, registered_read=p.pipelined)
                  for _ in range(2)]
        m.submodules.buffer_0, m.submodules.buffer_1 = k.bufs
        k.tbits, k.gbits = tbits, gbits = index_bits(p.tiles), index_bits(p.groups)
        k.sbits = index_bits(p.max_inputs + 1)
        k.slab = WeightSlab(p.word_bits, k.sbits, cw, p.scramble_collisions)
        m.submodules.weight_slab = k.slab
        # Errors: a word per (group, class), a lane per sample of the group.
        k.cbits = cbits = index_bits(C)
        emem = Memory(shape=unsigned(Q * p.error_bits), depth=1 << (gbits + cbits), init=[])
        m.submodules.errors = emem
        e_rd, e_wr = emem.read_port(), emem.write_port(granularity=p.error_bits)
        k.e_rd, k.e_wr = e_rd, e_wr
        k.bbits_s = bbits_s = index_bits(p.max_batch)
        dmem = Memory(shape=unsigned(P * p.delta_bits), depth=1 << (bbits_s + tbits), init=[])
        m.submodules.deltas = dmem
        d_rd, d_wr = dmem.read_port(), dmem.write_port()
        k.d_rd, k.d_wr = d_rd, d_wr
        amem = Memory(shape=unsigned(P * Q), depth=1 << (gbits + tbits), init=[])
        m.submodules.active = amem
        a_rd, a_wr = amem.read_port(), amem.write_port(granularity=Q)
        k.a_rd, k.a_wr = a_rd, a_wr
        gbmem = Memory(shape=unsigned(P * p.grad_bias_bits), depth=1 << tbits, init=[])
        m.submodules.bias_grads = gbmem
        gb_rd, gb_wr = gbmem.read_port(), gbmem.write_port()
        k.gb_rd, k.gb_wr = gb_rd, gb_wr
        lmem = Memory(shape=p.label_shape, depth=1 << bbits_s, init=[])
        m.submodules.labels = lmem
        l_rd, l_wr = lmem.read_port(domain="comb"), lmem.write_port()
        k.l_rd, k.l_wr = l_rd, l_wr
        rmem = Memory(shape=p.label_shape, depth=1 << (bbits_s + 4), init=[])
        m.submodules.results = rmem
        r_rd, r_wr = rmem.read_port(), rmem.write_port()
        k.r_wr = r_wr
        xmem = Memory(shape=4, depth=1 << bbits_s, init=[])
        m.submodules.exits = xmem
        x_rd, x_wr = xmem.read_port(), xmem.write_port()
        k.x_wr = x_wr
        m.d.comb += [
            r_rd.addr.eq(Cat(ctl.res_sample[:bbits_s], ctl.res_layer)),
            ctl.res_pred.eq(self._safe(m, r_rd, k.r_wr)),
            x_rd.addr.eq(ctl.res_sample[:bbits_s]), ctl.res_exit.eq(self._safe(m, x_rd, k.x_wr)),
        ]

        # ---- bus ------------------------------------------------------------------------
        # The layer's weights: FWD reads them, GRAD reads and writes them, INIT writes them.
        k.weights = weights = WeightStream(p.addr_bits, p.word_bits, cw,
                                           flexible=p.batch_norm,
                                           registered_write=p.pipelined)
        m.submodules.weight_stream = weights
        wiring.connect(m, weights.mem, wiring.flipped(self.mem))
        m.d.comb += [weights.fan_in.eq(k.J), weights.start.bursts.eq(k.T),
                     weights.start.base.eq(k.cur["weight_base"])]
        k.rd, k.wr = weights.rd, weights.wr
