"""hw/core/classifier_weights.py against its per-cycle model, on Verilator and Icarus."""

import pytest

from hw.core.classifier_weights import ClassifierWeights
from tests.rtl_sweep import cycles, run_case, sweep

CASES = {
    "w31-c10-b4-sign": dict(width=31, classes=10, bits=4, sign_feedback=True),
    "w16-c3-b2": dict(width=16, classes=3, bits=2, sign_feedback=False),
    "w64-c2-b1-sign": dict(width=64, classes=2, bits=1, sign_feedback=True),
    "w20-c7-b8-sign": dict(width=20, classes=7, bits=8, sign_feedback=True),
    # The PRNGs' controls registered (the pipelined training core's).
    "w31-c10-b4-sign-registered": dict(width=31, classes=10, bits=4, sign_feedback=True,
                                       registered_controls=True),
}


def run(tmp_path_factory, name, sim, cycles, **extra):
    p = dict(CASES[name], cycles=cycles, stall=0.3, load_rate=0.02, seed=13, **extra)
    unit = ClassifierWeights(p["width"], p["classes"], p["bits"], p["sign_feedback"],
                             registered_controls=p.get("registered_controls", False))
    run_case(tmp_path_factory, unit, "classifier_weights", p, sim, name)


FAST = ["w31-c10-b4-sign", "w16-c3-b2", "w31-c10-b4-sign-registered"]


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST))
def test_classifier_weights(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim, cycles=cycles())


def test_perturbed_weight_offset_is_caught(tmp_path_factory):
    """The model draws 2u - 2**bits (even weights): the checker must notice."""
    run(tmp_path_factory, "w31-c10-b4-sign", "verilator", cycles=2_000, mutate="offset")
