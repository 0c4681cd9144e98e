"""The analytic throughput model of a board: the host driver's frames on the UART link, and the
MAC array's ideal rate (docs/RESULTS.md, "The boards' throughput as a user sees it").

Pure functions of the network's sizes, the batch, the link's baud rate and the array's lanes and
clock. ``bench/board_throughput.py`` checks them against a cycle-level simulation of each board;
``lela explore`` predicts samples/s with them.
"""

from contract.protocol import FRAME_OVERHEAD, MAX_PAYLOAD
from contract.registers import COUNTERS

__all__ = ["BITS_PER_BYTE", "macs_per_sample", "link_seconds", "link_bound", "array_bound",
           "minibatch_frames", "minibatch_bytes", "infer_frames", "read_weights_frames",
           "frames_bytes", "batch_sizes", "ecp5_blocks", "core_seconds", "training_rate",
           "SCHEDULES", "schedule_for", "RESIDENT_EXTRA_CYCLES"]

#: Bits a byte takes on the line (8N1: start, 8 data, stop).
BITS_PER_BYTE = 10


def macs_per_sample(arch, classes):
    """Multiply-accumulates one training sample needs: per layer of ``n`` neurons on ``j``
    inputs, forward ``n*j``, local-classifier scores ``n*C``, back projection of the error
    through the classifier ``C*n`` and weight gradient ``n*j`` (bench/accelerator.py's
    ``mac_operations`` for one sample)."""
    return sum(2 * n * j + 2 * n * classes for j, n in zip(arch[:-1], arch[1:]))


def link_seconds(nbytes, baud):
    """Seconds ``nbytes`` take on a UART at ``baud`` (10 bits a byte)."""
    return nbytes * BITS_PER_BYTE / baud


def link_bound(bytes_per_batch, batch, baud):
    """Samples/s the link alone allows: ``batch`` samples per ``bytes_per_batch`` bytes (both
    directions: the host waits for each reply, so they do not overlap)."""
    return batch / link_seconds(bytes_per_batch, baud)


def array_bound(macs, lanes, clock_hz):
    """Samples/s of ``lanes`` MACs a cycle at ``clock_hz``, every lane busy, ``macs`` a sample."""
    return lanes * clock_hz / macs


