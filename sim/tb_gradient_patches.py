"""cocotb testbench of hw/core/gradient_patches.py against its per-cycle model
(sw_model/units/gradient_patches.py), with random stalls and rare restarts; every whole walk (all
input tiles x positions) is also turned into the patches of a random input map and checked
against the golden model's im2col (sw_model/golden_conv.py): every element of every patch read
exactly once, at its place."""

import random

import cocotb
import numpy as np
from cocotb.clock import Clock

from sim import params as tb_params
from sim.stream_bench import Checker, Monitor, reset, run_checked
from sim.tb_patch_walker import golden_patches
from sw_model.units.gradient_patches import SHAPE_INPUTS, GradientPatchesModel, tile_place

OUTPUTS = ["column", "lanes", "columns", "pooled", "window", "last_position"]
MUTATIONS = {
    "pad": dict(pad_change=1),
    "real": dict(real_change=1),
    "window": dict(window_order=((0, 0), (1, 0), (0, 1), (1, 1))),
}


def input_tiles(p):
    """``C*K*ceil(K/Q)``."""
    return p["channels"] * p["kernel"] * -(-p["kernel"] // p["lanes"])


def plane_size(p):
    """``C*H*W``: the input map's columns."""
    return p["channels"] * p["height"] * p["width"]


def walk_patches(x, walk, p):
    """The patches a whole walk reads from map ``x``: ``walk[m][pos]`` is the ``(column,
    lanes)`` of input tile ``m`` at position ``pos``. Lane ``q`` of tile ``(c, kh, kb)`` is
    element ``j = (c*K + kh)*K + kb*Q + q`` if ``kb*Q + q < K`` (otherwise it must be clear);
    each element must be written exactly once."""
    k, lanes, bits = p["kernel"], p["lanes"], p["column_bits"]
    positions = len(walk[0])
    got = np.zeros((positions, k * k * p["channels"]))
    written = np.zeros(got.shape, dtype=int)
    for tile, beats in enumerate(walk):
        channel, kh, kb = tile_place(tile, k, lanes)
        for position, (column, mask) in enumerate(beats):
            for q in range(lanes):
                kw = kb * lanes + q
                if kw >= k:
                    assert not mask >> q & 1, f"tile {tile} position {position}: lane {q} " \
                        f"(kw {kw}) is set, K = {k}"
                    continue
                j = (channel * k + kh) * k + kw
                if mask >> q & 1:
                    at = (column + q) % (1 << bits)
                    assert at < len(x), f"tile {tile} position {position} lane {q}: " \
                        f"column {at} outside the map of {len(x)}"
                    got[position, j] = x[at]
                written[position, j] += 1
    once = written != 1
    assert not once.any(), f"patch {np.argwhere(once)[0]} written " \
        f"{written[tuple(np.argwhere(once)[0])]} times"
    return got


@cocotb.test()
async def gradient_patches_match_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start(start_high=False))
    shape = {"in_h": p["height"], "in_w": p["width"], "plane": p["height"] * p["width"],
             "kernel": p["kernel"], "same": int(p["same"]), "pool": int(p["pool"])}
    for name in SHAPE_INPUTS:
        getattr(dut, name).value = shape[name]
    for name in ("start", "next_position", "last_tile"):
        getattr(dut, name).value = 0
    await reset(dut)
    model = GradientPatchesModel(p["lanes"], p["column_bits"],
                                 **MUTATIONS.get(p.get("mutate"), {}))
    tiles, positions = input_tiles(p), len(golden_patches(np.zeros(plane_size(p)), p))
    # The bench's own count of the input tile (the loop nest's, for last_tile) and of the
    # position, the tile's beats under way (its positions' (column, lanes)), the walk under
    # way and those finished.
    state = {"tile": 0, "position": 0, "beats": [], "walk": None, "cycle": 0}
    finished = []

    def inputs():
        first = state["cycle"] == 0
        state["cycle"] += 1
        start = int(first or rng.random() < p["restart_rate"])
        # next_position comes on the position's last sample's beat, one cycle in several.
        step = int(rng.random() >= p["stall"])
        # last_tile is read only at the tile's last position: elsewhere it is noise.
        last_tile = int(state["tile"] == tiles - 1) if state["position"] == positions - 1 \
            else rng.randrange(2)
        return {**shape, "start": start, "next_position": step, "last_tile": last_tile}

    def after_edge(applied, got):
        if applied["start"]:
            state.update(tile=0, position=0, beats=[], walk=[])
        elif applied["next_position"]:
            state["beats"].append((got["column"], got["lanes"]))
            state["position"] = (state["position"] + 1) % positions
            if got["last_position"]:
                state["walk"].append(state["beats"])
                state["beats"] = []
                state["tile"] = (state["tile"] + 1) % tiles
                if state["tile"] == 0:
                    finished.append(state["walk"])
                    state["walk"] = []

    monitor = Monitor(dut, OUTPUTS)
    checker = Checker()
    await run_checked(dut, p, inputs, model, monitor, checker, after_edge)
    if p.get("mutate"):
        return
    plane = plane_size(p)
    for walk in finished:
        x = np.array([rng.randrange(1, 1 << 16) for _ in range(plane)], dtype=np.float64)
        want = golden_patches(x, p)
        got = walk_patches(x, walk, p)
        assert got.shape == want.shape, f"walk of {got.shape} patches, im2col {want.shape}"
        wrong = np.argwhere(got != want)
        assert not len(wrong), f"patch {wrong[0][0]} element {wrong[0][1]}: " \
            f"{got[tuple(wrong[0])]} against im2col's {want[tuple(wrong[0])]}"
    assert len(finished) >= p["min_walks"], f"only {len(finished)} whole walks"
    dut._log.info(f"{checker.cycles} cycles and {len(finished)} whole walks match")
