"""The energy estimates of host/energy.py and bench/energy.py's results, by hand.

The arithmetic in these tests is written out from the definitions (Horowitz, ISSCC 2014, 45 nm:
8-bit multiply 0.2 pJ, 32-bit add 0.1 pJ, 64 bits of an 8 KB SRAM 10 pJ, 64 bits of DRAM
1.3-2.6 nJ), not taken from the code.
"""

import dataclasses
import importlib.util
import json
import os

import pytest

from contract.config import NetConfig, load_config
from host import energy
from host.energy import (HOROWITZ_45NM_PJ, array_widths, counter_accesses, mac_beats, mac_ops,
                         mac_pj, minibatch_energy, model_accesses, working_buffer_words)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")

# A 2-layer net: 4 inputs, 3 then 2 neurons, 2 classes, batch 2, a 1 x 1 array, 16-bit weights,
# deltas and errors, 8-bit activations, 4-bit classifier weights.
TINY = NetConfig(arch=(4, 3, 2), classes=2, batch=2, array_rows=1, array_cols=1)
TINY_WEIGHTS = (4 * 3 + 3) + (3 * 2 + 2)                  # 15 + 8 = 23 weights and biases
# The MAC: 16 x 16 multiply (a = max(16, 16, 4 + 2), b = max(8 + 2, 16)) = 0.2 * 256 / 64
# = 0.8 pJ; accumulator 16 + 16 + ceil(log2(5)) = 35 bits (the longest sum: 4 inputs + bias),
# its add 0.1 * 35 / 32 pJ.
TINY_MAC_PJ = 0.8 + 0.1 * 35 / 32
# Beats of the 1 x 1 array, batch 2:
#   layer 1 (4 -> 3): forward 3 neurons x 2 samples x 5 (4 inputs + bias) = 30, scores 2 classes
#   x 2 x 3 = 12, back projection 3 x 2 x 2 classes = 12, gradient 3 x 4 inputs x 2 = 24: 78;
#   layer 2 (3 -> 2): forward 2 x 2 x 4 = 16, scores 2 x 2 x 2 = 8, back 2 x 2 x 2 = 8,
#   gradient 2 x 3 x 2 = 12: 44.
TINY_BEATS = 78 + 44
TINY_COUNTERS = {"mac_busy_cycles": TINY_BEATS, "ext_read_words": 2 * TINY_WEIGHTS,
                 "ext_write_words": TINY_WEIGHTS}
SRAM_BIT, DRAM_LOW_BIT, DRAM_HIGH_BIT = 10 / 64, 1300 / 64, 2600 / 64


def test_the_table_is_horowitz_45nm():
    assert HOROWITZ_45NM_PJ == {"mult_8bit": 0.2, "add_32bit": 0.1, "sram_8kb_read_64bit": 10.0,
                                "dram_64bit_low": 1300.0, "dram_64bit_high": 2600.0}


def test_tiny_mac_by_hand():
    assert array_widths(TINY) == (16, 16, 35)
    assert mac_pj(TINY) == pytest.approx(TINY_MAC_PJ)
    assert mac_beats(TINY.arch, 2, 2, 1, 1) == TINY_BEATS
    # MAC operations a sample: 2 x (4 x 3) + 2 x (3 x 2) forward and gradient, 2 x (3 x 2) +
    # 2 x (2 x 2) scores and back projection: 24 + 12 + 12 + 8.
    assert mac_ops(TINY.arch, 2, "local_errors") == 56
    # backprop: forward and gradient of 4 -> 3, 3 -> 2 and the output layer 2 -> 2, backward
    # through the last two: 2 x (12 + 6 + 4) + (6 + 4).
    assert mac_ops(TINY.arch, 2, "backprop") == 54


