"""Data sets as unsigned 8-bit pixels (value p / 256) and integer labels.

digits comes from scikit-learn with a fixed split; Fashion-MNIST and MNIST come from IDX files
(optionally gzipped) found in a directory; CIFAR-10 from its "python version" batches and SVHN
from its cropped-digits ``.mat`` files, both in a directory the user names. Every problem with a
file is a :class:`DataError` whose message names the file and the problem.

CIFAR-10 and SVHN samples are 3 072 bytes in channel-major order: feature ``c*1024 + h*32 + w`` is
channel ``c`` (0 red, 1 green, 2 blue) of the pixel in row ``h``, column ``w`` of the 32 x 32
image (C x H x W, the order CIFAR-10's batches store).
"""

import gzip
import math
import os
import pickle
import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["DataError", "Dataset", "load_dataset", "read_idx", "read_cifar_batch",
           "read_svhn_mat", "DATASETS", "FASHION_MNIST_DIR"]

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
DATASETS = ("digits", "fashion-mnist", "mnist", "cifar10", "svhn")


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


CIFAR10_SUBDIR = "cifar-10-batches-py"
_CIFAR10_ORIGIN = ("CIFAR-10 python version (cifar-10-python.tar.gz from its authors' site, "
                   "unpacked)")
_SVHN_ORIGIN = "SVHN cropped digits, format 2 (train_32x32.mat and test_32x32.mat from its site)"
_IMAGE_FEATURES = 3 * 32 * 32


def _numpy_globals():
    """The globals a pickled NumPy array may name, resolved from NumPy itself (not by importing
    the names a file gives: ``numpy.core`` warns in NumPy 2)."""
    reconstruct = np.ndarray((0,)).__reduce__()[0]                 # multiarray._reconstruct
    frombuffer = np.zeros(1, np.uint8).__reduce_ex__(5)[0]        # numeric._frombuffer
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct   # protocols 0..4
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer        # protocol 5
    return allowed


class _RefusedGlobal(pickle.UnpicklingError):
    pass


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that builds plain containers and NumPy arrays only: any other global a pickle
    names (a function it could call, a class it could build) is refused before it is looked up."""

    _allowed = None

    def find_class(self, module, name):
        if _ArrayUnpickler._allowed is None:
            _ArrayUnpickler._allowed = _numpy_globals()
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise _RefusedGlobal(_one_line(f"{module}.{name}", 100)) from None


def _one_line(text, limit=200):
    """``text`` (from a file or an exception about one) as one line of at most ``limit``."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _shape(shape):
    return " x ".join(map(str, shape)) or "scalar"


def _get(d, key):
    return d.get(key.encode(), d.get(key))


def read_cifar_batch(path):
    """Read one CIFAR-10 python-version batch with a restricted unpickler; return (pixels
    N x 3072 uint8, labels int64), validated."""
    try:
        with open(path, "rb") as f:
            try:
                batch = _ArrayUnpickler(f, encoding="bytes").load()
            except _RefusedGlobal as e:
                raise DataError(f"{path}: refused to unpickle: it names {e}, not a NumPy "
                                f"array (a CIFAR-10 batch holds only arrays, lists and "
                                f"numbers)") from None
            except MemoryError:
                raise DataError(f"{path}: not a CIFAR-10 batch (out of memory unpickling "
                                f"it)") from None
            except Exception as e:      # a malformed pickle can raise nearly anything
                what = _one_line(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
                raise DataError(f"{path}: corrupt or truncated pickle ({what})") from None
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a CIFAR-10 batch") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path}: not a CIFAR-10 batch (the pickle holds a "
                        f"{type(batch).__name__}, not a dict)")
    data, labels = _get(batch, "data"), _get(batch, "labels")
    if data is None or labels is None:
        raise DataError(f"{path}: not a CIFAR-10 batch (no {'data' if data is None else 'labels'}"
                        f" entry)")
    if not isinstance(data, np.ndarray):
        raise DataError(f"{path}: data is a {type(data).__name__}, not an array")
    if data.dtype != np.uint8:
        raise DataError(f"{path}: pixels are {data.dtype}, not uint8")
    if data.ndim != 2 or data.shape[1] != _IMAGE_FEATURES:
        raise DataError(f"{path}: data has shape {_shape(data.shape)}, not "
                        f"N x {_IMAGE_FEATURES}")
    if len(data) == 0:
        raise DataError(f"{path}: holds no samples")
    return data, _labels(path, labels, len(data), 0, 9)


def _labels(path, labels, count, low, high):
    """``labels`` as a 1-d int64 array of ``count`` values in low..high, else a DataError."""
    try:
        y = np.asarray(labels)
    except Exception:                   # a ragged list, say
        raise DataError(f"{path}: labels are not a list of integers") from None
    if y.ndim == 2 and 1 in y.shape:
        y = y.reshape(-1)
    if y.ndim != 1:
        raise DataError(f"{path}: labels have shape {_shape(y.shape)}, not a "
                        f"list of {count}")
    if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise DataError(f"{path}: labels are {y.dtype}, not integers")
    if len(y) != count:
        raise DataError(f"{path}: {len(y)} labels for {count} images")
    y = y.astype(np.int64)
    bad = y[(y < low) | (y > high)]
    if len(bad):
        raise DataError(f"{path}: label {bad[0]} out of range {low}..{high}")
    return y


