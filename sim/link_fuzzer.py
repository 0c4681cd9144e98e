"""A seeded fuzzer of the host link: hostile bytes at the device, damage on the line in both
directions under the driver, and the golden model as the judge (tests/test_link_fuzz.py).

Two kinds of episode, each from its own seed:

* **raw**: bytes straight to the device, no driver: random bytes, valid frames with random
  command and field values, valid frames cut short, with one bit flipped or one byte dropped,
  and junk between them. A valid frame sent on a quiet line must get exactly one reply, with
  its command and tag and an undamaged status (``UNKNOWN_COMMAND`` for a command byte that is
  none); after a damaged item the line is left quiet until the device has answered it.
* **driver**: the host driver (with retries) configures, trains and infers through a
  :class:`FaultyLink` that puts junk before frames and flips a bit, drops a byte or cuts the
  tail of frames both ways. Every value the driver returns is compared with the golden model;
  a call may raise (the episode then ends), but never return a wrong value.

After every episode the device must answer ``RESET`` and train a mini-batch bit-exactly (the
correct counts and every weight read back) on a clean link. At most one fault hits a frame in
each direction: CRC-8 catches every single-bit error, but two flipped bits a multiple of 127
bits apart get through (one random pair in 127 in a long frame), the limit of an 8-bit check
that no framing can lift.
"""

from dataclasses import dataclass, field

import numpy as np

from contract.protocol import (DAMAGED, MAX_PAYLOAD, REPLY, SYNC, Command, Frame, FrameDecoder,
                               Status, encode)
from contract.registers import LAYER_BASE, LAYER_STRIDE, weight_bases
from host.driver import Accelerator, DeviceError, ReplyLost
from host.transport import Transport, TransportTimeout
from sw_model.golden import FixedPointNet

__all__ = ["FaultyLink", "FuzzStats", "random_frame", "raw_episode", "driver_episode",
           "check_recovers", "settle", "run_fuzz", "SilentWrongResult"]


class SilentWrongResult(AssertionError):
    """The driver returned a value that differs from the golden model's, without an error."""


@dataclass
class FuzzStats:
    episodes: int = 0
    frames: int = 0                  # frames sent to the device, damaged or not
    junk_bytes: int = 0              # random bytes sent outside frames
    faults: int = 0                  # frames damaged on the line (both directions)
    raised: dict = field(default_factory=dict)   # exception type -> count (driver episodes)
    returned: int = 0                # values the driver returned and the golden model checked
    silent_wrong: int = 0

    def add_raised(self, exc):
        name = type(exc).__name__
        self.raised[name] = self.raised.get(name, 0) + 1