def minibatch_frames(inputs, batch, counters, read_counters=True):
    """``[(command, request bytes, reply bytes)]`` of one training mini-batch as the host driver
    sends it (host/driver.py): LOAD_BATCH frames of at most ``MAX_PAYLOAD`` (``u8 first, u8
    count``, then ``1 + inputs`` bytes a sample; reply: the status), READ_COUNTERS when the
    driver has retries and does not know the counters (``counters`` u64 values: before the
    first TRAIN after a configure or a loss; ``read_counters=False`` is every other
    mini-batch's), TRAIN (``u8 B``; reply: the status and a u16
    per layer, ``layers = counters - len(COUNTERS)``)."""
    layers = counters - len(COUNTERS)
    per = max(1, (MAX_PAYLOAD - 2) // (1 + inputs))
    frames = []
    for at in range(0, batch, per):
        count = min(per, batch - at)
        frames.append(("LOAD_BATCH", FRAME_OVERHEAD + 2 + count * (1 + inputs),
                       FRAME_OVERHEAD + 1))
    if read_counters:
        frames.append(("READ_COUNTERS", FRAME_OVERHEAD, FRAME_OVERHEAD + 1 + 8 * counters))
    frames.append(("TRAIN", FRAME_OVERHEAD + 1, FRAME_OVERHEAD + 1 + 2 * layers))
    return frames


def minibatch_bytes(inputs, batch, counters, read_counters=True):
    """``(host to device, device to host)`` bytes of :func:`minibatch_frames`."""
    frames = minibatch_frames(inputs, batch, counters, read_counters)
    return sum(f[1] for f in frames), sum(f[2] for f in frames)


def infer_frames(inputs, batch, counters, samples, read_counters=True):
    """``[(command, request bytes, reply bytes)]`` of inference on ``samples`` samples as
    ``Accelerator.infer`` does it (``lela train``'s evaluation after every epoch): per chunk of
    ``batch``, LOAD_BATCH, READ_COUNTERS (retries), INFER (``u8 B, u8 early_exit, u16
    threshold``; reply: the status) and READ_RESULTS (``u8 B``; reply: ``L + 1`` bytes a
    sample). The driver reads the counters only when it does not know them
    (``read_counters=False``: it does, host/driver.py ``Accelerator.expected``)."""
    layers = counters - len(COUNTERS)
    frames = []
    for b in batch_sizes(samples, batch):
        frames += [f for f in minibatch_frames(inputs, b, counters, read_counters)
                   if f[0] != "TRAIN"]
        frames.append(("INFER", FRAME_OVERHEAD + 4, FRAME_OVERHEAD + 1))
        frames.append(("READ_RESULTS", FRAME_OVERHEAD + 1,
                       FRAME_OVERHEAD + 1 + b * (layers + 1)))
    return frames


def read_weights_frames(words, word_bytes):
    """``[(command, request bytes, reply bytes)]`` of reading ``words`` weight words of
    ``word_bytes`` bytes (``Accelerator.read_words``: ``u32 address, u16 n`` a frame, at most
    ``(MAX_PAYLOAD - 1) // word_bytes`` words a reply)."""
    per = (MAX_PAYLOAD - 1) // word_bytes
    return [("READ_WEIGHTS", FRAME_OVERHEAD + 6, FRAME_OVERHEAD + 1 + min(per, words - at)
             * word_bytes) for at in range(0, words, per)]


def frames_bytes(frames):
    """Bytes of ``frames`` (``[(command, request, reply)]``) both ways together."""
    return sum(f[1] + f[2] for f in frames)


def batch_sizes(samples, batch):
    """Sizes of an epoch's mini-batches (the last one partial when ``batch`` does not divide)."""
    return [min(batch, samples - k) for k in range(0, samples, batch)]


def ecp5_blocks(width, depth):
    """DP16KD blocks (18 Kbit) a ``width x depth`` memory takes in the best of the block's
    shapes (16384x1 .. 512x36)."""
    shapes = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))
    return min(-(-width // w) * -(-depth // d) for w, d in shapes)


def core_seconds(macs, batch, lanes, clock_hz, cycles_per_beat=1.0):
    """Seconds the core trains a mini-batch of ``batch`` samples: ``macs`` a sample over
    ``lanes`` MACs a cycle, each ideal beat taking ``cycles_per_beat`` cycles (measured on the
    boards: 1.009 on the iCEBreaker, 1.020 on the ULX3S; docs/RESULTS.md, issue 15)."""
    return cycles_per_beat * macs * batch / lanes / clock_hz


#: Cycles the resident trainer spends on a sample besides its ``inputs + 1`` bytes (reading the
#: next visit from the shuffler, the copy's pipeline through the store's four-cycle read,
#: hw/banked_ram.py; the shuffle itself overlaps the copy): 5 with the store read
#: in one cycle (bench/results/board_resident.json then measured 69.7 cycles a 65-byte sample
#: on the ULX3S), two more since.
RESIDENT_EXTRA_CYCLES = 7

#: How the host driver feeds the core: "alternating" (each frame waits for its reply),
#: "pipelined" (the next mini-batch's LOAD_BATCH streamed behind TRAIN, when it fits the
#: board's receive buffer) or "resident" (the training set on the board, an epoch a command).
SCHEDULES = ("alternating", "pipelined", "resident")


def schedule_for(inputs, batch, rx_buffer, resident_samples=0):
    """The schedule today's driver uses on a board with ``rx_buffer`` bytes of receive buffer
    (``lela train --resident`` on a board that holds the set: "resident")."""
    if resident_samples:
        return "resident"
    load = sum(up for name, up, _ in minibatch_frames(inputs, batch, len(COUNTERS) + 1, False)
               if name == "LOAD_BATCH")
    return "pipelined" if load <= rx_buffer else "alternating"


def training_rate(arch, classes, batch, lanes, clock_hz, baud, cycles_per_beat=1.0,
                  read_counters=False, schedule="alternating"):
    """Samples/s of training through the host driver, in steady state, without host turnaround:
    "alternating", a mini-batch's frames on the wire both ways (with ``read_counters``, a
    READ_COUNTERS exchange too: the driver before it kept the expected counters), then its TRAIN
    on the core; "pipelined", the larger of the two (the next batch's load on the line while the
    core trains); "resident", the core alone plus copying each sample from board memory (no
    link: an epoch is one command). Returns ``(samples/s, link s, core s)`` per mini-batch."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule {schedule!r} is none of {', '.join(SCHEDULES)}")
    counters = len(COUNTERS) + len(arch) - 1
    link_s = link_seconds(sum(minibatch_bytes(arch[0], batch, counters, read_counters)), baud)
    core_s = core_seconds(macs_per_sample(arch, classes), batch, lanes, clock_hz,
                          cycles_per_beat)
    if schedule == "resident":
        core_s += batch * (arch[0] + 1 + RESIDENT_EXTRA_CYCLES) / clock_hz
        return batch / core_s, 0.0, core_s
    period = max(link_s, core_s) if schedule == "pipelined" else link_s + core_s
    return batch / period, link_s, core_s
