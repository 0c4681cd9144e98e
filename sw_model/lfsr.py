"""The LFSR pseudo-random bit sequence of docs/ARITHMETIC.md, section "PRNG".

Every random number the accelerator uses (local-classifier weights, sign-concordant feedback
magnitudes, initial weights, stochastic-rounding bits, dropout masks) is a chunk of the bit
sequence of a Fibonacci LFSR::

    b[n] = seed bit n                         for 0 <= n < W
    b[n] = XOR over t in TAPS[W] of b[n - t]   for n >= W

and chunk ``m`` of an ``R``-bit stream is ``sum(b[m*R + r] << r for r in range(R))`` (the first
bit drawn is the least significant). The model below never steps bit by bit: because the
sequence is linear over GF(2) with a polynomial ``P``, it also obeys ``P**(2**k)``, so chunk ``m``
of an ``R``-bit stream (``R`` a power of two) obeys ``c[m] = XOR_t c[m - t * 2**j]`` for any
``j >= 0``, and whole blocks of chunks are computed with one NumPy XOR per tap.
"""

import numpy as np

from contract.lfsr_taps import TAPS

__all__ = ["TAPS", "lfsr_bits_reference", "LfsrStream", "chunks", "classifier_weights",
           "feedback_weights"]

_MAX_CHUNK_BITS = 32
_MAX_HISTORY = 1 << 16          # 64-bit words kept between draws


def _check(width, seed, chunk_bits=1):
    if width not in TAPS:
        raise ValueError(f"LFSR width {width} has no known maximal polynomial "
                         f"(supported: {min(TAPS)}..{max(TAPS)})")
    if not 0 < seed < (1 << width):
        raise ValueError(f"LFSR seed {seed:#x} must be non-zero and fit in {width} bits")
    if chunk_bits < 1 or chunk_bits > _MAX_CHUNK_BITS or chunk_bits & (chunk_bits - 1):
        raise ValueError(f"LFSR chunk width {chunk_bits} must be a power of two up to "
                         f"{_MAX_CHUNK_BITS}")


def lfsr_bits_reference(width, seed, count, taps=None):
    """Return ``count`` output bits of the LFSR, stepped one bit at a time like the hardware.

    The register holds ``b[n] .. b[n+W-1]`` with ``b[n]`` in bit 0; each step outputs bit 0,
    shifts right and inserts the feedback bit at the top. Slow: a reference for tests.
    """
    _check(width, seed)
    taps = taps or TAPS[width]
    state = seed
    out = []
    for _ in range(count):
        out.append(state & 1)
        feedback = 0
        for t in taps:
            feedback ^= (state >> (width - t)) & 1
        state = (state >> 1) | (feedback << (width - 1))
    return out


