"""hw/weight_updater.py against its per-cycle model, on Verilator and Icarus."""

import random

import pytest

from hw.weight_updater import WeightUpdater
from tests.rtl_sweep import cycles, run_case, sweep

CASES = {
    "d2-w4-g6-rne": dict(depth=2, weight_bits=4, grad_bits=6, weight_shift=1, bias_shift=0,
                         round_bits=1, rounding="nearest-even"),
    "d16-w8-g16-sr4": dict(depth=16, weight_bits=8, grad_bits=16, weight_shift=3, bias_shift=6,
                           round_bits=4, rounding="stochastic"),
    "d64-w16-g32-sr16": dict(depth=64, weight_bits=16, grad_bits=32, weight_shift=15,
                             bias_shift=7, round_bits=16, rounding="stochastic"),
    "d1024-w16-g40-rne": dict(depth=1024, weight_bits=16, grad_bits=40, weight_shift=20,
                              bias_shift=9, round_bits=16, rounding="nearest-even"),
}


def run(tmp_path_factory, name, sim, cycles, **extra):
    p = dict(CASES[name], cycles=cycles, idle=0.3, seed=9)
    p.update(extra)
    wmax = (1 << (p["weight_bits"] - 1)) - 1
    rng = random.Random(p["seed"])
    p["init"] = [rng.choice([-wmax - 1, wmax]) if rng.random() < 0.1 else
                 rng.randint(-wmax - 1, wmax) for _ in range(p["depth"])]
    unit = WeightUpdater(p["depth"], p["weight_bits"], p["grad_bits"], p["weight_shift"],
                         p["bias_shift"], p["round_bits"], p["rounding"], p["init"])
    run_case(tmp_path_factory, unit, "weight_updater", p, sim, name)


FAST = ["d16-w8-g16-sr4", "d64-w16-g32-sr16"]


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST))
def test_weight_updater(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim, cycles=cycles())


def test_perturbed_rounding_is_caught(tmp_path_factory):
    run(tmp_path_factory, "d64-w16-g32-sr16", "verilator", cycles=2_000, mutate="rounding")
