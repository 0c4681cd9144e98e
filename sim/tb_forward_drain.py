"""cocotb testbench of hw/core/forward_drain.py against sw_model/units/forward_drain.py: rows on
random cycles, rounded sums consistent with them or anything the port holds (beyond the
activations' range, negative, zero, the ReLU's edges), dropout settings changed on random
cycles (realistic keep scales from the contract and random 17-bit ones; not while pooled rows
are in flight), rows past the layer's last neuron; every output field compared every cycle.

With ``pooling``: phases with ``pool`` high send whole windows (the tile's rows for window
element 0, then 1, 2, 3, with idle cycles anywhere), their rounded sums mostly from a small set
of values so that equal maxima are frequent (and saturated ties whose active bits differ);
phases with ``pool`` low send rows as above. ``pool`` changes only between windows."""

import random

import cocotb
import numpy as np
from cocotb.clock import Clock

from amaranth.hdl import signed

from contract.config import NetConfig
from hw.core.forward_drain import ForwardDrain
from sim import params as tb_params
from sim.packing import join_rounded, pack, pack_rounded, unpack
from sim.stream_bench import Checker, FieldMonitor, reset, run_checked, struct_fields
from sw_model.fixedpoint import shift_rne
from sw_model.units.forward_drain import ForwardDrainModel


def build(p):
    return ForwardDrain(p["lanes"], signed(p["sum_bits"]), signed(p["rounded_bits"]),
                        p["act_bits"], p["neuron_bits"], p["index_bits"], p["row_bits"],
                        p["dropout"], **({"pooling": True, "rows": p["rows"]}
                                         if p.get("pooling") else {}),
                        rounding_parts=p.get("rounding_parts", False),
                        output_register=p.get("output_register", False),
                        multiplier=p.get("multiplier", "inferred"))


def keep_scale(dropout):
    """The contract's keep scale of a dropout value (``NetConfig.keep_scale``)."""
    return NetConfig(arch=(2, 2), dropout=dropout).keep_scale()


