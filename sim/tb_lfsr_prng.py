"""cocotb testbench of hw/lfsr_prng.py against sw_model/units/lfsr_prng.py."""

import random

import cocotb
from cocotb.clock import Clock

from contract.lfsr_taps import TAPS
from sim import params as tb_params
from sim.stream_bench import Checker, Monitor, StreamSink, reset, run_checked
from sw_model.units.lfsr_prng import LfsrPrngModel


@cocotb.test()
async def lfsr_prng_matches_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start(start_high=False))
    dut.load.value = 0
    dut.seed.value = 0
    dut.o__ready.value = 0
    await reset(dut)
    taps = None
    if p.get("mutate") == "tap":                      # move the smallest lag by one
        taps = tuple(t - 1 if t == min(TAPS[p["width"]]) else t for t in TAPS[p["width"]])
    model = LfsrPrngModel(p["width"], p["chunk_bits"], p["lanes"], taps)
    sink = StreamSink("o", stall=p["stall"], rng=rng)
    seeds = [rng.randrange(0, 1 << p["width"]) for _ in range(64)] + [0]

    def random_inputs():
        load = int(rng.random() < p["load_rate"])
        return {"load": load, "seed": rng.choice(seeds) if load else 0, **sink.inputs()}

    def free_running():
        return {"load": 0, "seed": 0, "o__ready": 1}

    inputs = free_running if p.get("full_period") else random_inputs

    monitor = Monitor(dut, ["o__valid", "o__payload"])
    checker = Checker()
    await run_checked(dut, p, inputs, model, monitor, checker)
    dut._log.info(f"{checker.cycles} cycles match")

