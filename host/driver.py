"""The host driver: one API over any byte pipe to the accelerator (simulation or UART).

    with VerilatorTransport(exe) as link:
        acc = Accelerator(link)
        acc.configure(cfg)
        acc.init_weights()
        correct = acc.train_batch(x, labels)
        predictions, exits = acc.infer(x, exit_threshold=512)

The driver knows the protocol (host/protocol.py), the registers (host/registers.py) and the
weight layout (docs/HOST_INTERFACE.md); it knows nothing of the RTL.
"""

import hashlib

import numpy as np

from .protocol import MAX_PAYLOAD, REPLY, Command, Frame, FrameDecoder, Status, encode
from .registers import (counter_names, layer_words, register_index, register_values,
                        weight_bases)

__all__ = ["Accelerator", "DeviceError"]


class DeviceError(RuntimeError):
    """The device answered a command with an error status."""

    def __init__(self, command, status, detail=""):
        self.command, self.status = command, status
        name = Status(status).name if status in Status._value2member_map_ else f"{status:#04x}"
        super().__init__(f"device refused {Command(command).name}: {name}{detail}")


class Accelerator:
    """Commands to one accelerator over ``transport`` (see :class:`host.transport.Transport`)."""

    def __init__(self, transport):
        self.transport = transport
        self.cfg = None
        self.decoder = FrameDecoder()

    # ---- frames -----------------------------------------------------------------------------
    def request(self, command, payload=b""):
        """Send one frame; return ``(status, reply payload after the status byte)``."""
        data = self.transport.exchange(encode(command, payload), frames=1)
        frames = [e for e in self.decoder.feed(data) if isinstance(e, Frame)]
        if len(frames) != 1:
            raise RuntimeError(f"expected one reply to {Command(command).name}, got "
                               f"{len(frames)} frames from {len(data)} bytes")
        reply = frames[0]
        if reply.command != (int(command) | REPLY) or not reply.payload:
            raise RuntimeError(f"malformed reply to {Command(command).name}: "
                               f"command {reply.command:#04x}, {len(reply.payload)} bytes")
        return reply.payload[0], reply.payload[1:]

    def command(self, command, payload=b""):
        status, body = self.request(command, payload)
        if status != Status.OK:
            raise DeviceError(command, status)
        return body

    # ---- configuration and weights ---------------------------------------------------------
    def reset(self):
        self.command(Command.RESET)

    def configure(self, cfg):
        """Write every register of network ``cfg`` (sizes, shifts, seeds, modes)."""
        values = register_values(cfg)
        indices = sorted(values)
        runs, start = [], None
        for k in indices:
            if start is None or k != runs[-1][1] + 1:
                runs.append([k, k])
            else:
                runs[-1][1] = k
            start = k
        for first, last in runs:
            payload = bytes([first]) + b"".join(values[k].to_bytes(4, "little")
                                                for k in range(first, last + 1))
            self.command(Command.WRITE_CONFIG, payload)
        self.cfg = cfg
        self.word_bytes = cfg.array_rows * cfg.weight_bits // 8
        self.bases, self.total_words = weight_bases(cfg)

    def init_weights(self, seed=None):
        """Draw every layer's weights on the device from the init streams (biases 0).

        The streams derive from the configuration's seed, or from ``seed`` when given (only the
        init seeds change; the classifiers, rounding and dropout keep the configuration's)."""
        derived = self.cfg if seed is None else self.cfg.replace(seed=int(seed))
        for i in range(self.cfg.layers):
            index = register_index("init_seed", i)
            value = derived.stream_seed("init", i)
            self.command(Command.WRITE_CONFIG, bytes([index]) + value.to_bytes(4, "little"))
        self.command(Command.INIT_WEIGHTS)

    def _words_per_frame(self):
        return (MAX_PAYLOAD - 4) // self.word_bytes

    def write_words(self, address, words):
        """Write raw bus words (``n x P`` integers) from ``address``."""
        words = np.asarray(words, dtype=np.int64)
        per = self._words_per_frame()
        wbits = self.cfg.weight_bits
        for at in range(0, len(words), per):
            chunk = words[at:at + per] & ((1 << wbits) - 1)
            raw = chunk.astype(f"<u{wbits // 8}").tobytes()
            self.command(Command.WRITE_WEIGHTS, (address + at).to_bytes(4, "little") + raw)

    def read_words(self, address, count):
        per = (MAX_PAYLOAD - 1) // self.word_bytes
        wbits, p = self.cfg.weight_bits, self.cfg.array_rows
        out = []
        for at in range(0, count, per):
            n = min(per, count - at)
            body = self.command(Command.READ_WEIGHTS, (address + at).to_bytes(4, "little")
                                + n.to_bytes(2, "little"))
            raw = np.frombuffer(body, dtype=f"<i{wbits // 8}").reshape(n, p)
            out.append(raw.astype(np.int64))
        return np.concatenate(out) if out else np.zeros((0, p), dtype=np.int64)

    def _layer_shape(self, i):
        cfg = self.cfg
        p = cfg.array_rows
        n, j = cfg.neurons(i), cfg.fan_in(i)
        return n, j, -(-n // p), p

    def read_weights(self):
        """Every layer's ``(weights N x J, biases N)`` as integers."""
        layers = []
        for i in range(self.cfg.layers):
            n, j, t, p = self._layer_shape(i)
            words = self.read_words(self.bases[i], layer_words(self.cfg, i))
            tiles = words.reshape(t, j + 1, p).transpose(0, 2, 1).reshape(t * p, j + 1)[:n]
            layers.append((tiles[:, :j].copy(), tiles[:, j].copy()))
        return layers

    def write_weights(self, layers):
        """Write ``[(weights N x J, biases N), ...]``."""
        for i, (w, b) in enumerate(layers):
            n, j, t, p = self._layer_shape(i)
            grid = np.zeros((t * p, j + 1), dtype=np.int64)
            grid[:n, :j] = np.asarray(w, dtype=np.int64)
            grid[:n, j] = np.asarray(b, dtype=np.int64)
            words = grid.reshape(t, p, j + 1).transpose(0, 2, 1).reshape(t * (j + 1), p)
            self.write_words(self.bases[i], words)

    def weight_hash(self):
        """The golden model's :meth:`FixedPointNet.weight_hash` of the device's weights."""
        h = hashlib.sha256()
        for w, b in self.read_weights():
            h.update(w.astype("<i4").tobytes())
            h.update(b.astype("<i4").tobytes())
        return h.hexdigest()

    # ---- data ----------------------------------------------------------------------------
    def load_batch(self, x, labels):
        """Load pixels ``x`` (``B x N[0]`` bytes) and ``labels`` as the input mini-batch."""
        x = np.asarray(x)
        labels = np.asarray(labels)
        if len(x) > self.cfg.batch or len(x) != len(labels) or len(x) == 0:
            raise ValueError(f"a mini-batch holds 1..{self.cfg.batch} samples with one label "
                             f"each, not {len(x)} samples and {len(labels)} labels")
        per_sample = 1 + x.shape[1]
        per = max(1, (MAX_PAYLOAD - 2) // per_sample)
        rows = np.concatenate([labels.reshape(-1, 1), x], axis=1).astype(np.uint8)
        for at in range(0, len(x), per):
            chunk = rows[at:at + per]
            self.command(Command.LOAD_BATCH, bytes([at, len(chunk)]) + chunk.tobytes())

    def train_batch(self, x, labels):
        """Train on one mini-batch; returns the correct local predictions per layer."""
        self.load_batch(x, labels)
        body = self.command(Command.TRAIN, bytes([len(x)]))
        return list(np.frombuffer(body, dtype="<u2").astype(int))

    def train(self, batches):
        """Train on an iterable of ``(x, labels)``; returns per-batch correct counts."""
        return [self.train_batch(x, y) for x, y in batches]

    def infer(self, x, exit_threshold=None):
        """Every layer's predictions (``L x n``) and each sample's exit layer (``n``).

        With ``exit_threshold`` (score units), a sample stops at the first layer whose margin
        reaches it; its later-layer predictions are then undefined."""
        x = np.asarray(x)
        cfg = self.cfg
        preds, exits = [], []
        for at in range(0, len(x), cfg.batch):
            chunk = x[at:at + cfg.batch]
            self.load_batch(chunk, np.zeros(len(chunk), dtype=np.uint8))
            early = exit_threshold is not None
            thr = int(exit_threshold) if early else 0
            if not 0 <= thr < 1 << 16:
                raise ValueError(f"exit threshold {thr} outside 0..65535 score units")
            self.command(Command.INFER, bytes([len(chunk), int(early)])
                         + thr.to_bytes(2, "little"))
            body = self.command(Command.READ_RESULTS, bytes([len(chunk)]))
            table = np.frombuffer(body, dtype=np.uint8).reshape(len(chunk), cfg.layers + 1)
            preds.append(table[:, :cfg.layers].T.astype(int))
            exits.append(table[:, cfg.layers].astype(int))
        return np.concatenate(preds, axis=1), np.concatenate(exits)

    def predict(self, x):
        return self.infer(x)[0]

    def counters(self):
        body = self.command(Command.READ_COUNTERS)
        values = np.frombuffer(body, dtype="<u8").astype(int)
        return dict(zip(counter_names(self.cfg.layers), (int(v) for v in values)))
