"""What a run writes to its directory: atomic files, the checkpoint and the curves."""

import contextlib
import io
import os
import pickle
import tempfile

import numpy as np

from lela.checks import TEMP_PREFIX, UserError

__all__ = ["CHECKPOINT", "CHECKPOINT_FORMAT", "atomic_write", "load_checkpoint",
           "save_checkpoint", "plot_curves"]

CHECKPOINT = "checkpoint.pkl"
#: 2: the spec holds the settings the run resolved (learning rate, sizes, seed); 1: it may hold
#: 0 or None for a default, which was then 2**-7 for every algorithm (lela.train.LEGACY_LR).
CHECKPOINT_FORMAT = 2
_KEYS = ("spec", "epoch", "history", "train_seconds", "model")


def atomic_write(path, data):
    """Write ``data`` (bytes) to ``path`` so that a crash leaves the old file or the new one.
    The temporary file is removed on any exception, KeyboardInterrupt included; one a killed
    process left behind is removed by the next run in the directory (lela.checks)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load_checkpoint(out_dir):
    """The checkpoint of the run in ``out_dir``; any problem with it is one UserError line."""
    path = os.path.join(out_dir, CHECKPOINT)
    try:
        with open(path, "rb") as f:
            ck = pickle.load(f)
    except FileNotFoundError:
        raise UserError(f"--resume {out_dir}: no {CHECKPOINT} there") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a checkpoint") from None
    except Exception as e:
        raise UserError(f"{path}: unreadable checkpoint ({type(e).__name__})") from None
    if not isinstance(ck, dict) or ck.get("format") not in (1, CHECKPOINT_FORMAT):
        raise UserError(f"{path}: not a lela checkpoint")
    missing = [key for key in _KEYS if key not in ck]
    if missing:
        raise UserError(f"{path}: incomplete checkpoint (no {', '.join(map(repr, missing))})")
    if not isinstance(ck["spec"], dict) or not isinstance(ck["history"], list):
        raise UserError(f"{path}: incomplete checkpoint (its run settings or history are "
                        "malformed)")
    return ck


def save_checkpoint(out_dir, spec, epoch, history, train_seconds, model):
    atomic_write(os.path.join(out_dir, CHECKPOINT), pickle.dumps({
        "format": CHECKPOINT_FORMAT, "spec": spec.to_json(), "epoch": epoch,
        "history": history, "train_seconds": train_seconds, "model": model.state()}))


def plot_curves(history, spec, path):
    """Every layer's test error per epoch, written atomically to ``path`` (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    epochs = [h["epoch"] for h in history]
    errors = np.array([h["test_error"] for h in history]) * 100
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    single = errors.shape[1] == 1
    for layer in range(errors.shape[1]):
        label = "output" if single and spec.algo in ("bp", "fa") else f"layer {layer + 1}"
        ax.plot(epochs, errors[:, layer], marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel("test error (%)")
    arch = spec.arch if isinstance(spec.arch, str) else "-".join(map(str, spec.arch))
    ax.set_title(f"{spec.dataset} {arch} {spec.algo} "
                 f"({spec.precision})")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png")
    plt.close(fig)
    atomic_write(path, png.getvalue())
