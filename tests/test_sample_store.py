"""hw/host_link/sample_store.py against its per-cycle model (sw_model/units/sample_store.py),
every cycle, with random writes and reads over every bank (a last bank shorter than the
others, and a store of one bank); and the board build's Yosys step that keeps its copies."""

import random

import pytest
from amaranth.sim import Simulator

from hw.host_link.sample_store import SampleStore
from sw_model.units.sample_store import SampleStore as SampleStoreModel


def run(depth, bank_words, cycles=1500, seed=3, mutate=None):
    dut = SampleStore(depth, bank_words)
    model = SampleStoreModel(depth)
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
                      "write__data": rng.randrange(256), "read_addr": read}
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


@pytest.mark.parametrize("depth,bank_words", [(100, 32), (64, 64), (5, 8), (130, 16)])
def test_store_matches_its_model_every_cycle(depth, bank_words):
    checked = run(depth, bank_words)
    assert checked > 600, f"only {checked} cycles had a defined byte to compare"


def test_a_model_a_cycle_late_is_caught():
    with pytest.raises(AssertionError, match="read_data"):
        run(100, 32, cycles=300, mutate="latency")


def test_banks_and_their_copies():
    store = SampleStore(99_840)              # the ULX3S's digits store
    assert store.banks == 7                  # 6 of 16 384 bytes and one of 1 536
    store._MustUse__silence = True
    with pytest.raises(ValueError, match="a power of two"):
        SampleStore(100, 24)
    with pytest.raises(ValueError, match="positive"):
        SampleStore(0, 16)
