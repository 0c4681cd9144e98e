"""cocotb testbench of hw/core/batch_statistics.py against sw_model/units/batch_statistics.py:
neurons of random mini-batches (partial last words, constant outputs with zero variance, the
activations' extremes), idle cycles between words, a ``finish`` sometimes in the same cycle as
the next neuron's first word, training and inference, and settings drawn anew between neurons
within the config's limits, garbage in the fields of an idle ``add`` or ``finish``; every output
compared every cycle (``o``'s fields while valid)."""

import random

import cocotb
from cocotb.clock import Clock

from contract.batch_norm import batch_reciprocal
from hw.core.batch_statistics import BatchStatistics
from sim import params as tb_params
from sim.packing import pack, unpack
from sim.stream_bench import Checker, Monitor, Mismatch, reset, run_checked
from sw_model.units.batch_statistics import LATENCY, BatchStatisticsModel

SETTINGS = ("training", "batch", "inv_b", "eps_log2", "stat_frac", "momentum", "frac_diff")


def draw_settings(rng, p):
    act, wb = p["act_bits"], p["weight_bits"]
    af = rng.randint(0, act)
    batch = rng.choice([1, 2, p["lanes"], p["max_batch"], rng.randint(1, p["max_batch"])])
    return {"training": int(rng.random() < 0.7), "batch": batch,
            "inv_b": batch_reciprocal(batch), "eps_log2": 2 * af - rng.randint(0, 2 * af),
            "stat_frac": rng.randint(0, min(16, 2 * wb - 2 * act)),
            "momentum": rng.choice([0, 3, rng.randint(0, 16)]),
            "frac_diff": rng.choice([0, rng.randint(0, wb - 1 - af)])}


def neuron_cycles(rng, p, st, finish_with_next):
    """One neuron's cycles: its words (with idle cycles between), then its finish."""
    act, Q, wb = p["act_bits"], p["lanes"], p["weight_bits"]
    top = (1 << act) - 1
    kind = rng.random()
    level = rng.randint(0, top)
    words = []
    for g in range(-(-st["batch"] // Q)):
        if kind < 0.15:
            y = [level] * Q                         # zero variance
        elif kind < 0.3:
            y = [rng.choice([0, top]) for _ in range(Q)]
        else:
            y = [rng.randint(0, top) for _ in range(Q)]
        mask = sum(1 << q for q in range(Q) if g * Q + q < st["batch"])
        words.append({"valid": 1, "clear": int(g == 0), "y": y, "mask": mask})
    stat_top = (1 << (2 * wb)) - 1
    gamma = rng.choice([1 << (wb - 2), -(1 << (wb - 1)), (1 << (wb - 1)) - 1,
                        rng.randint(-(1 << (wb - 1)), (1 << (wb - 1)) - 1)])
    var = rng.choice([0, stat_top, rng.randint(0, 1 << (2 * act + st["stat_frac"])),
                      rng.randint(0, stat_top)])
    mean = rng.choice([0, stat_top, rng.randint(0, 1 << (act + st["stat_frac"])),
                       rng.randint(0, stat_top)])
    cycles = []
    for word in words:
        while rng.random() < p["idle"]:
            cycles.append({"add": None, "finish": None})
        cycles.append({"add": word, "finish": None})
    while rng.random() < p["idle"]:
        cycles.append({"add": None, "finish": None})
    cycles.append({"add": None, "finish": {"valid": 1, "gamma": gamma, "mean": mean,
                                           "var": var}, "merge": finish_with_next})
    return cycles


@cocotb.test()
async def batch_statistics_matches_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    unit = BatchStatistics(p["lanes"], p["act_bits"], p["weight_bits"])
    add_layout, fin_layout, out_layout = (unit.add.shape(), unit.finish.shape(),
                                          unit.o.shape())
    # Idle cycles carry garbage in every field but ``valid`` (the core drives ``clear`` from
    # its group counter whatever ``valid`` is): drawn from their own generator, so that the
    # neurons drawn are the same as without it.
    junk = random.Random(p["seed"] + 1)
    wb, stat_top = p["weight_bits"], (1 << (2 * p["weight_bits"])) - 1

    def idle_add():
        return {"valid": 0, "clear": junk.randint(0, 1),
                "y": [junk.randrange(1 << p["act_bits"]) for _ in range(p["lanes"])],
                "mask": junk.randrange(1 << p["lanes"])}

    def idle_fin():
        return {"valid": 0, "gamma": junk.randrange(-(1 << (wb - 1)), 1 << (wb - 1)),
                "mean": junk.randint(0, stat_top), "var": junk.randint(0, stat_top)}
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start(start_high=False))
    dut.add.value = dut.finish.value = 0
    for name in SETTINGS:
        getattr(dut, name).value = 0
    await reset(dut)
    state = {"settings": draw_settings(rng, p), "queue": [], "quiet": LATENCY}

    def inputs():
        queue = state["queue"]
        if not queue:
            if state["quiet"] < LATENCY + 1:            # settings change with the pipe empty
                state["quiet"] += 1
                return packed(None, None)
            if rng.random() < 0.3:
                state["settings"] = draw_settings(rng, p)
            queue.extend(neuron_cycles(rng, p, state["settings"], rng.random() < 0.3))
        cycle = queue.pop(0)
        add, fin = cycle["add"], cycle["finish"]
        if fin is not None:
            state["quiet"] = 0
            if cycle.get("merge") and rng.random() < 0.5:
                # the next neuron's first word in the finish's cycle (same settings)
                nxt = neuron_cycles(rng, p, state["settings"], False)
                first = next(i for i, c in enumerate(nxt) if c["add"] is not None)
                add = nxt[first]["add"]
                queue.extend(nxt[first + 1:])
        return packed(add, fin)

    def packed(add, fin):
        return {"add": pack(add or idle_add(), add_layout),
                "finish": pack(fin or idle_fin(), fin_layout), **state["settings"]}

    model = BatchStatisticsModel(p["lanes"], mutate=p.get("mutate"))

    class Unpacking:
        def outputs(self, values):
            o = model.outputs(values)["o"]
            if not o["valid"]:
                return {"o.valid": 0}
            return {f"o.{k}": v for k, v in o.items()}

        def step(self, values):
            model.step({**values, "add": unpack(values["add"], add_layout),
                        "finish": unpack(values["finish"], fin_layout)})

    class OutputMonitor(Monitor):
        def sample(self):
            o = unpack(super().sample()["o"], out_layout)
            return {f"o.{k}": v for k, v in o.items()}

    await run_checked(dut, p, inputs, Unpacking(), OutputMonitor(dut, ["o"]), Checker())
    if not p.get("mutate"):
        dut._log.info(f"coverage: {model.coverage}")
        wanted = dict(model.coverage)
        if p["weight_bits"] + 12 < 24:   # |h| ~ |g| * 2**12 / sqrt(eps): it cannot saturate
            assert wanted.pop("h_saturated") == 0, model.coverage
        assert all(wanted.values()), model.coverage
