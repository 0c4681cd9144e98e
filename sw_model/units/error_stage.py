"""Per-cycle model of hw/core/error_stage.py; the arithmetic is the golden model's (the local
errors are sw_model/units/local_error.py's)."""

import numpy as np

from sw_model.fixedpoint import saturate_signed

from .local_error import LocalErrorModel

__all__ = ["ErrorStageModel"]


def _index_bits(n):
    return max(1, (n - 1).bit_length())


class ErrorStageModel:
    """The score drain, then a group's local errors (docs/ARITHMETIC.md, steps 3 and 4).

    * The drain: a row offered while ``row_ready`` is taken into the write register; in the
      next cycle the rounded sums that arrive then, ``sat_s(rounded, score_bits)`` per lane,
      are written as the word of the row's class (a class index ``>= classes`` writes
      nothing). ``row_ready`` is low while the error stage runs and while a group's last row
      is in the write register.
    * A group's last row in the write register starts the error stage for that group: sample
      by sample (lane 0 first; sample ``group * lanes + lane``), class by class, a class a
      cycle. A class's word is read in its cycle (the memory's old word; with
      ``scramble_collisions`` a word read in the cycle it is written reads inverted), and in
      the next cycle the sample's score and its label (``label`` is driven for ``label_addr``,
      the sample being read) enter the local-error unit, whose output comes a cycle later.
      With ``registered_input`` they are registered first and enter a cycle later.
    * ``error`` is every beat of the unit's output, its value zeroed for a sample
      ``>= batch`` (this cycle's ``batch``; with ``registered_input``, the ``batch`` of the
      cycle the sample entered the unit); ``result`` is valid on a real sample's last class.

    ``local_error`` replaces the local-error unit's model and ``zero_past_batch=False`` keeps
    the errors of samples past the batch, only to show that the bench notices.
    """

    def __init__(self, lanes, classes, score_bits, score_frac, error_bits,
                 scramble_collisions=False, local_error=None, zero_past_batch=True,
                 registered_input=False, live_batch=False):
        """``live_batch`` compares a registered stage's samples with this cycle's ``batch``
        (as an unregistered stage does), only to show that the bench notices."""
        self.lanes, self.classes, self.score_bits = lanes, classes, score_bits
        self.registered_input, self.live_batch = registered_input, live_batch
        self.given = {"valid": 0, "sample": 0, "cls": 0, "score": 0, "label": 0}
        self.scramble, self.zero_past_batch = scramble_collisions, zero_past_batch
        self.leu = local_error or LocalErrorModel(classes, score_bits, score_frac, error_bits)
        self.qbits = (lanes - 1).bit_length()
        self.lane_mask = (1 << max(1, self.qbits + 1)) - 1
        self.memory = [[0] * lanes for _ in range(1 << _index_bits(classes))]
        self.read_word, self.hit = [0] * lanes, 0          # the read port's data register
        self.written = {"valid": 0, "class_index": 0, "last": 0, "group": 0}
        self.busy_errors, self.lane, self.group, self.cls = 0, 0, 0, 0
        self.read = {"valid": 0, "sample": 0, "cls": 0}
        self.out_sample, self.out_cls = 0, 0
        self.in_batch = 0                # registered: the output's sample was below batch
        self.coverage = {"rows": 0, "stalled": 0, "past_classes": 0, "saturated": 0,
                         "groups": 0, "results": 0, "correct": 0, "wrong": 0, "ties": 0,
                         "past_batch": 0, "collisions": 0}

    # ---- combinational ------------------------------------------------------------------
    def row_ready(self):
        return int(not self.busy_errors and not (self.written["valid"] and
                                                 self.written["last"]))

    def sample(self):
        """The sample the error stage is at (8 bits: the lane below the group)."""
        if not self.qbits:
            return self.group & 0xFF
        return ((self.group << self.qbits) | (self.lane & ((1 << self.qbits) - 1))) & 0xFF

    def label_addr(self):
        return self.read["sample"]

    def _scores(self):
        """The word the read port holds, as lanes (inverted after a collision)."""
        return [~v for v in self.read_word] if self.hit else list(self.read_word)

    def outputs(self, inputs):
        leu = self.leu.outputs({"o__ready": 1})
        valid, out = leu["o__valid"], leu["o__payload"]
        real = int(bool(valid and self._in_batch(inputs)))
        keep = real if self.zero_past_batch else valid
        busy = (self.written["valid"] or self.busy_errors or self.read["valid"] or valid
                or (self.registered_input and self.given["valid"]))
        return {
            "row_ready": self.row_ready(), "label_addr": self.label_addr(),
            "error": {"valid": valid, "sample": self.out_sample,
                      "class_index": self.out_cls, "value": out["error"] if keep else 0},
            "result": {"valid": int(bool(real and out["last"])), "sample": self.out_sample,
                       "prediction": out["prediction"], "correct": out["correct"],
                       "margin": out["margin"]},
            "busy": int(bool(busy)),
        }

    def _in_batch(self, inputs):
        if self.registered_input and not self.live_batch:
            return self.in_batch
        return self.out_sample < inputs["batch"]

    # ---- the clock edge -----------------------------------------------------------------
    def _coverage(self, inputs, taken):
        cov, row = self.coverage, inputs["row"]
        cov["rows"] += taken
        cov["stalled"] += row["valid"] and not taken
        cov["past_classes"] += taken and row["class_index"] >= self.classes
        leu = self.leu.outputs({"o__ready": 1})
        if leu["o__valid"] and leu["o__payload"]["last"]:
            if self._in_batch(inputs):
                cov["results"] += 1
                cov["correct" if leu["o__payload"]["correct"] else "wrong"] += 1
                cov["ties"] += leu["o__payload"]["margin"] == 0
            else:
                cov["past_batch"] += 1

    def step(self, inputs):
        row, w = inputs["row"], self.written
        taken = int(bool(row["valid"] and self.row_ready()))
        self._coverage(inputs, taken)

        # The local-error unit takes the word read last cycle (or, registered, the cycle
        # before).
        scores = self._scores()
        at = self.read["sample"] & ((1 << self.qbits) - 1) if self.qbits else 0
        chosen = {**self.read, "score": scores[at], "label": inputs["label"]}
        entering = self.given if self.registered_input else chosen
        self.given = chosen
        self.leu.step({"i__valid": entering["valid"], "o__ready": 1, "clear": 0,
                       "i__beat": {"score": entering["score"], "label": entering["label"]}})
        # The score memory: this cycle's read gets the old word.
        write = w["valid"] and w["class_index"] < self.classes
        self.read_word = list(self.memory[self.cls])
        self.hit = int(bool(self.scramble and write and w["class_index"] == self.cls))
        self.coverage["collisions"] += self.hit
        if write:
            rounded = np.array(inputs["rounded"], dtype=np.float64)
            word = saturate_signed(rounded, self.score_bits).astype(np.int64).tolist()
            self.coverage["saturated"] += sum(int(a != b) for a, b in
                                              zip(word, inputs["rounded"]))
            self.memory[w["class_index"]] = word
        self.out_sample, self.out_cls = entering["sample"], entering["cls"]
        self.in_batch = int(entering["sample"] < inputs["batch"])
        self.read = {"valid": self.busy_errors, "sample": self.sample(), "cls": self.cls}
        # The error stage's walk.
        busy, lane, group, cls = self.busy_errors, self.lane, self.group, self.cls
        if w["valid"] and w["last"]:
            busy, lane, group = 1, 0, w["group"]
            self.coverage["groups"] += 1
        if self.busy_errors:
            last_class = self.cls == self.classes - 1
            cls = 0 if last_class else self.cls + 1
            if last_class:
                lane = (self.lane + 1) & self.lane_mask
                if self.lane == self.lanes - 1:
                    busy = 0
        self.busy_errors, self.lane, self.group, self.cls = busy, lane, group, cls
        # The drain's write register.
        self.written = {**w, "valid": taken}
        if taken:
            self.written.update(class_index=row["class_index"], last=row["last"],
                                group=row["group"])
