"""cocotb testbench of hw/core/error_stage.py against sw_model/units/error_stage.py: groups of
score rows offered on random cycles (held until taken, classes in order, rows past the last
class when the class tiles overhang), rounded sums a cycle after each row (saturating, tying),
a labels memory read through ``label_addr`` in the same cycle, batches that leave samples past
their end; every output field, ``row_ready`` and ``busy`` included, compared every cycle."""

import random

import cocotb
import numpy as np
from cocotb.clock import Clock

from amaranth.hdl import signed

from hw.core.error_stage import ErrorStage
from hw.params import index_bits
from sim import params as tb_params
from sim.packing import join_rounded, pack, pack_rounded, unpack
from sim.stream_bench import Checker, FieldMonitor, reset, run_checked, struct_fields
from sw_model.units.error_stage import ErrorStageModel
from sw_model.units.local_error import LocalErrorModel


def class_tiles(p):
    return -(-p["classes"] // p["rows"])


def build(p):
    return ErrorStage(p["lanes"], p["classes"], signed(p["rounded_bits"]), p["score_bits"],
                      p["score_frac"], p["error_bits"], index_bits(class_tiles(p) * p["rows"]),
                      p["scramble"], p.get("registered", False),
                      rounding_parts=p.get("rounding_parts", False))


class TiesToTheLastClass(LocalErrorModel):
    """A perturbed local-error model: a tie for the largest score goes to the highest class."""

    def accept(self, beat):
        scores = self.scores + [beat["score"]]
        result = super().accept(beat)
        prediction = len(scores) - 1 - int(np.argmax(scores[::-1]))
        return {**result, "prediction": prediction,
                "correct": int(prediction == beat["label"])}


@cocotb.test()
async def error_stage_matches_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    unit = build(p)
    Q, C = p["lanes"], p["classes"]
    rows_per_group = class_tiles(p) * p["rows"]
    row_layout, rounded_layout = unit.row_layout, unit.rounded.shape()
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start(start_high=False))
    parts = p.get("rounding_parts", False)
    for name in ("row", "rounded", "batch", "label") + ("round_up",) * parts:
        getattr(dut, name).value = 0
    await reset(dut)
    smax = (1 << (p["score_bits"] - 1)) - 1
    rmax = (1 << (p["rounded_bits"] - 1)) - 1
    one = 1 << p["score_frac"]
    labels = [rng.randrange(C) for _ in range(256)]
    pool = [0, one, -one, smax, smax + 3, -smax - 4, rng.randint(-smax, smax)]
    state = {"pending": None, "taken": None, "group": 0, "row": 0, "groups_left": 0,
             "batch": 0}

    def new_batch():
        """A mini-batch: its groups from 0 (or a random first group: sample indices wrap at
        8 bits), and the batch size the stage is told, sometimes short of the groups."""
        size = rng.randint(1, 3 * Q + 1)
        state["groups_left"] = -(-size // Q)
        state["group"] = 0 if rng.random() < 0.8 else rng.randrange(256)
        r = rng.random()
        state["batch"] = size if r < 0.6 else (
            rng.randint(0, size) if r < 0.85 else rng.randrange(256))

    def next_row():
        if state["groups_left"] == 0:
            new_batch()
        r = state["row"]
        last = r == rows_per_group - 1
        row = {"valid": 1, "class_index": r, "last": int(last), "group": state["group"]}
        state["row"] = 0 if last else r + 1
        if last:
            state["group"] = (state["group"] + 1) % 256
            state["groups_left"] -= 1
        return row

    def rounded():
        """The rounded sums of the row taken last cycle (random when none was); the label's
        class often scores high, so that some predictions are right."""
        lanes, row = [], state["taken"]
        for q in range(Q):
            r = rng.random()
            sample = ((row["group"] * Q + q) % 256) if row else None
            if row and labels[sample] == row["class_index"] and rng.random() < 0.6:
                v = smax - rng.choice([0, rng.randint(0, 2 * one)])
            elif r < 0.1:
                v = rng.choice(pool)                          # ties for the largest score
            elif r < 0.2:
                v = rng.choice([-rmax - 1, rmax, rng.randint(-rmax - 1, rmax)])
            elif r < 0.3:
                v = rng.choice([smax, -smax - 1]) + rng.randint(-3, 3)
            else:
                v = rng.randint(-2 * one, 2 * one)
            lanes.append(max(-rmax - 1, min(rmax, v)))
        return lanes

    def inputs():
        if state["pending"] is None and rng.random() >= p["idle"]:
            state["pending"] = next_row()
        row = state["pending"] or {"valid": 0, "class_index": rng.randrange(rows_per_group),
                                   "last": rng.randrange(2), "group": rng.randrange(256)}
        if rng.random() < p.get("batch_changes", 0.01):
            state["batch"] = rng.randrange(256)
        return {"row": pack(row, row_layout),
                **pack_rounded(rounded(), rounded_layout, parts, rng, -rmax - 1),
                "batch": state["batch"], "label": labels[model.label_addr()]}

    options = {}
    if p.get("mutate") == "batch":
        options["zero_past_batch"] = False
    elif p.get("mutate") == "batch-timing":
        options["live_batch"] = True
    elif p.get("mutate") == "tie":
        options["local_error"] = TiesToTheLastClass(C, p["score_bits"], p["score_frac"],
                                                    p["error_bits"])
    model = ErrorStageModel(Q, C, p["score_bits"], p["score_frac"], p["error_bits"],
                            p["scramble"], registered_input=p.get("registered", False),
                            **options)
    members = unit.signature.members
    layouts = {"row_ready": None, "label_addr": None, "busy": None,
               "error": members["error"].shape, "result": members["result"].shape}

    class Unpacking:
        def outputs(self, values):
            want = model.outputs(values)
            flat = {}
            for name, layout in layouts.items():
                flat.update(struct_fields(want[name], layout, name) if layout else {name: want[name]})
            return flat

        def step(self, values):
            rounded = unpack(values["rounded"], rounded_layout)
            if parts:
                rounded = join_rounded(rounded, values["round_up"])
            model.step({**values, "row": unpack(values["row"], row_layout),
                        "rounded": rounded})

    def after_edge(applied, got):
        state["taken"] = None
        if unpack(applied["row"], row_layout)["valid"] and got["row_ready"]:
            state["taken"], state["pending"] = state["pending"], None

    await run_checked(dut, p, inputs, Unpacking(), FieldMonitor(dut, layouts), Checker(),
                      after_edge)
    if not p.get("mutate"):            # a perturbed run stops at its first mismatch
        dut._log.info(f"coverage: {model.coverage}")
        wanted = dict(model.coverage)
        if rows_per_group == C:
            assert wanted.pop("past_classes") == 0, model.coverage
        if not p["scramble"]:
            assert wanted.pop("collisions") == 0, model.coverage
        assert all(wanted.values()), model.coverage
