import gzip
import os

import numpy as np
import pytest

from sw_model.data import DataError, load_dataset, read_idx


def idx_bytes(array, type_code=0x08):
    header = bytes([0, 0, type_code, array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(">u1" if type_code == 0x08 else ">i4").tobytes()


def write_set(directory, n_train=20, n_test=8, gz=False, corrupt=None):
    rng = np.random.default_rng(0)
    files = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        files[f"{prefix}-images-idx3-ubyte"] = idx_bytes(
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        files[f"{prefix}-labels-idx1-ubyte"] = idx_bytes(rng.integers(0, 10, n, dtype=np.uint8))
    if corrupt:
        corrupt(files)
    for name, data in files.items():
        path = os.path.join(directory, name + (".gz" if gz else ""))
        with open(path, "wb") as f:
            f.write(gzip.compress(data) if gz else data)
    return files


@pytest.mark.parametrize("gz", [False, True])
def test_loads_generated_idx(tmp_path, gz):
    files = write_set(tmp_path, gz=gz)
    d = load_dataset("mnist", str(tmp_path))
    assert d.x_train.shape == (20, 784) and d.x_test.shape == (8, 784)
    assert d.x_train.dtype == np.uint8
    raw = np.frombuffer(files["train-images-idx3-ubyte"][16:], np.uint8).reshape(20, 784)
    assert (d.x_train == raw).all()
    assert d.y_test.tolist() == list(files["t10k-labels-idx1-ubyte"][8:])


def _replace(name, fn):
    def corrupt(files):
        files[name] = fn(files[name])
    return corrupt


@pytest.mark.parametrize("corrupt,message", [
    (_replace("train-images-idx3-ubyte", lambda b: b"\x12\x34" + b[2:]), "not an IDX file"),
    (_replace("train-images-idx3-ubyte", lambda b: b[:-100]), "truncated"),
    (_replace("train-images-idx3-ubyte", lambda b: b[:10]), "truncated"),
    (_replace("t10k-labels-idx1-ubyte", lambda b: b + b"\x00"), "bytes after the data"),
    (_replace("t10k-labels-idx1-ubyte",
              lambda b: idx_bytes(np.zeros(7, np.uint8))), "7 labels for 8 images"),
    (_replace("t10k-labels-idx1-ubyte",
              lambda b: idx_bytes(np.full(8, 12, np.uint8))), "label 12 out of range"),
    (_replace("train-images-idx3-ubyte", lambda b: b""), "not an IDX file"),
    (_replace("train-labels-idx1-ubyte",
              lambda b: idx_bytes(np.zeros((20, 2), np.uint8))), "1-d"),
])
def test_corrupt_files_give_clear_errors(tmp_path, corrupt, message):
    write_set(tmp_path, corrupt=corrupt)
    with pytest.raises(DataError, match=message) as info:
        load_dataset("mnist", str(tmp_path))
    assert "\n" not in str(info.value)
    assert str(tmp_path) in str(info.value)


def test_corrupt_gzip(tmp_path):
    write_set(tmp_path, gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match="corrupt gzip"):
        load_dataset("mnist", str(tmp_path))


def test_missing_files_and_directories(tmp_path):
    with pytest.raises(DataError, match="no file train-images"):
        load_dataset("mnist", str(tmp_path))
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("fashion-mnist", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="--data-dir"):
        load_dataset("mnist")
    with pytest.raises(DataError, match="no such file"):
        read_idx(str(tmp_path / "x"))


def test_digits_split_is_fixed():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.x_train.shape == (1437, 64) and a.x_test.shape == (360, 64)
    assert (a.x_test == b.x_test).all() and a.x_train.max() == 255
    h = a.holdout(100)
    assert len(h.x_test) == 100 and (h.x_test == a.x_train[-100:]).all()


@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist") and not os.environ.get("CI"),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian():
    d = load_dataset("fashion-mnist")
    assert d.x_train.shape == (60000, 784) and d.x_test.shape == (10000, 784)
    assert sorted(np.unique(d.y_test)) == list(range(10))
