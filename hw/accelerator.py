"""The accelerator: host interface, training core and counters behind one byte stream and one
weight bus (docs/HOST_INTERFACE.md). ``lela verilog`` writes it as ``lela_accelerator``."""

from amaranth.hdl import Module, Mux, ResetInserter, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out, connect

from contract.registers import COUNTERS

from .core import Op, TrainingCore
from .host_link import HostInterface
from .weight_bus import weight_bus_signature

__all__ = ["Accelerator", "DRIVER_COUNTERS"]

#: The counters the host driver reads to recover a lost reply (host/driver.py).
DRIVER_COUNTERS = ("train_commands", "infer_commands")


class Accelerator(wiring.Component):
    """The top level.

    Members
    -------
    rx : In(stream.Signature(8))
        Bytes from the host.
    tx : Out(stream.Signature(8))
        Bytes to the host.
    mem : Out(weight_bus_signature)
        The weight memory (an external memory controller, or an on-chip memory on a board).
    """

    def __init__(self, params):
        self.params = params
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "mem": Out(weight_bus_signature(params.addr_bits, params.word_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        core = TrainingCore(p)
        m.submodules.host = host = HostInterface(p, core)
        # RESET returns the core to its idle state whatever it was doing (its registers to
        # their least values: contract/limits.py); the host interface is never reset by it.
        # Pipelined, the reset reaches the core a cycle after the command is decoded, from a
        # register: it is the synchronous reset of thousands of the core's flip-flops.
        clear = host.clear
        if p.pipelined:
            clear = Signal()
            m.d.sync += clear.eq(host.clear)
        m.submodules.core = ResetInserter(clear)(core)
        connect(m, wiring.flipped(self.rx), host.rx)
        connect(m, host.tx, wiring.flipped(self.tx))
        connect(m, host.control, core.control)

        # The bus belongs to the core while it runs a command, else to the host interface.
        bus = self.mem
        owner_core = core.control.busy
        for ch in ("ar", "aw", "w"):
            src_core, src_host, dst = getattr(core.mem, ch), getattr(host.mem, ch), getattr(bus, ch)
            m.d.comb += [
                dst.valid.eq(Mux(owner_core, src_core.valid, src_host.valid)),
                dst.payload.eq(Mux(owner_core, Value.cast(src_core.payload),
                                   Value.cast(src_host.payload))),
                src_core.ready.eq(owner_core & dst.ready),
                src_host.ready.eq(~owner_core & dst.ready),
            ]
        m.d.comb += [
            core.mem.r.payload.eq(bus.r.payload), host.mem.r.payload.eq(bus.r.payload),
            core.mem.r.valid.eq(owner_core & bus.r.valid),
            host.mem.r.valid.eq(~owner_core & bus.r.valid),
            bus.r.ready.eq(Mux(owner_core, core.mem.r.ready, host.mem.r.ready)),
        ]

        # Counters.
        n = len(COUNTERS) + p.max_layers
        # Kept ``counter_bits`` wide (a small FPGA saves the adders), read as 64 bits.
        counters = Signal(data.ArrayLayout(p.counter_bits, n))
        for k in range(n):
            m.d.comb += host.counters[k].eq(counters[k])
        index = {name: k for k, name in enumerate(COUNTERS)}
        op = Signal(2)
        with m.If(core.control.start):
            m.d.sync += op.eq(core.control.cmd.op)
        increments = {
            "cycles": 1,
            "mac_busy_cycles": core.mac_busy,
            "ext_read_words": Mux(bus.r.valid & bus.r.ready, p.rows, 0),
            "ext_write_words": Mux(bus.w.valid & bus.w.ready, p.rows, 0),
            "host_rx_bytes": self.rx.valid & self.rx.ready,
            "host_tx_bytes": self.tx.valid & self.tx.ready,
            "train_cycles": core.control.busy & (op == Op.TRAIN),
            "infer_cycles": core.control.busy & (op == Op.INFER),
            "exit_skipped_beats": core.skipped,
            "train_commands": core.control.done & (op == Op.TRAIN),
            "infer_commands": core.control.done & (op == Op.INFER),
        }
        # A core without ``all_counters`` keeps only those the driver needs to recover a lost
        # reply (the commands and the correct predictions); the others read 0.
        kept = [k for name, k in index.items() if p.all_counters or name in DRIVER_COUNTERS]
        trained = core.control.done & (op == Op.TRAIN)
        if p.pipelined:
            # Counted a cycle late, from registers: what is counted (bus handshakes decided
            # from the host's command) ends at a register, not at the counters' adders. (The
            # host reads counters many cycles after what it counts.)
            for name, inc in increments.items():
                if index[name] in kept and not isinstance(inc, int):
                    late = Signal.like(inc, name=f"count_{name}")
                    m.d.sync += late.eq(inc)
                    increments[name] = late
            trained_late = Signal()
            m.d.sync += trained_late.eq(trained)
            trained = trained_late
        for name, inc in increments.items():
            k = index[name]
            if k in kept:
                m.d.sync += counters[k].eq(counters[k] + inc)
        for layer in range(p.max_layers):
            k = len(COUNTERS) + layer
            kept.append(k)
            with m.If(trained):
                m.d.sync += counters[k].eq(counters[k] + core.control.correct[layer])
        with m.If(host.clear):
            m.d.sync += [counters[k].eq(0) for k in kept]
        return m
