"""Training runs: epochs over a data set, per-layer evaluation, results, curves, checkpoints.

A run is fully described by its :class:`RunSpec`; the mini-batch order of epoch ``k`` is a
permutation drawn from ``seed`` and ``k`` alone, so a run resumed from the checkpoint written
after any epoch continues exactly as the uninterrupted run would have.
"""

import json
import math
import os
import pickle
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

import numpy as np

from contract.config import ConfigError, NetConfig, load_config
from sw_model.data import load_dataset

__all__ = ["RunSpec", "UserError", "DEFAULT_LR", "run", "build_model", "atomic_write"]

CHECKPOINT = "checkpoint.pkl"

#: Learning rates (summed-gradient step) tuned on a held-out part of the training set, per
#: algorithm; see docs/RESULTS.md for the tuning runs. Fixed point takes the nearest power of two.
DEFAULT_LR = {"lel": 2.0 ** -7, "lel-sign": 2.0 ** -7, "lel-train": 2.0 ** -7,
              "bp": 2.0 ** -7, "fa": 2.0 ** -7}


class UserError(Exception):
    """A problem with what the user asked for; reported as one line, no traceback."""


@dataclass
class RunSpec:
    dataset: str = "digits"
    arch: tuple = ()
    algo: str = "lel"
    precision: str = "fixed"
    epochs: int = 10
    batch: int = None                # None: from the config, else 32
    lr: float = 0.0                  # 0: from the config, else the algorithm's default
    seed: int = None                 # None: from the config, else 1
    loss: str = None                 # None: from the config, else square-hinge
    config: str = ""                 # TOML config for the fixed-point formats
    data_dir: str = ""
    holdout: int = 0                 # >0: test on the last N training samples instead
    train_limit: int = 0             # >0: train on the first N (shuffled-once) samples only
    dropout: float = None
    rounding: str = None
    float_dtype: str = "float64"
    backend: str = "golden"          # "golden" (NumPy), "rtl" (Verilator) or "serial" (a board)
    port: str = ""                   # serial backend: the device
    baud: int = 115200

    def to_json(self):
        d = asdict(self)
        d["arch"] = list(self.arch)
        return d


def net_config(spec, features, classes):
    """The :class:`NetConfig` of a run: the TOML config (if any), overridden by every setting
    given on the command line, else the defaults."""
    overrides = dict(classes=classes,
                     feedback="sign" if spec.algo == "lel-sign" else "symmetric")
    if spec.arch:
        overrides["arch"] = tuple(spec.arch)
    for name in ("batch", "seed", "rounding", "loss"):
        if getattr(spec, name) is not None:
            overrides[name] = getattr(spec, name)
    if spec.dropout is not None:
        overrides["dropout"] = int(round(spec.dropout * 256))
    if spec.lr and spec.precision == "fixed":
        overrides["lr_shift"] = lr_shift(spec.lr)
    if spec.config:
        cfg = load_config(spec.config, **overrides)
    else:
        overrides.setdefault("arch", (features,) + ((128, 128) if spec.dataset == "digits"
                                                    else (1000, 1000, 1000)))
        if spec.precision == "fixed" and not spec.lr:
            overrides["lr_shift"] = lr_shift(DEFAULT_LR[spec.algo])
        cfg = NetConfig.from_dict(overrides, source="run")
    if cfg.arch[0] != features:
        raise UserError(f"the network has {cfg.arch[0]} inputs but {spec.dataset} has "
                        f"{features} features per sample")
    return cfg


def lr_shift(lr):
    shift = -math.log2(lr)
    if shift != round(shift):
        raise UserError(f"--lr {lr} is not a power of two (fixed point shifts by the learning "
                        f"rate: try {2.0 ** -round(shift)})")
    return int(round(shift))


def build_model(spec, cfg, log=print):
    if spec.backend == "rtl":
        return _rtl_model(cfg, log)
    if spec.backend == "serial":
        from host.serial_transport import SerialTransport
        from lela.rtl_backend import RtlNet
        try:
            link = SerialTransport(spec.port, spec.baud)
        except OSError as e:
            raise UserError(str(e)) from None
        return RtlNet(cfg, link, retries=3)
    if spec.precision == "fixed":
        from sw_model.golden import FixedPointNet
        return FixedPointNet(cfg)
    from sw_model.float_ref import FloatNet
    lr = spec.lr or (2.0 ** -cfg.lr_shift if spec.config else DEFAULT_LR[spec.algo])
    return FloatNet(cfg, spec.algo, lr=lr, loss=cfg.loss,
                    dtype=np.dtype(spec.float_dtype).type)


def _rtl_model(cfg, log):
    from hw.params import CoreParams
    from lela.rtl_backend import RtlNet, build_dir_for
    from sim.accelerator_sim import build_accelerator, open_accelerator
    try:
        CoreParams.from_config(cfg)
        from gen.units import check_rtl_config
        check_rtl_config(cfg)
    except ConfigError as e:
        raise UserError(str(e)) from None
    build_dir = build_dir_for(cfg)
    log(f"generating Verilog and building the Verilator harness in {build_dir} ...")
    exe = build_accelerator(cfg, build_dir)
    log(f"Verilog: {os.path.join(build_dir, 'lela_accelerator.v')}")
    return RtlNet(cfg, open_accelerator(exe))


