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
           "frames_bytes", "batch_sizes", "ecp5_blocks", "core_seconds", "training_rate"]

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


def training_rate(arch, classes, batch, lanes, clock_hz, baud, cycles_per_beat=1.0,
                  read_counters=True):
    """Samples/s of training through the host driver when the link and the core take turns
    (the host waits for every reply): a mini-batch's frames on the wire, both ways, then its
    TRAIN on the core; no host turnaround. Returns ``(samples/s, link s, core s)`` per
    mini-batch."""
    counters = len(COUNTERS) + len(arch) - 1
    link_s = link_seconds(sum(minibatch_bytes(arch[0], batch, counters, read_counters)), baud)
    core_s = core_seconds(macs_per_sample(arch, classes), batch, lanes, clock_hz,
                          cycles_per_beat)
    return batch / (link_s + core_s), link_s, core_s
