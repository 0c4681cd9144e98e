"""hw/banked_ram.py against its per-cycle model (sw_model/units/banked_ram.py), every cycle,
with random writes and reads over every bank (a last bank shorter than the others, a RAM of
one bank, words of a byte and wider); and the board build's Yosys step that keeps its
copies."""

import random

import pytest
from amaranth.sim import Simulator

from hw.banked_ram import BankedRam
from sw_model.units.banked_ram import BankedRam as BankedRamModel


def run(depth, bank_words, width=8, cycles=1500, seed=3, mutate=None):
    dut = BankedRam(depth, width, bank_words)
    model = BankedRamModel(depth)
    if mutate == "latency":
        model.on_the_way.append(None)
    rng = random.Random(seed)
    checked = []

    async def bench(ctx):
        recent = []
        for cycle in range(cycles):
            # Writes mostly early; later mostly reads of what was written, some of the
            # address written this very cycle or the last (the edge of what a read sees).
            write = rng.random() < (0.8 if cycle < cycles // 3 else 0.2)
            addr = rng.randrange(depth)
            if recent and rng.random() < 0.7:
                read = rng.choice(recent[-3:] if rng.random() < 0.3 else recent)
            else:
                read = rng.randrange(depth)
            inputs = {"write__en": int(write), "write__addr": addr,
                      "write__data": rng.randrange(1 << width), "read_addr": read}
            ctx.set(dut.write.en, inputs["write__en"])
            ctx.set(dut.write.addr, addr)
            ctx.set(dut.write.data, inputs["write__data"])
            ctx.set(dut.read_addr, read)
            if write:
                recent.append(addr)
            want = model.outputs(inputs)["read_data"]
            got = ctx.get(dut.read_data)
            if want is not None:
                assert got == want, f"cycle {cycle}: read_data {got}, the model {want}"
                checked.append(cycle)
            model.step(inputs)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return len(checked)


@pytest.mark.parametrize("depth,bank_words,width", [(100, 32, 8), (64, 64, 8), (5, 8, 8),
                                                    (130, 16, 8), (100, 32, 64)])
def test_ram_matches_its_model_every_cycle(depth, bank_words, width):
    checked = run(depth, bank_words, width)
    assert checked > 600, f"only {checked} cycles had a defined byte to compare"


def test_a_model_a_cycle_late_is_caught():
    with pytest.raises(AssertionError, match="read_data"):
        run(100, 32, cycles=300, mutate="latency")


def test_banks_and_their_copies():
    store = BankedRam(99_840)                # the ULX3S's digits store
    assert store.banks == 7                  # 6 of 16 384 bytes and one of 1 536
    store._MustUse__silence = True
    with pytest.raises(ValueError, match="a power of two"):
        BankedRam(100, bank_words=24)
    with pytest.raises(ValueError, match="positive"):
        BankedRam(0, bank_words=16)
