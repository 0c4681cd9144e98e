"""hw/core/forward_drain.py against its per-cycle model, on Verilator and Icarus; the model's
pooling against the golden model's max_pool."""

import random

import numpy as np
import pytest
from amaranth.hdl import Fragment, Shape, signed

from hw.core.pool_merge import PoolMerge
from sw_model.fixedpoint import saturate_unsigned, shift_rne
from hw.core.forward_drain import ForwardDrain
from sim.tb_forward_drain import build
from sw_model.golden_conv import max_pool
from sw_model.units.forward_drain import ForwardDrainModel
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
    # The pipelined cores': the rounded sums as their quotients and rounding bits.
    "l4-a8-drop-parts": dict(lanes=4, sum_bits=27, rounded_bits=29, act_bits=8, neuron_bits=8,
                             index_bits=5, row_bits=2, dropout=True, rounding_parts=True),
    "l2-a8-nodrop-parts": dict(lanes=2, sum_bits=26, rounded_bits=28, act_bits=8,
                               neuron_bits=9, index_bits=6, row_bits=1, dropout=False,
                               rounding_parts=True),
    # The pipelined cores': and the output registered.
    "l8-a8-drop-parts-out": dict(lanes=8, sum_bits=30, rounded_bits=32, act_bits=8,
                                 neuron_bits=10, index_bits=7, row_bits=3, dropout=True,
                                 rounding_parts=True, output_register=True),
    # The ECP5 build's: the dropout products' operands in MULT18X18D blocks' input registers.
    "l8-a8-drop-parts-out-ecp5": dict(lanes=8, sum_bits=30, rounded_bits=32, act_bits=8,
                                      neuron_bits=10, index_bits=7, row_bits=3, dropout=True,
                                      rounding_parts=True, output_register=True,
                                      multiplier="ecp5"),
    "l2-a8-nodrop-parts-out": dict(lanes=2, sum_bits=26, rounded_bits=28, act_bits=8,
                                   neuron_bits=9, index_bits=6, row_bits=1, dropout=False,
                                   rounding_parts=True, output_register=True),
}

#: Built with pooling: tiles of P = 4 rows and of one row (the same row on consecutive cycles).
POOL_CASES = {
    "l4-a8-drop-pool-p4": dict(lanes=4, sum_bits=27, rounded_bits=29, act_bits=8,
                               neuron_bits=8, index_bits=5, row_bits=2, dropout=True,
                               pooling=True, rows=4),
    "l2-a8-nodrop-pool-p1": dict(lanes=2, sum_bits=26, rounded_bits=28, act_bits=8,
                                 neuron_bits=9, index_bits=6, row_bits=1, dropout=False,
                                 pooling=True, rows=1),
    "l2-a8-drop-pool-p1": dict(lanes=2, sum_bits=26, rounded_bits=28, act_bits=8,
                               neuron_bits=9, index_bits=6, row_bits=1, dropout=True,
                               pooling=True, rows=1),
    "l4-a8-nodrop-pool-p4": dict(lanes=4, sum_bits=27, rounded_bits=29, act_bits=8,
                                 neuron_bits=8, index_bits=5, row_bits=2, dropout=False,
                                 pooling=True, rows=4),
    "l4-a8-drop-pool-p4-out": dict(lanes=4, sum_bits=27, rounded_bits=29, act_bits=8,
                                   neuron_bits=8, index_bits=5, row_bits=2, dropout=True,
                                   pooling=True, rows=4, rounding_parts=True,
                                   output_register=True),
    "l4-a8-drop-pool-p4-out-ecp5": dict(lanes=4, sum_bits=27, rounded_bits=29, act_bits=8,
                                        neuron_bits=8, index_bits=5, row_bits=2, dropout=True,
                                        pooling=True, rows=4, rounding_parts=True,
                                        output_register=True, multiplier="ecp5"),
}


def run(tmp_path_factory, name, sim, cycles, **extra):
    p = dict({**CASES, **POOL_CASES}[name], cycles=cycles, idle=0.3, change=0.1, seed=7)
    p.update(extra)
    unit = build(p)
    run_case(tmp_path_factory, unit, "forward_drain", p, sim, name)


