"""The boards' training throughput as a user sees it (issue 15): `lela train --backend serial`
against the UART accelerator of each board, simulated cycle by cycle at the board's own clock to
baud ratio, with the link and the core's busy time taken apart.

    python bench/board_throughput.py [--boards icebreaker ulx3s] [--minibatches [BOARD=]N ...]
        -> bench/results/board_throughput.json

For each board (hw/boards), the board's network (its ``configs/*.toml``) and its core are built
as a Verilator simulation behind a pseudo-terminal (sim/board_sim.py, cached under
``build/board_throughput/``) and trained on digits exactly as ``lela train --backend serial``
does it: :class:`lela.rtl_backend.RtlNet` (the host driver with ``retries=3`` and a golden twin
checking every mini-batch) over :class:`host.serial_transport.SerialTransport`, the mini-batches
in the order of ``lela.train._epoch`` for epoch 1. Per mini-batch the driver sends LOAD_BATCH,
then READ_COUNTERS (with retries the driver read the command counters before every TRAIN, to
recover a lost reply, when this baseline was measured; the bench now makes that read itself:
the driver keeps the expected counters) and TRAIN, each waiting for its reply. Only the
transport's wall-clock timeout differs (:data:`SIM_TIMEOUT_S`: the simulation is slower than the board).

The UART's timing. ``build_board(..., divisor=board.divisor)`` puts the board's own divisor,
``clock_hz / baud`` at its config's ``baud`` (what hw/boards/top.py's BoardTop gives its
UartAccelerator: an integer, or a fraction kept exactly on average, hw/uart.py), into both the
simulated UART receiver/transmitter and the harness's line model (board_config.h's DIVISOR_NUM /
DIVISOR_DEN: 10 bits of that many cycles a byte, back to back); :func:`check_divisor` reads it
back from the build. So one simulated cycle is one cycle of the board's clock and a byte takes
``10 * divisor`` cycles on the wire both ways (on average, for a fractional divisor), as on the
board: nothing is scaled.

What the simulation cannot give: the host's turnaround. The harness clocks the design
continuously while the host (Python: the driver, the golden twin, the pseudo-terminal) prepares
its next request, so the simulated ``cycles`` contain the host's wall time at the simulation's
speed (here about 1/20 of real time for the iCEBreaker, 1/60 for the ULX3S): "other" in the
split below. A real board sees the host's real turnaround instead (the USB-serial adapter's
latency, a millisecond or more per round trip), which no simulation here measures.

The counters. The simulated core is the board's (hw/boards: ``Board.core_params``: its options,
frame timeout and weight memory) except that it keeps every counter, 64 bits wide
(``all_counters=True, counter_bits=64``): the iCEBreaker's bitstream keeps only the driver's
(hw/boards/icebreaker.py). Counters only count (hw/accelerator.py: nothing reads them but
READ_COUNTERS, whose reply has the same length either way), so the cycles are the board's.

Reported per board: the cycles of the epoch (the device's ``cycles`` counter, which is the
simulation's clock: it counts every cycle since reset) and samples/s at the board's clock; the
split into link cycles (the epoch's bytes on the wire, both ways, times ``10 * divisor``: the
bytes the transport recorded, checked equal to :func:`minibatch_frames` and compared with the
device's ``host_rx_bytes + host_tx_bytes``), the core's ``train_cycles`` and the rest; the link
bound (the bytes of a mini-batch's frames, both directions, at 10 bits a byte) and the array
bound (MAC operations per sample: forward, scores, back projection and gradient of every layer,
over ``lanes x clock``); the link time of what ``lela train`` sends after each epoch besides
the training (evaluation, weight reads; not simulated). And predictions for Fashion-MNIST-sized networks (784 inputs, batch 32)
by the same formulas: link bytes from the frames the driver would send, core cycles from the
cycles per ideal MAC beat measured on digits (``train_cycles / (MACs / lanes)``), for the
networks that fit the board (:func:`fit`).

With ``--schedules`` (issue 15, overlap) only the steady state of today's driver is measured,
per board, for two schedules: "alternating" (LOAD_BATCH, then TRAIN, each waiting for its
reply; the driver no longer reads the counters before each TRAIN) and "pipelined" (TRAIN with
the next mini-batch's LOAD_BATCH streamed behind it into the board's ``rx_buffer``, as
``lela train`` does): a window of ``--window`` full mini-batches after a first one, its
samples/s against the link bound of the frames sent, and its round trips a mini-batch
(:func:`measure_schedules`); they go under "schedules" in the JSON, its baseline entries left
as they are. (Without it, the bench reads the counters before each mini-batch itself, as the
driver did when the baseline was measured.)

With ``--minibatches N`` (default: ``ulx3s=16``, :data:`DEFAULT_MINIBATCHES`) only the first
``N - 1`` mini-batches of the epoch and its last one are simulated; every mini-batch left out
adds the mean period of the simulated full ones (:func:`epoch_counters`), and the JSON says
so and how steady those periods were. (READ_COUNTERS sends the counters live, so a read of
``cycles`` could be torn by 65 536 before the dispatcher held each counter: :data:`TORN`.)
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from fractions import Fraction

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from contract.protocol import FRAME_OVERHEAD                               # noqa: E402
from contract.registers import COUNTERS                                   # noqa: E402
# The analytic model lives in the library (lela explore uses it too); the names stay importable
# from here for the bench's readers.
from host.throughput import (BITS_PER_BYTE, array_bound, batch_sizes,     # noqa: E402,F401
                             core_seconds,
                             ecp5_blocks, frames_bytes, infer_frames, link_bound, link_seconds,
                             macs_per_sample, minibatch_bytes, minibatch_frames,
                             read_weights_frames)

RESULTS = os.path.join(ROOT, "bench", "results", "board_throughput.json")
BUILD = os.path.join(ROOT, "build", "board_throughput")

#: Networks predicted for Fashion-MNIST (784 inputs, 10 classes).
FASHION_NETWORKS = ([784, 128, 128], [784, 256, 256])
FASHION_BATCH = 32

#: Mini-batches simulated per board by default (0 or absent: the whole epoch). The ULX3S's epoch
#: is ~440 M cycles at ~0.6-0.8 M simulated cycles/s on the shared 2-core machine (10-12 min);
#: its mini-batches are identical in bytes and TRAIN cycles, so 16 (15 full and the last) are
#: scaled. The iCEBreaker's (~260 M cycles, ~1.3 M cycles/s) runs whole.
DEFAULT_MINIBATCHES = {"ulx3s": 16}

#: The transport's timeout in wall seconds: the simulation runs slower than the board, so the
#: 2 s of ``lela train`` (SerialTransport's default) would expire while a long frame is still
#: on the simulated line. A wall-time setting; it changes nothing the device sees.
SIM_TIMEOUT_S = 600.0


# ---- which networks fit a board ---------------------------------------------------------------

#: On-chip RAM of the boards' FPGAs (hw/boards/*.py docstrings; bitstream reports'
#: ``utilization``): the iCE40UP5K's 4 SPRAMs of 16 Ki x 16 (hw/weight_memory.py's
#: SinglePortRam takes a depth of at most 16 Ki: one SPRAM per 16 bits of the word), the
#: ECP5-85F's 208 DP16KD blocks.
ICE40_SPRAMS, ICE40_SPRAM_DEPTH = 4, 1 << 14
ECP5_BLOCKS = 208


def _index_bits(n):
    return max(1, (n - 1).bit_length())


def ecp5_core_blocks(params, words):
    """Block RAMs of the memories that grow with the network, for a core with build
    parameters ``params`` (hw/params.py) and ``words`` weight words: the weight memory
    (``words x rows*weight_bits``), the two activation buffers (``cols`` banks of ``act_bits x
    2**(group bits + column bits)``, hw/activation_buffer.py) and the weight slab
    (``2 * 2**index_bits(max_inputs + 1)`` words, hw/core/weight_slab.py)."""
    q = params.cols
    columns = -(-params.columns // q) * q
    bank_depth = 1 << (_index_bits(params.groups) + _index_bits(columns))
    buffers = 2 * q * ecp5_blocks(params.act_bits, bank_depth)
    slab = ecp5_blocks(params.word_bits, 2 << _index_bits(params.max_inputs + 1))
    return ecp5_blocks(params.word_bits, words) + buffers + slab


def fit(board, cfg, built_blocks=None, built_cfg=None):
    """``(fits as built, fits rebuilt, reason)`` of network ``cfg`` on ``board``: on the
    board's bitstream as built (the limits of its core, contract/limits.py), and on a core
    rebuilt for ``cfg`` on the same board, array and clock (its weight memory and, on the ECP5,
    its block RAMs: those of the memories :func:`ecp5_core_blocks` counts plus what the rest of
    the built core uses, ``built_blocks`` (its bitstream report) minus the same count for the
    built network ``built_cfg``)."""
    from contract.config import load_config
    from contract.limits import Limits
    from contract.registers import weight_bases
    from hw.params import CoreParams
    own = built_cfg or load_config(os.path.join(ROOT, board.config))
    lim = Limits.of(board.core_params(own))
    over = [f"{name} {need} > {have}" for name, need, have in (
        ("inputs", cfg.arch[0], lim.max_inputs), ("neurons", max(cfg.arch[1:]), lim.max_neurons),
        ("layers", cfg.layers, lim.max_layers), ("batch", cfg.batch, lim.max_batch),
        ("weight words", weight_bases(cfg)[1], lim.weight_words)) if need > have]
    as_built = not over
    reasons = [f"not on the bitstream as built ({', '.join(over)}: configs/"
               f"{os.path.basename(board.config)})"] if over else []
    words = weight_bases(cfg)[1]
    params = CoreParams.from_config(cfg, **dict(board.core_options))
    if board.name == "icebreaker":
        spram_words = ICE40_SPRAM_DEPTH
        width_sprams = params.word_bits // 16
        rebuilt = words <= spram_words and width_sprams <= ICE40_SPRAMS
        if not rebuilt:
            reasons.append(f"rebuilt: {words:,} weight words > the {spram_words:,}-word depth "
                           f"of the SPRAM weight memory (hw/weight_memory.py SinglePortRam; "
                           f"all 4 SPRAMs hold {ICE40_SPRAMS * spram_words:,} 16-bit words)")
    else:
        rest = 0
        if built_blocks is not None:
            own_params = board.core_params(own)
            rest = built_blocks - ecp5_core_blocks(own_params, weight_bases(own)[1])
        need = ecp5_core_blocks(params, words) + rest
        rebuilt = need <= ECP5_BLOCKS
        reasons.append(f"rebuilt: about {need} of {ECP5_BLOCKS} DP16KD block RAMs (weights "
                       f"{ecp5_blocks(params.word_bits, words)}, the rest estimated from the "
                       f"built core's {built_blocks})")
    return as_built, rebuilt, "; ".join(reasons)


# ---- the simulation ----------------------------------------------------------------------------

class CountingLink:
    """A transport that counts the bytes of each exchange both ways."""

    def __init__(self, link):
        self.link = link
        self.sent = self.received = self.exchanges = 0

    def exchange(self, data, frames=1, timeout=None):
        got = self.link.exchange(data, frames=frames, timeout=timeout)
        self.sent += len(data)
        self.received += len(got)
        self.exchanges += 1
        return got

    def drain(self, quiet=None):
        got = self.link.drain(quiet)
        self.received += len(got)
        return got


def check_divisor(exe, divisor):
    """The divisor the harness at ``exe`` was built with (its board_config.h's DIVISOR_NUM /
    DIVISOR_DEN, beside the build; the same value went into the UART's Verilog) must be
    ``divisor``; returns it as a Fraction."""
    header = os.path.join(os.path.dirname(os.path.dirname(exe)), "board_config.h")
    with open(header) as f:
        text = f.read()
    num = re.search(r"#define DIVISOR_NUM (\d+)", text)
    den = re.search(r"#define DIVISOR_DEN (\d+)", text)
    found = Fraction(int(num.group(1)), int(den.group(1))) if num and den else None
    if found != divisor:
        raise SystemExit(f"{header}: divisor {found}, not the board's {divisor}")
    return found


def build(board, cfg):
    from sim.board_sim import build_board
    overrides = dict(all_counters=True, counter_bits=64,
                     frame_timeout=board.core_params(cfg).frame_timeout)
    t0 = time.perf_counter()
    exe = build_board(cfg, os.path.join(BUILD, board.name), divisor=board.divisor, board=board,
                      **overrides)
    return exe, time.perf_counter() - t0, overrides


def delta(after, before):
    return {k: after[k] - before[k] for k in after}


def lela_epoch_extras(cfg, test_samples):
    """The frames ``lela train --backend serial`` sends after each epoch's training, besides
    it: the evaluation (``RtlNet.predict`` of the test set: :func:`infer_frames`), the weight
    check (``RtlNet.check``) and the checkpoint (``RtlNet.state``), each reading every layer's
    weights (:func:`read_weights_frames`, a layer at a time). ``{name: frames}``."""
    from contract.registers import layer_words
    counters = len(COUNTERS) + cfg.layers
    word_bytes = cfg.array_rows * cfg.weight_bits // 8
    weights = [f for i in range(cfg.layers)
               for f in read_weights_frames(layer_words(cfg, i), word_bytes)]
    return {"evaluation": infer_frames(cfg.arch[0], cfg.batch, counters, test_samples),
            "weight_check": weights, "checkpoint": weights}


def simulate(board, cfg, exe, data, minibatches=0):
    """Train epoch 1 through the simulated board as ``lela train --backend serial`` does
    (all of it, or the first ``minibatches - 1`` mini-batches and the last); return the
    measurements: the counters read before and after, the bench's READ_COUNTERS before each
    mini-batch (the driver's before each TRAIN when the baseline was measured; it now keeps the
    expected counters) and the bytes of each mini-batch's exchanges."""
    from host.serial_transport import SerialTransport
    from lela.rtl_backend import RtlNet
    from sim.board_sim import SimulatedBoard

    # lela.train._epoch's order for epoch 1 (index 0).
    order = np.random.default_rng([cfg.seed, 0]).permutation(len(data.x_train))
    batches = [order[k:k + cfg.batch] for k in range(0, len(order), cfg.batch)]
    chosen = list(range(len(batches)))
    if minibatches and minibatches < len(batches):
        chosen = list(range(minibatches - 1)) + [len(batches) - 1]
    with SimulatedBoard(exe) as sim:
        serial = SerialTransport(sim.port, board.baud, timeout=SIM_TIMEOUT_S)
        link = CountingLink(serial)
        model = RtlNet(cfg, link, retries=3)          # configure, init_weights: lela's setup
        model.set_epoch(0)
        acc = model.device
        read = acc.counters
        snapshots = []
        # The driver now keeps the expected counters (it reads them only to resolve a lost
        # reply); the bench reads them before each mini-batch, as the driver did before each
        # TRAIN when this baseline was measured: the same frames, a period apart. The first
        # read is the window's start.
        t0 = time.perf_counter()
        per_batch = []
        for number in chosen:
            idx = batches[number]
            sent, received, exchanges = link.sent, link.received, link.exchanges
            snapshots.append(read())
            if acc.expected is None:
                acc.expected = snapshots[-1]
            model.train_batch(data.x_train[idx], data.y_train[idx])
            per_batch.append({"minibatch": number + 1, "samples": len(idx),
                              "host_to_device": link.sent - sent,
                              "device_to_host": link.received - received,
                              "round_trips": link.exchanges - exchanges,
                              "snapshot": snapshots[-1]})
        wall = time.perf_counter() - t0
        end = read()
        start = snapshots[0]
        serial.close()
    return dict(chosen=chosen, sizes=[len(b) for b in batches], per_batch=per_batch,
                window=delta(end, start), wall_seconds=wall, resends=acc.resends,
                samples=len(order))


#: The counters the epoch's figures use.
EPOCH_COUNTERS = ("cycles", "train_cycles", "mac_busy_cycles", "host_rx_bytes",
                  "host_tx_bytes", "train_commands")

#: Until the dispatcher held each counter as its first byte left (docs/HOST_INTERFACE.md,
#: "Counters"; bench/results/board_throughput.json was measured before), READ_COUNTERS sent the
#: counters live, a byte at a time, so a counter that moved while the reply was on the line
#: could be read torn (the check below now finds none): ``cycles`` (bytes 0..7, a byte time apart) reads
#: 65 536 high when a carry into its third byte falls between its second and third byte (one
#: read in 65 536 / (10 x divisor): 3 % on the iCEBreaker, 7 % on the ULX3S), ``host_tx_bytes``
#: (which counts the reply's own bytes) 256 high after a carry between its first two. The other
#: counters stand still during the reply. A torn read makes the period before it that much
#: longer and the one after it that much shorter: they cancel in a sum or a mean of consecutive
#: periods, which only the reads at its two ends can move.
TORN = {"cycles": 1 << 16, "host_tx_bytes": 1 << 8}


def epoch_counters(run, batch):
    """The epoch's counters and the periods of its full mini-batches.

    A period runs from the driver's READ_COUNTERS before one TRAIN to the one before the next
    TRAIN (that TRAIN, the next LOAD_BATCH and READ_COUNTERS). The window from the bench's read
    before the first mini-batch to its read after the last is the epoch plus one READ_COUNTERS
    exchange (the rest of the first read's reply after the counters were taken, the request
    and the head of the second read's reply before them). When only some mini-batches were
    simulated (the first ones and the last), each one left out adds one full period: ``window
    + (left out) x mean full period`` (torn reads inside the run of periods cancel in the mean:
    :data:`TORN`)."""
    entries = run["per_batch"]
    periods = []
    for k in range(len(entries) - 1):
        if entries[k]["samples"] == batch and entries[k + 1]["samples"] == batch:
            periods.append(delta(entries[k + 1]["snapshot"], entries[k]["snapshot"]))
    missing = len(run["sizes"]) - len(run["chosen"])
    if missing and not periods:
        raise SystemExit("no full mini-batch period to scale by: simulate more mini-batches")
    epoch = {}
    for key in EPOCH_COUNTERS:
        mean = float(np.mean([p[key] for p in periods])) if periods else 0.0
        epoch[key] = run["window"][key] + missing * mean
    return epoch, periods


def steadiness(periods):
    """Min, max, median and mean of the full mini-batches' periods, and for the counters that
    can be read torn (:data:`TORN`) how many periods sit a whole number of tears (within an
    eighth of one) away from the median: torn reads, one long period and one short."""
    out = {"periods": len(periods)}
    for key in ("cycles", "train_cycles", "host_rx_bytes", "host_tx_bytes"):
        values = np.array([p[key] for p in periods])
        median = float(np.median(values))
        out[key] = {"min": int(values.min()), "max": int(values.max()), "median": median,
                    "mean": float(values.mean())}
        if key in TORN:
            tear = TORN[key]
            off = values - median
            near = np.abs(off - np.round(off / tear) * tear) <= tear // 8
            out[key]["torn_looking"] = int(np.sum(near & (np.abs(off) >= tear // 2)))
    return out


def per_minibatch(entries):
    """Each simulated mini-batch's bytes and round trips, and the cycles and TRAIN cycles of the
    period from the driver's counter read before its TRAIN to the next one's (when the next
    mini-batch was simulated)."""
    out = []
    for k, e in enumerate(entries):
        row = {key: v for key, v in e.items() if key != "snapshot"}
        if k + 1 < len(entries) and entries[k + 1]["minibatch"] == e["minibatch"] + 1:
            d = delta(entries[k + 1]["snapshot"], e["snapshot"])
            row["period_cycles"], row["period_train_cycles"] = d["cycles"], d["train_cycles"]
        out.append(row)
    return out


def measure(board, minibatches, data):
    from contract.config import load_config
    cfg = load_config(os.path.join(ROOT, board.config))
    board = board.for_config(cfg)            # its UART at the config's baud
    exe, build_seconds, overrides = build(board, cfg)
    divisor = check_divisor(exe, board.divisor)
    run = simulate(board, cfg, exe, data, minibatches)

    f = board.clock_hz
    baud = float(f / divisor)                # the line's rate on the board and in the simulation
    lanes = cfg.array_rows * cfg.array_cols
    counters = len(COUNTERS) + cfg.layers
    sizes, samples = run["sizes"], run["samples"]
    # Bytes on the wire: those the transport recorded, checked against the frame model.
    for e in run["per_batch"]:
        want = minibatch_bytes(cfg.arch[0], e["samples"], counters)
        if (e["host_to_device"], e["device_to_host"]) != want:
            raise SystemExit(f"{board.name}: mini-batch {e['minibatch']} sent "
                             f"{e['host_to_device']} / received {e['device_to_host']} bytes, "
                             f"the frame model says {want}")
    up, down = minibatch_bytes(cfg.arch[0], cfg.batch, counters)
    frames = minibatch_frames(cfg.arch[0], cfg.batch, counters)
    epoch_bytes = sum(sum(minibatch_bytes(cfg.arch[0], s, counters)) for s in sizes)

    epoch, periods = epoch_counters(run, cfg.batch)
    whole = len(run["chosen"]) == len(sizes)
    if round(epoch["train_commands"]) != len(sizes):
        raise SystemExit(f"{board.name}: {epoch['train_commands']} TRAIN commands in the epoch, "
                         f"not {len(sizes)}")
    # The window holds one READ_COUNTERS exchange besides the epoch: its line time comes off.
    rc_bytes = FRAME_OVERHEAD + FRAME_OVERHEAD + 1 + 8 * counters
    rc_cycles = float(rc_bytes * BITS_PER_BYTE * divisor)
    cycles = epoch["cycles"] - rc_cycles
    if whole:
        source = ("the device's `cycles` counter (every cycle since reset: the simulation's "
                  "clock) from a read before the epoch's first mini-batch to one after its "
                  f"last, less the line time of the one READ_COUNTERS exchange ({rc_bytes} "
                  "bytes) those two reads add")
    else:
        source = (f"the device's `cycles` counter over {len(run['chosen'])} simulated "
                  f"mini-batches (the first {len(run['chosen']) - 1} and the last) plus "
                  f"{len(sizes) - len(run['chosen'])} x the mean period of the "
                  f"{len(periods)} simulated full ones (epoch_counters), less the line time "
                  f"of the bench's READ_COUNTERS exchange ({rc_bytes} bytes)")
    link_cycles = float(epoch_bytes * BITS_PER_BYTE * divisor)
    counted = epoch["host_rx_bytes"] + epoch["host_tx_bytes"] - rc_bytes
    train_cycles = epoch["train_cycles"]
    other = cycles - link_cycles - train_cycles
    seconds = cycles / f
    achieved = samples / seconds
    instant_host = samples / ((link_cycles + train_cycles) / f)
    macs = macs_per_sample(cfg.arch, cfg.classes)
    ideal_beats = macs * samples / lanes
    arr = array_bound(macs, lanes, f)
    lnk = link_bound(up + down, cfg.batch, baud)
    steady = steadiness(periods)
    period_other = steady["cycles"]["mean"] - float((up + down) * BITS_PER_BYTE * divisor) - \
        steady["train_cycles"]["mean"]
    extras = {}
    for name, fr in lela_epoch_extras(cfg, len(data.x_test)).items():
        extras[name] = {"round_trips": len(fr), "bytes": frames_bytes(fr),
                        "link_seconds": link_seconds(frames_bytes(fr), baud)}
    result = {
        "config": board.config, "arch": list(cfg.arch), "classes": cfg.classes,
        "batch": cfg.batch, "array": [cfg.array_rows, cfg.array_cols], "lanes": lanes,
        "clock_hz": f, "pll_hz": board.pll_settings()[1],
        "baud": board.baud, "divisor": str(divisor), "cycles_per_bit": float(divisor),
        "line_baud": baud,
        "uart_ratio": (f"real: the simulated UART and the harness's line model run at the "
                       f"board's divisor clock_hz / baud = {divisor} cycles a bit (exact on "
                       f"average: hw/uart.py; board_config.h checked); a simulated cycle is a "
                       f"board cycle, nothing is scaled; the line runs at clock / divisor = "
                       f"{baud:.1f} baud"),
        "core_overrides": overrides,
        "samples": samples, "minibatches": len(sizes), "last_minibatch": sizes[-1],
        "minibatches_simulated": len(run["chosen"]), "whole_epoch_simulated": whole,
        "cycles_source": source,
        "epoch_counters": epoch,
        "cycles_per_epoch": cycles,
        "seconds_per_epoch": seconds,
        "samples_per_second": achieved,
        "samples_per_second_instant_host": instant_host,
        "split": {
            "link_cycles": link_cycles, "train_cycles": train_cycles, "other_cycles": other,
            "link_share": link_cycles / cycles, "train_share": train_cycles / cycles,
            "other_share": other / cycles,
            "other_per_minibatch": other / len(sizes),
            "other_per_full_minibatch": period_other,
            "device_counted_bytes": counted,
            "how": ("link = the epoch's bytes on the wire, both ways (recorded by the transport, "
                    "equal to the frame model; the device's host_rx_bytes + host_tx_bytes agree: "
                    "device_counted_bytes) x 10 x divisor: the host waits for every reply, so "
                    "the two directions and the core never overlap; train = the train_cycles "
                    "counter (the core busy with TRAIN); other = the rest: the simulated host's "
                    "turnaround between a reply and its next request (the harness keeps "
                    "clocking while Python works, at the simulation's speed) and the device's "
                    "own latencies; other_per_full_minibatch is the same from the full periods' "
                    "mean. The two reads bounding the window may each be torn by +65 536 "
                    "cycles (TORN): other_per_minibatch would then differ from "
                    "other_per_full_minibatch by about 65 536 / minibatches or more"),
        },
        "link": {
            "frames_per_minibatch": [list(fr) for fr in frames],
            "bytes_per_minibatch": {"host_to_device": up, "device_to_host": down,
                                    "total": up + down},
            "bytes_per_epoch": epoch_bytes,
            "round_trips_per_minibatch": len(frames),
            "seconds_per_minibatch": link_seconds(up + down, baud),
            "samples_per_second_bound": lnk,
            "recorded_bytes_equal_frame_model": True,
        },
        "array_bound": {"macs_per_sample": macs, "cycles_per_sample": macs / lanes,
                        "samples_per_second": arr},
        "share_of_array_bound": achieved / arr,
        "share_of_link_bound": achieved / lnk,
        "core": {
            "train_cycles_per_sample": train_cycles / samples,
            "cycles_per_ideal_beat": train_cycles / ideal_beats,
            "mac_beats_per_ideal_beat": epoch["mac_busy_cycles"] / ideal_beats,
            "mac_busy_share_of_train_cycles": epoch["mac_busy_cycles"] / train_cycles,
            "core_only_samples_per_second": samples / (train_cycles / f),
        },
        "per_minibatch_periods": steady,
        "per_minibatch": per_minibatch(run["per_batch"]),
        "lela_train_epoch_extras": {
            **extras,
            "how": ("not simulated: lela train --backend serial also evaluates the test set and "
                    "reads every weight twice (check, checkpoint) after each epoch; their "
                    "frames by the driver's rules, at 10 bits a byte (link time only). lela "
                    "train's printed samples/s times the training alone, like this bench"),
        },
        "bit_exact": ("every mini-batch's per-layer correct counts equal the golden twin's "
                      "(RtlNet raises otherwise)"),
        "resends": run["resends"],
        "simulation": {"build_seconds": build_seconds, "wall_seconds": run["wall_seconds"],
                       "simulated_cycles": run["window"]["cycles"],
                       "cycles_per_wall_second": run["window"]["cycles"] / run["wall_seconds"],
                       "real_time_factor": run["window"]["cycles"] / f / run["wall_seconds"]},
    }
    return cfg, result


def predict(board, measured, built_blocks, built_cfg):
    """Fashion-MNIST-sized networks on ``board`` by the link model and the measured cycles per
    ideal MAC beat (no simulation)."""
    from contract.config import load_config
    out = []
    for arch in FASHION_NETWORKS:
        cfg = load_config(os.path.join(ROOT, board.config), arch=list(arch),
                          batch=FASHION_BATCH)
        as_built, rebuilt, reason = fit(board, cfg, built_blocks, built_cfg)
        entry = {"arch": list(arch), "batch": FASHION_BATCH, "fits_as_built": as_built,
                 "fits_rebuilt": rebuilt, "fit": reason}
        out.append(entry)
        if not rebuilt:
            entry["skipped"] = "does not fit the board: " + reason
            continue
        f = board.clock_hz
        baud = board.line_baud
        lanes = cfg.array_rows * cfg.array_cols
        counters = len(COUNTERS) + cfg.layers
        macs = macs_per_sample(cfg.arch, cfg.classes)
        k = measured["core"]["cycles_per_ideal_beat"]
        up, down = minibatch_bytes(cfg.arch[0], FASHION_BATCH, counters)
        link_s = link_seconds(up + down, baud)
        core_s = core_seconds(macs, FASHION_BATCH, lanes, f, k)
        rate = FASHION_BATCH / (link_s + core_s)
        extras = {name: link_seconds(frames_bytes(fr), baud)
                  for name, fr in lela_epoch_extras(cfg, 10_000).items()}
        entry.update({
            "macs_per_sample": macs,
            "bytes_per_minibatch": {"host_to_device": up, "device_to_host": down,
                                    "total": up + down},
            "round_trips_per_minibatch": len(minibatch_frames(cfg.arch[0], FASHION_BATCH,
                                                              counters)),
            "link_seconds_per_minibatch": link_s,
            "core_seconds_per_minibatch": core_s,
            "link_bound_samples_per_second": link_bound(up + down, FASHION_BATCH, baud),
            "array_bound_samples_per_second": array_bound(macs, lanes, f),
            "predicted_samples_per_second": rate,
            "predicted_share_of_array_bound": rate / array_bound(macs, lanes, f),
            "link_share": link_s / (link_s + core_s),
            "training_epoch_seconds_60000": 60_000 / rate,
            "lela_train_epoch_extras_seconds": extras,
            "how": ("per mini-batch: link = the driver's frames (minibatch_frames) at 10 bits "
                    "a byte at clock / divisor baud; core = cycles_per_ideal_beat measured on "
                    f"digits on this board ({k:.4f}) x MACs x batch / lanes; no host "
                    "turnaround. Extras: evaluation of the 10,000 test samples and the two "
                    "weight reads after each epoch, link time only"),
        })
    return out


# ---- the schedules: alternating and streamed (issue 15) -----------------------------------------

SCHEDULES = ("alternating", "pipelined")

#: Full mini-batches in the measured window of each schedule (after a first one that also
#: reads the counters and loads stop-and-wait).
DEFAULT_WINDOW = 16


def simulate_schedule(board, cfg, exe, data, schedule, window=DEFAULT_WINDOW):
    """Train ``window`` full mini-batches of epoch 1 (lela train's order) through the simulated
    board as ``lela train --backend serial`` does now, ``schedule`` "alternating" (each
    ``train_batch`` alone: LOAD_BATCH, then TRAIN, each waiting for its reply) or "pipelined"
    (``train_batch(..., next=...)``, as lela.train._epoch calls it: TRAIN with the next
    mini-batch's LOAD_BATCH streamed behind it where the board's rx_buffer holds it). One
    mini-batch before the window warms up (the driver's one counter read, the first
    stop-and-wait load); the bench reads the counters before and after the window."""
    from host.serial_transport import SerialTransport
    from lela.rtl_backend import RtlNet
    from sim.board_sim import SimulatedBoard

    order = np.random.default_rng([cfg.seed, 0]).permutation(len(data.x_train))
    batches = [order[k:k + cfg.batch] for k in range(0, len(order), cfg.batch)]
    if window + 2 > len(batches) - 1:
        raise SystemExit(f"{board.name}: a window of {window} needs {window + 3} mini-batches")
    xs = [(data.x_train[i], data.y_train[i]) for i in batches[:window + 2]]

    def step(model, k):
        following = xs[k + 1] if schedule == "pipelined" else None
        model.train_batch(*xs[k], next=following)

    with SimulatedBoard(exe) as sim:
        serial = SerialTransport(sim.port, board.baud, timeout=SIM_TIMEOUT_S)
        link = CountingLink(serial)
        model = RtlNet(cfg, link, retries=3)
        model.set_epoch(0)
        acc = model.device
        step(model, 0)
        start = acc.counters()
        sent, received, exchanges = link.sent, link.received, link.exchanges
        t0 = time.perf_counter()
        for k in range(1, window + 1):
            step(model, k)
        wall = time.perf_counter() - t0
        counts = (link.sent - sent, link.received - received, link.exchanges - exchanges)
        end = acc.counters()
        serial.close()
    return dict(window=window, counters=delta(end, start), sent=counts[0],
                received=counts[1], exchanges=counts[2], wall_seconds=wall,
                pipelined=acc.pipelined, fallbacks=acc.fallbacks, resends=acc.resends,
                counter_reads=acc.counter_reads)


def measure_schedules(board, data, window=DEFAULT_WINDOW):
    """Samples/s of each schedule at the board's clock, against the link bound of the frames
    the driver now sends per mini-batch (LOAD_BATCH and TRAIN, no READ_COUNTERS)."""
    from contract.config import load_config
    cfg = load_config(os.path.join(ROOT, board.config))
    board = board.for_config(cfg)
    exe, build_seconds, overrides = build(board, cfg)
    divisor = check_divisor(exe, board.divisor)
    f = board.clock_hz
    baud = float(f / divisor)
    counters = len(COUNTERS) + cfg.layers
    up, down = minibatch_bytes(cfg.arch[0], cfg.batch, counters, read_counters=False)
    bound = link_bound(up + down, cfg.batch, baud)
    old_up, old_down = minibatch_bytes(cfg.arch[0], cfg.batch, counters)
    rc_bytes = FRAME_OVERHEAD + FRAME_OVERHEAD + 1 + 8 * counters
    load = up - (FRAME_OVERHEAD + 1)
    out = {"config": board.config, "arch": list(cfg.arch), "batch": cfg.batch,
           "clock_hz": f, "baud": board.baud, "line_baud": baud, "divisor": str(divisor),
           "rx_buffer": cfg.rx_buffer, "load_batch_bytes": load,
           "streams": load <= cfg.rx_buffer,
           "bytes_per_minibatch": {"host_to_device": up, "device_to_host": down},
           "link_bound_samples_per_second": bound,
           "link_bound_with_read_counters": link_bound(old_up + old_down, cfg.batch, baud),
           "core_overrides": overrides, "build_seconds": build_seconds, "schedules": {}}
    for schedule in SCHEDULES:
        run = simulate_schedule(board, cfg, exe, data, schedule, window)
        c = run["counters"]
        if c["train_commands"] != window:
            raise SystemExit(f"{board.name} {schedule}: {c['train_commands']} TRAIN commands "
                             f"in a window of {window}")
        if (run["sent"], run["received"]) != (window * up, window * down):
            raise SystemExit(f"{board.name} {schedule}: {run['sent']} / {run['received']} "
                             f"bytes, the frame model says {window * up} / {window * down}")
        # The window holds the tail and head of the bench's two reads: one READ_COUNTERS
        # exchange's line time comes off, as in measure().
        cycles = c["cycles"] - rc_bytes * BITS_PER_BYTE * float(divisor)
        period = cycles / window
        rate = cfg.batch * f / period
        out["schedules"][schedule] = {
            "cycles_per_minibatch": period,
            "train_cycles_per_minibatch": c["train_cycles"] / window,
            "link_cycles_per_minibatch": (up + down) * BITS_PER_BYTE * float(divisor),
            "samples_per_second": rate,
            "share_of_link_bound": rate / bound,
            "round_trips_per_minibatch": run["exchanges"] / window,
            "streamed_minibatches": run["pipelined"], "fallbacks": run["fallbacks"],
            "resends": run["resends"], "counter_reads": run["counter_reads"],
            "device_counted_bytes": c["host_rx_bytes"] + c["host_tx_bytes"] - rc_bytes,
            "wall_seconds": run["wall_seconds"],
        }
        print(f"{board.name} {schedule}: {rate:.1f} samples/s = "
              f"{100 * rate / bound:.1f} % of the link bound {bound:.1f}; "
              f"{run['exchanges'] / window:g} round trips a mini-batch "
              f"({period:,.0f} cycles, train {c['train_cycles'] / window:,.0f})", flush=True)
    return out


def git_head():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv=None):
    from bench.machine import describe
    from contract.config import load_config
    from hw.boards import BOARDS
    from sw_model.data import load_dataset
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boards", nargs="+", choices=sorted(BOARDS),
                        default=["icebreaker", "ulx3s"])
    parser.add_argument("--minibatches", nargs="*", default=[f"{k}={v}" for k, v in
                                                               DEFAULT_MINIBATCHES.items()],
                        metavar="[BOARD=]N",
                        help="simulate only the first N-1 mini-batches of the epoch and its "
                        "last, and scale (0: the whole epoch); N alone: every board "
                        f"(default: {' '.join(f'{k}={v}' for k, v in DEFAULT_MINIBATCHES.items())}"
                        ", the other boards whole)")
    parser.add_argument("--out", default=RESULTS)
    parser.add_argument("--schedules", action="store_true",
                        help="measure only the alternating and pipelined schedules' steady "
                        "state (a window of --window full mini-batches per board) and add them "
                        "to --out as 'schedules', leaving its baseline entries as they are")
    parser.add_argument("--window", type=int, default=DEFAULT_WINDOW)
    args = parser.parse_args(argv)
    if args.schedules:
        return main_schedules(args)
    limit = {}
    for item in args.minibatches:
        name, _, n = item.rpartition("=")
        if (name and name not in BOARDS) or not n.isdigit() or 0 < int(n) < 4:
            parser.error(f"--minibatches {item}: [BOARD=]N with N = 0 or at least 4 (full "
                         "periods to scale by, and the last)")
        for b in ([name] if name else BOARDS):
            limit[b] = int(n)
    data = load_dataset("digits")
    boards, predictions = {}, {}
    t_all = time.perf_counter()
    for name in args.boards:
        # The board with its UART at its config's baud (hw/boards/top.py: Board.for_config).
        board = BOARDS[name].for_config(load_config(os.path.join(ROOT, BOARDS[name].config)))
        t0 = time.perf_counter()
        cfg, result = measure(board, limit.get(name, 0), data)
        report = os.path.join(ROOT, "bench", "results", f"{name}_report.json")
        blocks = None
        if os.path.exists(report):
            with open(report) as f:
                blocks = json.load(f).get("block_rams")
        boards[name] = result
        predictions[name] = predict(board, result, blocks, cfg)
        s = result["split"]
        print(f"{name}: {result['samples']} samples in {result['cycles_per_epoch']:,.0f} cycles "
              f"= {result['seconds_per_epoch']:.2f} s at {board.clock_hz / 1e6:g} MHz: "
              f"{result['samples_per_second']:.1f} samples/s (link bound "
              f"{result['link']['samples_per_second_bound']:.1f}, array bound "
              f"{result['array_bound']['samples_per_second']:.0f}: "
              f"{100 * result['share_of_array_bound']:.2f} %); link {100 * s['link_share']:.1f} "
              f"%, core {100 * s['train_share']:.1f} %, other {100 * s['other_share']:.2f} %; "
              f"{result['minibatches_simulated']}/{result['minibatches']} mini-batches "
              f"simulated in {time.perf_counter() - t0:.0f} s", flush=True)
    command = "python bench/board_throughput.py"
    if args.boards != ["icebreaker", "ulx3s"]:
        command += " --boards " + " ".join(args.boards)
    if args.minibatches != [f"{k}={v}" for k, v in DEFAULT_MINIBATCHES.items()]:
        command += " --minibatches " + " ".join(args.minibatches)
    result = {
        "command": command,
        "machine": describe(),
        "commit": git_head(),
        "dataset": f"digits ({len(data.x_train)} training samples), epoch 1 in lela train's order",
        "bench_seconds": time.perf_counter() - t_all,
        "boards": boards,
        "fashion_mnist_predictions": predictions,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")


def main_schedules(args):
    from bench.machine import describe
    from contract.config import load_config
    from hw.boards import BOARDS
    from sw_model.data import load_dataset
    data = load_dataset("digits")
    t0 = time.perf_counter()
    schedules = {}
    for name in args.boards:
        board = BOARDS[name].for_config(load_config(os.path.join(ROOT, BOARDS[name].config)))
        schedules[name] = measure_schedules(board, data, args.window)
    result = {}
    if os.path.exists(args.out):
        with open(args.out) as f:
            result = json.load(f)
    command = "python bench/board_throughput.py --schedules --boards " + " ".join(args.boards)
    if args.window != DEFAULT_WINDOW:
        command += f" --window {args.window}"
    # Boards not measured now keep their entries; each entry says its command and commit.
    boards = dict(result.get("schedules", {}).get("boards", {}))
    for name, entry in schedules.items():
        boards[name] = dict(entry, command=command, commit=git_head(), machine=describe())
    result["schedules"] = {"command": command, "machine": describe(), "commit": git_head(),
                           "bench_seconds": time.perf_counter() - t0, "boards": boards,
                           "how": ("steady state: a window of full mini-batches after a first "
                                   "one, the device's cycles counter between the bench's two "
                                   "reads less one READ_COUNTERS exchange's line time; every "
                                   "mini-batch's counts checked against the golden twin")}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
