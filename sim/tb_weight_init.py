"""cocotb testbench of hw/core/weight_init.py against sw_model/units/weight_init.py: layers of
random sizes started at random, random enable and backpressure, every output compared every
cycle."""

import random

import cocotb
from cocotb.clock import Clock

from hw.core.weight_init import WeightInit
from sim import params as tb_params
from sim.packing import pack
from sim.stream_bench import Checker, Monitor, PackedModel, reset, run_checked
from sw_model.units.weight_init import WeightInitModel


@cocotb.test()
async def weight_init_matches_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    lanes = p["lanes"]
    registered = p.get("registered_bits", False)
    unit = WeightInit(lanes, p["weight_bits"], p["width"], p["count_bits"],
                      registered_bits=registered)
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start(start_high=False))
    for name in ("start", "seed", "tiles", "fan_in", "neurons", "init_bits", "enable",
                 "o__ready"):
        getattr(dut, name).value = 0
    await reset(dut)
    limit = (1 << p["count_bits"]) - 2
    layer = {}

    def new_layer():
        neurons = rng.randint(1, min(limit, p["max_neurons"]))
        layer.update(seed=rng.randrange(1 << p["width"]), neurons=neurons,
                     tiles=-(-neurons // lanes), fan_in=rng.randint(1, p["max_fan_in"]),
                     init_bits=rng.randint(1, 16))

    new_layer()
    cycle = [0]

    def inputs():
        cycle[0] += 1
        start = int(cycle[0] == 1 or rng.random() < p["restart"])
        if start:
            new_layer()
        return {"start": start, **layer, "enable": int(rng.random() >= p["idle"]),
                "o__ready": int(rng.random() >= p["stall"])}

    bias_word = 1 if p.get("mutate") == "bias" else 0
    # "timing": registered bits checked as if they were not (or the reverse).
    model = WeightInitModel(lanes, p["weight_bits"], p["width"], bias_word=bias_word,
                            registered_bits=registered != (p.get("mutate") == "timing"))
    packed = PackedModel(model, {}, {"o__payload": unit.word_layout})
    await run_checked(dut, p, inputs, packed, Monitor(dut, ["o__valid", "o__payload", "done"]),
                      Checker())
    if not p.get("mutate"):            # a perturbed run stops at its first mismatch
        dut._log.info(f"coverage: {model.coverage}")
        # A one-lane tile has no rows past the layer's neurons.
        wanted = [k for k in model.coverage if lanes > 1 or k != "padded_rows"]
        assert all(model.coverage[k] for k in wanted), model.coverage