def _junk(rng, n):
    """``n`` random bytes; half the time they start like a frame header (SYNC, a command, a
    tag, a length), the noise that once put the driver one reply behind."""
    junk = bytearray(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
    if n >= 5 and rng.random() < 0.5:
        junk[0] = SYNC
        junk[1] = int(rng.choice([int(c) for c in Command]))
    return bytes(junk)


def damage(data, rng, kind):
    """``data`` with one fault: ``flip`` one bit, ``drop`` one byte, ``cut`` the tail."""
    data = bytearray(data)
    if not data:
        return bytes(data)
    at = int(rng.integers(len(data)))
    if kind == "flip":
        data[at] ^= 1 << int(rng.integers(8))
    elif kind == "drop":
        del data[at]
    elif kind == "cut":
        del data[at:]
    else:
        raise ValueError(f"unknown fault {kind!r}")
    return bytes(data)


class FaultyLink(Transport):
    """A transport between the driver and a :class:`sim.harness.VerilatorTransport` that
    damages frames: per exchange and direction, junk before them with probability ``junk``
    and one fault (``flip``, ``drop`` or ``cut``) with probability ``fault``. ``max_cycles``
    bounds each exchange (a frame the device never saw is never answered)."""

    def __init__(self, link, rng, junk=0.1, fault=0.1, max_cycles=200_000, stats=None):
        self.link, self.rng = link, rng
        self.junk, self.fault, self.max_cycles = junk, fault, max_cycles
        self.stats = stats if stats is not None else FuzzStats()

    def _noise(self, data, outgoing):
        rng = self.rng
        if data and outgoing:
            self.stats.frames += 1
        if data and rng.random() < self.fault:
            data = damage(data, rng, str(rng.choice(["flip", "drop", "cut"])))
            self.stats.faults += 1
        if rng.random() < self.junk:
            junk = _junk(rng, int(rng.integers(1, 9)))
            self.stats.junk_bytes += len(junk)
            data = junk + data
        return data

    def exchange(self, data, frames=1, timeout=None):
        data = self._noise(bytes(data), outgoing=True)
        try:
            out = self.link.exchange(data, frames=frames, max_cycles=self.max_cycles)
        except TransportTimeout as e:
            e.received = self._noise(getattr(e, "received", b""), outgoing=False)
            raise
        return self._noise(out, outgoing=False)

    def drain(self):
        return self._noise(self.link.drain(), outgoing=False)

    def close(self):
        self.link.close()


def random_frame(rng, cfg, words, tag):
    """A frame with a correct CRC and random field values: mostly a known command with a
    payload of its shape (any register, any value, addresses in and far out of the weight
    memory of ``words`` words, any counts), else any command byte or any payload."""
    def u32(v):
        return int(v).to_bytes(4, "little")

    def anyint(bits, small):
        return int(rng.integers(small)) if rng.random() < 0.7 else int(rng.integers(1 << bits))

    r = rng.random()
    command = int(rng.integers(256)) if r < 0.15 else int(rng.choice([int(c) for c in Command]))
    word_bytes = cfg.array_rows * cfg.weight_bits // 8
    nregs = LAYER_BASE + LAYER_STRIDE * cfg.layers
    if rng.random() < 0.1 or command not in Command._value2member_map_:
        payload = rng.integers(0, 256, int(rng.integers(0, 24)), dtype=np.uint8).tobytes()
    elif command == Command.WRITE_CONFIG:
        n = int(rng.integers(1, 5))
        payload = bytes([anyint(8, nregs)]) + b"".join(u32(anyint(32, 300)) for _ in range(n))
    elif command in (Command.WRITE_WEIGHTS, Command.READ_WEIGHTS):
        address = anyint(32, words)
        if command == Command.WRITE_WEIGHTS:
            n = int(rng.integers(1, 5))
            payload = u32(address) + rng.integers(0, 256, n * word_bytes,
                                                  dtype=np.uint8).tobytes()
        else:
            payload = u32(address) + anyint(16, 8).to_bytes(2, "little")
    elif command == Command.LOAD_BATCH:
        first, count = anyint(8, cfg.batch), anyint(8, cfg.batch + 1)
        rows = min(count, (MAX_PAYLOAD - 2) // (cfg.arch[0] + 1))
        body = rng.integers(0, 256, (rows, cfg.arch[0] + 1), dtype=np.uint8)
        body[:, 0] = [anyint(8, cfg.classes) for _ in range(rows)]
        payload = bytes([first, count]) + body.tobytes()
    elif command in (Command.TRAIN, Command.READ_RESULTS):
        payload = bytes([anyint(8, cfg.batch + 1)])
    elif command == Command.INFER:
        payload = bytes([anyint(8, cfg.batch + 1), anyint(8, 2)]) + anyint(16, 1000).to_bytes(
            2, "little")
    else:                                       # RESET, INIT_WEIGHTS, READ_COUNTERS
        payload = b""
    return encode(command, payload, tag)


def settle(link, frame_timeout, limit=50):
    """Run the device until it has sent nothing for a frame timeout: a frame cut short has
    then timed out and been answered, and the receiver hunts for the next SYNC. Returns what
    it sent; raises AssertionError if it never goes quiet."""
    out, window = bytearray(), frame_timeout + 100
    for _ in range(limit):
        more = link.run(window)
        if not more:
            return bytes(out)
        out += more
    raise AssertionError(f"the device kept sending for {limit} x {window} cycles after a "
                         f"damaged frame")


def _expect_answer(link, frame, max_cycles, what):
    """Send a valid ``frame`` on a quiet line: exactly one reply, its command's and tag's, with
    an undamaged status (``UNKNOWN_COMMAND`` if the command byte is none)."""
    command, tag = frame[1], frame[2]
    try:
        out = link.exchange(frame, frames=1, max_cycles=max_cycles)
    except TransportTimeout as e:
        raise AssertionError(f"{what}: no reply to the valid frame {frame[:16].hex()}... "
                             f"({len(frame)} bytes) within {max_cycles} cycles: {e}") from None
    events = FrameDecoder().feed(out)
    if len(events) != 1 or not isinstance(events[0], Frame):
        raise AssertionError(f"{what}: expected one reply frame to {frame[:16].hex()}..., got "
                             f"{events!r}")
    reply = events[0]
    status = reply.payload[0] if reply.payload else None
    known = command in Command._value2member_map_
    if (reply.command != command | REPLY or reply.tag != tag or status is None
            or status in DAMAGED or (not known and status != Status.UNKNOWN_COMMAND)):
        raise AssertionError(f"{what}: the valid frame {frame[:16].hex()}... was answered "
                             f"{reply!r}")
    return status


def raw_episode(link, rng, cfg, words, frame_timeout, max_cycles, items, stats):
    """Send ``items`` random items straight to the device (see the module's docstring)."""
    for k in range(items):
        what = f"raw item {k}"
        kind = str(rng.choice(["frame", "frame", "junk", "flip", "drop", "cut"]))
        if kind == "junk":
            junk = _junk(rng, int(rng.integers(1, 40)))
            stats.junk_bytes += len(junk)
            link.exchange(junk, frames=0, max_cycles=max_cycles)
            settle(link, frame_timeout)
            continue
        frame = random_frame(rng, cfg, words, int(rng.integers(256)))
        stats.frames += 1
        try:
            if kind == "frame":
                _expect_answer(link, frame, max_cycles, what)
            else:
                stats.faults += 1
                link.exchange(damage(frame, rng, kind), frames=0, max_cycles=max_cycles)
                settle(link, frame_timeout)
        except RuntimeError as e:          # the harness died: a memory access out of range
            raise AssertionError(f"{what}: the frame {frame[:16].hex()}... ({kind}, "
                                 f"{len(frame)} bytes): {e}") from e


def _check(stats, what, got, want):
    stats.returned += 1
    if not np.array_equal(np.asarray(got), np.asarray(want)):
        stats.silent_wrong += 1
        raise SilentWrongResult(f"{what}: the driver returned {got!r}, the golden model "
                                f"{want!r}")


def _check_weights(stats, what, acc, net):
    for i, (w, b) in enumerate(acc.read_weights()):
        _check(stats, f"{what}: layer {i} weights", w, net.weights[i])
        _check(stats, f"{what}: layer {i} biases", b, net.biases[i])


def driver_episode(faulty, rng, cfg, batches, stats, retries=3):
    """The driver resets, configures, trains ``batches`` mini-batches, reads the weights and the
    counters and infers through ``faulty``; every value it returns is checked. Returns the
    exception that ended the episode early, or None."""
    acc = Accelerator(faulty, retries=retries)
    net = FixedPointNet(cfg)
    try:
        acc.reset()                             # the counters start from 0
        acc.configure(cfg)
        acc.init_weights()
        _check_weights(stats, "after INIT_WEIGHTS", acc, net)
        for k in range(batches):
            x = rng.integers(0, 256, size=(cfg.batch, cfg.arch[0]))
            y = rng.integers(0, cfg.classes, size=cfg.batch)
            _check(stats, f"TRAIN {k}", acc.train_batch(x, y), net.train_batch(x, y))
        _check(stats, "train_commands", acc.counters()["train_commands"], batches)
        _check_weights(stats, "after training", acc, net)
        x = rng.integers(0, 256, size=(cfg.batch, cfg.arch[0]))
        _check(stats, "INFER", acc.infer(x)[0], np.array(net.predict(x)))
    except (ReplyLost, DeviceError) as e:
        stats.add_raised(e)
        return e
    return None


def check_recovers(link, cfg, rng, frame_timeout, max_cycles, what):
    """On a clean link: the device answers ``RESET`` (after the line has been quiet for a
    frame timeout) and trains a mini-batch bit-exactly, correct counts and weights; each
    exchange within ``max_cycles``."""
    settle(link, frame_timeout)
    bounded = FaultyLink(link, rng, junk=0, fault=0, max_cycles=max_cycles)
    acc = Accelerator(bounded)
    try:
        acc.reset()
        acc.configure(cfg)
        acc.init_weights()
        net = FixedPointNet(cfg)
        x = rng.integers(0, 256, size=(cfg.batch, cfg.arch[0]))
        y = rng.integers(0, cfg.classes, size=cfg.batch)
        got, want = acc.train_batch(x, y), net.train_batch(x, y)
        layers = acc.read_weights()
    except (ReplyLost, DeviceError) as e:
        raise AssertionError(f"{what}: the device did not recover: {e}") from e
    if got != want:
        raise AssertionError(f"{what}: after RESET, TRAIN's correct counts {got}, golden {want}")
    for i, (w, b) in enumerate(layers):
        if not (np.array_equal(w, net.weights[i]) and np.array_equal(b, net.biases[i])):
            raise AssertionError(f"{what}: after RESET and a TRAIN, layer {i}'s weights differ "
                                 f"from the golden model's")


def run_fuzz(link, cfg, seed, episodes, frame_timeout, max_cycles, raw_items=24, batches=2,
             max_junk=0.3, max_fault=0.3, log=None):
    """``episodes`` episodes, raw and driver in turn, each followed by :func:`check_recovers`.
    Episode ``e`` draws from ``numpy.random.default_rng([seed, e])``; a driver episode's
    junk and fault probabilities are drawn from ``[0, max_junk)`` and ``[0, max_fault)``
    (a clean line to one where most frames fail). Returns the :class:`FuzzStats`; raises on
    the first silent wrong result or failure to recover."""
    _, words = weight_bases(cfg)
    stats = FuzzStats()
    for e in range(episodes):
        rng = np.random.default_rng([seed, e])
        kind = "raw" if e % 2 == 0 else "driver"
        what = f"seed {seed} episode {e} ({kind})"
        try:
            if kind == "raw":
                raw_episode(link, rng, cfg, words, frame_timeout, max_cycles, raw_items, stats)
            else:
                junk, fault = rng.uniform(0, max_junk), rng.uniform(0, max_fault)
                faulty = FaultyLink(link, rng, junk, fault, max_cycles, stats)
                ended = driver_episode(faulty, rng, cfg, batches, stats)
                if log is not None and ended is not None:
                    log(f"{what}: ended by {type(ended).__name__}: {ended}")
        except AssertionError as exc:
            raise AssertionError(f"{what}: {exc}") from exc
        check_recovers(link, cfg, rng, frame_timeout, max_cycles, f"{what}, after it")
        stats.episodes += 1
    return stats
