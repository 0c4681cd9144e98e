"""hw/host_link/sample_shuffler.py against its per-cycle model and the golden order, on
Verilator and Icarus, with random backpressure and restarts."""

import pytest

from hw.host_link.sample_shuffler import SampleShuffler
from tests.rtl_sweep import cycles, run_case, sweep

CASES = {
    "cap1": dict(capacity=1, lfsr_width=31),
    "cap13": dict(capacity=13, lfsr_width=31),
    "cap64-w16": dict(capacity=64, lfsr_width=16),
    "cap1536": dict(capacity=1536, lfsr_width=31),
}


def run(tmp_path_factory, name, sim, cycles, min_epochs=1, **extra):
    p = {**CASES[name], "cycles": cycles, "stall": 0.3, "abandon_rate": 0.001, "seed": 11,
         "min_epochs": min_epochs, **extra}
    run_case(tmp_path_factory, SampleShuffler(p["capacity"], p["lfsr_width"]),
             "sample_shuffler", p, sim, name)


FAST = ["cap13", "cap64-w16"]


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST))
def test_sample_shuffler(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim, cycles=cycles(), min_epochs=0 if name == "cap1536" else 3)


@pytest.mark.parametrize("mutation", ["draw_bits"])
def test_perturbed_model_is_caught(tmp_path_factory, mutation):
    run(tmp_path_factory, "cap64-w16", "verilator", cycles=2_000, mutate=mutation)


def test_a_whole_large_epoch(tmp_path_factory):
    # 1 536 samples (the ULX3S's store): the identity, then every visit, no stalls to speak of.
    run(tmp_path_factory, "cap1536", "verilator", cycles=12_000, min_epochs=1, stall=0.05,
        abandon_rate=0.0)
