import gzip
import os
import pickle
import re

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


# ---- CIFAR-10 (python-version batches) and SVHN (cropped digits, format 2) --------------------

CIFAR_FILES = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]


def _py2_string(b):
    """A Python 2 str as cPickle writes it (read back as bytes under encoding="bytes")."""
    return (b"U" + bytes([len(b)]) + b if len(b) < 256
            else b"T" + len(b).to_bytes(4, "little") + b)


def _py2_int(n):
    return (b"K" + bytes([n]) if 0 <= n < 256 else b"M" + n.to_bytes(2, "little")
            if 0 <= n < 65536 else b"J" + n.to_bytes(4, "little", signed=True))


def cifar_py2_pickle(data, labels):
    """A batch the way CIFAR-10's own files are written: Python 2 cPickle, protocol 2, a dict of
    str keys holding a NumPy uint8 array (numpy.core.multiarray._reconstruct) and a list."""
    rows, cols = data.shape
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + _py2_int(0) + b"\x85"
             + _py2_string(b"b") + b"\x87R(" + _py2_int(1) + _py2_int(rows) + _py2_int(cols)
             + b"\x86cnumpy\ndtype\n" + _py2_string(b"u1") + _py2_int(0) + _py2_int(1)
             + b"\x87R(" + _py2_int(3) + _py2_string(b"|") + b"NNN" + _py2_int(-1)
             + _py2_int(-1) + _py2_int(0) + b"tb\x89" + _py2_string(data.tobytes()) + b"tb")
    return (b"\x80\x02}(" + _py2_string(b"batch_label") + _py2_string(b"training batch")
            + _py2_string(b"labels") + b"](" + b"".join(_py2_int(int(v)) for v in labels)
            + b"e" + _py2_string(b"data") + array + b"u.")


def cifar_images(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n)


def write_cifar(directory, n=3, n_test=4, replace=None):
    """Five training batches of ``n`` images and a test batch of ``n_test``; ``replace`` maps a
    file name to the bytes to write instead. Returns {name: (images N x 3 x 32 x 32, labels)}."""
    os.makedirs(directory, exist_ok=True)
    written = {}
    for k, name in enumerate(CIFAR_FILES):
        images, labels = cifar_images(n_test if name == "test_batch" else n, k)
        written[name] = images, labels
        raw = cifar_py2_pickle(images.reshape(len(images), -1), labels)
        with open(os.path.join(directory, name), "wb") as f:
            f.write((replace or {}).get(name, raw))
    return written


def test_cifar10_loads_the_python_version(tmp_path):
    written = write_cifar(tmp_path)
    d = load_dataset("cifar10", str(tmp_path))
    assert d.name == "cifar10" and d.classes == 10 and d.features == 3072
    assert d.x_train.shape == (15, 3072) and d.x_test.shape == (4, 3072)
    assert d.x_train.dtype == np.uint8 and d.y_train.dtype == np.int64
    train = np.concatenate([written[f"data_batch_{k}"][0] for k in range(1, 6)])
    assert (d.x_train == train.reshape(15, 3072)).all()
    assert d.y_train.tolist() == [int(v) for k in range(1, 6)
                                  for v in written[f"data_batch_{k}"][1]]
    assert d.y_test.tolist() == written["test_batch"][1].tolist()
    # channel-major: pixel (c, h, w) of an image is feature c*1024 + h*32 + w
    images = written["test_batch"][0]
    for c, h, w in ((0, 0, 0), (1, 5, 7), (2, 31, 30), (0, 31, 0)):
        assert d.x_test[2, c * 1024 + h * 32 + w] == images[2, c, h, w]


def test_cifar10_pixel_order_is_channel_height_width(tmp_path):
    images = np.zeros((1, 3, 32, 32), np.uint8)
    images[0, 2, 3, 4] = 200
    raw = cifar_py2_pickle(images.reshape(1, -1), [7])
    write_cifar(tmp_path, replace={"test_batch": raw})
    d = load_dataset("cifar10", str(tmp_path))
    assert d.x_test.shape == (1, 3072)
    assert np.flatnonzero(d.x_test[0]).tolist() == [2 * 1024 + 3 * 32 + 4]
    assert d.y_test.tolist() == [7]


