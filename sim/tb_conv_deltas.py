"""cocotb testbench of hw/core/conv_deltas.py against its per-cycle model
(sw_model/units/conv_deltas.py), in rounds of a layer's phases: a forward phase writes the
winners of every (filter, pooled position, sample group) in random order (some rewritten),
``BACK`` begins and writes its columns in its order (each output tile, each sample group, each
sample of the group), random deltas with the extremes, lanes past the layer's last output
carrying garbage; then ``GRAD``-like reads of random (sample, position, window), the filter
tile climbing from 0 by one (as the core's loop nest counts), past the layer's filters
included. Idle cycles anywhere, with random payloads under a
low valid or enable. The geometry (``F``, ``S``, batch, ``pool``) is held through a round and
sometimes changed between rounds. Every output lane is compared every cycle where the model
predicts it, and at the end every read is also compared with the golden model's unpooling
(sw_model.golden_conv.unpool) of the round's pooled deltas and winners."""

import random

import cocotb
import numpy as np
from cocotb.clock import Clock

from hw.core.conv_deltas import ConvDeltas
from sim import params as tb_params
from sim.packing import pack, unpack
from sim.stream_bench import Checker, Monitor, reset, run_checked
from sw_model.golden_conv import unpool
from sw_model.units.conv_deltas import ConvDeltasModel


def build(p):
    return ConvDeltas(p["rows"], p["cols"], p["delta_bits"], p["max_batch"], p["max_outputs"],
                      p["width"], p.get("scramble", False))


class LaneMonitor(Monitor):
    """Samples ``deltas`` as one field per lane (``deltas[r]``, unsigned), so that the model
    can leave lanes unpredicted."""

    def __init__(self, dut, lanes, bits):
        super().__init__(dut, ["deltas"])
        self.lanes, self.bits = lanes, bits

    def sample(self):
        v = super().sample()["deltas"]
        mask = (1 << self.bits) - 1
        return {f"deltas[{r}]": (v >> (r * self.bits)) & mask for r in range(self.lanes)}


def golden_read(rnd, read, rows):
    """What a read of a round returns, from sw_model.golden_conv.unpool of the round's pooled
    deltas (``B x F x 1 x S``) and winners."""
    b, t, s, window = read["sample"], read["tile"], read["position"], read["window"]
    deltas, winners = rnd["deltas"], rnd["winners"]
    filters = deltas.shape[1]
    if rnd["pool"]:
        full = unpool(deltas[:, :, None, :], winners[:, :, None, :])     # B x F x 2 x 2S
        dr, dc = divmod(window, 2)
        column = full[b, :, dr, 2 * s + dc]
    else:
        column = deltas[b, :, s]
    return [int(column[t * rows + r]) if t * rows + r < filters else 0 for r in range(rows)]


