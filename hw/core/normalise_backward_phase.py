"""The ``NORM_BACK`` phase: a layer's deltas through its batch normalisation, a tile at a time."""

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from contract.batch_norm import BACK_BITS, RECIP_BITS, XHAT_BITS

from .batch_norm_backward import BatchNormBackward

__all__ = ["NormaliseBackwardPhase"]


class NormaliseBackwardPhase(wiring.Component):
    """docs/ARITHMETIC.md, "Batch normalisation", step 5 through the normalisation, after the
    back projection has left ``pz`` (its deltas masked by ``bn_active``) in the delta memory.

    Per tile of ``rows`` neurons: its backward scales ``h``; a pass over the ``batch`` samples
    (each sample's ``pz`` and ``xhat``) into :class:`BatchNormBackward`, its ``finish``; a second
    pass (with the forward pass's ``active`` bits) whose deltas overwrite ``pz`` in place; then
    the tile's bias gradients (the sums of the deltas) and the scale's gradients (``P2``) to
    ``grads``. Reads are a cycle ahead of their data.

    Members
    -------
    start : In(1); busy : Out(1)
    tiles : In(count_bits); batch : In(9); inv_b : In(RECIP_BITS + 1); act_frac : In(5)
    at : Out(StructLayout(en, sample, tile))
        The sample and tile of this cycle's reads: the delta memory at ``(sample, tile)``, the
        ``xhat`` and ``active`` memories at ``(sample // cols, tile)``, the ``h`` memory at
        ``tile``.
    deltas : In(ArrayLayout(signed(delta_bits), rows))
    xhats : In(ArrayLayout(signed(XHAT_BITS), rows * cols)); active : In(rows * cols)
        Lane ``r * cols + q``: row ``r``, sample lane ``q``.
    h : In(ArrayLayout(signed(BACK_BITS), rows))
    delta_write : Out(StructLayout(en, sample, tile, d))
    grads : Out(StructLayout(en, tile, bias, gamma))
    """

    def __init__(self, rows, cols, delta_bits, count_bits, sample_bits):
        self.rows, self.cols, self.delta_bits = rows, cols, delta_bits
        self.count_bits, self.sample_bits = count_bits, sample_bits
        self.unit = BatchNormBackward(rows, delta_bits, unsigned(sample_bits))
        deltas = data.ArrayLayout(signed(delta_bits), rows)
        super().__init__({
            "start": In(1), "busy": Out(1),
            "tiles": In(count_bits), "batch": In(9),
            "inv_b": In(unsigned(RECIP_BITS + 1)), "act_frac": In(5),
            "at": Out(data.StructLayout({"en": 1, "sample": sample_bits, "tile": count_bits})),
            "deltas": In(deltas),
            "xhats": In(data.ArrayLayout(signed(XHAT_BITS), rows * cols)),
            "active": In(rows * cols),
            "h": In(data.ArrayLayout(signed(BACK_BITS), rows)),
            "delta_write": Out(data.StructLayout({"en": 1, "sample": sample_bits,
                                                  "tile": count_bits, "d": deltas})),
            "grads": Out(data.StructLayout({
                "en": 1, "tile": count_bits,
                "bias": self.unit.bias_grad.shape(), "gamma": self.unit.gamma_grad.shape()})),
        })

    def elaborate(self, platform):
        m = Module()
        P, Q = self.rows, self.cols
        qbits = (Q - 1).bit_length()
        m.submodules.backward = unit = self.unit
        m.d.comb += [unit.inv_b.eq(self.inv_b), unit.act_frac.eq(self.act_frac)]
        tile, sample = Signal(self.count_bits), Signal(self.sample_bits + 1)
        reading, first_pass = Signal(), Signal()
        m.d.comb += [self.at.en.eq(reading), self.at.sample.eq(sample), self.at.tile.eq(tile)]
        arriving = Signal(data.StructLayout({"valid": 1, "sample": self.sample_bits + 1}))
        m.d.sync += [arriving.valid.eq(reading), arriving.sample.eq(sample)]
        lane = arriving.sample[:qbits] if qbits else 0
        xhat = [self.xhats.as_value().word_select(r * Q + lane, XHAT_BITS).as_signed()
                if qbits else self.xhats[r] for r in range(P)]
        active = [self.active.bit_select(r * Q + lane, 1) if qbits else self.active[r]
                  for r in range(P)]
        m.d.comb += [
            unit.accumulate.valid.eq(arriving.valid & first_pass),
            unit.accumulate.clear.eq(arriving.sample == 0),
            unit.apply.valid.eq(arriving.valid & ~first_pass),
            unit.apply.tag.eq(arriving.sample), unit.apply.pz.eq(self.deltas),
            unit.accumulate.pz.eq(self.deltas),
        ]
        for r in range(P):
            m.d.comb += [unit.accumulate.xhat[r].eq(xhat[r]), unit.apply.xhat[r].eq(xhat[r]),
                         unit.apply.active[r].eq(active[r])]
        h = Signal.like(self.h)
        m.d.comb += unit.h.eq(h)
        in_flight = Signal(range(256 + 4))
        m.d.sync += in_flight.eq(in_flight + unit.apply.valid - unit.o.valid)
        m.d.comb += [
            self.delta_write.en.eq(unit.o.valid), self.delta_write.sample.eq(unit.o.tag),
            self.delta_write.tile.eq(tile), self.delta_write.d.eq(unit.o.d),
            self.grads.tile.eq(tile), self.grads.bias.eq(unit.bias_grad),
            self.grads.gamma.eq(unit.gamma_grad),
        ]
        last_sample = sample == self.batch - 1
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += tile.eq(0)
                    m.next = "SCALES"
            with m.State("SCALES"):                 # the tile's h: read here, ready next
                m.d.comb += [self.busy.eq(1), self.at.en.eq(1)]
                m.d.sync += [sample.eq(0), first_pass.eq(1)]
                m.next = "SUMS"
            with m.State("SUMS"):
                m.d.comb += [self.busy.eq(1), reading.eq(1)]
                with m.If(sample == 0):
                    m.d.sync += h.eq(self.h)
                m.d.sync += sample.eq(sample + 1)
                with m.If(last_sample):
                    m.next = "SETTLE"
            with m.State("SETTLE"):                  # the last sample is summed this cycle
                m.d.comb += self.busy.eq(1)
                m.next = "FINISH"
            with m.State("FINISH"):
                m.d.comb += [self.busy.eq(1), unit.finish.eq(1)]
                m.d.sync += [sample.eq(0), first_pass.eq(0)]
                m.next = "DELTAS"
            with m.State("DELTAS"):
                m.d.comb += [self.busy.eq(1), reading.eq(1)]
                m.d.sync += sample.eq(sample + 1)
                with m.If(last_sample):
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.comb += self.busy.eq(1)
                with m.If(~arriving.valid & (in_flight == 0)):
                    m.d.comb += self.grads.en.eq(1)
                    m.d.sync += tile.eq(tile + 1)
                    with m.If(tile == self.tiles - 1):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "SCALES"
        return m