FAST = ["l4-a8-drop", "l1-a8-nodrop", "l4-a8-drop-parts", "l8-a8-drop-parts-out",
        "l8-a8-drop-parts-out-ecp5"]


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST))
def test_forward_drain(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim, cycles=cycles())


@pytest.mark.parametrize("name,sim", sweep(POOL_CASES, fast=["l4-a8-drop-pool-p4",
                                                              "l4-a8-drop-pool-p4-out",
                                                              "l4-a8-drop-pool-p4-out-ecp5"]))
def test_forward_drain_pooling(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim, cycles=cycles())


@pytest.mark.parametrize("mutate", ["half-up",
                                    pytest.param("relu-edge", marks=pytest.mark.slow)])
def test_perturbed_model_is_caught(tmp_path_factory, mutate):
    """The model rounds the kept activations half up, or keeps a rounded sum of exactly
    ``2**act_bits`` active (``<=`` for ``<``): the checker must notice."""
    run(tmp_path_factory, "l4-a8-drop", "verilator", cycles=2_000, mutate=mutate)


@pytest.mark.parametrize("name", ["l4-a8-drop-parts", "l8-a8-drop-parts-out"])
def test_output_register_is_checked(tmp_path_factory, name):
    """Each drain checked against the model with the output register the other way (its
    rows a cycle apart): the checker must notice."""
    run(tmp_path_factory, name, "verilator", cycles=2_000, mutate="latency")


@pytest.mark.parametrize("name", ["l4-a8-drop-pool-p4",
                                  pytest.param("l2-a8-nodrop-pool-p1", marks=pytest.mark.slow)])
def test_perturbed_pooling_is_caught(tmp_path_factory, name):
    """The model lets the last of equal maxima win (``>=`` for ``>``): the checker must
    notice."""
    run(tmp_path_factory, name, "verilator", cycles=2_000, mutate="tie-last")


def _pooled_by_model(rounded, sums, act_bits, keep=None, keep_scale=0, dropout=0, gap=0.3,
                     seed=0):
    """Whole windows through the per-cycle model: ``rounded`` and ``sums`` are
    ``windows x 4 x P x Q`` (window element, tile row, lane); rows on random cycles, the
    rounded sums a cycle after their row. Returns the written rows' ``y``, ``active`` and
    ``winner`` as ``windows x P x Q`` arrays, and their places."""
    rng = random.Random(seed)
    windows, _, rows, lanes = rounded.shape
    model = ForwardDrainModel(lanes, act_bits, dropout=keep is not None, pooling=True,
                              rows=rows)
    settings = {"drop": int(keep is not None), "dropout": dropout, "keep_scale": keep_scale,
                "neurons": rows, "pool": 1}
    schedule = [(k, w, r) for k in range(windows) for w in range(4) for r in range(rows)]
    idle = {"valid": 0, "n": 0, "group": 0, "tile": 0, "row": 0, "window": 0, "column": 0}
    got, pending, previous = [], list(schedule), None
    while pending or previous or model.outputs({})["busy"]:
        at, row_sums, draws = dict(idle), [0] * lanes, [255] * lanes
        if pending and rng.random() >= gap:
            k, w, r = pending.pop(0)
            at.update(valid=1, n=r, row=r, window=w, column=k)
            row_sums = list(sums[k, w, r])
            if keep is not None:            # a draw below dropout exactly where not kept
                draws = [255 if kept else dropout - 1 for kept in keep[k, r]]
        else:
            k = w = r = None
        now = {**settings, "i": {"at": at, "sums": row_sums, "draws": draws},
               "rounded": list(rounded[previous[0], previous[1], previous[2]])
               if previous else [0] * lanes}
        o = model.outputs(now)["o"]
        if o["write"]:
            got.append((o["at"]["column"], o["at"]["row"], list(o["y"]),
                        [(o["active"] >> q) & 1 for q in range(lanes)], list(o["winner"])))
        model.step(now)
        previous = (k, w, r) if k is not None else None
    return got