def atomic_write(path, data):
    """Write ``data`` (bytes) to ``path`` so that a crash leaves the old file or the new one."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(out_dir):
    path = os.path.join(out_dir, CHECKPOINT)
    try:
        with open(path, "rb") as f:
            ck = pickle.load(f)
    except FileNotFoundError:
        raise UserError(f"--resume {out_dir}: no {CHECKPOINT} there") from None
    except Exception as e:
        raise UserError(f"{path}: unreadable checkpoint ({type(e).__name__})") from None
    if not isinstance(ck, dict) or ck.get("format") != 1:
        raise UserError(f"{path}: not a lela checkpoint")
    return ck


def evaluate(model, x, y, chunk=2000):
    """Per-layer test error (fraction) of every layer's classifier."""
    wrong = None
    for k in range(0, len(x), chunk):
        preds = model.predict(x[k:k + chunk])
        w = [int((p != y[k:k + chunk]).sum()) for p in preds]
        wrong = w if wrong is None else [a + b for a, b in zip(wrong, w)]
    return [v / len(x) for v in wrong]


def plot_curves(history, spec, arch, path):
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
    ax.set_title(f"{spec.dataset} {'-'.join(map(str, arch))} {spec.algo} "
                 f"({spec.precision})")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path + ".tmp.png")
    plt.close(fig)
    os.replace(path + ".tmp.png", path)


def run(spec, out_dir, resume=False, progress=True, log=print):
    """Train (or resume) a run, writing results.json, curves.png and the checkpoint to
    ``out_dir``; return the results dictionary."""
    ck = None
    if resume:
        ck = load_checkpoint(out_dir)
        epochs = spec.epochs
        spec = RunSpec(**{**ck["spec"], "arch": tuple(ck["spec"]["arch"])})
        if epochs:
            spec.epochs = epochs
    data = load_dataset(spec.dataset, spec.data_dir or None)
    if spec.holdout:
        data = data.holdout(spec.holdout)
    try:
        cfg = net_config(spec, data.features, data.classes)
    except ConfigError as e:
        raise UserError(str(e)) from None
    model = build_model(spec, cfg, log)
    x_train, y_train = data.x_train, data.y_train
    if spec.train_limit:
        x_train, y_train = x_train[:spec.train_limit], y_train[:spec.train_limit]
    history, start_epoch, train_seconds = [], 0, 0.0
    if ck:
        model.restore(ck["model"])
        history, start_epoch, train_seconds = ck["history"], ck["epoch"], ck["train_seconds"]
    os.makedirs(out_dir, exist_ok=True)
    results = None
    for epoch in range(start_epoch, spec.epochs):
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(x_train))
        batches = [order[k:k + cfg.batch] for k in range(0, len(order), cfg.batch)]
        correct = None
        t0 = time.perf_counter()
        bar = _progress(len(batches), f"epoch {epoch + 1}/{spec.epochs}", progress)
        for idx in batches:
            c = model.train_batch(x_train[idx], y_train[idx])
            correct = c if correct is None else [a + b for a, b in zip(correct, c)]
            bar.update(1)
        bar.close()
        epoch_seconds = time.perf_counter() - t0
        train_seconds += epoch_seconds
        test_error = evaluate(model, data.x_test, data.y_test)
        history.append({"epoch": epoch + 1, "test_error": test_error,
                        "train_error": [1 - c / len(order) for c in correct],
                        "samples_per_second": len(order) / epoch_seconds})
        if hasattr(model, "check"):
            history[-1]["weight_hash"] = model.check()      # raises on any difference
        log(f"epoch {epoch + 1:3d}/{spec.epochs}  test error per layer: "
            + "  ".join(f"{100 * e:5.2f}%" for e in test_error)
            + f"   ({history[-1]['samples_per_second']:.0f} samples/s)")
        results = _results(spec, cfg, model, history, train_seconds, len(x_train))
        atomic_write(os.path.join(out_dir, "results.json"),
                     (json.dumps(results, indent=2) + "\n").encode())
        plot_curves(history, spec, cfg.arch, os.path.join(out_dir, "curves.png"))
        atomic_write(os.path.join(out_dir, CHECKPOINT), pickle.dumps({
            "format": 1, "spec": spec.to_json(), "epoch": epoch + 1, "history": history,
            "train_seconds": train_seconds, "model": model.state()}))
    if results is None:
        results = _results(spec, cfg, model, history, train_seconds, len(x_train))
    return results


def _results(spec, cfg, model, history, seconds, n_train):
    epochs_done = len(history)
    res = {"args": spec.to_json(), "config": cfg.to_dict(),
           "lr": 2.0 ** -cfg.lr_shift if spec.precision == "fixed" else model.lr,
           "test_error_per_epoch": [h["test_error"] for h in history],
           "train_error_per_epoch": [h["train_error"] for h in history],
           "test_accuracy": 1 - history[-1]["test_error"][-1] if history else None,
           "test_accuracy_per_layer": [1 - e for e in history[-1]["test_error"]]
           if history else None,
           "samples_per_second": n_train * epochs_done / seconds if seconds else None,
           "epochs": epochs_done}
    if hasattr(model, "weight_hash"):
        res["weight_hash"] = model.weight_hash()
    res["backend"] = spec.backend
    if spec.backend in ("rtl", "serial"):
        res["golden_weight_hash"] = model.golden.weight_hash()
        res["bit_exact"] = res["weight_hash"] == res["golden_weight_hash"]
        res["counters"] = model.counters()
        res["resends"] = model.device.resends
        link = model.link
        if hasattr(link, "harness_seconds"):
            res["simulation"] = {"cycles": link.cycle, "wall_seconds": link.wall_seconds,
                                 "harness_seconds": link.harness_seconds}
    return res


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress(total, desc, enabled):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="batch", leave=False, file=sys.stderr,
                dynamic_ncols=True, mininterval=0.5)