def _data_dir(name, data_dir, origin):
    if not data_dir:
        raise DataError(f"{name}: pass --data-dir with the {origin} (no download happens at "
                        f"run time)")
    if not os.path.isdir(data_dir):
        raise DataError(f"{name}: data directory {data_dir} does not exist (pass --data-dir with "
                        f"the {origin})")
    return data_dir


def _load_cifar10(data_dir):
    directory = _data_dir("cifar10", data_dir, _CIFAR10_ORIGIN)
    sub = os.path.join(directory, CIFAR10_SUBDIR)
    if not os.path.exists(os.path.join(directory, "data_batch_1")) and os.path.isdir(sub):
        directory = sub
    names = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]
    for name in names:
        if not os.path.exists(os.path.join(directory, name)):
            raise DataError(f"{os.path.join(directory, name)}: no such file (cifar10 needs "
                            f"data_batch_1..5 and test_batch of the {_CIFAR10_ORIGIN}, in "
                            f"--data-dir or its {CIFAR10_SUBDIR})")
    parts = [read_cifar_batch(os.path.join(directory, name)) for name in names]
    x_train = np.concatenate([x for x, _ in parts[:5]])
    y_train = np.concatenate([y for _, y in parts[:5]])
    x_test, y_test = parts[5]
    return Dataset("cifar10", x_train, y_train, x_test.copy(), y_test, 10)


def read_svhn_mat(path):
    """Read one SVHN cropped-digits ``.mat`` file; return (pixels N x 3072 uint8 in C x H x W
    order, labels int64 with 10 -> 0), validated."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise DataError(f"{path}: reading SVHN's .mat files needs SciPy (pip install "
                        f"scipy)") from None
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file (svhn needs the {_SVHN_ORIGIN}, in --data-dir)")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a directory, not a MATLAB file")
    try:
        mat = loadmat(path, variable_names=("X", "y"))
    except MemoryError:
        raise DataError(f"{path}: not an SVHN file (out of memory reading it)") from None
    except OSError as e:
        if e.errno is not None:         # permissions, I/O; scipy's short reads have no errno
            raise DataError(f"{path}: cannot read ({e.strerror})") from None
        raise DataError(f"{path}: corrupt, truncated or not a MATLAB v5 file "
                        f"({_one_line(e)})") from None
    except Exception as e:              # scipy raises many kinds for a malformed file
        what = _one_line(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
        raise DataError(f"{path}: corrupt, truncated or not a MATLAB v5 file ({what})") from None
    for var in ("X", "y"):
        if var not in mat:
            raise DataError(f"{path}: no variable {var} (not an SVHN format-2 file)")
    x, y = mat["X"], mat["y"]
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8:
        raise DataError(f"{path}: pixels X are {getattr(x, 'dtype', type(x).__name__)}, not "
                        f"uint8")
    if x.ndim == 3 and x.shape == (32, 32, 3):         # MATLAB drops a trailing 1 (N = 1)
        x = x[..., np.newaxis]
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataError(f"{path}: X has shape {_shape(x.shape)}, not "
                        f"32 x 32 x 3 x N")
    count = x.shape[3]
    if count == 0:
        raise DataError(f"{path}: holds no samples")
    y = _labels(path, y, count, 1, 10)
    y[y == 10] = 0
    pixels = np.ascontiguousarray(x.transpose(3, 2, 0, 1)).reshape(count, _IMAGE_FEATURES)
    return pixels, y


def _load_svhn(data_dir):
    directory = _data_dir("svhn", data_dir, _SVHN_ORIGIN)
    parts = [read_svhn_mat(os.path.join(directory, f"{split}_32x32.mat"))
             for split in ("train", "test")]
    return Dataset("svhn", *parts[0], *parts[1], 10)


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
    """Return the named :class:`Dataset`; ``data_dir`` says where its files are (needed for
    mnist, cifar10 and svhn; for fashion-mnist it overrides the Debian package's directory)."""
    if name == "digits":
        return _load_digits()
    if name == "fashion-mnist":
        return _load_idx_dataset(name, data_dir or FASHION_MNIST_DIR)
    if name == "mnist":
        if not data_dir:
            raise DataError("mnist: pass --data-dir with the MNIST IDX files (no download "
                            "happens at run time)")
        return _load_idx_dataset(name, data_dir)
    if name == "cifar10":
        return _load_cifar10(data_dir)
    if name == "svhn":
        return _load_svhn(data_dir)
    raise DataError(f"unknown data set {name!r} (choose {', '.join(DATASETS)})")
