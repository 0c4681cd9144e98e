"""The stream timing most units share: registered output stages with backpressure."""

__all__ = ["RegisteredStage"]


class RegisteredStage:
    """A beat accepted on ``i`` produces ``accept(beat)`` on ``o`` ``latency`` cycles later
    (unless that is None: the beat produced no output), through ``latency - 1`` inner
    registers and the output register. A register takes a new value while it is empty or
    passing its value on in the same cycle; ``i`` is ready while the first one does. The
    output register keeps its last value while empty.
    """

    def __init__(self, idle_output, latency=1):
        self.out_valid, self.out = 0, idle_output
        self.inner = [None] * (latency - 1)          # None: empty; else (result,)

    def accept(self, beat):
        raise NotImplementedError

    def entered(self, result):
        """Called when ``result`` enters the output register."""

    def _moves(self, inputs):
        """Which inner registers pass their value on in this cycle, and whether the first
        register (inner or output) takes a new value."""
        free = not self.out_valid or inputs["o__ready"]
        moves = [False] * len(self.inner)
        for k in reversed(range(len(self.inner))):
            moves[k] = self.inner[k] is not None and free
            free = self.inner[k] is None or moves[k]
        return moves, free

    def ready(self, inputs):
        """``i.ready`` in this cycle."""
        return self._moves(inputs)[1]

    def outputs(self, inputs):
        return {"o__valid": self.out_valid, "o__payload": self.out,
                "i__ready": int(self.ready(inputs))}

    def step(self, inputs):
        """Returns the beat accepted at this edge, or None."""
        moves, _ = self._moves(inputs)
        ready = self.ready(inputs)
        if self.out_valid and inputs["o__ready"]:
            self.out_valid = 0
        chain = list(self.inner)
        taken = None
        if inputs["i__valid"] and ready:
            taken = inputs["i__beat"]
            incoming = (self.accept(taken),)
        else:
            incoming = None
        for k in range(len(chain)):
            if chain[k] is not None and moves[k]:
                passed, chain[k] = chain[k], None
            else:
                passed = None
            if incoming is not None:
                chain[k] = incoming
            incoming = passed
        self.inner = chain
        if incoming is not None and incoming[0] is not None:
            self.out, self.out_valid = incoming[0], 1
            self.entered(incoming[0])
        return taken
