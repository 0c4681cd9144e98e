"""hw/core/register_file.py: the memory a cycle after the address, and the global copies
(Amaranth simulator, random writes and reads every cycle against a dictionary)."""

import random

import pytest
from amaranth.sim import Simulator

from contract.limits import minimum_values
from contract.registers import GLOBAL
from hw.core.register_file import RegisterFile


@pytest.mark.parametrize("max_layers,scramble", [(1, False), (3, True), (4, False)])
def test_reads_a_cycle_late_and_copies_the_globals(max_layers, scramble):
    dut = RegisterFile(max_layers, scramble)
    rng = random.Random(max_layers)
    checked = {"reads": 0, "globals": 0, "collisions": 0}

    async def tb(ctx):
        # Every word starts at its register's least value (contract/limits.py).
        memory = dict(enumerate(minimum_values(dut.depth)))
        copies = {name: memory[index] for name, index in GLOBAL.items()}
        pending = None                              # (address, want) of last cycle's read
        for _ in range(3000):
            en = rng.random() < 0.5
            addr = rng.randrange(256) if rng.random() < 0.1 else rng.randrange(dut.depth)
            word = rng.getrandbits(32)
            read = rng.randrange(dut.depth)
            ctx.set(dut.write.en, en)
            ctx.set(dut.write.addr, addr)
            ctx.set(dut.write.data, word)
            ctx.set(dut.read_addr, read)
            await ctx.delay(0)
            if pending is not None and pending[1] is not None:
                assert ctx.get(dut.read_data) == pending[1], pending
                checked["reads"] += 1
            for name in GLOBAL:
                assert ctx.get(dut.globals[name]) == copies[name], name
            checked["globals"] += 1
            # The memory sees the address's low bits (the host interface refuses the rest).
            row = addr & ((1 << len(dut.read_addr)) - 1)
            collision = en and row == read
            checked["collisions"] += collision
            # A read that hits this cycle's write returns a word nothing may rely on.
            pending = (read, None if collision else memory.get(read))
            await ctx.tick()
            if en:
                if row < dut.depth:
                    memory[row] = word
                for name, index in GLOBAL.items():
                    if addr == index:
                        copies[name] = word

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert checked["reads"] > 1000 and checked["collisions"], checked
