"""cocotb testbench of hw/skid_buffer.py against sw_model/units/skid_buffer.py, with a
scoreboard: the beats ``o`` passes on are the beats ``i`` took, in order, none lost or
repeated."""

import random

import cocotb
from cocotb.clock import Clock

from sim import params as tb_params
from sim.stream_bench import (Checker, Mismatch, Monitor, StreamDriver, StreamSink, reset,
                              run_checked)
from sw_model.units.skid_buffer import SkidBufferModel


@cocotb.test()
async def skid_buffer_matches_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start(start_high=False))
    dut.i__valid.value = 0
    dut.i__payload.value = 0
    dut.o__ready.value = 0
    await reset(dut)
    width, copies, valids = p["width"], p["stall_copies"], p.get("valid_copies", 0)
    model = SkidBufferModel(copies, valids)
    if p.get("mutate") == "ready":                  # i.ready from o.ready, as with no skid
        base_outputs = model.outputs

        def outputs(inputs):
            out = base_outputs(inputs)
            out["i__ready"] = int(bool(inputs["o__ready"]) or not inputs["i__valid"])
            return out
        model.outputs = outputs
    driver = StreamDriver("i", lambda: rng.randrange(1 << width), idle=p["idle"], rng=rng)
    sink = StreamSink("o", stall=p["stall"], rng=rng)
    sent, received = [], []

    def inputs():
        applied = {**driver.inputs(), **sink.inputs()}
        if valids:                                  # the producer's copies of its valid bit
            applied["i_valids"] = (1 << valids) - 1 if applied["i__valid"] else 0
        return applied

    def after_edge(applied, got):
        if applied["i__valid"] and got["i__ready"]:
            sent.append(applied["i__payload"])
        if got["o__valid"] and applied["o__ready"]:
            received.append(got["o__payload"])
            if received[-1] != sent[len(received) - 1]:
                raise Mismatch(f"beat {len(received) - 1} left as {received[-1]:#x}, "
                               f"entered as {sent[len(received) - 1]:#x}")
        driver.after_edge(applied["i__valid"] and got["i__ready"])

    monitor = Monitor(dut, ["o__valid", "o__payload", "i__ready",
                            *(["stalls"] if copies else []),
                            *(["o_valids"] if valids else [])])
    checker = Checker()
    await run_checked(dut, p, inputs, model, monitor, checker, after_edge)
    if not p.get("mutate"):
        assert len(sent) - len(received) in (0, 1), "beats lost in the skid buffer"
        assert len(received) > p["cycles"] // 10, "too few beats passed to mean anything"
    dut._log.info(f"{checker.cycles} cycles match, {len(received)} beats passed in order")
