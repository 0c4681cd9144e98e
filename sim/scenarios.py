"""Whole-core scenarios: what is sent to ``lela_accelerator``, what must come back, and how every
external-memory write and every host read is checked against the golden model.

One set of scenarios serves both whole-core benches: the fast Verilator harness
(:class:`sim.accelerator_sim.HarnessBench`, tests/test_accelerator.py) and cocotb
(``sim/tb_accelerator.py``, tests/test_rtl_accelerator.py). A scenario runs in the host's
thread and talks to the device through a *bench*, which offers:

* ``link``: the :class:`host.transport.Transport` the host driver runs on (with ``cycle``, the
  simulated cycle);
* ``exchange(data, frames=1, cycles=None)``: send bytes, return the bytes that came back once
  ``frames`` complete frames did (``frames=0``: once the device took every byte), raising
  :class:`host.transport.TransportTimeout` after ``cycles`` clock cycles (``None``: the bench's
  default); ``run(cycles)``: let cycles pass, return what came out;
* ``take_writes()``: the weight-memory writes since the last call, ``(address, [P signed
  lanes])`` in the order the beats were accepted;
* ``bus_errors()``: weight-bus protocol errors seen so far (a bench whose memory model stops the
  simulation on an error returns none);
* ``bus_counts()``: ``words_read``, ``words_written`` (bus beats) and ``rx_bytes`` (host bytes
  the device took) since reset;
* ``log(message)``.

Every comparison raises :class:`AssertionError` naming the command, the layer and, for the
weight memory, the word, tile, column and lane that differ.
"""

import re

import numpy as np

from contract.protocol import (DAMAGED, MAX_PAYLOAD, REPLY, SYNC, Command, Frame, FrameDecoder,
                               Status, encode)
from contract.registers import layer_fan_in, layer_rows, layer_words, tile_words, weight_bases
from host.driver import Accelerator, DeviceError
from sw_model.golden import FixedPointNet
from sw_model.golden_conv import FixedPointConvNet
from sw_model.resident import epoch_batches

__all__ = ["word_lanes", "expected_writes", "check_writes", "check_weights", "check_batch_norm",
           "check_bus_errors",
           "configure_and_init", "train_and_check", "check_inference", "check_counters",
           "expect_reply", "training_scenario", "error_frames_scenario", "perturbed_scenario",
           "FIXED_EXIT_THRESHOLDS"]

#: Early-exit thresholds (score units) every early-exit core is tried with, beside one that
#: lets about half the samples leave after layer 0: none leave, few leave, most leave.
FIXED_EXIT_THRESHOLDS = (0, 200, 1500)

#: A perturbed golden model is caught when the first TRAIN's write check names the word.
PERTURBED_MESSAGE = (r"TRAIN batch 0 .*weight-memory writes differ.*layer 0 word \d+ "
                     r"\(tile \d+, (column \d+|bias|scale|(mean|variance) (low|high))\) "
                     r"lane \d+ \(neuron \d+\): device wrote")


# ---- the golden model's side of the weight memory ---------------------------------------------
def word_lanes(word, lanes, lane_bits):
    """The ``lanes`` signed lanes of a bus word (lane ``p`` in bits ``[p*lane_bits, ...)``)."""
    mask, half = (1 << lane_bits) - 1, 1 << (lane_bits - 1)
    out = []
    for p in range(lanes):
        v = (word >> (p * lane_bits)) & mask
        out.append(v - (1 << lane_bits) if v >= half else v)
    return out