@cocotb.test()
async def conv_deltas_matches_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    unit = build(p)
    P, Q, bits = p["rows"], p["cols"], p["delta_bits"]
    layouts = {"write": unit.write_layout, "winner": unit.winner_layout,
               "read": unit.read_layout}
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start(start_high=False))
    for name in ("filters", "positions", "pool", "start", "write", "winner", "read"):
        getattr(dut, name).value = 0
    await reset(dut)
    top, bottom = (1 << (bits - 1)) - 1, -(1 << (bits - 1))
    extremes = [top, bottom, 0, 1, -1, top - 1, bottom + 1]
    max_tiles = -(-p["max_outputs"] // P)

    # The read's tile, every cycle: 0, the last cycle's or one more, as the core's loop nest
    # counts (the store steps its read addresses with it): it follows BACK's tiles, starts at
    # 0 for the reads and climbs through the filter tiles and past them.
    cursor = {"tile": 0}

    def garbage(name):
        """A random payload for an idle cycle (valid or en low; a read keeps the tile)."""
        value = unpack(rng.getrandbits(layouts[name].size), layouts[name])
        value["valid" if name != "read" else "en"] = 0
        if name == "read":
            value["tile"] = cursor["tile"]
        return value

    def delta():
        return rng.choice(extremes) if rng.random() < 0.2 else rng.randint(bottom, top)

    def geometry():
        s = rng.choice(p["positions"])
        f = rng.randint(1, min(p["max_filters"], p["max_outputs"] // s))
        return {"filters": f, "positions": s, "batch": rng.randint(1, p["max_batch"]),
                "pool": int(rng.choice(p["pool"]))}

    def cycle(g, start=0, write=None, winner=None, read=None):
        return {"filters": g["filters"], "positions": g["positions"], "pool": g["pool"],
                "start": start, "write": write or garbage("write"),
                "winner": winner or garbage("winner"), "read": read or garbage("read")}

    def idles(g):
        while rng.random() < p["idle"]:
            yield cycle(g)

    rounds = []

    def phases():
        g = None
        while True:
            if g is None or rng.random() < p["new_geometry"]:
                g = geometry()
            elif rng.random() < 0.3:
                g = {**g, "batch": rng.randint(1, p["max_batch"])}
            F, S, B = g["filters"], g["positions"], g["batch"]
            groups = -(-B // Q)
            rnd = {**g, "deltas": np.zeros((B, F, S)), "winners": np.zeros((B, F, S), dtype=int),
                   "reads": []}
            rounds.append(rnd)
            # Forward: every (f, s', group)'s winners, in random order, some twice.
            places = [(f, s, gr) for f in range(F) for s in range(S) for gr in range(groups)]
            rng.shuffle(places)
            places += rng.sample(places, len(places) // 8)
            rng.shuffle(places)
            for f, s, gr in places:
                yield from idles(g)
                won = [rng.randrange(4) if g["pool"] else 0 for _ in range(Q)]
                for q, w in enumerate(won):
                    if gr * Q + q < B:
                        rnd["winners"][gr * Q + q, f, s] = w
                yield cycle(g, winner={"valid": 1, "filter": f, "position": s, "group": gr,
                                       "winners": won})
            # BACK: start (sometimes with a column offered, which is dropped), then columns.
            yield from idles(g)
            start_write = None
            if rng.random() < 0.2:
                start_write = {"valid": 1, "sample": rng.randrange(B), "tile": 0,
                               "deltas": [delta() for _ in range(P)]}
            cursor["tile"] = 0
            yield cycle(g, start=1, write=start_write)
            for tile in range(-(-F * S // P)):
                cursor["tile"] = tile
                for gr in range(groups):
                    for q in range(Q):
                        b = gr * Q + q
                        if b >= B:
                            continue
                        yield from idles(g)
                        lanes = [delta() for _ in range(P)]
                        for r, v in enumerate(lanes):
                            f, s = divmod(tile * P + r, S)
                            if f < F:
                                rnd["deltas"][b, f, s] = v
                        yield cycle(g, write={"valid": 1, "sample": b, "tile": tile,
                                              "deltas": lanes})
            # GRAD-like reads: the tile from 0 up, a few reads each, past the layer's filters
            # (to the largest tile) and back to 0 now and then.
            tiles = -(-F // P)
            cursor["tile"] = 0
            for _ in range(p["reads"]):
                yield from idles(g)
                read = {"en": 1, "sample": rng.randrange(B), "tile": cursor["tile"],
                        "position": rng.randrange(S),
                        "window": rng.randrange(4) if g["pool"] else 0}
                rnd["reads"].append([read, None])
                yield cycle(g, read=read)
                if rng.random() < 0.25:
                    t = cursor["tile"]
                    last = t + 1 >= max_tiles or (t >= tiles and rng.random() < 0.5)
                    cursor["tile"] = 0 if last else t + 1
            rnd["done"] = True

    source = phases()
    state = {"applied": None, "pending": None}

    def inputs():
        values = next(source)
        state["applied"] = values
        return {name: pack(v, layouts[name]) if name in layouts else v
                for name, v in values.items()}

    def after_edge(applied, got):
        if state["pending"] is not None:           # the previous cycle's read
            state["pending"][1] = [unpack(got[f"deltas[{r}]"], unit.delta_layout.elem_shape)
                                   for r in range(P)]
            state["pending"] = None
        if state["applied"]["read"]["en"]:
            state["pending"] = rounds[-1]["reads"][-1]

    model = ConvDeltasModel(P, Q, bits, perturb=p.get("mutate"))

    class Unpacking:
        def outputs(self, values):
            return model.outputs(state["applied"])

        def step(self, values):
            model.step(state["applied"])

    monitor = LaneMonitor(dut, P, bits)
    await run_checked(dut, p, inputs, Unpacking(), monitor, Checker(), after_edge)
    if p.get("mutate"):
        return
    checked = 0
    for rnd in rounds:
        for read, got in rnd["reads"]:
            if got is None:
                continue
            want = golden_read(rnd, read, P)
            shape = {k: rnd[k] for k in ("filters", "positions", "batch", "pool")}
            assert got == want, f"read {read} of a round {shape}: {got}, golden unpool {want}"
            checked += 1
    done = sum(bool(rnd.get("done")) for rnd in rounds)
    dut._log.info(f"{len(rounds)} rounds ({done} whole), {checked} reads equal to the golden "
                  f"unpooling; coverage {model.coverage}")
    assert done >= p["min_rounds"], f"only {done} whole rounds"
    cov = model.coverage
    assert cov["unpredicted"] == 0, cov            # every read follows whole phases
    assert cov["read_won"] + cov["read_unpooled"] > 0 and cov["written"] > 0, cov
    if any(rnd["pool"] and rnd.get("done") for rnd in rounds):
        assert cov["read_lost_window"] > 0 and cov["read_won"] > 0, cov
