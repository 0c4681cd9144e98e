"""Samples decoded from a frame's payload as it arrives: ``LOAD_BATCH`` into the input buffer,
``STORE_SAMPLES`` into the resident store (docs/HOST_INTERFACE.md). Both frames are a header,
then per sample a label and ``inputs`` pixel bytes; each label must name a class and each
pixel fit ``act_bits`` ("Range checks")."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .framing import PAYLOAD_INDEX_BITS

__all__ = ["SampleDecoder", "payload_signature"]


def payload_signature():
    """The receiver's payload bytes as they arrive (``FrameReceiver.payload``)."""
    return stream.Signature(data.StructLayout({"data": 8, "index": PAYLOAD_INDEX_BITS}),
                            always_ready=True)


class SampleDecoder(wiring.Component):
    """Decodes the samples of one command's frames.

    The header is ``header`` bytes: the first sample's number (``header - 1`` bytes, little
    endian), then the sample count.

    Members
    -------
    payload : In(payload_signature())
    command : In(8)
        The command of the frame arriving; only ``command`` frames are decoded.
    inputs : In(16)
        Pixels a sample (the ``inputs`` register).
    write : Out(1)
        A sample byte arrives this cycle: ``data``, of sample ``sample`` (numbered from the
        header's first), at ``position`` (0: the label, ``1 + k``: pixel ``k``).
    first, count : Out
        The header's first sample and count (from the cycle after each arrives).
    expect : Out(17)
        The payload length those make (registered; valid two cycles after the count).
    value_bad : Out(1)
        A label or pixel out of range arrived in this frame.
    found_bad : Out(1)
        The first such byte arrives this cycle (its sample is ``sample``): the user keeps the
        sample to name it.
    """

    def __init__(self, params, command, header):
        self.params, self.decoded, self.header = params, command, header
        first_bits = 8 * (header - 1)
        super().__init__({
            "payload": In(payload_signature()),
            "command": In(8), "inputs": In(16),
            "write": Out(1), "data": Out(8), "sample": Out(first_bits + 1),
            "position": Out(16), "first": Out(first_bits), "count": Out(8),
            "expect": Out(17), "value_bad": Out(1), "found_bad": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        p, header = self.params, self.header
        byte, index = self.payload.payload.data, self.payload.payload.index
        m.d.comb += self.data.eq(byte)
        if p.pipelined:
            # A sample's bytes, registered: the multiplier starts from registers (``inputs``
            # is a configuration register, written long before a frame's count arrives).
            stride = Signal(17)
            m.d.sync += stride.eq(self.inputs + 1)
        else:
            stride = self.inputs + 1
        m.d.sync += self.expect.eq(header + self.count * stride)
        bad = Mux(self.position == 0, byte >= p.classes,
                  (byte >> p.act_bits) != 0 if p.act_bits < 8 else 0)
        with m.If(self.payload.valid & (self.command == self.decoded)):
            with m.If(index == 0):
                m.d.sync += [self.first[:8].eq(byte), self.sample.eq(byte),
                             self.position.eq(0), self.value_bad.eq(0)]
            for k in range(1, header - 1):
                with m.Elif(index == k):
                    m.d.sync += [self.first.word_select(k, 8).eq(byte),
                                 self.sample.word_select(k, 8).eq(byte)]
            with m.Elif(index == header - 1):
                m.d.sync += self.count.eq(byte)
            with m.Else():
                m.d.comb += self.write.eq(1)
                m.d.sync += self.position.eq(self.position + 1)
                with m.If(bad & ~self.value_bad):
                    m.d.comb += self.found_bad.eq(1)
                    m.d.sync += self.value_bad.eq(1)
                with m.If(self.position == self.inputs):
                    m.d.sync += [self.position.eq(0), self.sample.eq(self.sample + 1)]
        return m