def test_cifar10_in_its_unpacked_directory(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    d = load_dataset("cifar10", str(tmp_path))
    assert d.x_train.shape == (15, 3072) and d.x_test.shape == (4, 3072)


@pytest.mark.parametrize("protocol", [4, 5])
def test_cifar10_batches_pickled_by_python3(tmp_path, protocol):
    images, labels = cifar_images(2, 9)
    raw = pickle.dumps({b"data": images.reshape(2, -1), b"labels": labels.tolist()},
                       protocol=protocol)
    write_cifar(tmp_path, replace={"data_batch_4": raw})
    d = load_dataset("cifar10", str(tmp_path))
    assert (d.x_train[9:11] == images.reshape(2, -1)).all()


def _cifar_batch(data=None, labels=None, protocol=4):
    if data is None:
        data = np.zeros((3, 3072), np.uint8)
    return pickle.dumps({b"data": data, b"labels": [0, 1, 2] if labels is None else labels},
                        protocol=protocol)


@pytest.mark.parametrize("name,raw,message", [
    ("data_batch_2", b"", "corrupt or truncated pickle"),
    ("data_batch_2", b"not a pickle at all", "corrupt or truncated pickle"),
    ("test_batch", cifar_py2_pickle(np.zeros((3, 3072), np.uint8), [1, 2, 3])[:-900],
     "corrupt or truncated pickle"),
    ("data_batch_5", pickle.dumps([1, 2, 3]), "holds a list, not a dict"),
    ("data_batch_5", pickle.dumps({b"labels": [1]}), "no data entry"),
    ("data_batch_5", pickle.dumps({b"data": np.zeros((1, 3072), np.uint8)}), "no labels entry"),
    ("data_batch_1", _cifar_batch(np.zeros((3, 3000), np.uint8)),
     "shape 3 x 3000, not N x 3072"),
    ("data_batch_1", _cifar_batch(np.zeros((3, 3, 32, 32), np.uint8)), "not N x 3072"),
    ("data_batch_1", _cifar_batch(np.zeros((3, 3072), np.float32)),
     "pixels are float32, not uint8"),
    ("data_batch_1", _cifar_batch(np.zeros((0, 3072), np.uint8), []), "holds no samples"),
    ("data_batch_1", _cifar_batch(labels=[0, 10, 2]), "label 10 out of range 0..9"),
    ("data_batch_1", _cifar_batch(labels=[0, -1, 2]), "label -1 out of range 0..9"),
    ("test_batch", _cifar_batch(labels=[0, 1]), "2 labels for 3 images"),
    ("test_batch", _cifar_batch(labels=[b"cat", b"dog", b"cow"]), "not integers"),
    ("test_batch", _cifar_batch(data=[[0] * 3072] * 3), "data is a list, not an array"),
    ("test_batch", _cifar_batch(labels=7), "labels have shape scalar, not a list of 3"),
    ("test_batch", _cifar_batch(labels=[[0, 1], [2]]), "labels are not a list of integers"),
])
def test_cifar10_bad_files_give_one_line_errors(tmp_path, name, raw, message):
    write_cifar(tmp_path, replace={name: raw})
    with pytest.raises(DataError, match=re.escape(message)) as info:
        load_dataset("cifar10", str(tmp_path))
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(str(tmp_path / name) + ": ")


def test_cifar10_missing_directory_and_files(tmp_path):
    with pytest.raises(DataError, match="pass --data-dir with the CIFAR-10 python version"):
        load_dataset("cifar10")
    with pytest.raises(DataError, match="nowhere does not exist"):
        load_dataset("cifar10", str(tmp_path / "nowhere"))
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", str(tmp_path))
    assert str(info.value).startswith(f"{tmp_path / 'data_batch_1'}: no such file")
    assert "CIFAR-10 python version" in str(info.value) and "unpacked" in str(info.value)
    write_cifar(tmp_path)
    os.remove(tmp_path / "data_batch_3")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'data_batch_3'}: no such file")):
        load_dataset("cifar10", str(tmp_path))
    os.remove(tmp_path / "test_batch")
    os.mkdir(tmp_path / "test_batch")
    write_cifar(tmp_path / "x")
    os.rename(tmp_path / "x" / "data_batch_3", tmp_path / "data_batch_3")
    with pytest.raises(DataError, match="test_batch: is a directory"):
        load_dataset("cifar10", str(tmp_path))


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_cifar10_unpickler_refuses_other_globals_without_running_them(tmp_path, protocol):
    marker = tmp_path / "executed"
    raw = pickle.dumps({b"data": np.zeros((3, 3072), np.uint8), b"labels": [0, 1, 2],
                        b"x": _Exploit(marker)}, protocol=protocol)
    write_cifar(tmp_path / "d", replace={"data_batch_2": raw})
    with pytest.raises(DataError, match=r"refused to unpickle: it names (posix|os|nt)\.system,"
                       ) as info:
        load_dataset("cifar10", str(tmp_path / "d"))
    assert str(info.value).startswith(str(tmp_path / "d" / "data_batch_2"))
    assert not marker.exists()


