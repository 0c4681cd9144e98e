"""cocotb testbench of hw/mac_array.py against sw_model/units/mac_array.py."""

import random

import cocotb
from amaranth.hdl import signed, unsigned
from cocotb.clock import Clock

from hw.mac_array import MacArray
from sim import params as tb_params
from sim.packing import pack
from sim.stream_bench import StreamDriver, StreamSink, check_stream_unit, reset
from sw_model.units.mac_array import MacArrayModel


def shape_of(spec):
    kind, width = spec
    return signed(width) if kind == "s" else unsigned(width)


def operand(rng, shape, extreme):
    lo = -(1 << (shape.width - 1)) if shape.signed else 0
    hi = (1 << (shape.width - (1 if shape.signed else 0))) - 1
    if extreme or rng.random() < 0.2:
        return lo if (extreme or rng.random() < 0.5) else hi
    return rng.randint(lo, hi)


class AheadSink(StreamSink):
    """A consumer whose ``ready`` is a register: it says on ``ready_next`` what ``ready`` will
    be in the next cycle."""

    def __init__(self, prefix, stall=0.3, rng=None):
        super().__init__(prefix, stall, rng)
        self.ready = 0

    def inputs(self):
        ready, self.ready = self.ready, int(self.rng.random() >= self.stall)
        return {f"{self.prefix}__ready": ready, "ready_next": self.ready}


@cocotb.test()
async def mac_array_matches_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    unit = MacArray(p["rows"], p["cols"], shape_of(p["a_shape"]), shape_of(p["b_shape"]),
                    p["depth"], pipelined=p.get("pipelined", True),
                    operand_stage=p.get("operand_stage", False),
                    sum_register=p.get("sum_register", True),
                    ready_ahead=p.get("ready_ahead", False),
                    row_valids=p.get("row_valids", False),
                    multiplier=p.get("multiplier", "inferred"))
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start(start_high=False))
    dut.i__valid.value = 0
    dut.i__payload.value = 0
    dut.o__ready.value = 0
    await reset(dut)

    left = [0]

    def source():
        first = left[0] == 0
        if first:
            left[0] = p["depth"] if p["extreme"] else rng.randint(1, p["depth"])
        left[0] -= 1
        beat = {"a": [operand(rng, unit.a_shape, p["extreme"]) for _ in range(p["rows"])],
                "b": [operand(rng, unit.b_shape, p["extreme"]) for _ in range(p["cols"])],
                "first": int(first), "last": int(left[0] == 0)}
        return pack(beat, unit.in_layout)

    driver = StreamDriver("i", source, idle=p["idle"], rng=rng)
    sink = (AheadSink("o", stall=p["stall"], rng=rng) if unit.ready_ahead
            else StreamSink("o", stall=p["stall"], rng=rng))
    model = MacArrayModel(p["rows"], p["cols"], unit.acc_shape.width,
                          pipelined=p.get("pipelined", True),
                          # "stage": checked against the model with the stage the other way
                          operand_stage=(p.get("operand_stage", False)
                                         != (p.get("mutate") == "stage")),
                          # "sums": checked against the model with the sum register the
                          # other way
                          sum_register=(p.get("sum_register", True)
                                        != (p.get("mutate") == "sums")),
                          ready_ahead=unit.ready_ahead and p.get("mutate") != "sums")
    if p.get("mutate") == "sign":
        base_step = model.step

        def step(values):                        # treat operand a as unsigned
            beat = values.get("i__beat")
            if beat:
                w = unit.a_shape.width
                beat["a"] = [v % (1 << w) for v in beat["a"]]
            base_step(values)
        model.step = step
    rows_valid = (1 << p["rows"]) - 1

    def row_valids(applied):                       # the producer's copies of its valid bit
        return {"row_valids": rows_valid if applied["i__valid"] else 0}
    await check_stream_unit(dut, p, model, unit.in_layout, unit.o.payload.shape(), driver, sink,
                            extra_outputs=["ending"],
                            derived_inputs=row_valids if unit.has_row_valids else None)
