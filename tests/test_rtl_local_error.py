"""hw/local_error.py against its per-cycle model, on Verilator and Icarus."""

import gc

import pytest
from amaranth.hdl import Fragment, Value

from hw.local_error import LocalErrorUnit
from tests.rtl_sweep import cycles, run_case, sweep

CASES = {
    "c2-s4f1-e4": dict(classes=2, score_bits=4, score_frac=1, error_bits=4),
    "c3-s8f4-e8": dict(classes=3, score_bits=8, score_frac=4, error_bits=8),
    "c10-s16f10-e16": dict(classes=10, score_bits=16, score_frac=10, error_bits=16),
    "c16-s24f12-e20": dict(classes=16, score_bits=24, score_frac=12, error_bits=20),
}


def run(tmp_path_factory, name, sim, cycles, **extra):
    p = dict(CASES[name], cycles=cycles, idle=0.3, stall=0.3, seed=5)
    p.update(extra)
    unit = LocalErrorUnit(p["classes"], p["score_bits"], p["score_frac"], p["error_bits"])
    run_case(tmp_path_factory, unit, "local_error", p, sim, name)


FAST = ["c10-s16f10-e16", "c2-s4f1-e4"]


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST))
def test_local_error(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim, cycles=cycles())


def test_perturbed_margin_is_caught(tmp_path_factory):
    run(tmp_path_factory, "c10-s16f10-e16", "verilator", cycles=2_000, mutate="margin")


@pytest.mark.parametrize("classes,label_bits", [(2, 1), (3, 2), (4, 2), (5, 3), (10, 4),
                                                (16, 4), (17, 5)])
def test_port_widths(classes, label_bits):
    """A label or prediction port is exactly as wide as a class index (the bench drives labels
    in range, where a wider port behaves the same); score, error and margin as configured."""
    unit = LocalErrorUnit(classes, 12, 6, 9, count_bits=20)
    widths = {"label": unit.i.payload.label, "score": unit.i.payload.score,
              "prediction": unit.o.payload.prediction, "error": unit.o.payload.error,
              "margin": unit.o.payload.margin, "correct_count": unit.correct_count}
    assert {k: len(Value.cast(v)) for k, v in widths.items()} == {
        "label": label_bits, "score": 12, "prediction": label_bits, "error": 9, "margin": 12,
        "correct_count": 20}
    Fragment.get(unit, None)


# A refused constructor leaves a half-built component, collected here under the filter.
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_one_class_is_refused():
    with pytest.raises(ValueError, match="2 classes") as refused:
        LocalErrorUnit(1, 8, 4, 8)
    del refused
    gc.collect()