@pytest.mark.parametrize("cfg", [
    TINY, dataclasses.replace(TINY, batch=8),               # the longest sum 8: 3 bits, not 4
    dataclasses.replace(TINY, batch=9),                      # 9: 4 bits
    dataclasses.replace(TINY, act_bits=16),                  # b = 16 + 2: the centred activation
    load_config(os.path.join(ROOT, "configs", "ulx3s.toml"), arch=[784, 1000, 1000, 1000]),
    load_config(os.path.join(ROOT, "configs", "icebreaker.toml"))])
def test_array_widths_are_the_rtl_array_s(cfg):
    from hw.mac_array import accumulator_shape
    from hw.params import CoreParams
    p = CoreParams.from_config(cfg)
    acc = accumulator_shape(p.a_shape, p.b_shape, p.depth)
    assert array_widths(cfg) == (p.a_shape.width, p.b_shape.width, acc.width)
    assert array_widths(dataclasses.replace(TINY, batch=8))[2] == 16 + 16 + 3
    assert array_widths(dataclasses.replace(TINY, batch=9))[2] == 16 + 16 + 4


def test_beats_on_a_2x2_array_round_up():
    # 4 -> 3 -> 2, 2 classes, batch 3, 2 x 2 array: tiles of neurons ceil(3/2) = 2, of samples
    # ceil(3/2) = 2, of inputs ceil(4/2) = 2.
    # layer 1: forward 2 x 2 x 5 = 20, scores 1 x 2 x 3 = 6, back 2 x 2 x 2 = 8, gradient
    # 2 x 2 x 3 = 12: 46; layer 2: forward 1 x 2 x 4 = 8, scores 1 x 2 x 2 = 4, back 1 x 2 x 2
    # = 4, gradient 1 x 2 x 3 = 6: 22.
    assert mac_beats((4, 3, 2), 2, 3, 2, 2) == 46 + 22
    # backprop: forward 20 + 8 + (output 2 -> 2: 1 x 2 x 3 = 6), gradient 12 + 6 + (1 x 1 x 3
    # = 3), backward into layer 1: ceil(3/2) x 2 x 2 = 8, into layer 2: 1 x 2 x 2 = 4.
    assert mac_beats((4, 3, 2), 2, 3, 2, 2, "backprop") == 34 + 21 + 12
    # Counted from the counters, each beat is 4 lanes.
    cfg = dataclasses.replace(TINY, batch=3, array_rows=2, array_cols=2)
    acc = counter_accesses(cfg, {**TINY_COUNTERS, "mac_busy_cycles": 68}, False)
    assert (acc.macs, acc.mac_ops) == (68 * 4, 56 * 3)


def test_tiny_from_counters_weights_external_by_hand():
    e = minibatch_energy(TINY, counter_accesses(TINY, TINY_COUNTERS, weights_on_chip=False))
    dram_bits = (2 * 23 + 23) * 16 + 2 * (4 + 1) * 8     # weights r + w, pixels and labels
    assert dram_bits == 1184
    assert e["mac_pj"] == pytest.approx(122 * TINY_MAC_PJ / 2)
    assert e["sram_pj"] == 0
    assert e["dram_pj_low"] == pytest.approx(1184 * DRAM_LOW_BIT / 2)
    assert e["dram_pj_high"] == pytest.approx(1184 * DRAM_HIGH_BIT / 2)
    assert e["total_pj_low"] == pytest.approx((122 * TINY_MAC_PJ + 1184 * DRAM_LOW_BIT) / 2)
    assert e["total_pj_high"] == pytest.approx((122 * TINY_MAC_PJ + 1184 * DRAM_HIGH_BIT) / 2)


def test_tiny_from_counters_weights_on_chip_by_hand():
    e = minibatch_energy(TINY, counter_accesses(TINY, TINY_COUNTERS, weights_on_chip=True))
    assert e["sram_pj"] == pytest.approx(69 * 16 * SRAM_BIT / 2)
    assert e["dram_pj_low"] == pytest.approx(80 * DRAM_LOW_BIT / 2)
    assert e["dram_pj_high"] == pytest.approx(80 * DRAM_HIGH_BIT / 2)


