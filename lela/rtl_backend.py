"""Training on the accelerator through the host driver, checked against the golden model batch
by batch: the RTL in Verilator (``lela train --backend rtl``) or a board over a serial port
(``--backend serial``)."""

import hashlib
import os

import numpy as np

from host.driver import Accelerator, weights_hash
from contract.protocol import Command
from contract.registers import GLOBAL
from sw_model.golden import FixedPointNet

__all__ = ["RtlNet", "MismatchError", "build_dir_for"]


class MismatchError(RuntimeError):
    """The accelerator and the golden model disagree: a bug, reported with where."""


def build_dir_for(cfg, root="build/accelerator"):
    """One build directory per hardware configuration (the run-time registers do not count)."""
    from hw.params import CoreParams
    key = repr(CoreParams.from_config(cfg)).encode()
    return os.path.join(root, hashlib.sha256(key).hexdigest()[:12])


class RtlNet:
    """The model interface of :func:`lela.train.run` on the accelerator.

    Every mini-batch also trains a golden twin (:class:`FixedPointNet`, or for a convolutional
    network's ``arch`` :class:`~sw_model.golden_conv.FixedPointConvNet`); the per-layer
    correct counts must agree on every batch and the weights at every :meth:`check`.
    """

    def __init__(self, cfg, transport, retries=0, arch=None):
        self.cfg = cfg
        self.link = transport
        self.device = Accelerator(transport, retries=retries)
        self.device.configure(cfg, arch)
        self.device.init_weights()
        if arch is not None:
            from sw_model.golden_conv import FixedPointConvNet
            self.golden = FixedPointConvNet(cfg, arch)
        else:
            self.golden = FixedPointNet(cfg)
        self.batches = 0
        # The device's weights as last read, and the mini-batch count they were read at: the
        # end of an epoch checks them, checkpoints them and hashes them, and over a UART every
        # read of the paper's networks takes seconds to minutes. Nothing but a mini-batch or a
        # restore changes them.
        self._read = None
        self._stored = None             # the training set in the device's resident store

    #: train_batch takes the next mini-batch (``next=``): lela.train._epoch passes it, and the
    #: driver streams its LOAD_BATCH behind this one's TRAIN where the board's receive buffer
    #: holds it (Accelerator.train_batch).
    pipelines = True

    def train_batch(self, x, labels, next=None):
        self._read = None
        got = self.device.train_batch(x, labels, next=next)
        want = self.golden.train_batch(x, labels)
        self.batches += 1
        if list(got) != list(want):
            raise MismatchError(f"mini-batch {self.batches}: the accelerator counted {got} "
                                f"correct predictions per layer, the golden model {want}")
        return [int(v) for v in got]

    def train_epoch(self, x, labels, seed, batches):
        """Train an epoch on the device from its resident store (``lela train --resident``):
        the training set ``x``, ``labels`` is stored once (again after a reconfiguration),
        then one ``TRAIN_EPOCH`` from ``seed``; the golden twin trains ``batches``, the same
        order drawn by sw_model/resident.py. The summed correct counts must agree."""
        self._read = None
        key = self.device._batch_key(x, labels)
        if self._stored != key:
            self.device.store_samples(x, labels)
            self._stored = key
        got = self.device.train_epoch(len(x), self.cfg.batch, seed)
        want = np.zeros(self.cfg.layers, dtype=np.int64)
        for visits in batches:
            want += self.golden.train_batch(x[visits], labels[visits])
        self.batches += len(batches)
        if list(got) != [int(v) for v in want]:
            raise MismatchError(f"epoch ending at mini-batch {self.batches}: the accelerator "
                                f"counted {got} correct predictions per layer, the golden "
                                f"model {[int(v) for v in want]}")
        return [int(v) for v in got]

    def set_frozen(self, layers):
        """Train ``layers`` forward only, on the device and in the golden twin."""
        self.device.set_frozen(layers)
        self.golden.set_frozen(layers)

    def set_epoch(self, epoch):
        """Epoch ``epoch``'s learning rate on the device and in the golden twin."""
        self.golden.set_epoch(epoch)
        if self.golden.cfg.lr_shift != self.device.cfg.lr_shift:
            self.device.set_learning_rate(self.golden.cfg)

    def predict(self, x):
        preds, _ = self.device.infer(x)
        return [p for p in preds]

    def _device_weights(self):
        """``(weights, batch_norm)`` of the device: read once per mini-batch count."""
        if self._read is None or self._read[0] != self.batches:
            weights = self.device.read_weights()
            bn = self.device.read_batch_norm() if self.cfg.batch_norm else None
            self._read = (self.batches, weights, bn)
        return self._read[1], self._read[2]

    def weight_hash(self):
        weights, bn = self._device_weights()
        return weights_hash(weights, bn or ())

    def check(self):
        """Compare the device's weights with the golden twin's; returns the common hash."""
        device, device_bn = self._device_weights()
        for i, (w, b) in enumerate(device):
            for name, got, want in (("weights", w, self.golden.weights[i]),
                                    ("biases", b, self.golden.biases[i])):
                if not np.array_equal(got, want.astype(np.int64)):
                    bad = np.argwhere(got != want)[0]
                    raise MismatchError(f"layer {i} {name} {tuple(bad)}: accelerator "
                                        f"{int(got[tuple(bad)])}, golden "
                                        f"{int(want[tuple(bad)])} after {self.batches} batches")
        if self.cfg.batch_norm:
            for i, (got, bn) in enumerate(zip(device_bn, self.golden.batch_norm)):
                for name in ("gamma", "mean", "var"):
                    want = getattr(bn, name)
                    if not np.array_equal(got[name], want):
                        n = int(np.argwhere(got[name] != want)[0][0])
                        raise MismatchError(f"layer {i} batch-norm {name} of neuron {n}: "
                                            f"accelerator {int(got[name][n])}, golden "
                                            f"{int(want[n])} after {self.batches} batches")
        return self.golden.weight_hash()

    def counters(self):
        return self.device.counters()

    def state(self):
        weights, bn = self._device_weights()
        state = {"golden": self.golden.state(), "device": weights}
        if self.cfg.batch_norm:
            state["device_batch_norm"] = bn
        return state

    def restore(self, state):
        self._read = None
        self.golden.restore(state["golden"])
        self.device.write_weights(state["device"], state.get("device_batch_norm"))
        for name, stream in (("round_seed", self.golden.round_stream),
                             ("dropout_seed", self.golden.dropout_stream)):
            value = stream.register()
            self.device.command(Command.WRITE_CONFIG, bytes([GLOBAL[name]])
                                + value.to_bytes(4, "little"))
        self.batches = self.golden.batches_trained
