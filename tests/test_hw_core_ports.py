"""The core components' control inputs are the widths their docstrings give: a strobe is one
bit (a wider one would be nonzero for values its driver cannot produce), a shift five bits, the
bias beat's ``in_frac`` five (up to 16)."""

import pytest
from amaranth.hdl import Shape, signed
from amaranth.lib import data

from hw.core.beat_operands import BeatOperands
from hw.core.drain_register import DrainRegister
from hw.core.exit_savings import ExitSavings
from hw.core.feedback_registers import FeedbackRegisters
from hw.core.gradient_columns import GradientColumns
from hw.core.loop_nest import LoopNest
from hw.core.sequencer import Sequencer
from hw.core.weight_slab import WeightSlab

TAG = data.StructLayout({"outer": 4, "mid": 4})
BEAT = data.StructLayout({"a": data.ArrayLayout(signed(16), 2),
                          "b": data.ArrayLayout(signed(10), 2), "first": 1, "last": 1})

CASES = [
    (lambda: DrainRegister(2, 2, signed(12), TAG),
     {"advance_row": 1, "advance_col": 1, "end": 1}),
    (lambda: ExitSavings(6, 2), {"begin_forward": 1, "begin_scores": 1, "skip": 1,
                                 "skip_layer": 1}),
    (lambda: GradientColumns(4, 6), {"popped": 1, "active": 1, "begin": 1, "end": 1, "taken": 1,
                                     "bias_shift": 5, "update_shift": 5}),
    (lambda: BeatOperands(2, 2, 3, BEAT, 8, 16, 16, 16, 4, signed(5), 6), {"in_frac": 5}),
    (lambda: LoopNest(6), {"start": 1, "stall": 1, "ready": 1, "dead": 1, "skip_outer": 1}),
    (lambda: FeedbackRegisters(2, 3, signed(5), 6), {"start": 1, "enable": 1, "stall": 1}),
    (lambda: WeightSlab(32, 4, 6), {"start": 1, "read_bank": 1, "read_en": 1, "release": 1}),
    (lambda: Sequencer(), {"start": 1, "copied": 1, "all_exited": 1, "skipped": 1,
                           "phase_done": 1}),
]


@pytest.mark.parametrize("build,widths", CASES,
                         ids=[w and type(b()).__name__ for b, w in CASES])
def test_control_inputs_have_their_documented_widths(build, widths):
    members = build().signature.members
    assert {name: Shape.cast(members[name].shape).width for name in widths} == widths