def test_tiny_models_weights_external_by_hand():
    # Working buffer: 2 x (4 + 3) = 14 words; a chip of 14 words holds no weights.
    assert working_buffer_words(TINY) == 14
    lel, t = model_accesses(TINY, "local_errors", 14)
    assert (t.weight_read, t.weight_write, t.input_read) == (46, 23, 10)
    assert lel.macs == TINY_BEATS and lel.sram == {}
    assert lel.bits("dram") == 1184
    # Backprop streams 15 + 8 + 6 weights (output layer 2 -> 2 with biases) and spills the
    # input (read again: 8) and both hidden vectors (2 x 3 and 2 x 2: written and read).
    bp, t = model_accesses(TINY, "backprop", 14)
    assert (t.weight_read, t.weight_write, t.act_read, t.act_write) == (58, 29, 18, 10)
    assert bp.bits("dram") == (58 + 29) * 16 + 10 * 8 + (18 + 10) * 8 == 1696
    # 24 + 12 + 8 forward (30 + 16 + 12 with the biases' beats), 24 + 12 + 8 gradient,
    # 12 + 8 backward at batch 2 on 1 x 1.
    assert bp.macs == 58 + 44 + 20
    e_lel, e_bp = minibatch_energy(TINY, lel), minibatch_energy(TINY, bp)
    assert e_bp["dram_pj_low"] == pytest.approx(1696 * DRAM_LOW_BIT / 2)
    assert e_bp["dram_pj_low"] > e_lel["dram_pj_low"]


def test_tiny_models_weights_on_chip_by_hand():
    # 14 + 23 words: local errors keep every layer; backprop (also an output layer of 6 words)
    # keeps the two hidden layers, streams its output layer and spills every activation.
    lel, t = model_accesses(TINY, "local_errors", 37)
    assert t.resident_layers == (0, 1) and t.weight_read == 0
    assert lel.sram == {"weight_read": (46, 16), "weight_write": (23, 16)}
    assert lel.dram == {"input_read": (10, 8)}
    bp, t = model_accesses(TINY, "backprop", 37)
    assert t.resident_layers == (0, 1) and t.spilled_acts == (0, 1, 2)
    assert bp.bits("sram") == (46 + 23) * 16
    assert bp.bits("dram") == (12 + 6) * 16 + 10 * 8 + (18 + 10) * 8
    # With room for everything backprop keeps its activations on chip: written and read once
    # (the input only read again), and moves only the input.
    bp, t = model_accesses(TINY, "backprop", 1000)
    assert t.spilled_acts == () and t.total == 10
    assert bp.sram["act_write"] == (2 * 3 + 2 * 2, 8)
    assert bp.sram["act_read"] == (2 * 4 + 2 * 3 + 2 * 2, 8)


@pytest.mark.parametrize("arch, onchip", [
    ((784, 256, 256, 256), 32 * (784 + 256)),             # nothing but the working buffer
    ((784, 1000, 1000, 1000), 64000),
    ((64, 128, 128), 32 * 256 + 24832),                    # local errors' weights fit
    ((784, 256, 256, 256), 384 * 1024),
])
def test_backprop_moves_more_dram_energy_when_weights_do_not_fit_its_chip(arch, onchip):
    cfg = load_config(os.path.join(ROOT, "configs", "ulx3s.toml"), arch=list(arch))
    lel, _ = model_accesses(cfg, "local_errors", onchip)
    bp, _ = model_accesses(cfg, "backprop", onchip)
    e_lel, e_bp = minibatch_energy(cfg, lel), minibatch_energy(cfg, bp)
    assert e_bp["dram_pj_low"] > e_lel["dram_pj_low"]
    assert e_bp["total_pj_high"] > e_lel["total_pj_high"]


# ---- every energy and every width counts ----------------------------------------------------

def _tiny_energy(cfg=TINY, table=HOROWITZ_45NM_PJ, on_chip=False, counters=TINY_COUNTERS):
    return minibatch_energy(cfg, counter_accesses(cfg, counters, on_chip), table)


