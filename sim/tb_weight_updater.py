"""cocotb testbench of hw/weight_updater.py against sw_model/units/weight_updater.py."""

import random

import cocotb
from cocotb.clock import Clock

from hw.weight_updater import WeightUpdater
from sim import params as tb_params
from sim.packing import pack
from sim.stream_bench import (Checker, Monitor, PackedModel, StreamDriver, release_on_accept,
                              reset, run_checked)
from sw_model.units.weight_updater import WeightUpdaterModel


@cocotb.test()
async def weight_updater_matches_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    init = p["init"]                     # baked into the generated Verilog
    unit = WeightUpdater(p["depth"], p["weight_bits"], p["grad_bits"], p["weight_shift"],
                         p["bias_shift"], p["round_bits"], p["rounding"], init)
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start())
    dut.i__valid.value = 0
    dut.i__payload.value = 0
    await reset(dut)
    gmax = (1 << (p["grad_bits"] - 1)) - 1
    last_addr = [0]

    def grad(shift):
        r = rng.random()
        if r < 0.1:
            return rng.choice([-gmax - 1, gmax])                 # saturate at both ends
        if r < 0.3 and shift:                                    # exact ties
            v = (2 * rng.randint(-64, 64) + 1) << (shift - 1)
            return max(-gmax - 1, min(gmax, v))
        if r < 0.5:
            return rng.randint(-(4 << shift), 4 << shift)        # around one LSB
        return rng.randint(-gmax - 1, gmax)

    def source():
        addr = last_addr[0] if rng.random() < 0.3 else rng.randrange(p["depth"])
        last_addr[0] = addr
        bias = rng.randint(0, 1)
        shift = p["bias_shift"] if bias else p["weight_shift"]
        return pack({"addr": addr, "grad": grad(shift), "rand": rng.randrange(1 << p["round_bits"]),
                     "bias": bias}, unit.in_layout)

    driver = StreamDriver("i", source, idle=p["idle"], rng=rng)
    rounding = p["rounding"]
    if p.get("mutate") == "rounding":
        rounding = "stochastic" if rounding == "nearest-even" else "nearest-even"
    model = WeightUpdaterModel(init, p["weight_bits"], p["weight_shift"], p["bias_shift"],
                               p["round_bits"], rounding)
    packed = PackedModel(model, {"i__payload": unit.in_layout}, {})
    checker = Checker()

    class WriteMonitor(Monitor):
        """wr_addr and wr_data only mean something while wr_en is high."""

        def sample(self):
            got = super().sample()
            if not got["wr_en"]:
                got.pop("wr_addr"), got.pop("wr_data")
            return got

    monitor = WriteMonitor(dut, ["wr_en", "wr_addr", "wr_data", "i__ready"])

    after_edge = release_on_accept(driver)

    await run_checked(dut, p, driver.inputs, packed, monitor, checker, after_edge)
    if not p.get("mutate"):            # a perturbed run stops at its first mismatch
        dut._log.info(f"coverage: {model.coverage}")
        assert model.coverage["saturated_low"] and model.coverage["saturated_high"], \
            model.coverage
        assert model.coverage["ties"], model.coverage
