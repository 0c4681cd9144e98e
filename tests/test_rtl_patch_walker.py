"""hw/core/patch_walker.py against its per-cycle model and the golden im2col, on Verilator and
Icarus, with random stalls and restarts."""

import numpy as np
import pytest

from hw.core.patch_walker import PatchWalker
from sim.tb_patch_walker import golden_patches
from sw_model.units.patch_walker import PatchWalkerModel
from tests.rtl_sweep import cycles, run_case, sweep

DIM_BITS, KERNEL_BITS = 8, 4


def shape(channels, height, width, kernel, same, pool):
    return dict(channels=channels, height=height, width=width, kernel=kernel, same=same,
                pool=pool)


CASES = {
    "1x5x7-k3-same": shape(1, 5, 7, 3, True, False),
    "2x6x8-k3-valid-pool": shape(2, 6, 8, 3, False, True),
    "1x4x4-k1": shape(1, 4, 4, 1, False, False),
    "3x8x8-k5-same-pool": shape(3, 8, 8, 5, True, True),
    "2x9x7-k3-valid": shape(2, 9, 7, 3, False, False),
    "3x6x4-k1-same-pool": shape(3, 6, 4, 1, True, True),
    "2x7x5-k5-same": shape(2, 7, 5, 5, True, False),
    "1x10x6-k5-valid-pool": shape(1, 10, 6, 5, False, True),
    "2x3x5-k7-same": shape(2, 3, 5, 7, True, False),      # kernel rows above and below the map
    # An odd pad with pooling: window (1,1) -> next (0,0) steps up from the row r - pad = 0.
    "1x6x10-k3-same-pool": shape(1, 6, 10, 3, True, True),
    "2x4x6-k7-same-pool": shape(2, 4, 6, 7, True, True),
}
# Verilator only: one whole walk is 20,384 beats.
LARGE = {"1x28x28-k5-same-pool": shape(1, 28, 28, 5, True, True)}


def walk_beats(p):
    k = p["kernel"]
    positions = p["height"] * p["width"] if p["same"] else \
        (p["height"] - k + 1) * (p["width"] - k + 1)
    return positions * (k * k * p["channels"] + 1)


def run(tmp_path_factory, name, sim, min_walks=2, stall=0.25, **extra):
    p = {**CASES, **LARGE}[name]
    p = {**p, "stall": stall, "seed": 7, "min_walks": min_walks, **extra}
    # Enough cycles for the walks asked for, restarts rare enough that most walks finish; the
    # column is as narrow as the map (and H*W) allows, so running addresses wrap below 0.
    beats = walk_beats(p) / (1 - stall)
    p.setdefault("cycles", max(cycles(), int(1.5 * (min_walks + 1) * beats)))
    p.setdefault("restart_rate", 0.3 / beats)
    p["column_bits"] = (p["channels"] * p["height"] * p["width"]).bit_length()  # and H*W
    unit = PatchWalker(DIM_BITS, KERNEL_BITS, p["column_bits"])
    run_case(tmp_path_factory, unit, "patch_walker", p, sim, name)


# make test: two shapes (valid and same padding, pooled, on Verilator); the
# others, and the MNIST-sized walk, under make regress (tests/test_conv_core.py and
# bench/conv_core.py run whole networks through the core).
FAST = ["2x6x8-k3-valid-pool", "1x6x10-k3-same-pool"]


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST))
def test_patch_walker(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim)


@pytest.mark.parametrize("mutation,name", [("pad", "1x5x7-k3-same"),
                                           ("window", "2x6x8-k3-valid-pool")])
def test_perturbed_model_is_caught(tmp_path_factory, mutation, name):
    run(tmp_path_factory, name, "verilator", cycles=2_000, mutate=mutation)


@pytest.mark.slow
def test_a_whole_mnist_sized_walk(tmp_path_factory):
    # 1x28x28, K = 5, "same", pooled (the first layer of 1x28x28-c32k5-p2-...): one whole walk
    # of 784 sums of 26 beats, few stalls, no restart.
    run(tmp_path_factory, "1x28x28-k5-same-pool", "verilator", min_walks=1, stall=0.05,
        restart_rate=0.0, cycles=23_000)


@pytest.mark.parametrize("name", [*CASES, *LARGE])
def test_model_walk_is_im2col(name):
    # The model alone, no stalls: a whole walk read from a random map is the golden im2col.
    p = {**CASES, **LARGE}[name]
    c, h, w, k = p["channels"], p["height"], p["width"], p["kernel"]
    inputs = {"in_h": h, "in_w": w, "plane": h * w, "kernel": k, "same": int(p["same"]),
              "pool": int(p["pool"]), "start": 1, "step": 0, "end_of_sum": 0}
    model = PatchWalkerModel(16)
    model.step(inputs)
    x = np.random.default_rng(3).integers(1, 1 << 16, c * h * w).astype(np.float64)
    want = golden_patches(x, p)
    got = np.zeros_like(want)
    for position in range(len(want)):
        for element in range(k * k * c):
            out = model.outputs(inputs)
            got[position, element] = x[out["column"]] if out["in_map"] else 0.0
            model.step({**inputs, "start": 0, "step": 1})
        assert model.outputs(inputs)["last_position"] == int(position == len(want) - 1)
        model.step({**inputs, "start": 0, "step": 1, "end_of_sum": 1})
    assert (got == want).all()
    assert model.position == 0                    # wrapped to the first position
