"""The host driver: one API over any byte pipe to the accelerator (simulation or UART).

    with VerilatorTransport(exe) as link:
        acc = Accelerator(link)
        acc.configure(cfg)
        acc.init_weights()
        correct = acc.train_batch(x, labels)
        predictions, exits = acc.infer(x, exit_threshold=512)

The driver knows the protocol (contract/protocol.py), the registers (contract/registers.py) and the
weight layout (docs/HOST_INTERFACE.md); it knows nothing of the RTL.
"""

import hashlib

import numpy as np

from contract.limits import Limits, register_name
from contract.protocol import (DAMAGED, EPOCH_ARGUMENTS, FRAME_OVERHEAD, MAX_PAYLOAD,
                               STORE_HEADER, Command, Frame, FrameDecoder,
                               Status, encode, is_answer)
from contract.registers import (BN_WORDS, GLOBAL, counter_names, layer_fan_in, layer_rows,
                                layer_words, register_index, register_values, tile_words,
                                weight_bases)
from .checks import check_batch, check_config, check_epoch, check_stored, check_words
from .transport import TransportTimeout

__all__ = ["Accelerator", "DeviceError", "ReplyLost", "weights_hash"]


def command_name(command):
    """``command``'s name, or its number when it is none of :class:`Command`."""
    known = command in Command._value2member_map_
    return Command(command).name if known else f"{int(command):#04x}"


class DeviceError(RuntimeError):
    """The device answered a command with an error status."""

    def __init__(self, command, status, detail=""):
        self.command, self.status = command, status
        name = Status(status).name if status in Status._value2member_map_ else f"{status:#04x}"
        if status == Status.UNSUPPORTED and not detail:
            detail = (" (this core was built without a feature the request needs: dropout, "
                      "sign-concordant feedback, early exit, or a resident store of samples "
                      "this wide)")
        super().__init__(f"device refused {command_name(command)}: {name}{detail}")


def bad_value_detail(command, body):
    """What a ``BAD_VALUE`` reply's body names (docs/HOST_INTERFACE.md, "Range checks")."""
    if command == Command.WRITE_CONFIG and body:
        return f" (register '{register_name(body[0])}', index {body[0]}, out of range)"
    if command == Command.LOAD_BATCH and body:
        return f" (sample {body[0]}: a label beyond the classes or a pixel beyond act_bits)"
    if command == Command.STORE_SAMPLES and body:
        return (f" (sample {body[0]} of the frame: a label beyond the classes or a pixel beyond "
                "act_bits)")
    if command == Command.TRAIN_EPOCH and body and body[0] < 3:
        return f" (its {('samples', 'batch', 'seed')[body[0]]} out of range)"
    if command in (Command.WRITE_WEIGHTS, Command.READ_WEIGHTS):
        return " (the words run past the weight memory)"
    return ""


def counter_delta(before, after, name):
    """How much counter ``name`` moved between two reads, for a move under ``2**16``: exact
    whatever the device's counter width (at least 16 bits; the counters wrap)."""
    return (after[name] - before[name]) % (1 << 16)


def weights_hash(weights, batch_norm=()):
    """:meth:`FixedPointNet.weight_hash` of ``[(weights, biases)]`` per layer as
    :meth:`Accelerator.read_weights` returns them (and the scales of ``read_batch_norm``)."""
    h = hashlib.sha256()
    for w, b in weights:
        h.update(w.astype("<i4").tobytes())
        h.update(b.astype("<i4").tobytes())
    for bn in batch_norm:
        h.update(bn["gamma"].astype("<i4").tobytes())
    return h.hexdigest()


class ReplyLost(RuntimeError):
    """No valid reply arrived (line noise or a timeout): the command may or may not have run."""


#: How many replies that answer an earlier request (late, after that request was given up and
#: re-sent) one request skips before it gives up: each lost reply leaves at most one behind.
STALE_LIMIT = 16


