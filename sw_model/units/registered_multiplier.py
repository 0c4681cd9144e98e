"""Per-cycle model of hw/registered_multiplier.py."""

__all__ = ["RegisteredMultiplierModel"]


class RegisteredMultiplierModel:
    """``product`` is the product of the operands registered at the last edge with ``load``
    high (0 x 0 before the first). Values are Python ints, signed as the operands' shapes."""

    def __init__(self):
        self.a = self.b = 0

    def outputs(self, inputs):
        return {"product": self.a * self.b}

    def step(self, inputs):
        if inputs["load"]:
            self.a, self.b = inputs["a"], inputs["b"]
