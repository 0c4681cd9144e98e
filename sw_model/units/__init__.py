"""Per-cycle models of the RTL units: what each must output on every cycle, given its inputs.

Each model offers ``outputs(inputs)`` (the values the unit drives this cycle, which may depend
combinationally on this cycle's inputs) and ``step(inputs)`` (the state update at the clock edge).
Their arithmetic is the golden model's; they never import the RTL.
"""
