"""cocotb testbench of hw/core/batch_normalise.py against sw_model/units/batch_normalise.py:
neurons whose constants come from the golden model's own statistics of a random mini-batch
(so ``xhat`` and ``z`` take their realistic values) or are drawn anywhere in their ranges (the
saturations and clippings), training and inference, words on random cycles; every output
compared every cycle (``o``'s fields while valid)."""

import random

import cocotb
import numpy as np
from cocotb.clock import Clock

from amaranth.hdl import unsigned

from contract.batch_norm import batch_reciprocal
from hw.core.batch_normalise import BatchNormalise
from sim import params as tb_params
from sim.packing import pack, unpack
from sim.stream_bench import Checker, Monitor, reset, run_checked, struct_fields
from sw_model.golden_batch_norm import inv_sqrt_parts
from sw_model.units.batch_normalise import LATENCY, BatchNormaliseModel

CONSTANTS = ("training", "batch", "act_frac", "weight_frac", "stat_frac", "s1", "mean", "r",
             "j", "gamma")


def build(p):
    return BatchNormalise(p["lanes"], p["act_bits"], p["weight_bits"],
                          unsigned(p["act_bits"] + 8), unsigned(13), unsigned(p["j_bits"]),
                          unsigned(p["tag_bits"]))


def draw_neuron(rng, p):
    """A neuron's constants and its mini-batch of outputs."""
    act, wb, Q = p["act_bits"], p["weight_bits"], p["lanes"]
    top = (1 << act) - 1
    af = rng.randint(0, act)
    batch = rng.choice([1, Q, p["max_batch"], rng.randint(1, p["max_batch"])])
    spread = rng.choice([0, 1, 3, top])
    centre = rng.randint(0, top)
    y = [min(top, max(0, centre + rng.randint(-spread, spread))) for _ in range(batch)]
    rf = rng.randint(0, min(16, 2 * wb - 2 * act))
    eps_log2 = 2 * af - rng.randint(0, 2 * af)
    st = {"training": int(rng.random() < 0.7), "batch": batch, "act_frac": af,
          "weight_frac": rng.randint(af, wb - 1), "stat_frac": rf,
          "s1": sum(y), "gamma": rng.choice([1 << (wb - 2), rng.randint(-(1 << (wb - 1)),
                                                                         (1 << (wb - 1)) - 1)])}
    if rng.random() < 0.8:                        # the statistics of these outputs
        mean = (st["s1"] * batch_reciprocal(batch)) >> (20 - rf)
        var = int(np.var(y) * (1 << rf))
        st["mean"] = rng.choice([mean, max(0, mean + rng.randint(-99, 99))])
        if st["training"]:
            a = batch * sum(v * v for v in y) - st["s1"] ** 2 + (batch * batch << eps_log2)
        else:
            a = (var + (1 << (eps_log2 + rf))) << rf
        r, j = (int(v) for v in inv_sqrt_parts(a))
    else:                                         # anything the ports hold
        st["mean"] = rng.randrange(1 << (2 * wb))
        r, j = rng.randint(1, 4096), rng.randrange(1 << p["j_bits"])
    st.update(r=r, j=min(j, (1 << p["j_bits"]) - 1))
    if rng.random() < 0.3:
        aim_at_top(st, y[0], p)
    words = [y[g:g + Q] + [rng.randint(0, top)] * max(0, g + Q - batch)
             for g in range(0, batch, Q)]
    return st, words


def aim_at_top(st, y, p):
    """Choose the scale (with ``weight_frac = weight_bits - 1``) so that output ``y`` lands on
    the top output level, ``zz = 2**act_bits - 1``, where the normalised value allows it: the
    edge of ``active``."""
    wb, half = p["weight_bits"], 1 << (p["act_bits"] - 1)
    probe = BatchNormaliseModel(1, p["act_bits"])
    xhat = probe.word({"y": [y], "tag": 0}, {**st, "gamma": 0, "weight_frac": 0})["xhat"][0]
    wf = wb - 1
    if xhat and abs(xhat) < 1 << (wf - 1):
        gamma = ((half - 1) << wf) // xhat
        if -(1 << (wb - 1)) <= gamma < 1 << (wb - 1):
            st.update(gamma=gamma, weight_frac=wf)


@cocotb.test()
async def batch_normalise_matches_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    unit = build(p)
    in_layout, out_layout = unit.i.shape(), unit.o.shape()
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start(start_high=False))
    dut.i.value = 0
    for name in CONSTANTS:
        getattr(dut, name).value = 0
    await reset(dut)
    state = {"st": {name: 0 for name in CONSTANTS}, "words": [], "quiet": LATENCY}
    junk = random.Random(p["seed"] + 1)              # an idle word's fields, on their own

    def inputs():
        if not state["words"]:
            if state["quiet"] < LATENCY:             # constants change with the pipe empty
                state["quiet"] += 1
                return {"i": 0, **state["st"]}
            state["st"], state["words"] = draw_neuron(rng, p)
            state["quiet"] = 0
        if rng.random() < p["idle"]:                # garbage but for valid
            word = {"valid": 0, "tag": junk.randrange(1 << p["tag_bits"]),
                    "y": [junk.randrange(1 << p["act_bits"]) for _ in range(p["lanes"])]}
        else:
            word = {"valid": 1, "tag": rng.randrange(1 << p["tag_bits"]),
                    "y": state["words"].pop(0)}
        return {"i": pack(word, in_layout), **state["st"]}

    model = BatchNormaliseModel(p["lanes"], p["act_bits"], mutate=p.get("mutate"))

    class Unpacking:
        def outputs(self, values):
            o = model.outputs(values)["o"]
            return struct_fields(o, out_layout, "o") if o["valid"] else {"o.valid": 0}

        def step(self, values):
            model.step({**values, "i": unpack(values["i"], in_layout)})

    class OutputMonitor(Monitor):
        def sample(self):
            return struct_fields(unpack(super().sample()["o"], out_layout), out_layout, "o")

    await run_checked(dut, p, inputs, Unpacking(), OutputMonitor(dut, ["o"]), Checker())
    if not p.get("mutate"):
        dut._log.info(f"coverage: {model.coverage}")
        wanted = dict(model.coverage)
        for name in p.get("rare", ()):
            wanted.pop(name)
        assert all(wanted.values()), model.coverage