@pytest.mark.parametrize("key, term", [
    ("mult_8bit", "mac_pj"), ("add_32bit", "mac_pj"), ("sram_8kb_read_64bit", "sram_pj"),
    ("dram_64bit_low", "dram_pj_low"), ("dram_64bit_high", "dram_pj_high")])
def test_each_table_entry_moves_its_term_in_proportion(key, term):
    base = _tiny_energy(on_chip=True)
    table = {**HOROWITZ_45NM_PJ, key: HOROWITZ_45NM_PJ[key] * 1.5}
    after = _tiny_energy(table=table, on_chip=True)
    assert after[term] > base[term]
    if key in ("mult_8bit", "add_32bit"):
        mult, add = 0.8, 0.1 * 35 / 32
        part = mult if key == "mult_8bit" else add
        assert after[term] - base[term] == pytest.approx(122 * part * 0.5 / 2)
    else:
        assert after[term] == pytest.approx(base[term] * 1.5)
    for other in ("mac_pj", "sram_pj", "dram_pj_low", "dram_pj_high"):
        if other != term:
            assert after[other] == base[other]


def test_a_weight_bit_more_costs_its_words():
    wider = dataclasses.replace(TINY, weight_bits=17)      # a = 17: the multiply too
    base, after = _tiny_energy(), _tiny_energy(wider)
    assert after["dram_pj_low"] - base["dram_pj_low"] == pytest.approx(69 * DRAM_LOW_BIT / 2)
    assert after["mac_pj"] - base["mac_pj"] == pytest.approx(
        122 * (0.2 * 16 / 64 + 0.1 / 32) / 2)                # 17 x 16 multiply, 36-bit add
    base, after = _tiny_energy(on_chip=True), _tiny_energy(wider, on_chip=True)
    assert after["sram_pj"] - base["sram_pj"] == pytest.approx(69 * SRAM_BIT / 2)


def test_an_activation_bit_more_costs_the_pixels_and_labels():
    wider = dataclasses.replace(TINY, act_bits=9)          # b = max(11, 16): the MAC is the same
    base, after = _tiny_energy(), _tiny_energy(wider)
    assert after["dram_pj_low"] - base["dram_pj_low"] == pytest.approx(10 * DRAM_LOW_BIT / 2)
    assert after["mac_pj"] == base["mac_pj"]


def test_an_error_bit_more_widens_the_multiply():
    wider = dataclasses.replace(TINY, error_bits=17)
    assert array_widths(wider) == (16, 17, 36)
    assert _tiny_energy(wider)["mac_pj"] - _tiny_energy()["mac_pj"] == pytest.approx(
        122 * (0.2 * 16 / 64 + 0.1 / 32) / 2)


@pytest.mark.parametrize("counter, term", [("mac_busy_cycles", "mac_pj"),
                                           ("ext_read_words", "dram_pj_low"),
                                           ("ext_write_words", "dram_pj_low")])
def test_each_counter_counts(counter, term):
    more = {**TINY_COUNTERS, counter: TINY_COUNTERS[counter] + 1}
    step = TINY_MAC_PJ if counter == "mac_busy_cycles" else 16 * DRAM_LOW_BIT
    assert _tiny_energy(counters=more)[term] - _tiny_energy()[term] == pytest.approx(step / 2)


def test_lela_explores_estimate_is_the_local_error_model_with_the_weights_on_chip():
    # One estimate: lela explore's is minibatch_energy of the model (tests/test_explore.py
    # checks it by hand), and on digits it equals the counters' of a measured run.
    cfg = load_config(os.path.join(ROOT, "configs", "ulx3s.toml"))
    e = energy.training_energy(cfg)
    run = _json("accelerator_traffic_ulx3s_64x128x128.json")
    counters = run["counters_per_minibatch"]
    counters = counters[0] if isinstance(counters, list) else counters
    measured = energy.minibatch_energy(cfg, energy.counter_accesses(
        cfg, {k: counters[k] for k in ("mac_busy_cycles", "ext_read_words", "ext_write_words")},
        True))
    assert e["total_pj"] == pytest.approx(measured["total_pj_low"])
    assert e["weight_memory_pj"] == pytest.approx(measured["sram_pj"])


