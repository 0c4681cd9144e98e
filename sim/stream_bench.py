"""The pieces of a per-cycle testbench: driver, sink, monitor, model and checker.

A unit's ports are named as Amaranth emits them (``i__valid``, ``o__payload``...). Each cycle the
testbench lets the driver and the sink choose the inputs, the monitor sample what the DUT drives,
the model say what the DUT must drive, and the checker compare the two; then the clock ticks and
the model steps.
"""

import random

from amaranth.lib import data
from cocotb.triggers import ReadOnly, RisingEdge

from sim.packing import pack, unpack

__all__ = ["StreamDriver", "StreamSink", "Monitor", "FieldMonitor", "struct_fields", "Checker",
           "Mismatch", "run_cycles", "run_checked", "check_stream_unit", "reset"]


class Mismatch(AssertionError):
    """The DUT drove something the model did not predict."""


class StreamDriver:
    """Offers beats on an input stream with random idle cycles; holds a beat until taken.

    ``source()`` returns the next payload (an int) or None when there is nothing to send.
    """

    def __init__(self, prefix, source, idle=0.3, rng=None):
        self.prefix, self.source, self.idle = prefix, source, idle
        self.rng = rng or random.Random(0)
        self.pending = None

    def inputs(self):
        if self.pending is None and self.rng.random() >= self.idle:
            self.pending = self.source()
        if self.pending is None:
            return {f"{self.prefix}__valid": 0, f"{self.prefix}__payload": 0}
        return {f"{self.prefix}__valid": 1, f"{self.prefix}__payload": self.pending}

    def after_edge(self, accepted):
        if accepted:
            self.pending = None


class StreamSink:
    """Drives ``ready`` of an output stream, low with probability ``stall``."""

    def __init__(self, prefix, stall=0.3, rng=None):
        self.prefix, self.stall = prefix, stall
        self.rng = rng or random.Random(1)

    def inputs(self):
        return {f"{self.prefix}__ready": int(self.rng.random() >= self.stall)}


class Monitor:
    """Samples the named DUT outputs (after the combinational settle of this cycle)."""

    def __init__(self, dut, names):
        self.handles = {name: getattr(dut, name) for name in names}

    def sample(self):
        values = {name: h.value for name, h in self.handles.items()}
        unknown = [name for name, v in values.items() if not v.is_resolvable]
        if unknown:
            raise Mismatch(f"{', '.join(unknown)} not 0/1: "
                           + ", ".join(f"{n} = {values[n]}" for n in unknown))
        return {name: int(v) for name, v in values.items()}


def struct_fields(value, layout, prefix):
    """A port's value (unpacked, sim/packing.py) as its scalar struct fields, named
    ``prefix.field.subfield``; arrays stay packed."""
    if isinstance(layout, data.StructLayout):
        out = {}
        for name, field in layout:
            out.update(struct_fields(value[name], field.shape, f"{prefix}.{name}"))
        return out
    return {prefix: pack(value, layout)}


class FieldMonitor(Monitor):
    """A :class:`Monitor` that splits the struct ports (``layouts[name]``, None for a plain
    port) into their fields, so that a mismatch names the field."""

    def __init__(self, dut, layouts):
        super().__init__(dut, list(layouts))
        self.layouts = layouts

    def sample(self):
        got = {}
        for name, value in super().sample().items():
            layout = self.layouts[name]
            got.update(struct_fields(unpack(value, layout), layout, name) if layout
                       else {name: value})
        return got


class Checker:
    """Compares every sampled output with the model's prediction, cycle by cycle."""

    def __init__(self, log=None):
        self.cycles = 0
        self.log = log

    def check(self, cycle, inputs, got, want):
        self.cycles += 1
        for name, value in want.items():
            if got[name] != value:
                raise Mismatch(f"cycle {cycle}: {name} = {got[name]:#x}, model says {value:#x} "
                               f"(inputs {dict((k, hex(v)) for k, v in inputs.items())})")


async def reset(dut, cycles=3):
    """Hold ``rst`` for ``cycles`` rising edges. The benches start their clocks low
    (``start_high=False``): an edge at time zero would race the inputs' first values and the
    combinational logic's first evaluation, and a register without reset (a data register
    whose valid bit is reset) would keep what it caught for ever."""
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


async def run_cycles(dut, cycles, input_fn, model, monitor, checker, after_edge=None):
    """Per cycle: apply ``input_fn()``, sample, compare with ``model.outputs``, tick, step."""
    for cycle in range(cycles):
        inputs = input_fn()
        for name, value in inputs.items():
            getattr(dut, name).value = value
        await ReadOnly()
        got = monitor.sample()
        want = model.outputs(inputs)
        checker.check(cycle, inputs, got, want)
        await RisingEdge(dut.clk)
        model.step({**inputs, **got})
        if after_edge:
            after_edge(inputs, got)


async def run_checked(dut, params, *args):
    """:func:`run_cycles`; with ``params["mutate"]`` set the model was perturbed on purpose, and
    the run passes only if the checker catches a mismatch."""
    try:
        await run_cycles(dut, params["cycles"], *args)
    except Mismatch as e:
        if params.get("mutate"):
            dut._log.info(f"perturbed model caught as expected: {e}")
            return
        raise
    assert not params.get("mutate"), "the perturbed model was never caught"


def handshake_inputs(driver, sink):
    """Per-cycle inputs of a unit with one input stream and one output stream."""
    return lambda: {**driver.inputs(), **sink.inputs()}


def release_on_accept(driver, prefix="i"):
    """After each edge, let the driver drop the beat the DUT accepted."""
    return lambda applied, got: driver.after_edge(applied[f"{prefix}__valid"] and
                                                  got[f"{prefix}__ready"])


async def check_stream_unit(dut, params, model, in_layout, out_shape, driver, sink,
                            extra_outputs=(), extra_inputs=None, derived_inputs=None):
    """Check a unit with one input stream ``i`` and one output stream ``o`` against ``model``
    (which works on unpacked values) every cycle; ``extra_inputs()`` adds inputs to each cycle
    and ``derived_inputs(inputs)`` inputs made from the cycle's stream inputs (copies of a
    valid bit); ``extra_outputs`` names further outputs to compare."""
    packed = PackedModel(model, {"i__payload": in_layout}, {"o__payload": out_shape})
    monitor = Monitor(dut, ["o__valid", "o__payload", "i__ready", *extra_outputs])
    streams = handshake_inputs(driver, sink)
    def inputs():
        applied = streams()
        if extra_inputs is not None:
            applied.update(extra_inputs())
        if derived_inputs is not None:
            applied.update(derived_inputs(applied))
        return applied
    await run_checked(dut, params, inputs, packed, monitor, Checker(), release_on_accept(driver))


class PackedModel:
    """Adapts a model that works on Python values to the flat ports of the DUT.

    ``inputs`` maps an input payload port to its layout (its unpacked value reaches the model
    as ``<stream>__beat``); ``outputs`` maps an output payload port to its layout (the model's
    value is packed before comparison).
    """

    def __init__(self, model, inputs, outputs):
        self.model, self.in_layouts, self.out_layouts = model, inputs, outputs

    def _unpacked(self, values):
        from sim.packing import unpack
        values = dict(values)
        for port, layout in self.in_layouts.items():
            values[port.replace("__payload", "__beat")] = unpack(values[port], layout)
        return values

    def outputs(self, inputs):
        from sim.packing import pack
        out = self.model.outputs(self._unpacked(inputs))
        for port, layout in self.out_layouts.items():
            out[port] = pack(out[port], layout)
        return out

    def step(self, values):
        self.model.step(self._unpacked(values))