def _layer_grid(cfg, net, i, arch=None):
    """Layer i's words as ``rows x tile words`` (docs/HOST_INTERFACE.md, "Weight layout"): the
    weights, the bias and, batch-normalised, the scale and the running mean and variance over
    two words each (low first, as signed lanes); 0 past the last neuron (a convolution's rows
    are its filters, its columns ``K*K*C``: ``arch``, a convolutional network's)."""
    p = cfg.array_rows
    n, j = layer_rows(cfg, i, arch), layer_fan_in(cfg, i, arch)
    tiles = -(-n // p)
    grid = np.zeros((tiles * p, tile_words(cfg, i, arch)), dtype=np.int64)
    grid[:n, :j] = net.weights[i]
    grid[:n, j] = net.biases[i]
    if cfg.batch_norm:
        bn, wb = net.batch_norm[i], cfg.weight_bits
        grid[:n, j + 1] = bn.gamma
        for k, v in ((j + 2, bn.mean), (j + 4, bn.var)):
            for half in range(2):
                raw = (np.asarray(v, dtype=np.int64) >> (half * wb)) & ((1 << wb) - 1)
                grid[:n, k + half] = np.where(raw >> (wb - 1), raw - (1 << wb), raw)
    return grid


_EXTRA = ("scale", "mean low", "mean high", "variance low", "variance high")


def expected_writes(cfg, net, frozen=(), command="TRAIN", arch=None):
    """``(address, lanes, where, first neuron)`` of every word ``command`` writes, in the order
    the core writes them (docs/HOST_INTERFACE.md, "Weight layout"): an ``INIT_WEIGHTS`` every
    word of every layer in memory order; a ``TRAIN``, layer by layer, the running statistics of
    each tile (batch-normalised: its ``NORM`` phase, a frozen layer's too), then, unless the
    layer is in ``frozen``, each tile's weights, bias and scale (its ``GRAD`` phase).
    Lane ``p`` of tile ``t`` is neuron ``tP + p``, 0 past the last neuron. ``arch``: a
    convolutional network's architecture."""
    bases, _ = weight_bases(cfg, arch)
    p = cfg.array_rows
    out = []
    for i in range(cfg.layers):
        j, stride = layer_fan_in(cfg, i, arch), tile_words(cfg, i, arch)
        grid = _layer_grid(cfg, net, i, arch)
        tiles = len(grid) // p
        words = grid.reshape(tiles, p, stride).transpose(0, 2, 1)
        assert tiles * stride == layer_words(cfg, i, arch)
        if command == "INIT":
            parts = [range(stride)]
        else:
            parts = [range(j + 2, stride)] if cfg.batch_norm else []
            if i not in frozen:
                parts.append(range(j + 1 + cfg.batch_norm))
        for columns in parts:
            for t in range(tiles):
                for col in columns:
                    k = t * stride + col
                    name = ("bias" if col == j else f"column {col}" if col < j
                            else _EXTRA[col - j - 1])
                    out.append((bases[i] + k, [int(v) for v in words[t, col]],
                                f"layer {i} word {k} (tile {t}, {name})", t * p))
    return out


# ---- checks -------------------------------------------------------------------------------------
def check_writes(when, got, cfg, net, frozen=(), command="TRAIN", arch=None):
    """``got`` (the writes of one command) equal the golden model's words, address by address
    and lane by lane, and there are as many (none of a layer in ``frozen``)."""
    want = expected_writes(cfg, net, frozen, command, arch)
    problems = []
    for n, ((addr, lanes), (w_addr, w_lanes, where, row0)) in enumerate(zip(got, want)):
        if addr != w_addr:
            problems.append(f"write #{n} went to address {addr}, expected {w_addr} ({where})")
        if len(lanes) != len(w_lanes):
            problems.append(f"write #{n} ({where}) has {len(lanes)} lanes, expected "
                            f"{len(w_lanes)}")
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


def check_equal(what, noun, got, want, name):
    """``got`` equals the golden ``want`` element for element, or an AssertionError says how
    many ``noun`` differ and names the first (``name(*index)``) with both values."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        raise AssertionError(f"{what}: {noun} of shape {got.shape}, golden {want.shape}")
    bad = np.argwhere(got != want)
    if len(bad):
        at = tuple(int(k) for k in bad[0])
        raise AssertionError(f"{what}: {len(bad)} {noun} differ, first {name(*at)} = "
                             f"{got[at]}, golden {want[at]}")


def check_weights(when, layers, net):
    """What READ_WEIGHTS returned equals the golden model's weights and biases."""
    if len(layers) != len(net.weights):
        raise AssertionError(f"{when}: read_weights returned {len(layers)} layers, golden "
                             f"{len(net.weights)}")
    for i, (w, b) in enumerate(layers):
        what = f"{when}: read_weights layer {i}"
        check_equal(what, "weights", w, net.weights[i], lambda r, c: f"w[{r}, {c}]")
        check_equal(what, "biases", b, net.biases[i], lambda r: f"b[{r}]")


def check_batch_norm(when, acc, net):
    """A batch-normalised network's scales and running statistics, read back, equal the golden
    model's (nothing to check otherwise)."""
    if net.batch_norm is None:
        return
    for i, (got, want) in enumerate(zip(acc.read_batch_norm(), net.batch_norm)):
        for name in ("gamma", "mean", "var"):
            check_equal(f"{when}: read_batch_norm layer {i}", name, got[name],
                        getattr(want, name), lambda n: f"neuron {n}")


def check_bus_errors(bench, when):
    errors = bench.bus_errors()
    if errors:
        raise AssertionError(f"{when}: weight-bus errors: " + "; ".join(errors[:5]))


def configure_and_init(bench, acc, cfg, label, golden_cfg=None, arch=None):
    """WRITE_CONFIG (no memory write), INIT_WEIGHTS (every word written as the golden model's
    initial weights, and read back); returns the golden model (built from ``golden_cfg`` if
    given; :class:`FixedPointConvNet` for ``arch``, a convolutional network's
    architecture)."""
    acc.configure(cfg, arch)
    early = bench.take_writes()
    if early:
        raise AssertionError(f"{label}: WRITE_CONFIG wrote {len(early)} memory words")
    acc.init_weights()
    net = (FixedPointConvNet(golden_cfg or cfg, arch) if arch is not None
           else FixedPointNet(golden_cfg or cfg))
    when = f"{label} INIT_WEIGHTS"
    check_bus_errors(bench, when)
    check_writes(when, bench.take_writes(), cfg, net, command="INIT", arch=arch)
    check_weights(when, acc.read_weights(), net)
    check_batch_norm(when, acc, net)
    return net


def train_and_check(bench, acc, cfg, net, rng, batches, label, arch=None):
    """One TRAIN per size in ``batches``: the correct counts, every write and the weights read
    back equal the golden model's after each. Returns the correct counts per layer, summed."""
    totals = np.zeros(cfg.layers, dtype=int)
    for k, size in enumerate(batches):
        x = rng.integers(0, 256, size=(size, cfg.arch[0]))
        y = rng.integers(0, cfg.classes, size=size)
        start = bench.link.cycle
        c_dev = acc.train_batch(x, y)
        c_gold = net.train_batch(x, y)
        when = f"{label} TRAIN batch {k} ({size} samples)"
        check_bus_errors(bench, when)
        if list(c_dev) != list(c_gold):
            raise AssertionError(f"{when}: correct counts per layer {list(c_dev)}, "
                                 f"golden {list(c_gold)}")
        check_writes(when, bench.take_writes(), cfg, net, net.frozen, arch=arch)
        check_weights(when, acc.read_weights(), net)
        check_batch_norm(when, acc, net)
        totals += c_gold
        bench.log(f"{when}: correct {list(c_gold)}, bit-exact ({bench.link.cycle - start} "
                  f"cycles with the checks)")
    return totals


def check_inference(bench, acc, cfg, net, rng, samples, label, early_exit=True,
                    thresholds=FIXED_EXIT_THRESHOLDS):
    """INFER ``samples`` random samples: every layer's prediction equals the golden model's and
    every sample runs to the last layer. With ``early_exit``, again with each of
    ``thresholds`` and one that lets about half the samples leave after layer 0: exit layers,
    predictions at the exit and at every layer up to it equal the golden model's. Nothing is
    written to the weight memory."""
    x = rng.integers(0, 256, size=(samples, cfg.arch[0]))
    preds, exits = acc.infer(x)
    gold = np.array(net.predict(x))
    check_equal(f"{label} INFER", "predictions", preds, gold,
                lambda i, s: f"layer {i} sample {s}")
    if not np.all(exits == cfg.layers - 1):
        raise AssertionError(f"{label} INFER without early exit: exit layers {list(exits)}, "
                             f"expected {cfg.layers - 1} for every sample")
    if not early_exit:
        _check_no_writes(bench, f"{label} INFER")
        return
    s0 = np.sort(net.infer(x)[0], axis=1)
    margins = (s0[:, -1] - s0[:, -2]).astype(int)
    half = int(min(max(np.median(margins), 1), (1 << 16) - 1))
    for thr in (*thresholds, half):
        e_preds, e_exits = acc.infer(x, exit_threshold=thr)
        g_pred, g_exit = net.infer_early_exit(x, thr)
        what = f"{label} INFER early exit (threshold {thr})"
        if not np.array_equal(e_exits, g_exit):
            raise AssertionError(f"{what}: exit layers {list(e_exits)}, golden {list(g_exit)}")
        final = e_preds[e_exits, np.arange(samples)]
        if not np.array_equal(final, g_pred):
            s = int(np.flatnonzero(final != g_pred)[0])
            raise AssertionError(f"{what}: sample {s} predicts {final[s]} at its exit layer "
                                 f"{e_exits[s]}, golden {g_pred[s]}")
        for s in range(samples):      # layers up to the exit are computed, so defined
            for i in range(e_exits[s] + 1):
                if e_preds[i, s] != gold[i, s]:
                    raise AssertionError(f"{what}: sample {s} layer {i} (exit {e_exits[s]}) "
                                         f"predicts {e_preds[i, s]}, golden {gold[i, s]}")
        bench.log(f"{what}: bit-exact, exits "
                  f"{np.bincount(e_exits, minlength=cfg.layers).tolist()} per layer")
    _check_no_writes(bench, f"{label} INFER")


def _check_no_writes(bench, when):
    check_bus_errors(bench, when)
    writes = bench.take_writes()
    if writes:
        raise AssertionError(f"{when} wrote {len(writes)} weight-memory words, first "
                             f"{writes[0]}")


def check_counters(bench, acc, cfg, totals, trains, label, all_counters=True, counter_bits=64):
    """READ_COUNTERS: the correct predictions per layer and the TRAIN commands; with
    ``all_counters``, also the bus words moved (``P`` weights a word) and the host bytes taken,
    as the bench counted them. Counters wrap at ``counter_bits``."""
    c = acc.counters()
    counts = bench.bus_counts()
    p = cfg.array_rows
    want = {f"correct_{i}": int(v) for i, v in enumerate(totals)}
    want["train_commands"] = trains
    if all_counters:
        want.update(ext_write_words=p * counts["words_written"],
                    ext_read_words=p * counts["words_read"], host_rx_bytes=counts["rx_bytes"])
    modulo = 1 << counter_bits
    bad = {k: (c[k], v % modulo) for k, v in want.items() if c[k] != v % modulo}
    if bad:
        raise AssertionError(f"{label} READ_COUNTERS: " + ", ".join(
            f"{k} = {a}, expected {b}" for k, (a, b) in bad.items()))
    bench.log(f"{label}: counters {c}")


# ---- scenarios ----------------------------------------------------------------------------------
def training_scenario(bench, cfg, rng, batches, infer_samples, label, early_exit=True,
                      thresholds=FIXED_EXIT_THRESHOLDS, all_counters=True, counter_bits=64,
                      arch=None, limits=None):
    """Configure, initialise, train ``batches`` mini-batches, infer (early exit too, if the core
    has it), read the counters: every write, every reply and the weights after every command
    equal the golden model's; no bus error. ``arch``: a convolutional network's architecture
    (``limits``: the core's, which the driver checks it against). Returns the golden
    model."""
    acc = Accelerator(bench.link, limits=limits)
    net = configure_and_init(bench, acc, cfg, label, arch=arch)
    totals = train_and_check(bench, acc, cfg, net, rng, batches, label, arch)
    check_inference(bench, acc, cfg, net, rng, infer_samples, label, early_exit, thresholds)
    check_counters(bench, acc, cfg, totals, len(batches), label, all_counters, counter_bits)
    check_bus_errors(bench, label)
    return net


def resident_scenario(bench, cfg, rng, samples, batch, seeds, label):
    """Configure, initialise, store ``samples`` random samples (``STORE_SAMPLES``), then train
    an epoch from each of ``seeds`` (``TRAIN_EPOCH``, ``batch`` a mini-batch): each epoch's
    correct counts, every write of every one of its mini-batches (in the order the golden model
    draws, sw_model/resident.py), the weights after it and the counters at the end equal the
    golden model's. Returns the driver, the golden model and the stored samples."""
    acc = Accelerator(bench.link)
    net = configure_and_init(bench, acc, cfg, label)
    x = rng.integers(0, 1 << cfg.act_bits, size=(samples, cfg.arch[0]))
    y = rng.integers(0, cfg.classes, size=samples)
    acc.store_samples(x, y)
    _check_no_writes(bench, f"{label} STORE_SAMPLES")
    totals, trains = np.zeros(cfg.layers, dtype=int), 0
    for seed in seeds:
        when = f"{label} TRAIN_EPOCH of {samples} samples from seed {seed:#x}"
        start = bench.link.cycle
        c_dev = acc.train_epoch(samples, batch, seed)
        check_bus_errors(bench, when)
        got, at = bench.take_writes(), 0
        c_gold = np.zeros(cfg.layers, dtype=int)
        for k, visits in enumerate(epoch_batches(samples, batch, seed, cfg.lfsr_width)):
            c_gold += net.train_batch(x[visits], y[visits])
            words = len(expected_writes(cfg, net, net.frozen))
            check_writes(f"{when}, mini-batch {k} (samples {visits.tolist()})",
                         got[at:at + words], cfg, net, net.frozen)
            at += words
            trains += 1
        if at != len(got):
            raise AssertionError(f"{when}: {len(got)} words written, golden model expects {at}")
        if list(c_dev) != list(c_gold):
            raise AssertionError(f"{when}: correct counts per layer {list(c_dev)}, golden "
                                 f"{list(c_gold)}")
        check_weights(when, acc.read_weights(), net)
        totals += c_gold
        bench.log(f"{when}: correct {list(c_gold)}, bit-exact "
                  f"({bench.link.cycle - start} cycles with the checks)")
    check_counters(bench, acc, cfg, totals, trains, label)
    return acc, net, (x, y)


def expect_reply(bench, what, data, status, command, cycles=None, tag=0):
    """Send ``data``: exactly one frame must come back, the reply to ``command`` with
    ``status`` (and, unless the status is a dropped frame's, ``tag``). Returns the cycles it
    took."""
    before = bench.link.cycle
    out = bench.exchange(data, frames=1, cycles=cycles)
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
    if got not in DAMAGED and reply.tag != tag:
        raise AssertionError(f"{what}: reply tag {reply.tag:#04x}, expected {tag:#04x}")
    bench.log(f"{what}: {name} after {bench.link.cycle - before} cycles")
    return bench.link.cycle - before


def error_frames_scenario(bench, cfg, rng, frame_timeout, label="error frames"):
    """Every refusal the host interface has (out of order, garbage, bad CRC, truncated frame,
    oversized length, unknown command, bad lengths), each answered with exactly one reply
    frame of the right status, nothing written to the weight memory; then the device takes the
    next valid frames and trains bit-exactly."""
    def expect(what, data, status, command, cycles=None, tag=0):
        return expect_reply(bench, what, data, status, command, cycles, tag)

    expect("TRAIN before WRITE_CONFIG", encode(Command.TRAIN, b"\x01"),
           Status.OUT_OF_ORDER, Command.TRAIN)
    expect("INIT_WEIGHTS before WRITE_CONFIG", encode(Command.INIT_WEIGHTS),
           Status.OUT_OF_ORDER, Command.INIT_WEIGHTS)
    garbage = bytes(b for b in rng.integers(0, 256, 40).tolist() if b != SYNC)
    expect("garbage, then RESET", garbage + encode(Command.RESET), Status.OK, Command.RESET)
    bad = bytearray(encode(Command.RESET))
    bad[-1] ^= 0x5A
    expect("frame with a bad CRC", bytes(bad), Status.BAD_CRC, Command.RESET)
    expect("garbage, then a frame with a bad CRC", b"\x00\x13\x37" + bytes(bad),
           Status.BAD_CRC, Command.RESET)
    expect("READ_COUNTERS before WRITE_CONFIG", encode(Command.READ_COUNTERS), Status.OK,
           Command.READ_COUNTERS)

    frame = encode(Command.WRITE_CONFIG, bytes([0]) + (1).to_bytes(4, "little"))
    bench.exchange(frame[:-3], frames=0)             # until rx took the truncated frame
    early = bench.run(frame_timeout - 20)
    if early:
        raise AssertionError(f"truncated frame: {early.hex()} came out within "
                             f"{frame_timeout - 20} cycles, before the frame timeout of "
                             f"{frame_timeout}")
    expect("truncated frame", b"", Status.TIMEOUT, Command.WRITE_CONFIG, cycles=frame_timeout)
    expect("truncated frame, length 10 of which 2 sent",
           bytes([SYNC, Command.WRITE_CONFIG, 0, 10, 0, 1, 2]), Status.TIMEOUT,
           Command.WRITE_CONFIG)

    oversized = bytes([SYNC, Command.WRITE_WEIGHTS, 0]) + (MAX_PAYLOAD + 1).to_bytes(2, "little")
    expect("oversized length", oversized, Status.OVERSIZED, Command.WRITE_WEIGHTS)
    expect("unknown command 0x55", encode(0x55, b"\x00"), Status.UNKNOWN_COMMAND, 0x55)
    expect("unknown command 0x42", encode(0x42, b"xyz"), Status.UNKNOWN_COMMAND, 0x42)
    # Bit 7 of a command byte is part of it: 0x80 | RESET is no command, not RESET.
    for high in (Command.RESET, Command.WRITE_CONFIG, Command.READ_COUNTERS):
        expect(f"unknown command {0x80 | high:#04x}", encode(0x80 | high, tag=0xC3),
               Status.UNKNOWN_COMMAND, 0x80 | high, tag=0xC3)
    expect("WRITE_CONFIG of 3 bytes", encode(Command.WRITE_CONFIG, b"\x00\x01\x02"),
           Status.BAD_LENGTH, Command.WRITE_CONFIG)
    expect("WRITE_CONFIG past the last register",
           encode(Command.WRITE_CONFIG, bytes([255]) + (1).to_bytes(4, "little")),
           Status.BAD_LENGTH, Command.WRITE_CONFIG)
    expect("READ_WEIGHTS of 6 bytes", encode(Command.READ_WEIGHTS, b"\x00" * 6),
           Status.BAD_LENGTH, Command.READ_WEIGHTS)
    expect("TRAIN after refused WRITE_CONFIGs", encode(Command.TRAIN, b"\x01"),
           Status.OUT_OF_ORDER, Command.TRAIN)
    acc = Accelerator(bench.link)
    try:
        acc.command(Command.TRAIN, b"\x01")
    except DeviceError as e:
        if "OUT_OF_ORDER" not in str(e):
            raise AssertionError(f"the driver's TRAIN before WRITE_CONFIG: {e}, expected "
                                 f"OUT_OF_ORDER") from e
    else:
        raise AssertionError("the driver's TRAIN before WRITE_CONFIG was accepted")
    _check_no_writes(bench, "refused frames")

    label = f"{label}: after them"
    net = configure_and_init(bench, acc, cfg, label)
    x = rng.integers(0, 256, size=(cfg.batch, cfg.arch[0]))
    y = rng.integers(0, cfg.classes, size=cfg.batch)
    expect("TRAIN before LOAD_BATCH", encode(Command.TRAIN, bytes([len(x)])),
           Status.OUT_OF_ORDER, Command.TRAIN)
    rows = np.concatenate([y.reshape(-1, 1), x], axis=1).astype(np.uint8)
    bad = bytearray(encode(Command.LOAD_BATCH, bytes([0, len(x)]) + rows.tobytes()))
    bad[-1] ^= 0x01
    expect("LOAD_BATCH with a bad CRC", bytes(bad), Status.BAD_CRC, Command.LOAD_BATCH)
    expect("TRAIN after a failed LOAD_BATCH", encode(Command.TRAIN, bytes([len(x)])),
           Status.OUT_OF_ORDER, Command.TRAIN)
    _check_no_writes(bench, "refused LOAD_BATCH and TRAIN")
    train_and_check(bench, acc, cfg, net, rng, [cfg.batch], label)
    check_bus_errors(bench, label)


def perturbed_scenario(bench, cfg, golden_cfg, rng, label="perturbed"):
    """The golden model gets ``golden_cfg``, the device ``cfg``: the write comparison after
    the first TRAIN must fail and name layer, word and lane (a check that cannot fail is
    none). Returns the message it caught."""
    acc = Accelerator(bench.link)
    net = configure_and_init(bench, acc, cfg, label, golden_cfg=golden_cfg)
    try:
        train_and_check(bench, acc, cfg, net, rng, [cfg.batch], label)
    except AssertionError as e:
        if not re.search(PERTURBED_MESSAGE, str(e)):
            raise AssertionError(f"caught, but the message does not name the word: {e}") from e
        bench.log(f"perturbed golden model caught as expected: {str(e)[:200]}...")
        return str(e)
    raise AssertionError(f"the golden model with {golden_cfg} was never caught")
