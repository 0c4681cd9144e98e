"""cocotb testbench of the whole accelerator (``lela_accelerator``) against the golden model.

The host driver (host/driver.py) runs unchanged in a :func:`cocotb.task.bridge` thread over
:class:`sim.cocotb_transport.CocotbTransport`, with :class:`sim.memory_model.MemoryModel` on the
weight bus. Parameters (tests/test_rtl_accelerator.py):

* ``config``: NetConfig fields of the network; ``variants``: ``{name: overrides}``, one cocotb
  test each (modes, seeds and sizes are registers, so one build runs them all);
* ``batches``: mini-batch sizes to train; ``infer_samples``; ``seed``;
* ``stall``, ``read_latency`` (memory), ``rx_stall``, ``tx_stall`` (host bytes);
* ``frame_timeout``, ``addr_bits``: as the Verilog was generated; ``error_frames``: run the
  error-frame test;
* ``perturbed``: config fields changed for the golden model only, in a third test that passes
  only if the comparisons catch the difference and name layer, word and lane (skipped if
  absent);
* ``arch``: a convolutional network's architecture (contract/architecture.py), trained in
  every variant (the config is then the core's, built with ``conv``; a variant's ``arch`` the
  network's flattened sizes).

The scenarios and every comparison with the golden model are sim/scenarios.py's, shared with
the fast Verilator harness (tests/test_accelerator.py); :class:`Bench` is their cocotb bench.
"""

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.handle import HierarchyObject
from cocotb.task import bridge
from cocotb.triggers import RisingEdge, Timer

from contract.architecture import parse_arch
from contract.config import NetConfig
from contract.limits import Limits
from contract.registers import weight_bases
from sim import params as tb_params
from sim import scenarios
from sim.cocotb_transport import CocotbTransport
from sim.memory_model import MemoryModel

P = tb_params.load()


def _tuples(d):
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def make_config(overrides=None):
    cfg = NetConfig(**_tuples(P["config"]))
    return cfg.replace(**_tuples(overrides)) if overrides else cfg


def comb_kickers(handle, depth=0):
    """The ``$auto$verilog_backend...dump_module$N`` registers Yosys's Verilog backend puts in
    every ``always @*`` block's sensitivity: toggling them evaluates every block once."""
    found = []
    for child in handle:
        if "dump_module" in child._name:
            found.append(child)
        elif isinstance(child, HierarchyObject) and depth < 8:
            found += comb_kickers(child, depth + 1)
    return found


async def settle_comb_logic(dut):
    """Icarus 11 runs no ``always @*`` block until one of its inputs changes, and many never do
    (an FSM that stays in its initial state keeps ``rx__ready`` X forever, reset or not: the
    open upstream issue of Amaranth's Verilog at t=0). Toggle the kickers once, before reset."""
    if "icarus" not in cocotb.SIM_NAME.lower():
        return
    kickers = comb_kickers(dut)
    for k in kickers:
        k.value = 1
    await Timer(1, "ns")
    for k in kickers:
        k.value = 0
    await Timer(1, "ns")
    dut._log.info(f"kicked the combinational blocks of {len(kickers)} modules")


class Bench:
    """Clock, reset, memory model and transport around the DUT for one cocotb test."""

    def __init__(self, dut, cfg, seed):
        self.dut, self.cfg = dut, cfg
        _, words = weight_bases(cfg)
        addr_bits = P["addr_bits"]
        self.mem = MemoryModel(dut, max(words, 1), cfg.array_rows, cfg.weight_bits, addr_bits,
                               read_latency=P["read_latency"], stall=P["stall"], seed=seed)
        self.link = CocotbTransport(dut, rx_stall=P["rx_stall"], tx_stall=P["tx_stall"],
                                    seed=seed + 1, default_timeout=P.get("timeout", 200_000))

    async def start(self):
        """Inputs low, combinational logic settled, clock, reset; then the memory model and the
        transport."""
        dut = self.dut
        for name in ("rx__valid", "rx__payload", "tx__ready", "mem__ar__ready", "mem__r__valid",
                     "mem__r__payload", "mem__aw__ready", "mem__w__ready"):
            getattr(dut, name).value = 0
        dut.rst.value = 1
        await settle_comb_logic(dut)
        cocotb.start_soon(Clock(dut.clk, 10, "ns").start(start_high=False))
        for _ in range(4):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        await RisingEdge(dut.clk)
        self.mem.start()
        self.link.start()

    def stop(self):
        self.link.stop()
        self.mem.stop()

    # ---- the scenario bench (sim/scenarios.py) ------------------------------------------
    def exchange(self, data, frames=1, cycles=None):
        return self.link.exchange(data, frames=frames, timeout=cycles)

    def run(self, cycles):
        return self.link.run(cycles)

    def take_writes(self):
        return self.mem.take_writes()

    def bus_errors(self):
        return list(self.mem.errors)

    def bus_counts(self):
        return {"words_read": self.mem.reads, "words_written": self.mem.writes_count,
                "rx_bytes": self.link.rx_bytes}

    def log(self, message):
        self.dut._log.info(message)


# ---- the tests ---------------------------------------------------------------------------
@cocotb.test()
@cocotb.parametrize(variant=list(P["variants"]))
async def trains_like_golden_model(dut, variant):
    cfg = make_config(P["variants"][variant])
    seed = P["seed"] + sorted(P["variants"]).index(variant)
    bench = Bench(dut, cfg, seed)
    await bench.start()
    rng = np.random.default_rng(seed)
    arch = parse_arch(P["arch"]) if P.get("arch") else None
    limits = Limits.for_config(make_config()) if arch is not None else None
    try:
        await bridge(scenarios.training_scenario)(bench, cfg, rng, P["batches"],
                                                  P["infer_samples"], variant, arch=arch,
                                                  limits=limits)
    finally:
        bench.stop()
    dut._log.info(f"{variant}: {bench.link.cycle} cycles, {bench.mem.reads} words read, "
                  f"{bench.mem.writes_count} written")


@cocotb.test(skip=not P.get("error_frames", True))
async def error_frames_then_training(dut):
    cfg = make_config()
    bench = Bench(dut, cfg, P["seed"] + 100)
    await bench.start()
    rng = np.random.default_rng(P["seed"] + 100)
    try:
        await bridge(scenarios.error_frames_scenario)(bench, cfg, rng, P["frame_timeout"])
    finally:
        bench.stop()


@cocotb.test(skip=not P.get("perturbed"))
async def perturbed_golden_model_is_caught(dut):
    """The golden model is given different settings (``perturbed``) than the device: the
    weight-memory comparison after the first TRAIN must fail and name layer, word and lane."""
    cfg = make_config()
    golden = cfg.replace(**_tuples(P.get("perturbed") or {}))
    bench = Bench(dut, cfg, P["seed"] + 200)
    await bench.start()
    rng = np.random.default_rng(P["seed"] + 200)
    try:
        await bridge(scenarios.perturbed_scenario)(bench, cfg, golden, rng)
    finally:
        bench.stop()