# ---- the beats against every recorded counter ------------------------------------------------

def _json(name):
    with open(os.path.join(RESULTS, name)) as f:
        return json.load(f)


def test_beats_equal_every_recorded_mac_busy_count():
    # Each recorded run: (network, classes, array, mini-batch sizes, mac_busy_cycles).
    digits = _json("accelerator_digits.json")              # 8 x 8, an epoch of 1437 samples
    assert digits["samples"] == 44 * 32 + 29
    assert 44 * mac_beats((64, 128, 128), 10, 32, 8, 8) + mac_beats(
        (64, 128, 128), 10, 29, 8, 8) == digits["counters"]["mac_busy_cycles"]
    traffic = _json("accelerator_traffic.json")              # 784-256-256-256 on 8 x 8
    assert all(c["mac_busy_cycles"] == mac_beats((784, 256, 256, 256), 10, 32, 8, 8)
               for c in traffic["counters_per_minibatch"])
    boards = _json("board_throughput.json")["boards"]        # iCEBreaker 1 x 1 B 8, ULX3S 4 x 4
    ice, ulx = boards["icebreaker"], boards["ulx3s"]
    assert ice["epoch_counters"]["mac_busy_cycles"] == 179 * mac_beats(
        (64, 64), 10, 8, 1, 1) + mac_beats((64, 64), 10, 5, 1, 1)
    assert ulx["epoch_counters"]["mac_busy_cycles"] == 44 * mac_beats(
        (64, 128, 128), 10, 32, 4, 4) + mac_beats((64, 128, 128), 10, 29, 4, 4)
    for name, arch in (("board_sdram_784x256x256x256.json", (784, 256, 256, 256)),
                       ("board_sdram_784x1000x1000x1000.json", (784, 1000, 1000, 1000))):
        assert all(m["mac_busy_cycles"] == mac_beats(arch, 10, 32, 4, 4)
                   for m in _json(name)["minibatches"])


# ---- bench/energy.py's results ---------------------------------------------------------------

def _bench():
    spec = importlib.util.spec_from_file_location("bench_energy",
                                                  os.path.join(ROOT, "bench", "energy.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_json_has_its_structure_and_agrees_with_a_rerun():
    result = _json("energy.json")
    assert result["command"] == "python bench/energy.py"
    assert result["table_pj"] == HOROWITZ_45NM_PJ
    assert "Horowitz" in result["source"] and result["machine"]
    assert os.path.exists(os.path.join(ROOT, result["plot"]))
    bench = _bench()
    assert [c["name"] for c in result["cases"]] == [c[0] for c in bench.CASES]
    for c, spec in zip(result["cases"], bench.CASES):
        assert set(c["columns"]) == {"local_errors_measured", "local_errors_model",
                                     "backprop_model"}
        assert all(c["checks"].values())
        for column in c["columns"].values():
            e = column["pj_per_sample"]
            assert set(e) == {"mac_pj", "sram_pj", "dram_pj_low", "dram_pj_high",
                              "total_pj_low", "total_pj_high"}
            assert e["total_pj_low"] == pytest.approx(e["mac_pj"] + e["sram_pj"]
                                                      + e["dram_pj_low"])
            assert e["dram_pj_high"] == pytest.approx(2 * e["dram_pj_low"])
        measured = c["columns"]["local_errors_measured"]["pj_per_sample"]
        assert measured == c["columns"]["local_errors_model"]["pj_per_sample"]
        bp = c["columns"]["backprop_model"]["pj_per_sample"]
        assert bp["dram_pj_low"] > measured["dram_pj_low"]
        assert bp["mac_pj"] > measured["mac_pj"]
        assert bench.case(*spec) == c                     # the recorded numbers, recomputed
