"""Per-cycle model of hw/core/conv_deltas.py, written from its rule (docs/CONV_CORE.md, "To
build: the training steps"; docs/ARITHMETIC.md, "Convolutional layers"): the deltas and the
winners are dicts keyed by (sample, filter, pooled position), each written column's outputs
placed by ``divmod(o, S)`` (the RTL keeps running counters and banks instead)."""

__all__ = ["ConvDeltasModel"]


class ConvDeltasModel:
    """``outputs`` what the store drives this cycle (``deltas[r]`` per lane, unsigned
    ``delta_bits``), ``step`` takes the clock edge. Inputs are unpacked: ``write``, ``winner``
    and ``read`` dicts as their layouts, plus ``filters``, ``positions``, ``pool`` and
    ``start``.

    * ``start`` forgets the deltas (a new ``BACK``) and drops a column offered with it; a
      column written after it of tile ``T`` and sample ``b`` stores lane ``r``'s delta as
      ``(b, f, s') = (b, *divmod(T*P + r, S))`` where ``f < F``.
    * A winner write stores lane ``q``'s window element as that of sample ``group*Q + q`` at
      ``(filter, position)``.
    * A read: lane ``r`` is 0 where ``f = tile*P + r >= F``, and where ``pool`` and the stored
      winner of ``(b, f, s')`` is not ``window``; else the stored delta. It is predicted from
      the cycle after the read until the next read.

    The RTL steps its read addresses with the read's tile (hw/core/conv_deltas.py, ``read``):
    in every cycle the tile must be 0, the previous cycle's or one more, and a read (``en``)
    comes only once the tile has been 0 since ``positions`` last changed; ``step`` raises
    ``ValueError`` on a read that breaks this (the bench's error, not the unit's).

    Where the rule needs a value never stored (a delta not written since ``start``, a winner
    not written since the geometry was set) the lane is not predicted, nor is any lane of a
    read made in a cycle with a write (the collision rule of hw/ram_collisions.py). A change
    of ``filters`` or ``positions`` forgets everything (the RTL's addresses depend on them).

    ``perturb`` breaks one rule, only to show that the bench notices: ``"winner"`` tests the
    winner against ``window + 1``; ``"wrap"`` places a column's lanes ``r >= 1`` at
    ``(s' + r) mod S`` of lane 0's filter: the position wraps at ``S`` but the filter does not
    advance.
    """

    def __init__(self, rows, cols, delta_bits, perturb=None):
        self.rows, self.cols, self.delta_bits = rows, cols, delta_bits
        self.perturb = perturb
        self.deltas, self.winners = {}, {}
        self.geometry = None
        self.read_tile = None                    # the last cycle's tile, None until a 0
        self.out = [None] * rows                 # per lane: the predicted value, or None
        self.coverage = {"written": 0, "beyond_filters": 0, "read_zero_filter": 0,
                         "read_lost_window": 0, "read_won": 0, "read_unpooled": 0,
                         "unpredicted": 0}

    def place(self, tile, lane, positions):
        """(f, s') of lane ``lane`` of a column of ``tile``."""
        o = tile * self.rows + lane
        if self.perturb == "wrap":
            f, s = divmod(tile * self.rows, positions)
            return f, (s + lane) % positions
        return divmod(o, positions)

    def outputs(self, inputs):
        mask = (1 << self.delta_bits) - 1
        return {f"deltas[{r}]": v & mask for r, v in enumerate(self.out) if v is not None}

    def _read(self, inputs):
        rd = inputs["read"]
        if inputs["write"]["valid"] or inputs["winner"]["valid"]:
            self.coverage["unpredicted"] += self.rows
            return [None] * self.rows
        b, s, window = rd["sample"], rd["position"], rd["window"]
        want = (window + 1) % 4 if self.perturb == "winner" else window
        out = []
        cov = self.coverage
        for r in range(self.rows):
            f = rd["tile"] * self.rows + r
            if f >= inputs["filters"]:
                cov["read_zero_filter"] += 1
                out.append(0)
                continue
            key = (b, f, s)
            if inputs["pool"]:
                won = self.winners.get(key)
                if won is None:
                    out.append(None)
                elif won != want:
                    cov["read_lost_window"] += 1
                    out.append(0)
                else:
                    cov["read_won"] += 1
                    out.append(self.deltas.get(key))
            else:
                cov["read_unpooled"] += 1
                out.append(self.deltas.get(key))
            cov["unpredicted"] += out[-1] is None
        return out

    def _follow_tile(self, inputs, geometry):
        tile, last = inputs["read"]["tile"], self.read_tile
        if tile == 0:
            self.read_tile = 0
        elif last is not None and tile in (last, last + 1) and \
                (self.geometry is None or geometry[1] == self.geometry[1]):
            self.read_tile = tile
        else:
            self.read_tile = None
        if inputs["read"]["en"] and self.read_tile is None:
            raise ValueError(f"a read of tile {tile} after tile {last}, or before tile 0 "
                             f"since positions changed: the store's addresses step with the "
                             f"tile")

    def step(self, inputs):
        geometry = (inputs["filters"], inputs["positions"])
        self._follow_tile(inputs, geometry)
        if geometry != self.geometry:
            self.geometry = geometry
            self.deltas, self.winners = {}, {}
        if inputs["read"]["en"]:
            self.out = self._read(inputs)
        filters, positions = geometry
        wr, wn = inputs["write"], inputs["winner"]
        if inputs["start"]:
            self.deltas = {}
        elif wr["valid"]:
            for r, delta in enumerate(wr["deltas"]):
                f, s = self.place(wr["tile"], r, positions)
                if f < filters:
                    self.deltas[(wr["sample"], f, s)] = delta
                    self.coverage["written"] += 1
                else:
                    self.coverage["beyond_filters"] += 1
        if wn["valid"]:
            for q, w in enumerate(wn["winners"]):
                self.winners[(wn["group"] * self.cols + q, wn["filter"], wn["position"])] = w
