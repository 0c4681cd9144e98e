"""Per-cycle model of hw/core/gradient_patches.py, written from docs/CONV_CORE.md (``GRAD``) and
docs/ARITHMETIC.md ("Convolutional layers"): the walk is an input tile index and a list of
positions in their order, and every output is computed from them directly (the RTL keeps
running addresses instead)."""

from .patch_walker import SHAPE_INPUTS, walk_order

__all__ = ["GradientPatchesModel", "SHAPE_INPUTS", "tile_place"]


def tile_place(tile, kernel, lanes):
    """(c, kh, kb) of input tile ``m = (c*K + kh)*KB + kb``, ``KB = ceil(K/Q)``."""
    blocks = -(-kernel // lanes)
    rest, kb = divmod(tile, blocks)
    channel, kh = divmod(rest, kernel)
    return channel, kh, kb


class GradientPatchesModel:
    """``outputs`` what the unit drives this cycle, ``step`` takes the clock edge.

    Nothing is predicted before the first ``start``, nor in a cycle whose shape inputs differ
    from those of the walk under way (the unit reads them live); ``column`` is predicted only
    when some lane is set (otherwise every operand is 0 whatever the address), modulo
    ``2**column_bits``. The model, like the unit, does not know ``C``: the tile index grows
    until a ``next_position`` at the last position with ``last_tile`` wraps it to 0.

    ``pad_change`` (added to the padding), ``real_change`` (added to the count of a tile's real
    lanes) and ``window_order`` perturb one rule, only to show that the bench notices.
    """

    def __init__(self, lanes, column_bits, pad_change=0, real_change=0,
                 window_order=((0, 0), (0, 1), (1, 0), (1, 1))):
        self.lanes, self.column_bits = lanes, column_bits
        self.pad_change, self.real_change = pad_change, real_change
        self.window_order = window_order
        self.shape = None
        self.order = []
        self.position = self.tile = 0

    def _start(self, inputs):
        self.shape = {name: inputs[name] for name in SHAPE_INPUTS}
        self.order = walk_order(inputs["in_h"], inputs["in_w"], inputs["kernel"],
                                inputs["same"], inputs["pool"], self.window_order)
        self.position = self.tile = 0

    def current(self):
        """(r, s, window, output index) of the current position."""
        return self.order[self.position]

    def place(self):
        """(c, ih, iw0, kb) of the current tile at the current position: lane 0's input."""
        k = self.shape["kernel"]
        pad = ((k - 1) // 2 if self.shape["same"] else 0) + self.pad_change
        channel, kh, kb = tile_place(self.tile, k, self.lanes)
        r, s = self.current()[:2]
        return channel, r + kh - pad, s + kb * self.lanes - pad, kb

    def outputs(self, inputs):
        if self.shape is None or any(inputs[n] != v for n, v in self.shape.items()):
            return {}
        r, s, window, index = self.current()
        height, width, k = self.shape["in_h"], self.shape["in_w"], self.shape["kernel"]
        channel, ih, iw, kb = self.place()
        columns = min(self.lanes, k - kb * self.lanes + self.real_change)
        lanes = [q < columns and 0 <= ih < height and 0 <= iw + q < width
                 for q in range(self.lanes)]
        out = {"pooled": index, "window": window, "columns": columns,
               "lanes": sum(1 << q for q, real in enumerate(lanes) if real),
               "last_position": int(self.position == len(self.order) - 1)}
        if out["lanes"]:
            out["column"] = ((channel * height + ih) * width + iw) % (1 << self.column_bits)
        return out

    def step(self, inputs):
        if inputs["start"]:
            self._start(inputs)
        elif self.shape is not None and inputs["next_position"]:
            if self.position == len(self.order) - 1:
                self.position = 0
                self.tile = 0 if inputs["last_tile"] else self.tile + 1
            else:
                self.position += 1
