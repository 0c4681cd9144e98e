"""hw/core/layer_registers.py: copies of a layer's registers (contract/registers.py LAYER) out
of a fake register file whose data comes a cycle after the address; ``copied`` in the cycle
after the last register's read (a cycle later when that is ``conv``), and the count starting
again (Amaranth simulator)."""

import random

import pytest
from amaranth.sim import Simulator

from contract.registers import LAYER, register_index
from hw.core.layer_registers import LayerRegisters


BATCH_NORM = [name for name in LAYER if name != "conv"]


@pytest.mark.parametrize("seed,back_to_back,names,cycles", [
    (1, False, None, 14), (2, True, None, 14), (3, False, BATCH_NORM, 15),
    (4, True, BATCH_NORM, 15),
    # With conv (copied last), a cycle more: the first phase reads it.
    (5, False, list(LAYER), 17), (6, True, list(LAYER), 17)])
def test_copies_hold_the_layers_registers(seed, back_to_back, names, cycles):
    dut = LayerRegisters(names)
    rng = random.Random(seed)
    memory = [rng.getrandbits(32) for _ in range(256)]
    layers = [rng.randrange(15) for _ in range(6)]
    copied_layers = []

    async def tb(ctx):
        addr = None                                 # last cycle's read address

        async def cycle(copy, layer):
            nonlocal addr
            ctx.set(dut.copy, copy)
            ctx.set(dut.layer, layer)
            # The memory's data: the word at last cycle's address.
            ctx.set(dut.read_data, memory[addr] if addr is not None else rng.getrandbits(32))
            await ctx.delay(0)
            addr = ctx.get(dut.read_addr)
            out = ctx.get(dut.copied), {name: ctx.get(dut.current[name]) for name in dut.names}
            await ctx.tick()
            return out

        held = None
        for layer in layers:
            if not back_to_back:
                # copy low: nothing is copied, nothing changes.
                for _ in range(rng.randrange(1, 4)):
                    copied, current = await cycle(0, rng.randrange(15))
                    assert not copied
                    if held is not None:
                        assert current == held
            for k in range(cycles + 1):
                copied, current = await cycle(1, layer)
                assert copied == (k == cycles), (layer, k)
            copied_layers.append(layer)
            await ctx.delay(0)
            held = {name: ctx.get(dut.current[name]) for name in dut.names}
            assert held == {name: memory[register_index(name, layer)] for name in dut.names}, layer

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert copied_layers == layers
