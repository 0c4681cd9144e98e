"""cocotb testbench of hw/core/patch_walker.py against its per-cycle model
(sw_model/units/patch_walker.py), with random stalls and restarts; every whole walk is also
turned into the patches of a random input map and checked against the golden model's im2col
(sw_model/golden_conv.py)."""

import random

import cocotb
import numpy as np
from cocotb.clock import Clock

from sim import params as tb_params
from sim.stream_bench import Checker, Monitor, reset, run_checked
from sw_model.golden_conv import im2col
from sw_model.units.patch_walker import SHAPE_INPUTS, PatchWalkerModel

OUTPUTS = ["column", "in_map", "pooled", "window", "last_position"]
MUTATIONS = {
    "pad": dict(pad_change=1),
    "window": dict(window_order=((0, 0), (1, 0), (0, 1), (1, 1))),
}


def golden_patches(x, p):
    """im2col of one map ``x``, its rows in the walk's order (window-major with pooling)."""
    shape = (p["channels"], p["height"], p["width"])
    rows = im2col(x[None], shape, p["kernel"], "same" if p["same"] else "valid")
    if not p["pool"]:
        return rows
    k = p["kernel"]
    out_h, out_w = (p["height"], p["width"]) if p["same"] else \
        (p["height"] - k + 1, p["width"] - k + 1)
    rows = rows.reshape(out_h // 2, 2, out_w // 2, 2, -1).transpose(0, 2, 1, 3, 4)
    return rows.reshape(out_h * out_w, -1)


@cocotb.test()
async def patch_walker_matches_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start(start_high=False))
    shape = {"in_h": p["height"], "in_w": p["width"], "plane": p["height"] * p["width"],
             "kernel": p["kernel"], "same": int(p["same"]), "pool": int(p["pool"])}
    for name in SHAPE_INPUTS:
        getattr(dut, name).value = shape[name]
    for name in ("start", "step", "end_of_sum"):
        getattr(dut, name).value = 0
    await reset(dut)
    model = PatchWalkerModel(p["column_bits"], **MUTATIONS.get(p.get("mutate"), {}))
    patch_size = p["kernel"] ** 2 * p["channels"]           # J; element J is the bias beat
    # The bench's own count of the sum's beats, the walk under way (its sums' (column, in_map)
    # of the non-bias beats) and the walks finished.
    state = {"element": 0, "sum": [], "walk": None, "cycle": 0}
    finished = []

    def inputs():
        first = state["cycle"] == 0
        state["cycle"] += 1
        start = int(first or rng.random() < p["restart_rate"])
        step = int(rng.random() >= p["stall"])
        return {**shape, "start": start, "step": step,
                "end_of_sum": int(step and state["element"] == patch_size)}

    def after_edge(applied, got):
        if applied["start"]:
            state.update(element=0, sum=[], walk=[])
        elif applied["step"] and applied["end_of_sum"]:
            state["element"] = 0
            state["walk"].append(state["sum"])
            state["sum"] = []
            if got["last_position"]:
                finished.append(state["walk"])
                state["walk"] = []
        elif applied["step"]:
            state["element"] += 1
            state["sum"].append((got["column"], got["in_map"]))

    monitor = Monitor(dut, OUTPUTS)
    checker = Checker()
    await run_checked(dut, p, inputs, model, monitor, checker, after_edge)
    if p.get("mutate"):
        return
    plane = p["channels"] * p["height"] * p["width"]
    for walk in finished:
        x = np.array([rng.randrange(1, 1 << 16) for _ in range(plane)], dtype=np.float64)
        want = golden_patches(x, p)
        got = np.array([[x[column] if in_map else 0.0 for column, in_map in beats]
                        for beats in walk])
        assert got.shape == want.shape, f"walk of {got.shape} patches, im2col {want.shape}"
        wrong = np.argwhere(got != want)
        assert not len(wrong), f"patch {wrong[0][0]} element {wrong[0][1]}: " \
            f"{got[tuple(wrong[0])]} against im2col's {want[tuple(wrong[0])]}"
    assert len(finished) >= p["min_walks"], f"only {len(finished)} whole walks"
    dut._log.info(f"{checker.cycles} cycles and {len(finished)} whole walks match")