def test_cifar10_refused_global_is_named_on_one_line(tmp_path):
    raw = pickle.dumps({b"data": np.zeros((3, 3072), np.uint8), b"labels": [0, 1, 2]},
                       protocol=4).replace(b"numpy._core.multiarray", b"numpy\n_core.multiarray")
    write_cifar(tmp_path, replace={"data_batch_1": raw})
    with pytest.raises(DataError, match="it names numpy _core.multiarray._reconstruct,") as info:
        load_dataset("cifar10", str(tmp_path))
    assert "\n" not in str(info.value)


def test_cifar10_unpickler_refuses_builtins(tmp_path):
    raw = b"\x80\x02cbuiltins\neval\nX\x03\x00\x00\x001+1\x85R."
    write_cifar(tmp_path, replace={"data_batch_1": raw})
    with pytest.raises(DataError, match="it names builtins.eval"):
        load_dataset("cifar10", str(tmp_path))


def write_svhn(directory, n=5, n_test=3, labels=None, replace=None):
    """train_32x32.mat and test_32x32.mat as SVHN ships them: X is 32 x 32 x 3 x N uint8 (H, W,
    C, N), y is N x 1 with 1..10 (10: digit 0). Returns {split: (X, y)}."""
    from scipy.io import savemat
    rng = np.random.default_rng(3)
    written = {}
    for split, count in (("train", n), ("test", n_test)):
        x = rng.integers(0, 256, (32, 32, 3, count), dtype=np.uint8)
        y = (labels if labels is not None else rng.integers(1, 11, count)).reshape(-1, 1)
        y = y.astype(np.uint8)
        written[split] = x, y
        path = os.path.join(directory, f"{split}_32x32.mat")
        savemat(path, (replace or {}).get(split, {"X": x, "y": y}))
    return written


def test_svhn_loads_format_2(tmp_path):
    written = write_svhn(tmp_path, labels=np.array([10, 1, 9, 10, 5]), n_test=5)
    (tmp_path / "extra_32x32.mat").write_bytes(b"ignored")
    d = load_dataset("svhn", str(tmp_path))
    assert d.name == "svhn" and d.classes == 10 and d.features == 3072
    assert d.x_train.shape == (5, 3072) and d.x_test.shape == (5, 3072)
    assert d.x_train.dtype == np.uint8 and d.y_train.dtype == np.int64
    assert d.y_train.tolist() == [0, 1, 9, 0, 5]
    x = written["train"][0]
    for n, c, h, w in ((0, 0, 0, 0), (1, 1, 5, 7), (4, 2, 31, 30), (2, 0, 31, 0), (3, 2, 0, 31)):
        assert d.x_train[n, c * 1024 + h * 32 + w] == x[h, w, c, n]
    assert (d.x_test.reshape(5, 3, 32, 32) == written["test"][0].transpose(3, 2, 0, 1)).all()


def test_svhn_pixel_order_matches_cifar10(tmp_path):
    from scipy.io import savemat
    write_svhn(tmp_path)
    x = np.zeros((32, 32, 3, 2), np.uint8)
    x[3, 4, 2, 1] = 200                                   # h 3, w 4, channel 2, sample 1
    savemat(tmp_path / "test_32x32.mat", {"X": x, "y": np.array([[3], [10]], np.uint8)})
    d = load_dataset("svhn", str(tmp_path))
    assert np.flatnonzero(d.x_test[1]).tolist() == [2 * 1024 + 3 * 32 + 4]
    assert not d.x_test[0].any() and d.y_test.tolist() == [3, 0]


def _mat(x=None, y=None):
    return {"X": np.zeros((32, 32, 3, 3), np.uint8) if x is None else x,
            "y": np.array([[1], [2], [3]], np.uint8) if y is None else y}


