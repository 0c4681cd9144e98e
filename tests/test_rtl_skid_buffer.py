"""hw/skid_buffer.py against its per-cycle model, on Verilator and Icarus."""

import gc

import pytest
from amaranth.hdl import unsigned

from hw.skid_buffer import SkidBuffer
from tests.rtl_sweep import cycles, run_case, sweep

CASES = {
    # A beat of several chunks (the last one short), with stall copies (the training core's).
    "w70-c5-k32": dict(width=70, stall_copies=5, chunk_bits=32),
    "w1-c0-k1": dict(width=1, stall_copies=0, chunk_bits=1),
    "w8-c1-k3-busy": dict(width=8, stall_copies=1, chunk_bits=3, idle=0.0, stall=0.6),
    "w300-c12-k36": dict(width=300, stall_copies=12, chunk_bits=36),
    # With copies of the valid bits (the training core's, one per row of MAC lanes).
    "w40-c3-k36-v4": dict(width=40, stall_copies=3, chunk_bits=36, valid_copies=4),
}
FAST = ["w70-c5-k32", "w1-c0-k1", "w8-c1-k3-busy", "w40-c3-k36-v4"]


def run(tmp_path_factory, name, sim, cycles, **extra):
    case = CASES[name]
    unit = SkidBuffer(unsigned(case["width"]), stall_copies=case["stall_copies"],
                      chunk_bits=case["chunk_bits"], valid_copies=case.get("valid_copies", 0))
    params = dict(width=case["width"], stall_copies=case["stall_copies"],
                  valid_copies=case.get("valid_copies", 0), cycles=cycles,
                  idle=case.get("idle", 0.3), stall=case.get("stall", 0.3), seed=5)
    params.update(extra)
    run_case(tmp_path_factory, unit, "skid_buffer", params, sim, name)


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST, icarus=True))
def test_skid_buffer(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim, cycles=cycles())


def test_ready_from_downstream_is_caught(tmp_path_factory):
    """The model with ``i.ready`` following ``o.ready`` (no skid): the checker must notice."""
    run(tmp_path_factory, "w70-c5-k32", "verilator", cycles=2_000, mutate="ready")


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("copies,chunk,valids", [(-1, 8, 0), (0, 0, 0), (0, 8, -1)])
def test_sizes_are_checked(copies, chunk, valids):
    with pytest.raises(ValueError, match="skid buffer") as refused:
        SkidBuffer(unsigned(8), stall_copies=copies, chunk_bits=chunk, valid_copies=valids)
    del refused
    gc.collect()