class LfsrStream:
    """A stream of ``chunk_bits``-wide chunks of one LFSR's bit sequence, drawn in order.

    Internally the sequence is generated 64 bits at a time (64-bit chunks obey the same
    recurrence) and split into narrower chunks, so drawing costs about one XOR per tap per 64
    bits.

    Parameters
    ----------
    width : int
        Register width ``W``; must have an entry in :data:`TAPS`.
    seed : int
        Non-zero initial register value; its bit ``n`` is ``b[n]``.
    chunk_bits : int
        ``R``, a power of two up to 32: the number of sequence bits in one chunk.
    """

    def __init__(self, width, seed, chunk_bits, taps=None):
        _check(width, seed, chunk_bits)
        self.width = width
        self.seed = seed
        self.chunk_bits = chunk_bits
        self.dtype = np.dtype(f"uint{max(8, chunk_bits)}")
        self._per_word = 64 // chunk_bits
        self._taps = tuple(taps or TAPS[width])
        self._min_lag = min(self._taps)
        self.position = 0
        bits = np.array(lfsr_bits_reference(width, seed, width * 64, self._taps),
                        dtype=np.uint64)
        words = (bits.reshape(width, 64) << np.arange(64, dtype=np.uint64)).sum(
            axis=1, dtype=np.uint64)
        # _buf holds the 64-bit words at positions _buf_start .. _buf_start + len(_buf) - 1,
        # always including at least the W words before the last one generated.
        self._buf = words
        self._buf_start = 0

    def state(self):
        """Return a small picklable snapshot from which :meth:`restore` resumes exactly."""
        tail = self._buf[-self.width:].copy()
        return {"position": self.position, "tail_start": self._buf_start + len(self._buf)
                - len(tail), "tail": tail}

    def register(self):
        """The ``W``-bit register at the current position (bit ``k`` is the next ``b[n+k]``):
        loading it as a seed continues this stream (the hardware's view)."""
        snapshot = self.state()
        values = self.draw(-(-self.width // self.chunk_bits))
        self.restore(snapshot)
        reg = 0
        for k, v in enumerate(values):
            reg |= int(v) << (k * self.chunk_bits)
        return reg & ((1 << self.width) - 1)

    def restore(self, snapshot):
        self.position = int(snapshot["position"])
        self._buf = np.asarray(snapshot["tail"], dtype=np.uint64).copy()
        self._buf_start = int(snapshot["tail_start"])

    def _words(self, first, end):
        """64-bit words ``first .. end - 1`` (``first`` must still be buffered)."""
        end_i = end - self._buf_start
        buf = self._buf
        have = len(buf)
        if end_i > have:
            buf = np.empty(end_i, dtype=np.uint64)
            buf[:have] = self._buf
            while have < end_i:
                j = 0
                while self.width << (j + 1) <= have:
                    j += 1
                block = min(self._min_lag << j, end_i - have)
                # The sources end at or before `have` (block <= t << j), so the new words are
                # XORed straight into place, one pass per tap.
                new = buf[have:have + block]
                lag, *rest = self._taps
                if rest:
                    np.bitwise_xor(buf[have - (lag << j):][:block],
                                   buf[have - (rest[0] << j):][:block], out=new)
                    rest = rest[1:]
                else:
                    new[...] = buf[have - (lag << j):][:block]
                for t in rest:
                    np.bitwise_xor(new, buf[have - (t << j):][:block], out=new)
                have += block
        out = buf[first - self._buf_start:end_i]
        keep = min(len(buf), _MAX_HISTORY)
        self._buf_start += len(buf) - keep
        self._buf = buf[len(buf) - keep:]
        return out

    def draw(self, count):
        """Return the next ``count`` chunks as a read-only unsigned array (8, 16 or 32 bits)."""
        count = int(count)
        if count < 0:
            raise ValueError("cannot draw a negative number of chunks")
        k = self._per_word
        first_word = self.position // k
        end_word = -(-(self.position + count) // k)
        words = self._words(first_word, end_word)
        if self.chunk_bits >= 8:
            narrow = words.astype("<u8", copy=False).view(f"<u{self.chunk_bits // 8}")
        else:
            shifts = np.arange(0, 64, self.chunk_bits, dtype=np.uint64)
            mask = np.uint64((1 << self.chunk_bits) - 1)
            narrow = ((words[:, None] >> shifts) & mask).astype(np.uint8).ravel()
        offset = self.position - first_word * k
        out = narrow[offset:offset + count].astype(self.dtype, copy=False)
        out.flags.writeable = False
        self.position += count
        return out


def chunks(width, seed, chunk_bits, count):
    """Return the first ``count`` chunks of a fresh stream."""
    return LfsrStream(width, seed, chunk_bits).draw(count)


def classifier_weights(width, seed, classes, neurons, bits):
    """Return the integer local-classifier matrix ``m`` (``classes x neurons``, int64).

    Weights are drawn neuron-major (``m[c, j]`` is chunk ``j * classes + c``) and a ``bits``-bit
    chunk ``u`` becomes the odd, zero-mean weight ``2*u - (2**bits - 1)``.
    """
    u = chunks(width, seed, bits, classes * neurons).astype(np.int64)
    return (2 * u - ((1 << bits) - 1)).reshape(neurons, classes).T.copy()


def feedback_weights(m, width, fb_seed, bits):
    """Return the sign-concordant feedback ``sign(m) * |m'|``, ``m'`` drawn like ``m`` from
    ``fb_seed``."""
    classes, neurons = m.shape
    magnitude = np.abs(classifier_weights(width, fb_seed, classes, neurons, bits))
    return np.sign(m) * magnitude