@cocotb.test()
async def forward_drain_matches_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    unit = build(p)
    Q, act = p["lanes"], p["act_bits"]
    in_layout, rounded_layout = unit.in_layout, unit.rounded.shape()
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start(start_high=False))
    pooling = bool(p.get("pooling"))
    inputs_now = ["i", "rounded", "neurons"] + (["drop", "dropout", "keep_scale"]
                                                if p["dropout"] else []) + (["pool"] * pooling)
    parts = p.get("rounding_parts", False)
    inputs_now += ["round_up"] * parts
    for name in inputs_now:
        getattr(dut, name).value = 0
    await reset(dut)
    smax = (1 << (p["sum_bits"] - 1)) - 1
    rmax = (1 << (p["rounded_bits"] - 1)) - 1
    top = (1 << act) - 1
    nmax = (1 << p["neuron_bits"]) - 1
    edges = [0, 1, -1, top - 1, top, top + 1, top + 2, 1 << (act - 1)]
    state = {"settings": None, "neurons": rng.randint(0, nmax), "last_sums": ([0] * Q, 0),
             "pool": 0, "windows": [], "last_pooled": False, "since_pooled": 3}
    ties = [0, 1, 5, top, top + 1, top + 9, -1, -6]     # y in {0, 1, 5, top}: frequent ties

    def settings():
        """Dropout settings, held for stretches and changed on random cycles."""
        dropout = rng.choice([0, 1, 64, 128, 255, rng.randint(0, 255)])
        r = rng.random()
        if r < 0.6:
            scale = keep_scale(dropout)                 # realistic: the setting's own scale
        elif r < 0.8:
            scale = keep_scale(rng.randint(0, 255))
        else:
            scale = rng.choice([0, 1, (1 << 17) - 1, rng.randrange(1 << 17)])
        return {"drop": int(rng.random() < 0.7), "dropout": dropout, "keep_scale": scale}

    def row_sums():
        """Sums and a shift that gives rounded sums near the activations' edges."""
        shift = rng.choice([0, 0, 1, 3, 8, rng.randint(0, 12)])
        sums = []
        for _ in range(Q):
            r = rng.random()
            if r < 0.1:
                v = rng.choice([-smax - 1, smax, 0, 1, -1])
            elif r < 0.6:
                half = 1 << shift >> 1
                v = (rng.choice(edges) << shift) + rng.randint(-half, half)
            else:
                v = rng.randint(-smax - 1, smax)
            sums.append(max(-smax - 1, min(smax, v)))
        return sums, shift

    def rounded_for(sums, shift):
        r = rng.random()
        if r < 0.5:                                   # consistent with the row's sums
            v = shift_rne(np.array(sums, dtype=np.float64), shift)
            return [max(-rmax - 1, min(rmax, int(x))) for x in v]
        return [rng.choice([rng.choice(edges), -rmax - 1, rmax, rng.randint(-rmax - 1, rmax),
                            rng.randint(-2 * top, 2 * top)]) for _ in range(Q)]

    def n_for():
        """Mostly a real neuron; sometimes at the layer's edge or anywhere."""
        neurons, r = state["neurons"], rng.random()
        if r < 0.6 and neurons:
            return rng.randrange(neurons)
        if r < 0.85:
            return max(0, min(nmax, neurons + rng.randint(-2, 1)))
        return rng.randint(0, nmax)

    def window_rows():
        """A pooled output position of a tile: its rows for window elements 0 to 3, each row's
        neuron and output column the same in every element."""
        places = [(n_for(), rng.randrange(nmax + 1)) for _ in range(p["rows"])]
        return [(r, w) + places[r] for w in range(4) for r in range(p["rows"])]

    def place(valid):
        """The next row's place; in a pooled phase, the next row of the window's passes."""
        at = {"valid": valid, "n": n_for(), "group": rng.randrange(1 << p["index_bits"]),
              "tile": rng.randrange(1 << p["index_bits"]),
              "row": rng.randrange(1 << p["row_bits"])}
        if not pooling:
            return at
        at.update(window=rng.randrange(4), column=rng.randrange(nmax + 1),
                  position=rng.randrange(nmax + 1))
        if not state["windows"] and rng.random() < 0.1:      # between windows: a new phase
            state["pool"] ^= 1
        if state["pool"] and valid:
            if not state["windows"]:
                state["windows"] = window_rows()
            at["row"], at["window"], at["n"], at["column"] = state["windows"].pop(0)
        return at

    def inputs():
        # Settings change on random cycles, but not while pooled rows are in flight: a pooled
        # row's dropout scaling is computed with each window element and carried with the
        # maximum, so they are held from a window's first element to its last's output (as the
        # core holds them through a phase).
        settled = not state["pool"] and state["since_pooled"] >= 3
        if state["settings"] is None or (settled and rng.random() < p["change"]):
            state["settings"] = settings()
        if rng.random() < 0.02:
            state["neurons"] = rng.choice([0, nmax] + [rng.randint(1, nmax)] * 3)
        valid = int(rng.random() >= p["idle"])
        sums, shift = row_sums()
        row = {"at": place(valid), "sums": sums}
        if p["dropout"]:
            row["draws"] = [rng.choice([rng.randint(0, 255), state["settings"]["dropout"],
                                        max(0, state["settings"]["dropout"] - 1)])
                            for _ in range(Q)]
        rounded = rounded_for(*state["last_sums"])   # the previous cycle's row's sums
        if state["last_pooled"] and rng.random() < 0.7:
            rounded = [rng.choice(ties) for _ in range(Q)]
        state["last_sums"] = (sums, shift)
        state["last_pooled"] = pooling and state["pool"] and valid
        state["since_pooled"] = 0 if state["last_pooled"] else state["since_pooled"] + 1
        values = {"i": pack(row, in_layout),
                  **pack_rounded(rounded, rounded_layout, parts, rng, -rmax - 1),
                  "neurons": state["neurons"]}
        if p["dropout"]:
            values.update(state["settings"])
        if pooling:
            values["pool"] = state["pool"]
        return values

    options = {}
    if p.get("mutate") == "half-up":
        options["rounding"] = lambda x, s: np.floor(np.asarray(x) * 2.0 ** -s + 0.5)
    elif p.get("mutate") == "relu-edge":
        options["relu_top"] = 1 << act                # rounded <= 2**act_bits stays active
    elif p.get("mutate") == "tie-last":
        options["tie"] = "last"                       # the last of equal maxima wins
    if pooling:
        options.update(pooling=True, rows=p["rows"])
    # "latency": checked against the model with the output register the other way
    options["output_register"] = (p.get("output_register", False)
                                  != (p.get("mutate") == "latency"))
    model = ForwardDrainModel(Q, act, dropout=p["dropout"], **options)
    out_layout = unit.out_layout

    class Unpacking:
        def outputs(self, values):
            want = model.outputs(values)
            return {**struct_fields(want["o"], out_layout, "o"), "busy": want["busy"]}

        def step(self, values):
            rounded = unpack(values["rounded"], rounded_layout)
            if parts:
                rounded = join_rounded(rounded, values["round_up"])
            model.step({**values, "i": unpack(values["i"], in_layout), "rounded": rounded})

    monitor = FieldMonitor(dut, {"o": out_layout, "busy": None})
    await run_checked(dut, p, inputs, Unpacking(), monitor, Checker())
    if not p.get("mutate"):            # a perturbed run stops at its first mismatch
        dut._log.info(f"coverage: {model.coverage}")
        wanted = dict(model.coverage)
        if not p["dropout"]:
            for name in ("dropped", "kept_scaled", "scale_saturated"):
                assert wanted.pop(name) == 0, model.coverage
        if pooling and p["rows"] > 1:        # the same row comes back after a row pass
            assert wanted.pop("same_row_next_cycle") == 0, model.coverage
        assert all(wanted.values()), model.coverage