class Accelerator:
    """Commands to one accelerator over ``transport`` (see :class:`host.transport.Transport`).

    Every request carries a new tag (0..255, wrapping) and only a reply with the request's
    command and tag and an undamaged status answers it (``contract.protocol.is_answer``;
    docs/HOST_INTERFACE.md, "Matching replies to requests"): a late reply to an earlier
    request is skipped, and a reply the device sent for a dropped frame, or a reply damaged on
    the way back, means the request may be lost. With ``retries > 0`` (links that can lose
    bytes, such as a UART) such a request is sent again with a new tag, and a command whose
    answer was lost is re-sent only if the device's command counters show that it did not run
    (``TRAIN`` and ``INFER`` are not repeatable). Without retries, or when the retries run
    out, the call raises :class:`ReplyLost`: a value the driver returns is always an answer.
    """

    def __init__(self, transport, retries=0, limits=None, rx_buffer=None):
        self.transport = transport
        # The device's limits (contract/limits.py): given, or those of a core built for the
        # configuration that configure() writes.
        self.given_limits = limits
        self.limits = limits
        self.retries = retries
        self.resends = 0
        self.stale_replies = 0        # late replies to earlier requests, skipped
        self.resyncs = 0              # times a frame was lost and the line drained
        self.cfg = None
        self.arch = None                # a convolutional network's architecture
        self.decoder = FrameDecoder()
        self.tag = 0                  # the tag of the last request sent
        # The device's command counters as the driver expects them (a READ_COUNTERS reply,
        # moved on by every TRAIN and INFER answered since), or None when the driver cannot
        # know them (none read yet, a RESET, a TRAIN or INFER sent outside _run_once, a loss
        # left unresolved): then _run_once reads them before its command, as it always did.
        self.expected = None
        self._counting = False        # _run_once's own TRAIN/INFER: keeps the expectation
        self.counter_reads = 0        # READ_COUNTERS requests made to resolve or anchor
        # Bytes the device's receiver holds while a command executes: given, or the
        # configuration's rx_buffer (configure). The driver streams no more behind a frame whose
        # reply it has not received.
        self.given_rx_buffer = rx_buffer
        self.rx_buffer = rx_buffer or 1
        # The mini-batch that train_batch(..., next=...) streamed behind its TRAIN and the
        # device answered OK (a key of its bytes), loaded and not yet consumed; None when the
        # input buffer holds nothing the driver can vouch for.
        self._preloaded = None
        self.pipelined = 0            # mini-batches whose next LOAD_BATCH rode behind TRAIN
        self.fallbacks = 0            # streamed exchanges that went wrong and were resolved

    # ---- frames -----------------------------------------------------------------------------
    def _once(self, command, payload):
        """Send ``command`` once, with a new tag; return the answer's ``(status, body)``.

        Raises :class:`ReplyLost` when no answer came, or when anything shows that a frame was
        lost on the way (a dropped frame's reply, a reply that fails its CRC, bytes that make no
        frame) and the line then went quiet (the transport's ``drain``) without the answer:
        waiting longer for it would take the transport's whole timeout."""
        name = command_name(command)
        self.tag = tag = (self.tag + 1) & 0xFF
        # Bytes left over from an earlier request are never looked at again.
        self.decoder = FrameDecoder()
        send = encode(command, payload, tag)
        for _ in range(STALE_LIMIT + 1):
            try:
                data = self.transport.exchange(send, frames=1)
            except TransportTimeout as e:
                lost = [str(e)]
                data = b""
            else:
                lost = []
            send = b""
            answer = self._answer(data, command, tag, lost)
            if answer is None and lost:
                # Resynchronise: whatever the device still sends for the damaged bytes (and
                # perhaps this request's answer, late) comes out before anything is re-sent.
                # A fresh decoder: a reply cut short is never completed by the bytes that
                # follow it (its CRC would pass one time in 256).
                self.resyncs += 1
                self.decoder = FrameDecoder()
                answer = self._answer(self._drain(), command, tag, [])
                if answer is None:
                    raise ReplyLost(f"{name}: no answer; got {', '.join(lost)}")
            if answer is not None:
                return answer
            # Only late replies to earlier requests: this one's answer is behind them.
        raise ReplyLost(f"{name}: no answer among {STALE_LIMIT + 1} replies to earlier requests")

    def _answer(self, data, command, tag, lost):
        """The answer's ``(status, body)`` among the frames ``data`` completes, or None;
        appends to ``lost`` what shows that a frame was lost on the way."""
        skipped = self.decoder.skipped
        for event in self.decoder.feed(data):
            if is_answer(event, command, tag):
                return event.payload[0], event.payload[1:]
            if not isinstance(event, Frame):
                lost.append(f"a reply failing its check ({event[0].name})")
            elif event.payload[:1] and event.payload[0] in DAMAGED:
                lost.append(f"a dropped frame's reply ({Status(event.payload[0]).name})")
            else:
                self.stale_replies += 1
        junk = self.decoder.skipped - skipped + len(self.decoder.buffer)
        if junk:
            lost.append(f"{junk} bytes that make no frame")
        return None

    def _drain(self):
        drain = getattr(self.transport, "drain", None)
        return drain() if drain is not None else b""

    def request(self, command, payload=b"", repeatable=True):
        """Send one frame; return ``(status, reply payload after the status byte)`` of its
        answer. A repeatable command is re-sent (up to ``retries`` times) when its answer is
        lost."""
        if command in (Command.RESET, Command.TRAIN, Command.INFER) and not self._counting:
            self.expected = None      # the counters move where the driver does not count
        if command not in (Command.READ_COUNTERS, Command.READ_WEIGHTS, Command.READ_RESULTS):
            self._preloaded = None    # the input buffer may change
        for attempt in range(self.retries + 1):
            try:
                return self._once(command, payload)
            except ReplyLost:
                if attempt == self.retries or not repeatable:
                    raise
                self.resends += 1
        raise AssertionError("unreachable")

    def command(self, command, payload=b"", repeatable=True):
        status, body = self.request(command, payload, repeatable)
        if status == Status.BAD_VALUE:
            raise DeviceError(command, status, bad_value_detail(command, body))
        if status != Status.OK:
            raise DeviceError(command, status)
        return body

    def _run_once(self, command, payload, counter, runs=1):
        """A command that must not run twice: on a lost reply, ask the counters whether it ran.

        The driver keeps the counters it expects (:attr:`expected`: the last read, moved on by
        each answer since), so it reads them only when a reply is lost, or before the command
        when it cannot know them; a lost reply is then resolved against the expectation exactly
        as against a read before the command: ``counter`` moved by ``runs`` (one; a
        ``TRAIN_EPOCH`` its mini-batches), the command ran (its reply was lost); by none, it did
        not and is re-sent; by anything else, the expectation
        was wrong and the call raises :class:`ReplyLost` (the next command reads first).

        Returns the reply body, or ``None`` when it ran but its reply was lost (then
        ``self._lost_counters`` is ``(before, after)``)."""
        if self.retries and self.expected is None:
            self.expected = self._read_counters()
        before = self.expected
        for attempt in range(self.retries + 1):
            self._counting = True
            try:
                body = self.command(command, payload, repeatable=not self.retries)
            except ReplyLost:
                self.expected = None
                if not self.retries:
                    raise
                after = self._read_counters()     # ReplyLost here: the expectation stays None
                moved = counter_delta(before, after, counter)
                if moved == runs:
                    self.expected = after
                    self._lost_counters = (before, after)
                    return None
                if moved != 0:
                    raise ReplyLost(f"{command_name(command)}: {counter} moved by {moved} "
                                    "while the driver sent it once") from None
                self.expected = after
                self.resends += 1
                continue
            finally:
                self._counting = False
            self._count(command, body, runs)
            return body
        raise ReplyLost(f"{command_name(command)}: no reply after {self.retries} resends")

    def _read_counters(self):
        self.counter_reads += 1
        return self.counters()

    def _count(self, command, body, runs=1):
        """Move :attr:`expected` on by an answered ``TRAIN`` or ``TRAIN_EPOCH`` of ``runs``
        mini-batches (``body``: their correct counts) or ``INFER``."""
        if self.expected is None:
            return
        expected = dict(self.expected)
        if command in (Command.TRAIN, Command.TRAIN_EPOCH):
            expected["train_commands"] += runs
            for i, v in enumerate(np.frombuffer(body, dtype="<u2")):
                expected[f"correct_{i}"] += int(v)
        elif command == Command.INFER:
            expected["infer_commands"] += 1
        self.expected = expected

    # ---- configuration and weights ---------------------------------------------------------
    def reset(self):
        self.command(Command.RESET)

    def configure(self, cfg, arch=None):
        """Write every register of network ``cfg`` (sizes, shifts, seeds, modes); ``arch``
        (contract.architecture) for a convolutional network, whose ``cfg.arch`` holds only
        its flattened sizes."""
        limits = self.given_limits or Limits.for_config(cfg)
        arch = arch if arch is not None and arch.convolutional else None
        check_config(cfg, limits, arch)
        values = register_values(cfg, arch)
        if limits.batch_norm:
            # A core built with batch normalisation keeps the last network's switch: say it.
            values.setdefault(GLOBAL["batch_norm"], 0)
        if limits.conv:
            # So does a core built with convolutions of each layer's: fully connected is 0.
            # ``conv`` closes the layer's geometry, which one frame must carry: gamma_shift
            # (0 where unused) fills the gap before it.
            for i in range(cfg.layers):
                values.setdefault(register_index("conv", i), 0)
                values.setdefault(register_index("gamma_shift", i), 0)
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
        self.cfg, self.limits, self.arch = cfg, limits, arch
        self.rx_buffer = self.given_rx_buffer or cfg.rx_buffer
        self.word_bytes = cfg.array_rows * cfg.weight_bits // 8
        self.bases, self.total_words = weight_bases(cfg, arch)

    def set_learning_rate(self, cfg):
        """Rewrite the registers the learning rate sets (``bias_shift`` and each layer's
        ``update_shift``) for ``cfg``, the configured network with another ``lr_shift``
        (ARITHMETIC.md, "Learning-rate decay"). Nothing else is written: the PRNGs run on."""
        same = {k: v for k, v in cfg.to_dict().items() if k != "lr_shift"}
        if same != {k: v for k, v in self.cfg.to_dict().items() if k != "lr_shift"}:
            raise ValueError("set_learning_rate: the network differs from the configured one "
                             "in more than lr_shift (use configure)")
        check_config(cfg, self.limits, self.arch)
        values = register_values(cfg, self.arch)
        shifts = ["update_shift", "gamma_shift"] if cfg.batch_norm else ["update_shift"]
        for index in [GLOBAL["bias_shift"]] + [register_index(name, i) for name in shifts
                                               for i in range(cfg.layers)]:
            self.command(Command.WRITE_CONFIG,
                         bytes([index]) + values[index].to_bytes(4, "little"))
        self.cfg = cfg

    def set_frozen(self, layers):
        """Make ``TRAIN`` run the layers in ``layers`` forward only (the ``frozen`` register,
        a bit per layer; a core built without frozen layers takes only 0 and answers any
        other mask ``BAD_VALUE``)."""
        mask = 0
        for i in layers:
            if not 0 <= i < self.cfg.layers:
                raise ValueError(f"cannot freeze layer {i}: the network has layers 0.."
                                 f"{self.cfg.layers - 1}")
            mask |= 1 << i
        self.command(Command.WRITE_CONFIG,
                     bytes([GLOBAL["frozen"]]) + mask.to_bytes(4, "little"))

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
        check_words(address, len(words), self.limits)
        per = self._words_per_frame()
        wbits = self.cfg.weight_bits
        for at in range(0, len(words), per):
            chunk = words[at:at + per] & ((1 << wbits) - 1)
            raw = chunk.astype(f"<u{wbits // 8}").tobytes()
            self.command(Command.WRITE_WEIGHTS, (address + at).to_bytes(4, "little") + raw)

    def read_words(self, address, count):
        check_words(address, count, self.limits)
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
        n, j = layer_rows(cfg, i, self.arch), layer_fan_in(cfg, i, self.arch)
        return n, j, -(-n // p), p

    def _layer_grid(self, i):
        """Layer i's words as ``neurons x tile words`` (column ``c`` of row ``tP + p`` is lane
        ``p`` of the tile's word ``c``), padding rows included."""
        n, j, t, p = self._layer_shape(i)
        words = self.read_words(self.bases[i], layer_words(self.cfg, i, self.arch))
        stride = tile_words(self.cfg, i, self.arch)
        return words.reshape(t, stride, p).transpose(0, 2, 1).reshape(t * p, stride)

    def read_weights(self):
        """Every layer's ``(weights N x J, biases N)`` as integers."""
        layers = []
        for i in range(self.cfg.layers):
            n, j, _, _ = self._layer_shape(i)
            grid = self._layer_grid(i)[:n]
            layers.append((grid[:, :j].copy(), grid[:, j].copy()))
        return layers

    def read_batch_norm(self):
        """Every layer's batch normalisation (a batch-normalised network): ``{"gamma",
        "mean", "var"}`` per neuron, as sw_model.golden_batch_norm.BatchNormState holds them."""
        if not self.cfg.batch_norm:
            raise ValueError("read_batch_norm: the configured network is not batch-normalised")
        wb = self.cfg.weight_bits
        out = []
        for i in range(self.cfg.layers):
            n, j, _, _ = self._layer_shape(i)
            grid = self._layer_grid(i)[:n]
            low = grid[:, j + 1:j + 1 + BN_WORDS] & ((1 << wb) - 1)      # the raw lanes

            def pair(k):
                return low[:, k] + (low[:, k + 1] << wb)
            out.append({"gamma": grid[:, j + 1].copy(), "mean": pair(1), "var": pair(3)})
        return out

    def write_weights(self, layers, batch_norm=None):
        """Write ``[(weights N x J, biases N), ...]``; a batch-normalised network also needs
        ``batch_norm``, each layer's ``{"gamma", "mean", "var"}``."""
        if self.cfg.batch_norm and batch_norm is None:
            raise ValueError("write_weights: a batch-normalised network's layers also need "
                             "their scales and running statistics (batch_norm=...)")
        wb = self.cfg.weight_bits
        for i, (w, b) in enumerate(layers):
            n, j, t, p = self._layer_shape(i)
            stride = tile_words(self.cfg, i, self.arch)
            grid = np.zeros((t * p, stride), dtype=np.int64)
            grid[:n, :j] = np.asarray(w, dtype=np.int64)
            grid[:n, j] = np.asarray(b, dtype=np.int64)
            if self.cfg.batch_norm:
                bn = batch_norm[i]
                mask, half = (1 << wb) - 1, 1 << (wb - 1)

                def lane(v):                               # raw bits as a signed lane
                    v = np.asarray(v, dtype=np.int64) & mask
                    return np.where(v >= half, v - (1 << wb), v)
                grid[:n, j + 1] = np.asarray(bn["gamma"], dtype=np.int64)
                for k, name in ((2, "mean"), (4, "var")):
                    v = np.asarray(bn[name], dtype=np.int64)
                    grid[:n, j + k], grid[:n, j + k + 1] = lane(v), lane(v >> wb)
            words = grid.reshape(t, p, stride).transpose(0, 2, 1).reshape(t * stride, p)
            self.write_words(self.bases[i], words)

    def weight_hash(self):
        """The golden model's :meth:`FixedPointNet.weight_hash` of the device's weights."""
        return weights_hash(self.read_weights(),
                            self.read_batch_norm() if self.cfg.batch_norm else ())

    # ---- data ----------------------------------------------------------------------------
    @staticmethod
    def _sample_chunks(x, labels, header):
        """``(first, count, bytes)`` of the frames that carry samples ``x`` with ``labels``
        (a label byte, then the pixels, a sample), as many as fit a payload after ``header``
        bytes (and a u8 count)."""
        per = min(255, max(1, (MAX_PAYLOAD - header) // (1 + x.shape[1])))
        rows = np.concatenate([labels.reshape(-1, 1), x], axis=1).astype(np.uint8)
        return [(at, len(rows[at:at + per]), rows[at:at + per].tobytes())
                for at in range(0, len(x), per)]

    def _load_payloads(self, x, labels):
        """The ``LOAD_BATCH`` payloads of pixels ``x`` and ``labels`` (checked)."""
        x = np.asarray(x)
        labels = np.asarray(labels)
        check_batch(x, labels, self.cfg)
        return [bytes([at, count]) + rows for at, count, rows in self._sample_chunks(x, labels, 2)]

    def load_batch(self, x, labels):
        """Load pixels ``x`` (``B x N[0]`` bytes) and ``labels`` as the input mini-batch."""
        for payload in self._load_payloads(x, labels):
            self.command(Command.LOAD_BATCH, payload)

    def _load_and_run(self, x, labels, command, payload, counter, loaded=False):
        """``LOAD_BATCH`` (unless ``loaded``: the batch is already in the input buffer), then
        ``TRAIN`` or ``INFER`` (:meth:`_run_once`). With retries, a command refused
        ``OUT_OF_ORDER`` is loaded and run once more: noise shaped like a ``LOAD_BATCH`` header
        spoils the loaded batch (a ``LOAD_BATCH`` dropped part-way marks it incomplete), and a
        refused command did not run."""
        attempts = 2 if self.retries else 1
        for attempt in range(attempts):
            if not (loaded and attempt == 0):
                self.load_batch(x, labels)
            try:
                return self._run_once(command, payload, counter)
            except DeviceError as e:
                if e.status != Status.OUT_OF_ORDER or attempt + 1 == attempts:
                    raise
                self.resends += 1
        raise AssertionError("unreachable")

    # ---- resident training (docs/HOST_INTERFACE.md, "Resident training") --------------------
    def store_samples(self, x, labels, first=0):
        """Hold pixels ``x`` and ``labels`` on the device as its training samples ``first ..``
        (``STORE_SAMPLES``, as many frames as they take); an epoch may use samples ``0 ..``
        up to the last stored without a gap."""
        x, labels = np.asarray(x), np.asarray(labels)
        check_stored(x, labels, self.cfg, self.limits, first)
        for at, count, rows in self._sample_chunks(x, labels, STORE_HEADER):
            self.command(Command.STORE_SAMPLES,
                         (first + at).to_bytes(2, "little") + bytes([count]) + rows)

    def train_epoch(self, samples, batch, seed):
        """Train one epoch over stored samples ``0 .. samples-1`` in the device's shuffled
        order (docs/ARITHMETIC.md, "Resident training: the sample order"), ``batch`` a
        mini-batch (``TRAIN_EPOCH``); returns the correct local predictions per layer, summed
        over the epoch. Not repeatable: a lost reply is resolved from the counters."""
        check_epoch(samples, batch, seed, self.cfg, self.limits)
        self._preloaded = None                  # the epoch overwrites the input buffer
        payload = (samples.to_bytes(2, "little") + bytes([batch])
                   + seed.to_bytes(4, "little"))
        assert len(payload) == EPOCH_ARGUMENTS
        body = self._run_once(Command.TRAIN_EPOCH, payload, "train_commands",
                              runs=-(-samples // batch))
        return self._train_counts(body)

    def _train_counts(self, body):
        if body is None:            # it ran; its reply was lost: the counters hold the result
            before, after = self._lost_counters
            return [counter_delta(before, after, f"correct_{i}")
                    for i in range(self.cfg.layers)]
        return [int(v) for v in np.frombuffer(body, dtype="<u2")]

    @staticmethod
    def _batch_key(x, labels):
        x, labels = np.asarray(x), np.asarray(labels)
        return (x.shape, hashlib.sha256(x.astype(np.int64).tobytes()
                                        + labels.astype(np.int64).tobytes()).hexdigest())

    def train_batch(self, x, labels, next=None):
        """Train on one mini-batch; returns the correct local predictions per layer.

        ``next``: the mini-batch ``(x, labels)`` that the following call will train. When its
        ``LOAD_BATCH`` frames fit in the device's receive buffer (:attr:`rx_buffer` bytes),
        they are sent right behind this ``TRAIN``, without waiting for its reply: they wait in
        the receiver while ``TRAIN`` runs and execute after it (frames run in order), so one
        round trip carries the whole mini-batch (docs/HOST_INTERFACE.md, "Streaming"). The
        following ``train_batch`` of that batch then sends no ``LOAD_BATCH``. On anything
        unexpected the driver falls back to the stop-and-wait rules (:meth:`_stream_train`)."""
        x = np.asarray(x)
        labels = np.asarray(labels)
        preloaded = self._preloaded is not None and self._preloaded == self._batch_key(x, labels)
        self._preloaded = None
        payload = bytes([len(x)])
        if next is not None:
            frames = [(Command.LOAD_BATCH, p) for p in self._load_payloads(*next)]
            if sum(len(p) + FRAME_OVERHEAD for _, p in frames) <= self.rx_buffer:
                check_batch(x, labels, self.cfg)
                if not preloaded:
                    self.load_batch(x, labels)
                return self._train_counts(self._stream_train(x, labels, payload, frames,
                                                             self._batch_key(*next)))
        body = self._load_and_run(x, labels, Command.TRAIN, payload, "train_commands",
                                  loaded=preloaded)
        return self._train_counts(body)

    def _stream(self, requests):
        """Send ``requests`` (``[(command, payload)]``) back to back, each with a new tag, and
        read their replies. Returns ``(answers, clean)``: per request its answer's ``(status,
        body)`` or None, and whether every request was answered ``OK`` with nothing else on the
        line. When not clean, the line has been drained (its answers taken from what came)."""
        tags, data = [], b""
        for command, payload in requests:
            self.tag = (self.tag + 1) & 0xFF
            tags.append(self.tag)
            data += encode(command, payload, self.tag)
        answers = [None] * len(requests)
        trouble = []

        def take(received):
            skipped = self.decoder.skipped
            for event in self.decoder.feed(received):
                for k, (command, _) in enumerate(requests):
                    if answers[k] is None and is_answer(event, command, tags[k]):
                        answers[k] = (event.payload[0], bytes(event.payload[1:]))
                        if event.payload[0] != Status.OK:
                            trouble.append(f"{command_name(command)} answered status "
                                           f"{event.payload[0]:#04x}")
                        break
                else:
                    if isinstance(event, Frame) and not (event.payload[:1] and
                                                         event.payload[0] in DAMAGED):
                        self.stale_replies += 1
                    trouble.append(f"an unexpected reply {event!r:.60}")
            junk = self.decoder.skipped - skipped + len(self.decoder.buffer)
            if junk:
                trouble.append(f"{junk} bytes that make no frame")

        self.decoder = FrameDecoder()
        try:
            take(self.transport.exchange(data, frames=len(requests)))
        except TransportTimeout as e:
            trouble.append(str(e))
        if not trouble and all(a is not None for a in answers):
            return answers, True
        self.resyncs += 1
        self.decoder = FrameDecoder()
        take(self._drain())
        self.decoder = FrameDecoder()
        return answers, False

    def _stream_train(self, x, labels, payload, frames, next_key):
        """``TRAIN`` of the loaded batch ``x``, ``labels`` with the next batch's ``LOAD_BATCH``
        ``frames`` streamed behind it (:meth:`train_batch`); returns ``TRAIN``'s body (None:
        it ran, its reply was lost, ``self._lost_counters`` holds the counts).

        Clean (every reply ``OK``, in order): the next batch is loaded. Otherwise (a timeout, a
        reply failing its check, a dropped frame's reply, a stale reply, an error status) the
        line is drained and the stop-and-wait rules decide, never running ``TRAIN`` twice:

        * ``TRAIN`` answered ``OK``: it ran; its counts are the answer's;
        * ``TRAIN`` answered an error: it did not run; the batch is loaded again (a
          ``LOAD_BATCH`` behind it may have overwritten the input buffer) and run as
          :meth:`_load_and_run` does (``OUT_OF_ORDER`` once more, others raise);
        * no answer: the counters, against the expected ones, say whether it ran (moved by
          one: its counts come from ``correct[i]``) or not (the batch is loaded again and
          ``TRAIN`` re-sent once it is, as :meth:`_load_and_run`).

        The next batch counts as not loaded after any of these: the next call loads it."""
        if self.retries and self.expected is None:
            self.expected = self._read_counters()
        before = self.expected
        answers, clean = self._stream([(Command.TRAIN, payload)] + frames)
        train = answers[0]
        if clean:
            self.pipelined += 1
            self._count(Command.TRAIN, train[1])
            self._preloaded = next_key
            return train[1]
        self.fallbacks += 1
        if train is not None and train[0] == Status.OK:
            self._count(Command.TRAIN, train[1])
            return train[1]
        if train is not None:                               # refused: it did not run
            if train[0] != Status.OUT_OF_ORDER or not self.retries:
                raise DeviceError(Command.TRAIN, train[0])
        else:
            self.expected = None
            if not self.retries:
                raise ReplyLost("TRAIN: no answer among the streamed replies")
            after = self._read_counters()
            moved = counter_delta(before, after, "train_commands")
            if moved == 1:
                self.expected = after
                self._lost_counters = (before, after)
                return None
            if moved != 0:
                raise ReplyLost(f"TRAIN: train_commands moved by {moved} while the driver "
                                "sent it once")
            self.expected = after
        self.resends += 1
        # TRAIN did not run, and the LOAD_BATCH behind it may have run: load this batch again.
        return self._load_and_run(x, labels, Command.TRAIN, payload, "train_commands")

    def train(self, batches):
        """Train on an iterable of ``(x, labels)``; returns per-batch correct counts. Each
        mini-batch's ``LOAD_BATCH`` rides behind the ``TRAIN`` before it where the device's
        receive buffer holds it (:meth:`train_batch`'s ``next``)."""
        return list(self.train_batches(batches))

    def train_batches(self, batches):
        """:meth:`train` as a generator: each mini-batch's counts as soon as it is trained."""
        it = iter(batches)
        current = next(it, None)
        while current is not None:
            following = next(it, None)
            yield self.train_batch(*current, next=following)
            current = following

    def infer(self, x, exit_threshold=None):
        """Every layer's predictions (``L x n``) and each sample's exit layer (``n``).

        With ``exit_threshold`` (score units), a sample stops at the first layer whose margin
        reaches it; its later-layer predictions are then undefined."""
        x = np.asarray(x)
        cfg = self.cfg
        preds, exits = [], []
        for at in range(0, len(x), cfg.batch):
            chunk = x[at:at + cfg.batch]
            early = exit_threshold is not None
            thr = int(exit_threshold) if early else 0
            if not 0 <= thr < 1 << 16:
                raise ValueError(f"exit threshold {thr} outside 0..65535 score units")
            self._load_and_run(chunk, np.zeros(len(chunk), dtype=np.uint8), Command.INFER,
                               bytes([len(chunk), int(early)]) + thr.to_bytes(2, "little"),
                               "infer_commands")
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
