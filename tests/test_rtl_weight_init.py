"""hw/core/weight_init.py against its per-cycle model, on Verilator and Icarus."""

import pytest

from hw.core.weight_init import WeightInit
from tests.rtl_sweep import cycles, run_case, sweep

CASES = {
    "p1-w8": dict(lanes=1, weight_bits=8, width=31, count_bits=6, max_neurons=12,
                  max_fan_in=9),
    "p4-w16": dict(lanes=4, weight_bits=16, width=31, count_bits=7, max_neurons=30,
                   max_fan_in=20),
    "p2-w16-l20": dict(lanes=2, weight_bits=16, width=20, count_bits=5, max_neurons=29,
                       max_fan_in=7),
    "p8-w12": dict(lanes=8, weight_bits=12, width=64, count_bits=8, max_neurons=70,
                   max_fan_in=40),
    # The pipelined cores' unit: the shift and offset registered from init_bits.
    "p4-w16-reg": dict(lanes=4, weight_bits=16, width=31, count_bits=7, max_neurons=30,
                       max_fan_in=20, registered_bits=True),
}


def run(tmp_path_factory, name, sim, cycles, **extra):
    p = dict(CASES[name], cycles=cycles, idle=0.2, stall=0.3, restart=0.004, seed=11)
    p.update(extra)
    unit = WeightInit(p["lanes"], p["weight_bits"], p["width"], p["count_bits"],
                      registered_bits=p.get("registered_bits", False))
    run_case(tmp_path_factory, unit, "weight_init", p, sim, name)


FAST = ["p4-w16", "p2-w16-l20", "p4-w16-reg"]


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST))
def test_weight_init(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim, cycles=cycles())


def test_perturbed_bias_word_is_caught(tmp_path_factory):
    """The model's bias words are ones, not zeros: the checker must notice."""
    run(tmp_path_factory, "p4-w16", "verilator", cycles=2_000, mutate="bias")


@pytest.mark.parametrize("name", ["p4-w16", "p4-w16-reg"])
def test_init_bits_timing_is_checked(tmp_path_factory, name):
    """Each unit checked against the model of the other timing of ``init_bits``, with layers
    restarting often: the checker must notice."""
    run(tmp_path_factory, name, "verilator", cycles=3_000, mutate="timing", restart=0.05)
