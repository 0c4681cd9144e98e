"""cocotb testbench of hw/core/batch_norm_backward.py against
sw_model/units/batch_norm_backward.py: tiles of random mini-batches (the deltas' and xhat's
extremes, inactive samples, scales near saturation), both passes with idle cycles, settings
drawn anew between tiles, garbage in the fields of an idle ``accumulate`` or ``apply`` (``clear``
included, as the core drives it); every output compared every cycle (``o``'s fields while valid)."""

import random

import cocotb
from cocotb.clock import Clock

from amaranth.hdl import unsigned

from contract.batch_norm import BACK_BITS, XHAT_BITS, batch_reciprocal
from hw.core.batch_norm_backward import BatchNormBackward
from sim import params as tb_params
from sim.packing import pack, unpack
from sim.stream_bench import Checker, Monitor, reset, run_checked, struct_fields
from sw_model.units.batch_norm_backward import LATENCY, BatchNormBackwardModel


def build(p):
    return BatchNormBackward(p["lanes"], p["delta_bits"], unsigned(p["tag_bits"]))


def draw_tile(rng, p):
    """A tile's settings and its cycles: the first pass, ``finish``, the second pass."""
    P, db = p["lanes"], p["delta_bits"]
    dtop, xtop = (1 << (db - 1)) - 1, (1 << (XHAT_BITS - 1)) - 1
    batch = rng.choice([1, 2, p["max_batch"], rng.randint(1, p["max_batch"])])
    af = rng.randint(0, 12)
    scale = rng.choice([4, 8, db - 1])
    htop = (1 << (BACK_BITS - 1)) - 1
    settings = {"inv_b": batch_reciprocal(batch), "act_frac": af,
                "h": [rng.choice([1 << 12, rng.randint(-htop - 1, htop),
                                  rng.randint(-(1 << 14), 1 << 14)]) for _ in range(P)]}

    def value(top, bits):
        r = rng.random()
        if r < 0.05:
            return rng.choice([top, -top - 1])
        v = rng.randint(-(1 << bits), 1 << bits) if r < 0.8 else rng.randint(-top - 1, top)
        return max(-top - 1, min(top, v))

    samples = [{"pz": [value(dtop, scale) for _ in range(P)],
                "xhat": [value(xtop, rng.choice([6, 9, 14])) for _ in range(P)],
                "active": rng.randrange(1 << P) if rng.random() < 0.5 else (1 << P) - 1}
               for _ in range(batch)]
    cycles = []

    def idle():
        while rng.random() < p["idle"]:
            cycles.append({})
    for b, s in enumerate(samples):
        idle()
        cycles.append({"accumulate": {"valid": 1, "clear": int(b == 0), "pz": s["pz"],
                                      "xhat": s["xhat"]}})
    idle()
    cycles.append({"finish": 1})
    for b, s in enumerate(samples):
        idle()
        cycles.append({"apply": {"valid": 1, "tag": rng.randrange(1 << p["tag_bits"]), **s}})
    return settings, cycles


@cocotb.test()
async def batch_norm_backward_matches_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    unit = build(p)
    acc_layout, app_layout = unit.accumulate.shape(), unit.apply.shape()
    h_layout, out_layout = unit.h.shape(), unit.o.shape()
    grads = {"gamma_grad": unit.gamma_grad.shape(), "bias_grad": unit.bias_grad.shape()}
    P = p["lanes"]
    # Idle cycles carry garbage in every field but ``valid`` (the core drives ``clear`` from
    # its sample counter whatever ``valid`` is): drawn from their own generator, so that the
    # tiles drawn are the same as without it.
    junk = random.Random(p["seed"] + 1)
    dtop, xtop = 1 << (p["delta_bits"] - 1), 1 << (XHAT_BITS - 1)

    def idle_acc():
        return {"valid": 0, "clear": junk.randint(0, 1),
                "pz": [junk.randrange(-dtop, dtop) for _ in range(P)],
                "xhat": [junk.randrange(-xtop, xtop) for _ in range(P)]}

    def idle_app():
        return {"valid": 0, "tag": junk.randrange(1 << p["tag_bits"]),
                "pz": [junk.randrange(-dtop, dtop) for _ in range(P)],
                "xhat": [junk.randrange(-xtop, xtop) for _ in range(P)],
                "active": junk.randrange(1 << P)}
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start(start_high=False))
    for name in ("accumulate", "finish", "apply", "inv_b", "act_frac", "h"):
        getattr(dut, name).value = 0
    await reset(dut)
    state = {"settings": {"inv_b": 0, "act_frac": 0, "h": [0] * P}, "cycles": [],
             "quiet": LATENCY}

    def inputs():
        if not state["cycles"]:
            if state["quiet"] < LATENCY + 1:           # settings change with the pipe empty
                state["quiet"] += 1
                cycle = {}
            else:
                state["settings"], state["cycles"] = draw_tile(rng, p)
                state["quiet"] = 0
        if state["cycles"]:
            cycle = state["cycles"].pop(0)
        st = state["settings"]
        return {"accumulate": pack(cycle.get("accumulate") or idle_acc(), acc_layout),
                "finish": cycle.get("finish", 0),
                "apply": pack(cycle.get("apply") or idle_app(), app_layout),
                "inv_b": st["inv_b"], "act_frac": st["act_frac"], "h": pack(st["h"], h_layout)}

    model = BatchNormBackwardModel(P, p["delta_bits"], mutate=p.get("mutate"))

    def fields(values):
        o = values["o"]
        out = struct_fields(o, out_layout, "o") if o["valid"] else {"o.valid": 0}
        out.update({name: pack(values[name], layout) for name, layout in grads.items()})
        return out

    class Unpacking:
        def outputs(self, values):
            return fields(model.outputs(values))

        def step(self, values):
            model.step({**values, "accumulate": unpack(values["accumulate"], acc_layout),
                        "apply": unpack(values["apply"], app_layout),
                        "h": unpack(values["h"], h_layout)})

    class OutputMonitor(Monitor):
        def sample(self):
            got = super().sample()
            return fields({"o": unpack(got["o"], out_layout),
                           **{n: unpack(got[n], layout) for n, layout in grads.items()}})

    monitor = OutputMonitor(dut, ["o", *grads])
    await run_checked(dut, p, inputs, Unpacking(), monitor, Checker())
    if not p.get("mutate"):
        dut._log.info(f"coverage: {model.coverage}")
        assert all(model.coverage.values()), model.coverage
