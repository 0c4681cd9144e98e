"""The stream timing most units share: a registered output stage with backpressure."""

__all__ = ["RegisteredStage"]


class RegisteredStage:
    """A beat accepted on ``i`` produces ``accept(beat)`` on ``o`` one cycle later (unless that
    is None: the beat produced no output); ``i`` is ready while the output register is empty
    or being emptied this cycle. The register keeps its last value while empty."""

    def __init__(self, idle_output):
        self.out_valid, self.out = 0, idle_output

    def accept(self, beat):
        raise NotImplementedError

    def ready(self, inputs):
        """``i.ready`` in this cycle."""
        return not self.out_valid or inputs["o__ready"]

    def outputs(self, inputs):
        return {"o__valid": self.out_valid, "o__payload": self.out,
                "i__ready": int(self.ready(inputs))}

    def step(self, inputs):
        """Returns the beat accepted at this edge, or None."""
        ready = self.ready(inputs)
        if self.out_valid and inputs["o__ready"]:
            self.out_valid = 0
        if inputs["i__valid"] and ready:
            result = self.accept(inputs["i__beat"])
            if result is not None:
                self.out, self.out_valid = result, 1
            return inputs["i__beat"]
        return None
