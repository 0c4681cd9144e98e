"""hw/core/conv_deltas.py against its per-cycle model and the golden unpooling, on Verilator and
Icarus: forward (winners), BACK (columns) and GRAD-like read phases over random geometries."""

import gc

import pytest

from hw.core.conv_deltas import ConvDeltas, delta_words, winner_words
from sim.tb_conv_deltas import build
from tests.rtl_sweep import cycles, run_case, sweep


def shape(rows, cols, positions, pool, max_filters, max_outputs=256, max_batch=8, **extra):
    """``positions``: the S drawn from; ``pool``: the pooling settings drawn from;
    ``max_filters``: the largest F drawn (below ``max_outputs // S``)."""
    return dict(rows=rows, cols=cols, positions=positions, pool=pool, max_filters=max_filters,
                max_outputs=max_outputs, max_batch=max_batch, **extra)


CASES = {
    # S below and above P, neither a multiple of it; F not a multiple of P; pooling and not.
    "p4q4-s3-s5": shape(4, 4, [3, 5], [True, False], 11, max_outputs=128),
    "p8q8-mixed": shape(8, 8, [1, 3, 5, 16], [True, False], 19, max_batch=16),
    "p4q4-s49-pool": shape(4, 4, [49], [True], 5),
    "p4q4-s1": shape(4, 4, [1], [True, False], 23, max_outputs=64),
    "p4q4-s2": shape(4, 4, [2], [True, False], 13, max_outputs=64),
    "p4q4-s3-nopool": shape(4, 4, [3], [False], 10, max_outputs=64),
    "p2q4-mixed": shape(2, 4, [1, 2, 3, 5, 9], [True, False], 9, max_outputs=64, max_batch=7),
    "p4q4-scramble": shape(4, 4, [2, 5, 8], [True, False], 9, max_outputs=128,
                           scramble=True),
    "p1q1": shape(1, 1, [1, 3, 4], [True, False], 5, max_outputs=16, max_batch=3),
    "p4q2-batch1": shape(4, 2, [1, 6], [True, False], 7, max_outputs=64, max_batch=1),
}

# make test: two shapes (P = Q = 4 with S = 3 and 5, P = Q = 8 with S from 1 to 16, on
# Verilator); the others under make regress.
FAST = ["p4q4-s3-s5", "p8q8-mixed"]


def round_cycles(p, idle):
    """A round's cycles at its largest: winners, columns and reads, with idle cycles."""
    s = max(p["positions"])
    f = min(p["max_filters"], p["max_outputs"] // s)
    groups = -(-p["max_batch"] // p["cols"])
    beats = 1.125 * f * s * groups + -(-f * s // p["rows"]) * p["max_batch"] + p["reads"]
    return int(beats / (1 - idle)) + 2


def run(tmp_path_factory, name, sim, min_rounds=2, idle=0.2, **extra):
    p = {**CASES[name], "idle": idle, "seed": 11, "width": 12, "delta_bits": 10,
         "reads": 120, "new_geometry": 0.5, "min_rounds": min_rounds, **extra}
    p.setdefault("cycles", max(cycles(), (min_rounds + 1) * round_cycles(p, idle)))
    run_case(tmp_path_factory, build(p), "conv_deltas", p, sim, name)


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST))
def test_conv_deltas(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim)


@pytest.mark.parametrize("mutation,pool", [("winner", [True]), ("wrap", [False])])
def test_perturbed_model_is_caught(tmp_path_factory, mutation, pool):
    # The model's winner test off by one, or its lanes wrapping the position at S without
    # moving to the next filter (S = 3, P = 2: a column often spans two filters).
    run(tmp_path_factory, "p2q4-mixed", "verilator", min_rounds=0, cycles=2_000,
        mutate=mutation, pool=pool, positions=[3])


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_memory_bounds():
    # The words per sample (delta banks) and per group (winner banks) are max_outputs-ish,
    # at their worst when F or S is 1.
    for rows in (1, 2, 4, 8):
        for max_outputs in (1, 7, 64, 256, 6272):
            d, w = delta_words(rows, max_outputs), winner_words(rows, max_outputs)
            assert d <= max_outputs / rows ** 2 + (max_outputs + 1) / rows + 1
            assert w <= max_outputs / rows + max_outputs
            assert d >= -(-max_outputs // rows ** 2) and w >= -(-max_outputs // rows)
    unit = ConvDeltas(4, 4, 10, 8, 256, 12)
    assert (unit.sample_bits, unit.group_bits, unit.tile_bits) == (3, 1, 6)
    with pytest.raises(ValueError):
        ConvDeltas(3, 4, 10, 8, 256, 12)
    del unit
    gc.collect()                    # the unelaborated units' warnings, under the filter
