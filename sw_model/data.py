"""Data sets as unsigned 8-bit pixels (value p / 256) and integer labels.

digits comes from scikit-learn with a fixed split; Fashion-MNIST and MNIST come from IDX files
(optionally gzipped) found in a directory. Every problem with a file is a :class:`DataError` whose
message names the file and the problem.
"""

import gzip
import math
import os
import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["DataError", "Dataset", "load_dataset", "read_idx", "DATASETS",
           "FASHION_MNIST_DIR"]

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
DATASETS = ("digits", "fashion-mnist", "mnist")


class DataError(ValueError):
    """A data file is missing or malformed; the message names the file."""


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray      # uint8, samples x features
    y_train: np.ndarray      # int64
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int

    @property
    def features(self):
        return self.x_train.shape[1]

    def holdout(self, count):
        """Split the last ``count`` training samples off as the test set (for tuning)."""
        if not 0 < count < len(self.x_train):
            raise DataError(f"{self.name}: hold-out of {count} samples needs 1.."
                            f"{len(self.x_train) - 1}")
        return Dataset(f"{self.name}[holdout {count}]", self.x_train[:-count],
                       self.y_train[:-count], self.x_train[-count:], self.y_train[-count:],
                       self.classes)


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
              0x0E: ">f8"}


def read_idx(path):
    """Read an IDX file (plain or gzipped) and return its array, validating the header."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: corrupt gzip data ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    if ndim == 0 or len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    need = math.prod(shape) * dtype.itemsize
    body = raw[4 + 4 * ndim:]
    if len(body) < need:
        raise DataError(f"{path}: truncated: header promises {need} bytes of data, file has "
                        f"{len(body)}")
    if len(body) > need:
        raise DataError(f"{path}: {len(body) - need} bytes after the data the header declares")
    return np.frombuffer(body, dtype=dtype).reshape(shape)


def _find(directory, stem):
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                 stem.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise DataError(f"{directory}: no file {stem}[.gz]")


def _load_idx_dataset(name, directory, classes=10):
    if not os.path.isdir(directory):
        hint = (" (install the Debian package dataset-fashion-mnist, or pass --data-dir)"
                if name == "fashion-mnist" else " (pass --data-dir with the IDX files)")
        raise DataError(f"{name}: data directory {directory} does not exist{hint}")
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        img_path = _find(directory, f"{prefix}-images-idx3-ubyte")
        lab_path = _find(directory, f"{prefix}-labels-idx1-ubyte")
        images, labels = read_idx(img_path), read_idx(lab_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError(f"{img_path}: expected 3-d unsigned-byte images, got "
                            f"{images.ndim}-d {images.dtype}")
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise DataError(f"{lab_path}: expected 1-d unsigned-byte labels")
        if images.size == 0:
            raise DataError(f"{img_path}: holds no samples (its header declares "
                            f"{' x '.join(map(str, images.shape))} pixels)")
        if len(images) != len(labels):
            raise DataError(f"{lab_path}: {len(labels)} labels for {len(images)} images in "
                            f"{os.path.basename(img_path)}")
        if len(labels) and labels.max() >= classes:
            raise DataError(f"{lab_path}: label {labels.max()} out of range 0..{classes - 1}")
        parts[split] = (images.reshape(len(images), -1).copy(), labels.astype(np.int64))
    return Dataset(name, *parts["train"], *parts["test"], classes)


def _load_digits():
    from sklearn.datasets import load_digits
    d = load_digits()
    x = ((d.data.astype(np.int64) * 255 + 8) // 16).astype(np.uint8)   # 0..16 -> 0..255
    y = d.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))                # fixed split
    x, y = x[order], y[order]
    n_test = 360
    return Dataset("digits", x[n_test:], y[n_test:], x[:n_test], y[:n_test], 10)


def load_dataset(name, data_dir=None):
    """Return the named :class:`Dataset`; ``data_dir`` overrides where IDX files are read."""
    if name == "digits":
        return _load_digits()
    if name == "fashion-mnist":
        return _load_idx_dataset(name, data_dir or FASHION_MNIST_DIR)
    if name == "mnist":
        if not data_dir:
            raise DataError("mnist: pass --data-dir with the MNIST IDX files (no download "
                            "happens at run time)")
        return _load_idx_dataset(name, data_dir)
    raise DataError(f"unknown data set {name!r} (choose {', '.join(DATASETS)})")
