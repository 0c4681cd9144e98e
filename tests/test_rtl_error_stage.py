"""hw/core/error_stage.py against its per-cycle model, on Verilator and Icarus."""

import pytest
from amaranth.hdl import Fragment, Shape, signed

from hw.core.error_stage import ErrorStage
from hw.params import index_bits
from tests.rtl_sweep import cycles, run_case, sweep

# rows: the MAC array's rows (classes a tile); the class tiles overhang the classes unless
# rows divides them. Scores as in configs/*.toml (16 bits, 10 fraction bits, 16-bit errors)
# and one narrower set.
CASES = {
    "q1-c2-p1": dict(lanes=1, classes=2, rows=1, rounded_bits=20, score_bits=16,
                     score_frac=10, error_bits=16, scramble=False),
    "q2-c4-p8": dict(lanes=2, classes=4, rows=8, rounded_bits=29, score_bits=16,
                     score_frac=10, error_bits=16, scramble=True),
    "q4-c10-p4": dict(lanes=4, classes=10, rows=4, rounded_bits=29, score_bits=16,
                      score_frac=10, error_bits=16, scramble=True),
    "q4-c16-p8": dict(lanes=4, classes=16, rows=8, rounded_bits=32, score_bits=16,
                      score_frac=10, error_bits=16, scramble=False),
    "q1-c10-p1": dict(lanes=1, classes=10, rows=1, rounded_bits=26, score_bits=16,
                      score_frac=10, error_bits=16, scramble=True),
    "q2-c10-p8-s12": dict(lanes=2, classes=10, rows=8, rounded_bits=24, score_bits=12,
                          score_frac=6, error_bits=14, scramble=False),
    # The pipelined cores' stage: the score and label registered before the unit.
    "q4-c10-p4-reg": dict(lanes=4, classes=10, rows=4, rounded_bits=29, score_bits=16,
                          score_frac=10, error_bits=16, scramble=True, registered=True),
    "q8-c10-p8-reg": dict(lanes=8, classes=10, rows=8, rounded_bits=32, score_bits=16,
                          score_frac=10, error_bits=16, scramble=False, registered=True),
    # ... and with the rounded sums as their quotients and rounding bits.
    "q4-c10-p4-reg-parts": dict(lanes=4, classes=10, rows=4, rounded_bits=29, score_bits=16,
                                score_frac=10, error_bits=16, scramble=True, registered=True,
                                rounding_parts=True),
    "q2-c10-p8-s12-parts": dict(lanes=2, classes=10, rows=8, rounded_bits=24, score_bits=12,
                                score_frac=6, error_bits=14, scramble=False,
                                rounding_parts=True),
}


def build(p):
    class_rows = -(-p["classes"] // p["rows"]) * p["rows"]
    return ErrorStage(p["lanes"], p["classes"], signed(p["rounded_bits"]), p["score_bits"],
                      p["score_frac"], p["error_bits"], index_bits(class_rows), p["scramble"],
                      p.get("registered", False), rounding_parts=p.get("rounding_parts", False))


def run(tmp_path_factory, name, sim, cycles, **extra):
    p = dict(CASES[name], cycles=cycles, idle=0.3, seed=11)
    p.update(extra)
    run_case(tmp_path_factory, build(p), "error_stage", p, sim, name)


FAST = ["q4-c10-p4", "q2-c4-p8", "q4-c10-p4-reg", "q4-c10-p4-reg-parts"]


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST))
def test_error_stage(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim, cycles=cycles())


@pytest.mark.parametrize("mutate", ["batch", pytest.param("tie", marks=pytest.mark.slow)])
def test_perturbed_model_is_caught(tmp_path_factory, mutate):
    """The model keeps the errors of samples past the batch, or gives a tie for the largest
    score to the highest class: the checker must notice."""
    run(tmp_path_factory, "q4-c10-p4", "verilator", cycles=2_000, mutate=mutate)


def test_registered_batch_compare_is_checked(tmp_path_factory):
    """A registered stage compares a sample with ``batch`` as it enters the unit; a model
    comparing at the output, with the batch changing often, must be caught."""
    run(tmp_path_factory, "q4-c10-p4-reg", "verilator", cycles=3_000, mutate="batch-timing",
        batch_changes=0.3)


def test_port_widths():
    """The ports the core wires to: the row's fields, ``batch``, ``label_addr`` and the
    outputs' fields as wide as the core uses them."""
    unit = build(dict(CASES["q4-c10-p4"]))
    members = unit.signature.members
    row = members["row"].shape
    assert [(name, Shape.cast(f.shape).width) for name, f in row] == [
        ("valid", 1), ("class_index", 4), ("last", 1), ("group", 8)]
    error, result = members["error"].shape, members["result"].shape
    assert [(name, Shape.cast(f.shape)) for name, f in error] == [
        ("valid", Shape(1)), ("sample", Shape(8)), ("class_index", Shape(4)),
        ("value", signed(16))]
    assert [(name, Shape.cast(f.shape)) for name, f in result] == [
        ("valid", Shape(1)), ("sample", Shape(8)), ("prediction", Shape(4)),
        ("correct", Shape(1)), ("margin", Shape(16))]
    widths = {name: Shape.cast(members[name].shape).width
              for name in ("rounded", "batch", "label_addr", "label", "row_ready", "busy")}
    assert widths == {"rounded": 4 * 29, "batch": 8, "label_addr": 8, "label": 4,
                      "row_ready": 1, "busy": 1}
    Fragment.get(unit, None)
