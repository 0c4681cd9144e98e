"""cocotb testbench of hw/host_link/sample_shuffler.py against its per-cycle model
(sw_model/units/sample_shuffler.py); every finished epoch's order is also checked against the
vectorised rule of the golden model (sw_model/resident.py)."""

import random

import cocotb
from cocotb.clock import Clock

from sim import params as tb_params
from sim.stream_bench import Checker, Monitor, StreamSink, reset, run_checked
from sw_model.resident import epoch_order
from sw_model.units.sample_shuffler import SampleShufflerModel


@cocotb.test()
async def sample_shuffler_matches_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start(start_high=False))
    dut.start.value = 0
    dut.count.value = 0
    dut.seed.value = 0
    dut.o__ready.value = 0
    await reset(dut)
    model = SampleShufflerModel(p["capacity"], p["lfsr_width"],
                                draw_bits=15 if p.get("mutate") == "draw_bits" else 16)
    sink = StreamSink("o", stall=p["stall"], rng=rng)
    # The epoch under way: its count and seed, and the samples offered so far.
    epoch = {"count": 0, "seed": 0, "seen": []}
    finished = []

    def inputs():
        idle = model.state == "IDLE"
        start = int(rng.random() < (0.2 if idle else p["abandon_rate"]))
        cap = p["capacity"]
        count = rng.choice([1, min(2, cap), cap, rng.randint(1, cap)])
        seed = rng.choice([0, 1, rng.randrange(1 << p["lfsr_width"])])
        return {"start": start, "count": count if start else 0, "seed": seed if start else 0,
                **sink.inputs()}

    def after_edge(applied, got):
        if got["o__valid"] and applied["o__ready"]:
            epoch["seen"].append(got["o__payload"])
            if len(epoch["seen"]) == epoch["count"]:
                finished.append(dict(epoch))
        if applied["start"]:
            epoch.update(count=applied["count"], seed=applied["seed"], seen=[])

    monitor = Monitor(dut, ["o__valid", "o__payload"])
    checker = Checker()
    await run_checked(dut, p, inputs, model, monitor, checker, after_edge)
    if p.get("mutate"):
        return
    for e in finished:
        want = epoch_order(e["count"], e["seed"], p["lfsr_width"]).tolist()
        assert e["seen"] == want, f"epoch of {e['count']} from seed {e['seed']:#x}: " \
            f"{e['seen'][:8]}... against the rule's {want[:8]}..."
    assert len(finished) >= p["min_epochs"], f"only {len(finished)} epochs finished"
    dut._log.info(f"{checker.cycles} cycles and {len(finished)} whole epochs match")
