"""hw/core/conv_geometry.py: a convolution's input plane, pooled positions and output size
against contract/architecture.py's shapes, for every padding and pooling (Amaranth
simulator)."""

import pytest
from amaranth.sim import Simulator

from contract.architecture import parse_arch
from contract.registers import conv_fields, conv_word
from hw.core.conv_geometry import ConvGeometry

ARCHS = ["1x28x28-c16k5-p2-f10", "3x8x6-c5k3v-p2-f4", "2x5x7-c7k5-f3", "1x4x4-c1k1-f2",
         "2x9x11-c3k3v-f5", "1x32x32-c64k5-p2-f2", "4x2x2-c9k1-p2-f2"]


@pytest.mark.parametrize("rows,cols", [(4, 4), (2, 8), (1, 1)])
@pytest.mark.parametrize("text", ARCHS)
def test_sizes_match_the_architecture(text, rows, cols):
    conv = parse_arch(text).layers[0]
    dut = ConvGeometry(16, 24, rows, cols)
    word = conv_word(conv)
    assert conv_fields(word)["kernel"] == conv.kernel

    async def tb(ctx):
        ctx.set(dut.conv.as_value(), word)
        ctx.set(dut.filters, conv.filters)
        await ctx.delay(0)
        assert ctx.get(dut.conv_on)
        for _ in range(4):
            await ctx.tick()
        c, h, w = conv.in_shape
        f, ho, wo = conv.out_shape
        assert ctx.get(dut.plane) == h * w
        assert ctx.get(dut.positions) == ho * wo
        assert ctx.get(dut.width) == conv.outputs == f * ho * wo
        assert ctx.get(dut.out_tiles) == -(-f * ho * wo // rows)
        assert ctx.get(dut.in_tiles) == c * conv.kernel * -(-conv.kernel // cols)
        ctx.set(dut.conv.as_value(), 0)
        await ctx.delay(0)
        assert not ctx.get(dut.conv_on)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
