"""Per-cycle model of hw/core/weight_init.py; the draws and the arithmetic are the golden
model's (sw_model/golden.py, ``initial_integers``)."""

from sw_model.lfsr import LfsrStream

__all__ = ["WeightInitModel"]


class WeightInitModel:
    """Tile and column counters and the init stream (its register 1 after reset, like the
    hardware's). With ``registered_bits``, a word's ``init_bits`` is the previous cycle's (1
    after reset). ``bias_word`` replaces the zero bias word only to show that the bench
    notices."""

    def __init__(self, lanes, weight_bits, width, bias_word=0, registered_bits=False):
        self.lanes, self.weight_bits, self.width = lanes, weight_bits, width
        self.bias_word, self.registered_bits = bias_word, registered_bits
        self.bits = 1                      # registered: last cycle's init_bits
        self.stream = LfsrStream(width, 1, 16)
        self.tile = self.column = 0
        self.coverage = {"words": 0, "bias_words": 0, "padded_rows": 0, "restarts": 0}

    def _chunks(self):
        snapshot = self.stream.state()
        chunks = [int(u) for u in self.stream.draw(self.lanes)]
        self.stream.restore(snapshot)
        return chunks

    def _word(self, inputs):
        bits = self.bits if self.registered_bits else inputs["init_bits"]
        if self.column >= inputs["fan_in"]:
            return [self.bias_word] * self.lanes
        word = []
        for r, u in enumerate(self._chunks()):
            if self.tile * self.lanes + r < inputs["neurons"]:
                value = (u >> (16 - bits)) - (1 << (bits - 1))
                word.append(self._wrap(value))
            else:
                word.append(0)
        return word

    def _wrap(self, value):
        bits = self.weight_bits
        value &= (1 << bits) - 1
        return value - (1 << bits) if value >> (bits - 1) else value

    def outputs(self, inputs):
        valid = int(inputs["enable"] and self.tile < inputs["tiles"])
        return {"o__valid": valid, "o__payload": self._word(inputs),
                "done": int(self.tile >= inputs["tiles"])}

    def step(self, inputs):
        self.bits = inputs["init_bits"]
        push = inputs["enable"] and self.tile < inputs["tiles"] and inputs["o__ready"]
        if push:
            weight_word = self.column < inputs["fan_in"]
            self.coverage["words"] += 1
            self.coverage["bias_words"] += not weight_word
            self.coverage["padded_rows"] += weight_word and \
                (self.tile + 1) * self.lanes > inputs["neurons"]
            if weight_word:
                self.stream.draw(self.lanes)
            if self.column == inputs["fan_in"]:
                self.column, self.tile = 0, self.tile + 1
            else:
                self.column += 1
        if inputs["start"]:
            self.tile = self.column = 0
            self.stream = LfsrStream(self.width, inputs["seed"] or 1, 16)
            self.coverage["restarts"] += 1