@pytest.mark.parametrize("rows,lanes,dropout", [(1, 3, False), (4, 2, False), (3, 4, True)])
def test_model_pooling_is_golden_max_pool(rows, lanes, dropout):
    """The per-cycle model's pooled rows, for whole windows on random cycles, are
    sw_model.golden_conv.max_pool of the clipped ReLU's ``y`` and ``active`` (step 1 of
    docs/ARITHMETIC.md), then dropout of the pooled value (step 2) with the element-3 row's keep
    bits: ``y``, ``active`` and the winner, ties frequent."""
    act_bits, windows = 8, 60
    gen = np.random.default_rng(rows * 10 + lanes)
    top = (1 << act_bits) - 1
    values = np.array([-5, -1, 0, 1, 2, 7, top, top + 1, top + 3, 100, 100])
    rounded = gen.choice(values, size=(windows, 4, rows, lanes)).astype(np.float64)
    sums = gen.choice([-3.0, 0.0, 4.0, 9.0], size=rounded.shape)
    keep = gen.random((windows, rows, lanes)) < 0.7 if dropout else None
    scale, drop_value = 341, 64
    got = _pooled_by_model(rounded, sums, act_bits, keep, scale, drop_value, seed=rows)
    assert len(got) == windows * rows
    # The golden rule on maps B x F x H x W: sample = lane, filter = tile row; window k's
    # element w = 2*dr + ds at map position (dr, 2*k + ds), a 2 x (2*windows) map per filter.
    y = saturate_unsigned(rounded, act_bits)
    active = (sums > 0) & (rounded <= top)

    def as_map(a):      # windows x 4 x P x Q -> Q x P x 2 x 2*windows
        return a.reshape(windows, 2, 2, rows, lanes).transpose(4, 3, 1, 0, 2).reshape(
            lanes, rows, 2, 2 * windows)
    py, pactive, pwinner = max_pool(as_map(y), as_map(active))   # Q x P x 1 x windows
    if dropout:
        k = keep.transpose(2, 1, 0)[:, :, None, :]
        py = saturate_unsigned(shift_rne(py * float(scale), 8), act_bits) * k
        pactive = pactive & k
    for column, row, out_y, out_active, out_winner in got:
        assert out_y == [int(v) for v in py[:, row, 0, column]], (column, row)
        assert out_active == [int(v) for v in pactive[:, row, 0, column]], (column, row)
        assert out_winner == [int(v) for v in pwinner[:, row, 0, column]], (column, row)
    ties = ((y == y.max(axis=1, keepdims=True)).sum(axis=1) > 1) & (pwinner[:, :, 0].T > 0)
    assert ties.any()                 # equal maxima whose winner is not element 0


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
    assert not {"pool"} & set(unit.signature.members)
    assert not {"window", "column", "position"} & set(dict(unit.where_layout))
    assert "winner" not in dict(unit.out_layout)


def test_unknown_multiplier_is_refused():
    """A multiplier the config does not know is refused by name, not built as the default."""
    with pytest.raises(ValueError, match="multiplier 'dsp48': must be one of inferred, ecp5"):
        ForwardDrain(4, signed(27), signed(29), 8, 9, 5, 2, multiplier="dsp48")


@pytest.mark.parametrize("rows,row_bits", [(4, 2), (1, 1), (3, 2)])
def test_pooling_port_widths(rows, row_bits):
    """With pooling: ``pool``, the row's window element, output column and position, the
    winners."""
    unit = ForwardDrain(4, signed(27), signed(29), 8, 9, 5, row_bits, dropout=True,
                        pooling=True, rows=rows)
    members = unit.signature.members
    at = 1 + 9 + 5 + 5 + row_bits + 2 + 9 + 9
    widths = {name: Shape.cast(members[name].shape).width for name in ("i", "o", "pool")}
    assert widths == {"i": at + 4 * 27 + 4 * 8, "o": at + 1 + 4 * 8 + 4 + 4 * 2, "pool": 1}
    Fragment.get(unit, None)


def test_pool_merge_ports():
    """The running maxima's ports: a row's place, window element, ``y`` and derivative in; the
    merged ``y``, derivative and winner out."""
    unit = PoolMerge(4, 8, 4, 2)
    members = unit.signature.members
    assert Shape.cast(members["i"].shape).width == 1 + 1 + 2 + 2 + 4 * 8 + 4
    assert Shape.cast(members["o"].shape).width == 4 * 8 + 4 + 4 * 2
    Fragment.get(unit, None)
    Fragment.get(PoolMerge(2, 8, 1, 1), None)
