"""hw/core/forward_drain.py against its per-cycle model, on Verilator and Icarus."""

import pytest
from amaranth.hdl import Fragment, Shape, signed

from hw.core.forward_drain import ForwardDrain
from tests.rtl_sweep import cycles, run_case, sweep

CASES = {
    "l1-a8-nodrop": dict(lanes=1, sum_bits=20, rounded_bits=22, act_bits=8, neuron_bits=7,
                         index_bits=6, row_bits=1, dropout=False),
    "l2-a8-drop": dict(lanes=2, sum_bits=26, rounded_bits=28, act_bits=8, neuron_bits=9,
                       index_bits=6, row_bits=1, dropout=True),
    "l4-a8-drop": dict(lanes=4, sum_bits=27, rounded_bits=29, act_bits=8, neuron_bits=8,
                       index_bits=5, row_bits=2, dropout=True),
    "l4-a8-nodrop": dict(lanes=4, sum_bits=27, rounded_bits=29, act_bits=8, neuron_bits=8,
                         index_bits=5, row_bits=2, dropout=False),
    "l8-a8-drop": dict(lanes=8, sum_bits=30, rounded_bits=32, act_bits=8, neuron_bits=10,
                       index_bits=7, row_bits=3, dropout=True),
}


def run(tmp_path_factory, name, sim, cycles, **extra):
    p = dict(CASES[name], cycles=cycles, idle=0.3, change=0.1, seed=7)
    p.update(extra)
    unit = ForwardDrain(p["lanes"], signed(p["sum_bits"]), signed(p["rounded_bits"]),
                        p["act_bits"], p["neuron_bits"], p["index_bits"], p["row_bits"],
                        p["dropout"])
    run_case(tmp_path_factory, unit, "forward_drain", p, sim, name)


FAST = ["l4-a8-drop", "l1-a8-nodrop"]


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST))
def test_forward_drain(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim, cycles=cycles())


@pytest.mark.parametrize("mutate", ["half-up",
                                    pytest.param("relu-edge", marks=pytest.mark.slow)])
def test_perturbed_model_is_caught(tmp_path_factory, mutate):
    """The model rounds the kept activations half up, or keeps a rounded sum of exactly
    ``2**act_bits`` active (``<=`` for ``<``): the checker must notice."""
    run(tmp_path_factory, "l4-a8-drop", "verilator", cycles=2_000, mutate=mutate)


def test_port_widths():
    """The ports the core wires to, as wide as it drives them; without dropout the dropout
    members do not exist."""
    unit = ForwardDrain(4, signed(27), signed(29), 8, 9, 5, 2, dropout=True)
    members = unit.signature.members
    widths = {name: Shape.cast(members[name].shape).width
              for name in ("i", "rounded", "neurons", "drop", "dropout", "keep_scale", "o",
                           "busy")}
    assert widths == {"i": (1 + 9 + 5 + 5 + 2) + 4 * 27 + 4 * 8, "rounded": 4 * 29,
                      "neurons": 9, "drop": 1, "dropout": 8, "keep_scale": 17,
                      "o": (1 + 9 + 5 + 5 + 2) + 1 + 4 * 8 + 4, "busy": 1}
    Fragment.get(unit, None)
    lean = ForwardDrain(4, signed(27), signed(29), 8, 9, 5, 2, dropout=False)
    assert not {"drop", "dropout", "keep_scale"} & set(lean.signature.members)
    assert "draws" not in dict(lean.in_layout)
    Fragment.get(lean, None)
