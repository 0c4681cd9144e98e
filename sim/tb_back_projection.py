"""cocotb testbench of hw/core/back_projection.py against sw_model/units/back_projection.py:
random idle cycles between columns, tiles of random length, clears; every output compared
every cycle."""

import random

import cocotb
from cocotb.clock import Clock

from amaranth.hdl import signed

from hw.core.back_projection import BackProjection
from sim import params as tb_params
from sim.packing import join_rounded, pack, pack_rounded, unpack
from sim.stream_bench import Checker, Monitor, PackedModel, StreamDriver, reset, run_checked
from sw_model.units.back_projection import BackProjectionModel

OUTPUTS = ["i__ready", "busy", "delta__en", "delta__sample", "delta__tile", "delta__data",
           "bias_grad__en", "bias_grad__tile", "bias_grad__data"]


@cocotb.test()
async def back_projection_matches_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    lanes, columns = p["lanes"], p["columns"]
    parts = p.get("rounding_parts", False)
    unit = BackProjection(lanes, columns, signed(p["sum_bits"]), p["delta_bits"],
                          p["grad_bias_bits"], p["tile_bits"], rounding_parts=parts)
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start(start_high=False))
    for name in ("i__valid", "i__payload", "active", "rounded", "clear") + ("round_up",) * parts:
        getattr(dut, name).value = 0
    await reset(dut)
    smax, dmax = (1 << (p["sum_bits"] - 1)) - 1, (1 << (p["delta_bits"] - 1)) - 1
    place = {"sample": 0, "tile": 0}

    def column():
        """The next sample of the tile; a tile ends after a random number of samples."""
        last = rng.random() < 0.15
        beat = {"sample": place["sample"], "tile": place["tile"], "last": int(last)}
        place["sample"] = 0 if last else (place["sample"] + 1) % 256
        if last:
            place["tile"] = (place["tile"] + 1) % (1 << p["tile_bits"])
        return pack(beat, unit.in_layout)

    def rounded():
        def one():
            r = rng.random()
            if r < 0.2:
                return rng.choice([-smax - 1, smax])
            if r < 0.3:                                     # at the deltas' bounds
                v = rng.choice([dmax, -dmax - 1]) + rng.randint(-2, 2)
                return max(-smax - 1, min(smax, v))
            if r < 0.6:
                return rng.randint(-2 * dmax, 2 * dmax) if 2 * dmax <= smax else \
                    rng.randint(-smax - 1, smax)
            return rng.randint(-smax - 1, smax)
        return pack_rounded([one() for _ in range(lanes)], unit.rounded.shape(), parts, rng,
                            -smax - 1)

    driver = StreamDriver("i", column, idle=p["idle"], rng=rng)
    model = BackProjectionModel(lanes, columns, p["delta_bits"], p["grad_bias_bits"],
                                saturate_bits=p["delta_bits"] - 1 if p.get("mutate") else None)
    layouts = {"delta__data": unit.delta_layout, "bias_grad__data": unit.bias_layout}
    packed = PackedModel(model, {"i__payload": unit.in_layout}, layouts)

    def inputs():
        return {**driver.inputs(), "clear": int(rng.random() < 0.01),
                "active": pack([rng.randrange(1 << columns) for _ in range(lanes)],
                               unit.active.shape()),
                **rounded()}

    class UnpackingModel:
        """The model sees ``active`` and ``rounded`` unpacked."""

        def _values(self, values):
            rounded = unpack(values["rounded"], unit.rounded.shape())
            if parts:
                rounded = join_rounded(rounded, values["round_up"])
            return {**values, "active": unpack(values["active"], unit.active.shape()),
                    "rounded": rounded}

        def outputs(self, values):
            return packed.outputs(self._values(values))

        def step(self, values):
            packed.step(self._values(values))

    def after_edge(applied, got):
        driver.after_edge(applied["i__valid"] and got["i__ready"])

    await run_checked(dut, p, inputs, UnpackingModel(), Monitor(dut, OUTPUTS), Checker(),
                      after_edge)
    if not p.get("mutate"):            # a perturbed run stops at its first mismatch
        dut._log.info(f"coverage: {model.coverage}")
        assert all(model.coverage.values()), model.coverage