@pytest.mark.parametrize("split,contents,message", [
    ("train", _mat(x=np.zeros((32, 32, 3, 3), np.float64)), "pixels X are float64, not uint8"),
    ("train", _mat(x=np.zeros((28, 28, 1, 3), np.uint8)), "X has shape 28 x 28 x 1 x 3, not "
     "32 x 32 x 3 x N"),
    ("train", _mat(x=np.zeros((3, 3, 32, 32), np.uint8)), "not 32 x 32 x 3 x N"),
    ("test", _mat(x=np.zeros((32, 32, 3, 0), np.uint8), y=np.zeros((0, 1), np.uint8)),
     "holds no samples"),
    ("test", _mat(y=np.array([[1], [0], [3]], np.uint8)), "label 0 out of range 1..10"),
    ("test", _mat(y=np.array([[1], [11], [3]], np.uint8)), "label 11 out of range 1..10"),
    ("test", _mat(y=np.array([[1], [2]], np.uint8)), "2 labels for 3 images"),
    ("test", _mat(y=np.ones((3, 2), np.uint8)), "labels have shape 3 x 2"),
    ("test", _mat(y=np.array([[1.5], [2], [3]])), "labels are float64, not integers"),
    ("test", {"X": np.zeros((32, 32, 3, 3), np.uint8)}, "no variable y"),
    ("train", {"images": np.zeros(3)}, "no variable X"),
])
def test_svhn_bad_contents_give_one_line_errors(tmp_path, split, contents, message):
    write_svhn(tmp_path, replace={split: contents})
    with pytest.raises(DataError, match=re.escape(message)) as info:
        load_dataset("svhn", str(tmp_path))
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(str(tmp_path / f"{split}_32x32.mat") + ": ")


@pytest.mark.parametrize("damage", [lambda b: b[:len(b) // 2], lambda b: b[:100],
                                    lambda b: b"", lambda b: b"\x00" * 200,
                                    lambda b: b"garbage, not a MATLAB file" * 10])
def test_svhn_corrupt_mat_files(tmp_path, damage):
    write_svhn(tmp_path)
    path = tmp_path / "test_32x32.mat"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError) as info:
        load_dataset("svhn", str(tmp_path))
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(str(path) + ": ")


def test_svhn_float_labels_that_are_integers_are_taken(tmp_path):
    write_svhn(tmp_path, replace={"test": _mat(y=np.array([[10.0], [2.0], [3.0]]))})
    assert load_dataset("svhn", str(tmp_path)).y_test.tolist() == [0, 2, 3]


def test_svhn_missing_directory_and_files(tmp_path):
    with pytest.raises(DataError, match="svhn: pass --data-dir with the SVHN cropped digits"):
        load_dataset("svhn")
    with pytest.raises(DataError, match="nowhere does not exist"):
        load_dataset("svhn", str(tmp_path / "nowhere"))
    with pytest.raises(DataError) as info:
        load_dataset("svhn", str(tmp_path))
    assert str(info.value).startswith(f"{tmp_path / 'train_32x32.mat'}: no such file")
    assert "SVHN cropped digits, format 2" in str(info.value)
    write_svhn(tmp_path)
    os.remove(tmp_path / "test_32x32.mat")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'test_32x32.mat'}: no such file")):
        load_dataset("svhn", str(tmp_path))


@pytest.mark.parametrize("name", ["cifar10", "svhn"])
def test_cli_names_a_missing_file_in_one_line(tmp_path, capsys, name):
    from lela.cli import main
    (tmp_path / "empty").mkdir()
    code = main(["train", "--dataset", name, "--data-dir", str(tmp_path / "empty"),
                 "--out", str(tmp_path / "o"), "--quiet"])
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1, err
    assert lines[0].startswith(f"lela: error: {tmp_path / 'empty'}") and "no such file" in lines[0]


@pytest.mark.parametrize("name,arch", [("cifar10", ["--arch", "3072-64"]), ("svhn", [])])
def test_cli_trains_on_3072_features(tmp_path, capsys, name, arch):
    """--arch 3072-64 works; without --arch the network is 3072-1000-1000-1000."""
    import json
    from lela.cli import main
    (tmp_path / "d").mkdir()
    (write_cifar if name == "cifar10" else write_svhn)(tmp_path / "d")
    argv = ["train", "--dataset", name, "--data-dir", str(tmp_path / "d"), "--epochs", "1",
            "--out", str(tmp_path / "o"), "--quiet"] + (arch or ["--precision", "float"])
    assert main(argv) == 0, capsys.readouterr().err
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert results["args"]["dataset"] == name
    assert results["config"]["arch"] == ([3072, 64] if arch else [3072, 1000, 1000, 1000])
