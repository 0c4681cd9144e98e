"""Per-cycle model of hw/core/patch_walker.py, written from docs/ARITHMETIC.md ("Convolutional
layers"): the walk is a list of positions in their order and an element index, and every
output is computed from them directly (the RTL keeps running addresses instead)."""

__all__ = ["PatchWalkerModel", "SHAPE_INPUTS", "walk_order"]

SHAPE_INPUTS = ("in_h", "in_w", "plane", "kernel", "same", "pool")


def walk_order(height, width, kernel, same, pool, window_order=((0, 0), (0, 1), (1, 0), (1, 1))):
    """The positions of a walk: (r, s, window, output index) of each sum, in order.
    ``window_order`` other than the rule's is only to show that the bench notices."""
    out_h, out_w = (height, width) if same else (height - kernel + 1, width - kernel + 1)
    if not pool:
        return [(r, s, 0, r * out_w + s) for r in range(out_h) for s in range(out_w)]
    return [(2 * pr + dr, 2 * ps + ds, window, pr * (out_w // 2) + ps)
            for pr in range(out_h // 2) for ps in range(out_w // 2)
            for window, (dr, ds) in enumerate(window_order)]


class PatchWalkerModel:
    """``outputs`` what the walker drives this cycle, ``step`` takes the clock edge.

    Nothing is predicted before the first ``start``, nor in a cycle whose shape inputs differ
    from those of the walk under way (the walker reads them live); ``column`` is predicted only
    when ``in_map`` (outside the map the operand is 0 whatever the address). The walker does not
    know ``C``: the bias beat's outputs (element ``J``, channel ``C``) are predicted like any
    other element's; they are read nowhere.

    ``pad_change`` (added to the padding) and ``window_order`` perturb one rule, only to show
    that the bench notices.
    """

    def __init__(self, column_bits, pad_change=0, window_order=((0, 0), (0, 1), (1, 0), (1, 1))):
        self.column_bits = column_bits
        self.pad_change, self.window_order = pad_change, window_order
        self.shape = None
        self.order = []
        self.position = self.element = 0

    def _start(self, inputs):
        self.shape = {name: inputs[name] for name in SHAPE_INPUTS}
        self.order = walk_order(inputs["in_h"], inputs["in_w"], inputs["kernel"],
                                inputs["same"], inputs["pool"], self.window_order)
        self.position = self.element = 0

    def current(self):
        """(r, s, window, output index) of the current position."""
        return self.order[self.position]

    def element_place(self, element):
        """The input (c, ih, iw) of patch element ``element`` at the current position."""
        k = self.shape["kernel"]
        pad = ((k - 1) // 2 if self.shape["same"] else 0) + self.pad_change
        channel, rest = divmod(element, k * k)
        kh, kw = divmod(rest, k)
        r, s = self.current()[:2]
        return channel, r + kh - pad, s + kw - pad

    def outputs(self, inputs):
        if self.shape is None or any(inputs[n] != v for n, v in self.shape.items()):
            return {}
        r, s, window, index = self.current()
        out = {"pooled": index, "window": window,
               "last_position": int(self.position == len(self.order) - 1)}
        height, width = self.shape["in_h"], self.shape["in_w"]
        channel, ih, iw = self.element_place(self.element)
        in_map = 0 <= ih < height and 0 <= iw < width
        out["in_map"] = int(in_map)
        if in_map:
            out["column"] = ((channel * height + ih) * width + iw) % (1 << self.column_bits)
        return out

    def step(self, inputs):
        if inputs["start"]:
            self._start(inputs)
        elif self.shape is not None and inputs["step"]:
            if inputs["end_of_sum"]:
                self.position = (self.position + 1) % len(self.order)
                self.element = 0
            else:
                self.element += 1
