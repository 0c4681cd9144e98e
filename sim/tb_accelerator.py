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
  absent).

After ``INIT_WEIGHTS`` and after every ``TRAIN`` the test compares the device's correct counts
with :meth:`FixedPointNet.train_batch`, every weight-memory write since the previous check with
the golden model's new weights in memory order (layer by layer; tile ``t``, column ``j`` then the
bias word; lane ``p`` = neuron ``tP + p``, 0 past the last neuron), and ``read_weights()``.
"""

import re

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.handle import HierarchyObject
from cocotb.task import bridge
from cocotb.triggers import RisingEdge, Timer

from host.driver import Accelerator
from contract.protocol import MAX_PAYLOAD, REPLY, SYNC, Command, Frame, FrameDecoder, Status, encode
from contract.registers import layer_words, weight_bases
from contract.config import NetConfig
from sim import params as tb_params
from sim.cocotb_transport import CocotbTransport
from sim.memory_model import MemoryModel
from sw_model.golden import FixedPointNet

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
        cocotb.start_soon(Clock(dut.clk, 10, "ns").start())
        for _ in range(4):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        await RisingEdge(dut.clk)
        self.mem.start()
        self.link.start()

    def stop(self):
        self.link.stop()
        self.mem.stop()


# ---- comparisons with the golden model ------------------------------------------------------
def expected_writes(cfg, net):
    """``(addr, lanes, where, first neuron)`` of every layer's words in memory order, layer 0
    first."""
    bases, _ = weight_bases(cfg)
    p = cfg.array_rows
    out = []
    for i in range(cfg.layers):
        n, j = cfg.neurons(i), cfg.fan_in(i)
        tiles = -(-n // p)
        grid = np.zeros((tiles * p, j + 1), dtype=np.int64)
        grid[:n, :j] = net.weights[i]
        grid[:n, j] = net.biases[i]
        words = grid.reshape(tiles, p, j + 1).transpose(0, 2, 1).reshape(tiles * (j + 1), p)
        assert len(words) == layer_words(cfg, i)
        for k, lanes in enumerate(words):
            t, col = divmod(k, j + 1)
            where = (f"layer {i} word {k} (tile {t}, "
                     f"{'bias' if col == j else f'column {col}'})")
            out.append((bases[i] + k, [int(v) for v in lanes], where, t * p))
    return out


def check_writes(when, got, cfg, net):
    want = expected_writes(cfg, net)
    problems = []
    for n, ((addr, lanes), (w_addr, w_lanes, where, row0)) in enumerate(zip(got, want)):
        if addr != w_addr:
            problems.append(f"write #{n} went to address {addr}, expected {w_addr} ({where})")
        for p, (a, b) in enumerate(zip(lanes, w_lanes)):
            if a != b:
                problems.append(f"{where} lane {p} (neuron {row0 + p}): device wrote {a}, "
                                f"golden {b}")
        if len(problems) >= 8:
            break
    if len(got) != len(want):
        problems.append(f"{len(got)} words written, golden model expects {len(want)}")
    if problems:
        raise AssertionError(f"{when}: weight-memory writes differ from the golden model: "
                             + "; ".join(problems[:8]))


def check_weights(when, layers, net):
    for i, (w, b) in enumerate(layers):
        gw, gb = net.weights[i].astype(np.int64), net.biases[i].astype(np.int64)
        bad = np.argwhere(w != gw)
        if len(bad):
            r, c = bad[0]
            raise AssertionError(f"{when}: read_weights layer {i}: {len(bad)} weights differ, "
                                 f"first w[{r}, {c}] = {w[r, c]}, golden {gw[r, c]}")
        bad = np.flatnonzero(b != gb)
        if len(bad):
            r = bad[0]
            raise AssertionError(f"{when}: read_weights layer {i}: {len(bad)} biases differ, "
                                 f"first b[{r}] = {b[r]}, golden {gb[r]}")


def check_mem_errors(bench, when):
    if bench.mem.errors:
        raise AssertionError(f"{when}: weight-bus errors: " + "; ".join(bench.mem.errors[:5]))


def train_and_check(bench, acc, net, rng, batches, label):
    cfg, mem = bench.cfg, bench.mem
    log = bench.dut._log
    totals = np.zeros(cfg.layers, dtype=int)
    for k, size in enumerate(batches):
        x = rng.integers(0, 256, size=(size, cfg.arch[0]))
        y = rng.integers(0, cfg.classes, size=size)
        start = bench.link.cycle
        c_dev = acc.train_batch(x, y)
        c_gold = net.train_batch(x, y)
        when = f"{label} TRAIN batch {k} ({size} samples)"
        check_mem_errors(bench, when)
        if list(c_dev) != list(c_gold):
            raise AssertionError(f"{when}: correct counts per layer {list(c_dev)}, "
                                 f"golden {c_gold}")
        check_writes(when, mem.take_writes(), cfg, net)
        check_weights(when, acc.read_weights(), net)
        totals += c_gold
        log.info(f"{when}: correct {c_gold}, bit-exact ({bench.link.cycle - start} cycles "
                 f"with the checks)")
    return totals


def configure_and_init(bench, acc, label, golden_cfg=None):
    cfg, mem = bench.cfg, bench.mem
    acc.configure(cfg)
    if mem.writes:
        raise AssertionError(f"{label}: WRITE_CONFIG wrote {len(mem.writes)} memory words")
    acc.init_weights()
    net = FixedPointNet(golden_cfg or cfg)
    check_mem_errors(bench, f"{label} INIT_WEIGHTS")
    check_writes(f"{label} INIT_WEIGHTS", mem.take_writes(), cfg, net)
    check_weights(f"{label} INIT_WEIGHTS", acc.read_weights(), net)
    return net


def check_inference(bench, acc, net, rng, label):
    cfg = bench.cfg
    n = P["infer_samples"]
    x = rng.integers(0, 256, size=(n, cfg.arch[0]))
    preds, exits = acc.infer(x)
    gold = np.array(net.predict(x))
    bad = np.argwhere(preds != gold)
    if len(bad):
        i, s = bad[0]
        raise AssertionError(f"{label} INFER: {len(bad)} predictions differ, first layer {i} "
                             f"sample {s}: {preds[i, s]}, golden {gold[i, s]}")
    if not np.all(exits == cfg.layers - 1):
        raise AssertionError(f"{label} INFER without early exit: exit layers {list(exits)}, "
                             f"expected {cfg.layers - 1} for every sample")
    # A threshold that lets about half the samples leave after layer 0.
    s0 = np.sort(net.infer(x)[0], axis=1)
    margins = (s0[:, -1] - s0[:, -2]).astype(int)
    thr = int(min(max(np.median(margins), 1), (1 << 16) - 1))
    e_preds, e_exits = acc.infer(x, exit_threshold=thr)
    g_pred, g_exit = net.infer_early_exit(x, thr)
    if not np.array_equal(e_exits, g_exit):
        raise AssertionError(f"{label} INFER early exit (threshold {thr}): exit layers "
                             f"{list(e_exits)}, golden {list(g_exit)}")
    final = e_preds[e_exits, np.arange(n)]
    if not np.array_equal(final, g_pred):
        s = int(np.flatnonzero(final != g_pred)[0])
        raise AssertionError(f"{label} INFER early exit (threshold {thr}): sample {s} predicts "
                             f"{final[s]} at its exit layer {e_exits[s]}, golden {g_pred[s]}")
    for s in range(n):      # layers up to the exit are computed, so defined
        for i in range(e_exits[s] + 1):
            if e_preds[i, s] != gold[i, s]:
                raise AssertionError(f"{label} INFER early exit: sample {s} layer {i} (exit "
                                     f"{e_exits[s]}) predicts {e_preds[i, s]}, golden "
                                     f"{gold[i, s]}")
    bench.dut._log.info(f"{label}: inference bit-exact; threshold {thr}, exits "
                        f"{np.bincount(e_exits, minlength=cfg.layers).tolist()} per layer")


def check_counters(bench, acc, totals, label):
    c = acc.counters()
    p = bench.cfg.array_rows
    want = {"ext_write_words": p * bench.mem.writes_count, "ext_read_words": p * bench.mem.reads,
            "host_rx_bytes": bench.link.rx_bytes}
    want.update({f"correct_{i}": int(v) for i, v in enumerate(totals)})
    bad = {k: (c[k], v) for k, v in want.items() if c[k] != v}
    if bad:
        raise AssertionError(f"{label} READ_COUNTERS: " + ", ".join(
            f"{k} = {a}, expected {b}" for k, (a, b) in bad.items()))
    bench.dut._log.info(f"{label}: counters {c}")


# ---- the tests ---------------------------------------------------------------------------
@cocotb.test()
@cocotb.parametrize(variant=list(P["variants"]))
async def trains_like_golden_model(dut, variant):
    cfg = make_config(P["variants"][variant])
    seed = P["seed"] + sorted(P["variants"]).index(variant)
    bench = Bench(dut, cfg, seed)
    await bench.start()
    rng = np.random.default_rng(seed)

    def host():
        acc = Accelerator(bench.link)
        net = configure_and_init(bench, acc, variant)
        totals = train_and_check(bench, acc, net, rng, P["batches"], variant)
        check_inference(bench, acc, net, rng, variant)
        check_counters(bench, acc, totals, variant)
        check_mem_errors(bench, variant)

    try:
        await bridge(host)()
    finally:
        bench.stop()
    dut._log.info(f"{variant}: {bench.link.cycle} cycles, {bench.mem.reads} words read, "
                  f"{bench.mem.writes_count} written")


@cocotb.test(skip=not P.get("error_frames", True))
async def error_frames_then_training(dut):
    cfg = make_config()
    bench = Bench(dut, cfg, P["seed"] + 100)
    await bench.start()
    link = bench.link
    rng = np.random.default_rng(P["seed"] + 100)
    timeout = P["frame_timeout"]

    def expect(what, data, status, command, cycles=None):
        before = link.cycle
        out = link.exchange(data, frames=1, timeout=cycles)
        events = FrameDecoder().feed(out)
        frames = [e for e in events if isinstance(e, Frame)]
        if len(frames) != 1 or len(events) != 1:
            raise AssertionError(f"{what}: expected one reply frame, got {events!r} from "
                                 f"{out.hex()}")
        reply = frames[0]
        if not reply.payload:
            raise AssertionError(f"{what}: reply without a status byte")
        got = reply.payload[0]
        name = Status(got).name if got in Status._value2member_map_ else hex(got)
        if got != status:
            raise AssertionError(f"{what}: status {name}, expected {Status(status).name}")
        if reply.command != command | REPLY:
            raise AssertionError(f"{what}: reply command {reply.command:#04x}, expected "
                                 f"{command | REPLY:#04x}")
        dut._log.info(f"{what}: {name} after {link.cycle - before} cycles")
        return link.cycle - before

    def host():
        expect("TRAIN before WRITE_CONFIG", encode(Command.TRAIN, b"\x01"),
               Status.OUT_OF_ORDER, Command.TRAIN)
        garbage = bytes(b for b in rng.integers(0, 256, 40).tolist() if b != SYNC)
        expect("garbage, then RESET", garbage + encode(Command.RESET), Status.OK, Command.RESET)
        bad = bytearray(encode(Command.RESET))
        bad[-1] ^= 0x5A
        expect("frame with a bad CRC", bytes(bad), Status.BAD_CRC, Command.RESET)
        frame = encode(Command.WRITE_CONFIG, bytes([0]) + (1).to_bytes(4, "little"))
        link.exchange(frame[:-3], frames=0)             # until rx took the truncated frame
        early = link.run(timeout - 20)
        if early:
            raise AssertionError(f"truncated frame: {early.hex()} came out within "
                                 f"{timeout - 20} cycles, before the frame timeout of {timeout}")
        expect("truncated frame", b"", Status.TIMEOUT, Command.WRITE_CONFIG, cycles=timeout)
        oversized = bytes([SYNC, Command.WRITE_WEIGHTS]) + (MAX_PAYLOAD + 1).to_bytes(2, "little")
        expect("oversized length", oversized, Status.OVERSIZED, Command.WRITE_WEIGHTS)
        expect("unknown command", encode(0x55, b"\x00"), Status.UNKNOWN_COMMAND, 0x55)
        expect("WRITE_CONFIG of 3 bytes", encode(Command.WRITE_CONFIG, b"\x00\x01\x02"),
               Status.BAD_LENGTH, Command.WRITE_CONFIG)
        expect("WRITE_CONFIG past the last register",
               encode(Command.WRITE_CONFIG, bytes([255]) + (1).to_bytes(4, "little")),
               Status.BAD_LENGTH, Command.WRITE_CONFIG)
        expect("TRAIN after refused WRITE_CONFIGs", encode(Command.TRAIN, b"\x01"),
               Status.OUT_OF_ORDER, Command.TRAIN)

        acc = Accelerator(link)
        net = configure_and_init(bench, acc, "after errors")
        x = rng.integers(0, 256, size=(cfg.batch, cfg.arch[0]))
        y = rng.integers(0, cfg.classes, size=cfg.batch)
        rows = np.concatenate([y.reshape(-1, 1), x], axis=1).astype(np.uint8)
        bad = bytearray(encode(Command.LOAD_BATCH, bytes([0, len(x)]) + rows.tobytes()))
        bad[-1] ^= 0x01
        expect("LOAD_BATCH with a bad CRC", bytes(bad), Status.BAD_CRC, Command.LOAD_BATCH)
        expect("TRAIN after a failed LOAD_BATCH", encode(Command.TRAIN, bytes([len(x)])),
               Status.OUT_OF_ORDER, Command.TRAIN)
        if bench.mem.writes:
            raise AssertionError(f"refused frames wrote {len(bench.mem.writes)} memory words")
        train_and_check(bench, acc, net, rng, [cfg.batch], "after errors")
        check_mem_errors(bench, "error frames")

    try:
        await bridge(host)()
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

    def host():
        acc = Accelerator(bench.link)
        net = configure_and_init(bench, acc, "perturbed", golden_cfg=golden)
        try:
            train_and_check(bench, acc, net, rng, [cfg.batch], "perturbed")
        except AssertionError as e:
            pattern = (r"perturbed TRAIN batch 0 .*weight-memory writes differ.*layer 0 word \d+ "
                       r"\(tile \d+, (column \d+|bias)\) lane \d+ \(neuron \d+\): device wrote")
            if not re.search(pattern, str(e)):
                raise AssertionError(f"caught, but the message does not name the word: {e}")
            dut._log.info(f"perturbed golden model caught as expected: {str(e)[:200]}...")
            return
        raise AssertionError(f"the golden model with {P['perturbed']} was never caught")

    try:
        await bridge(host)()
    finally:
        bench.stop()
