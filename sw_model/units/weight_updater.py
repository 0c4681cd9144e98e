"""Per-cycle model of hw/core/weight_updater.py; the arithmetic is the golden model's."""

import numpy as np

from sw_model.fixedpoint import saturate_signed, shift_rne, shift_stochastic

__all__ = ["WeightUpdaterModel"]


class WeightUpdaterModel:
    """Two stages: a taken beat's update steps (a lane each), then the steps waiting for their
    old word; with ``registered_input``, the beats (with ``stochastic``) in a queue of two
    before them, taken while it is not full, and a third stage in front of the two (the
    shifter's parts), which passes its beat on whenever the next is empty or moving. ``new`` is the old word minus the last steps to
    enter the second stage (zero after reset), saturated, whether valid or not.

    ``rounding`` replaces the contract's choice (``"stochastic"``/``"nearest-even"`` from the
    ``stochastic`` input) only to show that the bench notices."""

    def __init__(self, lanes, weight_bits, round_bits, rounding=None, registered_input=False):
        self.lanes, self.weight_bits, self.round_bits = lanes, weight_bits, round_bits
        self.rounding, self.registered_input = rounding, registered_input
        self.queue = []                       # registered_input: (beat, stochastic)s
        self.shifted = None                   # registered_input: the steps of the stage
        #                                       in front of the first, or None: empty
        self.first = None                     # the steps of the first stage, or None: empty
        self.second_valid, self.steps = 0, [0] * lanes
        self.coverage = {"saturated_low": 0, "saturated_high": 0, "ties": 0, "stochastic": 0,
                         "nearest": 0, "stalled": 0}

    def _steps(self, beat, stochastic):
        if self.rounding is not None:
            stochastic = self.rounding == "stochastic"
        g = np.array(beat["grad"], dtype=np.float64)
        if stochastic:
            steps = shift_stochastic(g, beat["shift"], np.array(beat["rand"], dtype=np.float64),
                                     self.round_bits)
        else:
            steps = shift_rne(g, beat["shift"])
        self.coverage["stochastic" if stochastic else "nearest"] += 1
        shift = beat["shift"]
        self.coverage["ties"] += sum(shift > 0 and v % (1 << shift) == 1 << (shift - 1)
                                     for v in beat["grad"])
        return [int(v) for v in steps]

    def _new(self, old):
        return [int(v) for v in saturate_signed(np.array(old, dtype=np.float64)
                                                - np.array(self.steps, dtype=np.float64),
                                                self.weight_bits)]

    def _handshakes(self, inputs):
        """The second stage's move, the first's take, the shifted stage's pass, the queue's
        pass and ``i.ready``."""
        move = self.second_valid and inputs["old__valid"] and inputs["new__ready"]
        step_take = self.first is not None and (not self.second_valid or move)
        first_free = self.first is None or step_take
        if not self.registered_input:
            return move, step_take, False, False, first_free
        shift_pass = self.shifted is not None and first_free
        shifted_free = self.shifted is None or shift_pass
        return (move, step_take, shift_pass, bool(self.queue) and shifted_free,
                len(self.queue) < 2)

    def outputs(self, inputs):
        *_, ready = self._handshakes(inputs)
        return {
            "i__ready": int(ready),
            "old__ready": int(self.second_valid and inputs["new__ready"]),
            "new__valid": int(self.second_valid and inputs["old__valid"]),
            "new__payload": self._new(inputs["old__beat"]),
            "busy": int(bool(self.queue) or self.shifted is not None
                        or self.first is not None or bool(self.second_valid)),
        }

    def step(self, inputs):
        move, step_take, shift_pass, enter, ready = self._handshakes(inputs)
        received = inputs["i__valid"] and ready
        if move:
            lo, hi = -(1 << (self.weight_bits - 1)), (1 << (self.weight_bits - 1)) - 1
            for old, step, new in zip(inputs["old__beat"], self.steps,
                                      self._new(inputs["old__beat"])):
                self.coverage["saturated_low"] += new == lo and old - step < lo
                self.coverage["saturated_high"] += new == hi and old - step > hi
        elif self.second_valid:
            self.coverage["stalled"] += 1
        if step_take:
            self.steps, self.second_valid = self.first, 1
        elif move:
            self.second_valid = 0
        if self.registered_input:
            if shift_pass:
                self.first = self.shifted
            elif step_take:
                self.first = None
            if enter:
                self.shifted = self._steps(*self.queue.pop(0))
            elif shift_pass:
                self.shifted = None
            if received:
                self.queue.append((inputs["i__beat"], inputs["stochastic"]))
        elif received:
            self.first = self._steps(inputs["i__beat"], inputs["stochastic"])
        elif step_take:
            self.first = None
