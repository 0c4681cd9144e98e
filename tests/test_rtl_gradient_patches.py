"""hw/core/gradient_patches.py against its per-cycle model and the golden im2col, on Verilator
and Icarus, with random stalls and restarts."""

import numpy as np
import pytest

from hw.core.gradient_patches import GradientPatches
from sim.tb_gradient_patches import input_tiles, walk_patches
from sim.tb_patch_walker import golden_patches
from sw_model.units.gradient_patches import GradientPatchesModel
from tests.rtl_sweep import cycles, run_case, sweep

DIM_BITS, KERNEL_BITS = 8, 4


def shape(channels, height, width, kernel, same, pool, lanes):
    return dict(channels=channels, height=height, width=width, kernel=kernel, same=same,
                pool=pool, lanes=lanes)


CASES = {
    "1x5x7-k3-same-q4": shape(1, 5, 7, 3, True, False, 4),           # K < Q
    "2x6x8-k3-valid-pool-q2": shape(2, 6, 8, 3, False, True, 2),     # K > Q, a partial block
    "1x4x4-k1-q1": shape(1, 4, 4, 1, False, False, 1),               # K = Q = 1
    "3x8x8-k5-same-pool-q4": shape(3, 8, 8, 5, True, True, 4),       # 5 on 4: 4 lanes, then 1
    "2x9x7-k3-valid-q8": shape(2, 9, 7, 3, False, False, 8),
    "3x6x4-k1-same-pool-q2": shape(3, 6, 4, 1, True, True, 2),
    "2x7x5-k5-same-q1": shape(2, 7, 5, 5, True, False, 1),
    "1x10x6-k5-valid-pool-q8": shape(1, 10, 6, 5, False, True, 8),
    "2x3x5-k7-same-q4": shape(2, 3, 5, 7, True, False, 4),   # kernel rows above and below the map
    # An odd pad with pooling: window (1,1) -> next (0,0) steps up from the row ih = 0.
    "1x6x10-k3-same-pool-q4": shape(1, 6, 10, 3, True, True, 4),
    "2x4x6-k7-same-pool-q8": shape(2, 4, 6, 7, True, True, 8),
    "2x9x9-k7-same-q2": shape(2, 9, 9, 7, True, False, 2),           # 4 blocks, the last 1 lane
    "1x6x7-k4-valid-q4": shape(1, 6, 7, 4, False, False, 4),         # K = Q
    "2x5x7-k2-valid-pool-q2": shape(2, 5, 7, 2, False, True, 2),     # K = Q, pooled
}
# Verilator only: one whole walk is 7,840 beats.
LARGE = {"1x28x28-k5-same-pool-q4": shape(1, 28, 28, 5, True, True, 4)}


def walk_beats(p):
    k = p["kernel"]
    positions = p["height"] * p["width"] if p["same"] else \
        (p["height"] - k + 1) * (p["width"] - k + 1)
    return positions * input_tiles(p)


def run(tmp_path_factory, name, sim, min_walks=2, stall=0.25, **extra):
    p = {**CASES, **LARGE}[name]
    p = {**p, "stall": stall, "seed": 7, "min_walks": min_walks, **extra}
    # Enough cycles for the walks asked for, restarts rare enough that most walks finish; the
    # column is as narrow as the map (and H*W) allows, so running addresses wrap below 0.
    beats = walk_beats(p) / (1 - stall)
    p.setdefault("cycles", max(cycles(), int(1.5 * (min_walks + 1) * beats)))
    p.setdefault("restart_rate", 0.3 / beats)
    p["column_bits"] = (p["channels"] * p["height"] * p["width"]).bit_length()  # and H*W
    unit = GradientPatches(p["lanes"], DIM_BITS, KERNEL_BITS, p["column_bits"])
    run_case(tmp_path_factory, unit, "gradient_patches", p, sim, name)


# make test: two shapes (valid and same padding, pooled, K > Q and K < Q, on Verilator); the
# others, and the MNIST-sized walk, under make regress.
FAST = ["2x6x8-k3-valid-pool-q2", "1x6x10-k3-same-pool-q4"]


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST))
def test_gradient_patches(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim)


# The padding under make test, the real lanes' count and the window order under make regress.
@pytest.mark.parametrize("mutation,name", [
    ("pad", "1x5x7-k3-same-q4"),
    pytest.param("real", "3x8x8-k5-same-pool-q4", marks=pytest.mark.slow),
    pytest.param("window", "2x6x8-k3-valid-pool-q2", marks=pytest.mark.slow)])
def test_perturbed_model_is_caught(tmp_path_factory, mutation, name):
    run(tmp_path_factory, name, "verilator", cycles=2_000, mutate=mutation)


@pytest.mark.slow
def test_a_whole_mnist_sized_walk(tmp_path_factory):
    # 1x28x28, K = 5, "same", pooled, Q = 4 (the first layer of 1x28x28-c32k5-p2-...): one
    # whole walk of 10 input tiles x 784 positions, few stalls, no restart.
    run(tmp_path_factory, "1x28x28-k5-same-pool-q4", "verilator", min_walks=1, stall=0.05,
        restart_rate=0.0, cycles=8_600)


@pytest.mark.parametrize("name", [*CASES, *LARGE])
def test_model_walk_is_im2col(name):
    # The model alone, no stalls: a whole walk read from a random map is the golden im2col,
    # every element once; then it wraps to tile 0.
    p = {**CASES, **LARGE}[name]
    c, h, w = p["channels"], p["height"], p["width"]
    bits = 16
    inputs = {"in_h": h, "in_w": w, "plane": h * w, "kernel": p["kernel"],
              "same": int(p["same"]), "pool": int(p["pool"]), "start": 1,
              "next_position": 0, "last_tile": 0}
    model = GradientPatchesModel(p["lanes"], bits)
    model.step(inputs)
    x = np.random.default_rng(3).integers(1, 1 << 16, c * h * w).astype(np.float64)
    want = golden_patches(x, p)
    tiles = input_tiles(p)
    walk = []
    for tile in range(tiles):
        beats = []
        for position in range(len(want)):
            out = model.outputs(inputs)
            beats.append((out.get("column", 0), out["lanes"]))
            assert out["last_position"] == int(position == len(want) - 1)
            model.step({**inputs, "start": 0, "next_position": 1,
                        "last_tile": int(tile == tiles - 1)})
        walk.append(beats)
    got = walk_patches(x, walk, {**p, "column_bits": bits})
    assert (got == want).all()
    assert model.position == 0 and model.tile == 0          # wrapped to the first tile
