"""Training runs: epochs over a data set, per-layer evaluation, results, curves, checkpoints.

A run is fully described by its :class:`RunSpec`; the mini-batch order of epoch ``k`` is a
permutation drawn from ``seed`` and ``k`` alone, so a run resumed from the checkpoint written
after any epoch continues exactly as the uninterrupted run would have.

Every option, path and size is checked before any work starts (lela.checks); a run that
diverges stops with one line naming the layer (lela.divergence).
"""

import contextlib
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from contract.config import ConfigError, NetConfig, load_config, read_toml
from lela.checks import (EVAL_CHUNK, RESUME_MAY_SET, UserError, available_memory, check_lr,
                         check_memory, check_out_dir, check_resume, check_writable,
                         remove_stale_temps)
from lela.divergence import PROBE, Diverged, class_shares, diagnose
from lela.files import CHECKPOINT, atomic_write, load_checkpoint, plot_curves, save_checkpoint
from sw_model.data import load_dataset
from sw_model.resident import epoch_batches

__all__ = ["RunSpec", "UserError", "Diverged", "Interrupted", "DEFAULT_LR", "DATASET_LR",
           "default_lr", "run", "build_model", "atomic_write", "evaluate"]

#: Default learning rates (the step on the batch-summed gradient) per precision and algorithm:
#: those the Fashion-MNIST tuning chose (docs/RESULTS.md, first table: 784-1000-1000-1000,
#: 2 epochs on 50 000 images, top-layer error on the held-out last 10 000).
DEFAULT_LR = {
    ("float", "bp"): 2.0 ** -8,          # 13.54 % (2**-7: 14.85 %, 2**-9: 13.96 %)
    ("float", "fa"): 2.0 ** -10,         # 2**-7 and 2**-8 diverged (89.77 %); 2**-9 (17.22 %)
                                         # diverged at epoch 5 of the 10-epoch runs
    ("float", "lel"): 2.0 ** -8,         # local errors, symmetric: 14.74 % (2**-9: 15.16 %)
    ("float", "lel-sign"): 2.0 ** -8,    # sign-concordant: 14.99 % (2**-9: 15.66 %)
    ("float", "lel-train"): 2.0 ** -8,   # not in the table: lel's (the same local loss)
    ("fixed", "lel"): 2.0 ** -8,         # fixed point: 14.29 % (2**-7: 15.21 %, 2**-6: dead)
    ("fixed", "lel-sign"): 2.0 ** -8,    # not tuned apart: lel's
}
#: The default of every algorithm before issue 13: what a format-1 checkpoint that recorded no
#: learning rate (and no config) trained with.
LEGACY_LR = 2.0 ** -7


#: Where a data set's own tuning disagrees (docs/RESULTS.md, issue 13: 64-128-128 digits, 10
#: epochs on 1 077 images, held-out error of the last 360, seeds 1 and 2): FA at 2**-10 is still
#: at 29.4 % after 10 epochs of digits' 34 mini-batches; at 2**-7, 5.6 % (2**-6 diverged for one
#: seed). Every other algorithm's Fashion-MNIST rate is within 0.9 points of its digits best.
DATASET_LR = {("digits", "float", "fa"): 2.0 ** -7}


def default_lr(spec):
    """The learning rate a run without ``--lr`` and without a config trains with."""
    key = (spec.precision, spec.algo)
    return DATASET_LR.get((spec.dataset,) + key, DEFAULT_LR[key])


@dataclass
class RunSpec:
    dataset: str = "digits"
    arch: tuple = ()                 # sizes; a convolutional network: its canonical text
    algo: str = "lel"
    precision: str = "fixed"
    epochs: int = 10
    batch: int = None                # None: from the config, else 32
    lr: float = 0.0                  # 0: from the config, else default_lr()
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
    baud: int = None                 # serial backend: the UART (None: the config's, else 115200)
    reply_timeout: float = None      # serial backend: seconds to wait for a reply (None: the
    #                                  transport's default)
    lr_decay: int = None             # halve the rate every N epochs (None: from the config)
    schedule: str = "simultaneous"   # or "layerwise": one layer at a time, the others frozen
    batch_norm: bool = None          # None: from the config, else off
    layer_lr_shift: tuple = None     # per layer, halvings beyond --lr (None: the config's)
    resident: bool = False           # the training set on the device, an epoch a command

    def to_json(self):
        d = asdict(self)
        d["arch"] = self.arch if isinstance(self.arch, str) else list(self.arch)
        return d


class Interrupted(Exception):
    """Ctrl-C during a run; the message says what the run directory holds."""


CONV_NOT_ON_DEVICE = ("convolutional networks train on the golden model, the float "
                      "references and the RTL core in simulation (--backend golden or rtl); "
                      "no board's build runs them yet")


def conv_arch(spec):
    """The :class:`~contract.architecture.Architecture` of a convolutional run, else None."""
    if not isinstance(spec.arch, str):
        return None
    from contract.architecture import ArchError, parse_arch
    try:
        return parse_arch(spec.arch)
    except ArchError as e:
        raise UserError(f"--{e}") from None


def check_conv(spec, arch, features):
    """A convolutional network trains on the golden model, a float reference or the RTL core,
    on samples of its input's size."""
    if spec.backend not in ("golden", "rtl"):
        raise UserError(f"--arch {arch.text}: {CONV_NOT_ON_DEVICE}")
    if spec.batch_norm:
        raise UserError(f"--batch-norm: not for convolutional networks yet (--arch {arch.text})")
    if arch.features != features:
        shape = " x ".join(map(str, arch.input_shape))
        raise UserError(f"the network's {shape} input is {arch.features} values but "
                        f"{spec.dataset} has {features} features per sample")


def net_config(spec, features, classes):
    """The :class:`NetConfig` of a run: the TOML config (if any), overridden by every setting
    given on the command line, else the defaults. A convolutional network's config has its
    flattened sizes (Architecture.sizes)."""
    overrides = dict(classes=classes,
                     feedback="sign" if spec.algo == "lel-sign" else "symmetric")
    arch = conv_arch(spec)
    if arch:
        check_conv(spec, arch, features)
        overrides["arch"] = arch.sizes()
        if spec.backend == "rtl":
            overrides["conv"] = True            # the core is built with convolutions
    elif spec.arch:
        overrides["arch"] = tuple(spec.arch)
    for name in ("batch", "seed", "rounding", "loss"):
        if getattr(spec, name) is not None:
            overrides[name] = getattr(spec, name)
    if spec.dropout is not None:
        overrides["dropout"] = int(round(spec.dropout * 256))
    if spec.lr and spec.precision == "fixed":
        overrides["lr_shift"] = lr_shift(spec.lr)
    if spec.lr_decay is not None:
        overrides["lr_decay_epochs"] = spec.lr_decay
    if spec.batch_norm is not None:
        overrides["batch_norm"] = spec.batch_norm
    if spec.layer_lr_shift is not None:
        overrides["layer_lr_shift"] = tuple(spec.layer_lr_shift)
    if spec.baud is not None:
        overrides["baud"] = spec.baud
    if spec.config:
        cfg = load_config(spec.config, **overrides)
    else:
        overrides.setdefault("arch", (features,) + ((128, 128) if spec.dataset == "digits"
                                                    else (1000, 1000, 1000)))
        if spec.precision == "fixed" and not spec.lr:
            overrides["lr_shift"] = lr_shift(default_lr(spec))
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


@contextlib.contextmanager
def _board_answers(spec, baud):
    """A board that does not answer is one line naming its port and the baud rate tried
    (serial backend)."""
    if spec.backend != "serial":
        yield
        return
    from host.driver import ReplyLost
    try:
        yield
    except ReplyLost as e:
        raise UserError(f"the board on {spec.port} does not answer ({e}): is its bitstream "
                        f"loaded (lela program) and its UART at --baud {baud} (the rate in "
                        "its build's report.json)?") from None


def build_model(spec, cfg, log=print):
    if spec.backend == "rtl":
        return _rtl_model(cfg, log, conv_arch(spec))
    if spec.backend == "serial":
        from gen.units import check_rtl_config
        from host.serial_transport import SerialTransport
        from lela.rtl_backend import RtlNet
        try:
            check_rtl_config(cfg)
        except ConfigError as e:
            raise UserError(str(e)) from None
        if cfg.batch_norm:
            from lela.checks import BOARDS_WITHOUT_BATCH_NORM
            raise UserError(f"config field 'batch_norm': {BOARDS_WITHOUT_BATCH_NORM}")
        try:
            link = SerialTransport(spec.port, cfg.baud, timeout=spec.reply_timeout)
        except OSError as e:
            raise UserError(str(e)) from None
        with _board_answers(spec, cfg.baud):
            return RtlNet(cfg, link, retries=3)
    arch = conv_arch(spec)
    if spec.precision == "fixed":
        if arch:
            from sw_model.golden_conv import FixedPointConvNet
            try:
                return FixedPointConvNet(cfg, arch)
            except (ConfigError, ValueError) as e:
                raise UserError(str(e)) from None
        from sw_model.golden import FixedPointNet
        return FixedPointNet(cfg)
    from sw_model.float_ref import FloatNet
    lr = spec.lr or (2.0 ** -cfg.lr_shift if spec.config else default_lr(spec))
    dtype = np.dtype(spec.float_dtype).type
    if arch:
        from sw_model.float_conv import FloatConvNet
        return FloatConvNet(cfg, arch, spec.algo, lr=lr, loss=cfg.loss, dtype=dtype)
    return FloatNet(cfg, spec.algo, lr=lr, loss=cfg.loss, dtype=dtype)


def _rtl_model(cfg, log, arch=None):
    from gen.units import check_buildable
    from lela.rtl_backend import RtlNet, build_dir_for
    from sim.accelerator_sim import build_accelerator, open_accelerator
    try:
        check_buildable(cfg)
    except ConfigError as e:
        raise UserError(str(e)) from None
    build_dir = build_dir_for(cfg)
    log(f"generating Verilog and building the Verilator harness in {build_dir} ...")
    exe = build_accelerator(cfg, build_dir)
    log(f"Verilog: {os.path.join(build_dir, 'lela_accelerator.v')}")
    return RtlNet(cfg, open_accelerator(exe), arch=arch)


def resolved(spec, cfg, model):
    """``spec`` with every setting the run took from a config or a default written in, so that
    its checkpoint and results.json say what it trained with (and a resumed run does the same
    whatever the defaults become)."""
    lr = 2.0 ** -cfg.lr_shift if spec.precision == "fixed" else float(model.lr)
    arch = spec.arch if isinstance(spec.arch, str) else tuple(cfg.arch)
    return replace(spec, arch=arch, lr=lr, batch=cfg.batch, seed=cfg.seed,
                   loss=cfg.loss, rounding=cfg.rounding, dropout=cfg.dropout / 256,
                   batch_norm=cfg.batch_norm, layer_lr_shift=tuple(cfg.layer_lr_shift),
                   baud=cfg.baud)


def spec_from_checkpoint(ck, out_dir, epochs=0, asked=None):
    """The RunSpec a checkpoint recorded; ``asked`` (options given on the command line, by
    RunSpec field, and ``out``) must not contradict it (lela.checks.check_resume)."""
    recorded = dict(ck["spec"])
    unknown = sorted(set(recorded) - {f.name for f in fields(RunSpec)})
    if unknown:
        raise UserError(f"{os.path.join(out_dir, CHECKPOINT)}: not a checkpoint of this lela "
                        f"(unknown run settings {', '.join(unknown)})")
    if ck["format"] == 1 and not recorded.get("lr") and not recorded.get("config"):
        recorded["lr"] = LEGACY_LR
    asked = asked or {}
    check_resume(recorded, asked, out_dir)
    arch = recorded.get("arch") or ()
    spec = RunSpec(**{**recorded, "arch": arch if isinstance(arch, str) else tuple(arch)})
    for name in RESUME_MAY_SET:
        if name in asked:
            setattr(spec, name, asked[name])
    if epochs:
        spec.epochs = epochs
    return spec


def evaluate(model, x, y, classes, chunk=EVAL_CHUNK):
    """Every layer's classifier's test error (fraction), and the largest share of the samples
    one class gets (lela.divergence.class_shares)."""
    preds = None
    for k in range(0, len(x), chunk):
        p = model.predict(x[k:k + chunk])
        preds = p if preds is None else [np.concatenate([a, b]) for a, b in zip(preds, p)]
    errors = [float(np.mean(np.asarray(p) != y)) for p in preds]
    return errors, class_shares(preds, classes)


def run(spec, out_dir, resume=False, progress=True, log=print, force=False, asked=None):
    """Train (or resume) a run, writing results.json, curves.png and the checkpoint to
    ``out_dir``; return the results dictionary. ``force`` lets a new run replace another's
    files; ``asked`` holds the options given for a resumed run (they must agree with it)."""
    ck = None
    if resume:
        ck = load_checkpoint(out_dir)
        spec = spec_from_checkpoint(ck, out_dir, spec.epochs, asked)
        check_writable(out_dir, "--resume")
    else:
        check_out_dir(out_dir, force)
    check_lr(spec.lr)
    if spec.config:
        read_toml(spec.config)
    data = load_dataset(spec.dataset, spec.data_dir or None)
    if spec.holdout:
        data = data.holdout(spec.holdout)
    try:
        cfg = net_config(spec, data.features, data.classes)
    except ConfigError as e:
        raise UserError(str(e)) from None
    if (arch := conv_arch(spec)):
        check_conv_memory(arch, cfg, spec.algo)
    else:
        check_memory(cfg, spec.algo)
    check_schedule(spec, cfg)
    cfg = check_resident(spec, cfg, len(data.x_train[:spec.train_limit or None]))
    model = build_model(spec, cfg, log)
    spec = resolved(spec, cfg, model)
    state = {"history": [], "epoch": 0, "train_seconds": 0.0}
    if ck:
        _restore(model, ck, out_dir)
        state = {key: ck[key] for key in state}
    os.makedirs(out_dir, exist_ok=True)
    remove_stale_temps(out_dir)
    with _board_answers(spec, cfg.baud), np.errstate(over="ignore", invalid="ignore",
                                                     divide="ignore"):
        return _train(spec, cfg, model, data, out_dir, state, progress, log)


def check_conv_memory(arch, cfg, algo):
    """lela.checks.check_memory for a convolutional network: its estimate counts every layer
    as a dense matrix of its flattened sizes, far beyond a convolution's filters, so the
    model's own estimate stands in (sw_model.float_conv.memory_bytes)."""
    from sw_model.float_conv import memory_bytes
    need, weights = memory_bytes(arch, cfg.classes, algo)
    have = available_memory()
    if have is not None and need > have:
        raise UserError(f"--arch {arch.text}: the model needs about {need / 2**30:.1f} GiB of "
                        f"memory ({weights:,} weights and biases, its feature maps and im2col "
                        f"patches), more than the {have / 2**30:.1f} GiB available")


def check_schedule(spec, cfg):
    """The learning rate of the last epoch within what the formats (and a device's shifters)
    take; layer-by-layer training needs a model that can freeze layers."""
    try:
        last = cfg.at_epoch(spec.epochs - 1)
    except ConfigError as e:
        raise UserError(f"--lr-decay: {e}") from None
    if spec.backend in ("rtl", "serial") and last is not cfg:
        from contract.limits import Limits
        from host.checks import check_config
        try:
            check_config(last, Limits.for_config(cfg))
        except ValueError as e:
            raise UserError(f"--lr-decay: by epoch {spec.epochs} {e}") from None
    if spec.schedule == "layerwise":
        if spec.precision != "fixed" or spec.algo not in ("lel", "lel-sign"):
            raise UserError("--schedule layerwise: only local-error learning in fixed point "
                            "(--algo lel or lel-sign, --precision fixed) freezes layers")
        if spec.epochs < cfg.layers:
            raise UserError(f"--schedule layerwise: {spec.epochs} epochs cannot train "
                            f"{cfg.layers} layers one after another (at least one each)")


def check_resident(spec, cfg, n_train):
    """``--resident``: a fixed-point fully connected network whose training set the device
    can hold. The simulated core (``--backend rtl``) is built to hold it; a board's config
    must. Returns the config to build with."""
    if not spec.resident:
        return cfg
    if spec.precision != "fixed" or spec.algo not in ("lel", "lel-sign") or conv_arch(spec):
        raise UserError("--resident: the device trains fully connected local-error networks in "
                        "fixed point (--algo lel or lel-sign, --precision fixed)")
    from contract.config import RESIDENT_RANGE
    if n_train > RESIDENT_RANGE[1]:
        raise UserError(f"--resident: {n_train} training samples, more than an epoch's "
                        f"{RESIDENT_RANGE[1]} (use --train-limit)")
    if spec.backend == "rtl" and cfg.resident_samples < n_train:
        return cfg.replace(resident_samples=n_train)
    if spec.backend == "serial" and cfg.resident_samples < n_train:
        raise UserError(f"--resident: the board's config holds {cfg.resident_samples} samples "
                        f"(field 'resident_samples'), the training set has {n_train} (use "
                        "--train-limit, or a board built to hold them)")
    return cfg


def stage_of(spec, cfg, epoch):
    """The layer that epoch ``epoch`` (from 0) trains in a layer-by-layer schedule: the epochs
    split evenly, layer 0 first (None: every layer trains)."""
    if spec.schedule != "layerwise":
        return None
    return min(cfg.layers - 1, epoch * cfg.layers // spec.epochs)


def _restore(model, ck, out_dir):
    try:
        model.restore(ck["model"])
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
        raise UserError(f"{os.path.join(out_dir, CHECKPOINT)}: its model does not fit the "
                        f"network ({type(e).__name__}: {e})") from None


def _train(spec, cfg, model, data, out_dir, state, progress, log):
    x_train, y_train = data.x_train, data.y_train
    if spec.train_limit:
        x_train, y_train = x_train[:spec.train_limit], y_train[:spec.train_limit]
    history, saved, epoch = state["history"], state["epoch"], state["epoch"]
    results = None
    try:
        for epoch in range(state["epoch"], spec.epochs):
            model.set_epoch(epoch)                              # the learning-rate decay
            stage = stage_of(spec, cfg, epoch)
            if stage is not None:
                model.set_frozen([i for i in range(cfg.layers) if i != stage])
            entry, stopped = _epoch(spec, cfg, model, x_train, y_train, epoch, progress)
            state["train_seconds"] += entry.pop("seconds")
            test_error, shares = evaluate(model, data.x_test, data.y_test, cfg.classes)
            previous = (history[-1]["test_error"], history[-1].get("class_share")) \
                if history else None
            if stage is not None and stage < cfg.layers - 1:
                previous = None     # the top layer is not trained yet: chance is no symptom
            history.append({"epoch": epoch + 1, "test_error": test_error, **entry,
                            "class_share": shares})
            if hasattr(model, "check"):
                history[-1]["weight_hash"] = model.check()      # raises on any difference
            log(f"epoch {epoch + 1:3d}/{spec.epochs}  test error per layer: "
                + "  ".join(f"{100 * e:5.2f}%" for e in test_error)
                + f"   ({history[-1]['samples_per_second']:.0f} samples/s)")
            found = diagnose(model, test_error, shares, cfg.classes, data.x_test[:PROBE],
                             previous)
            if found is None and stopped:
                found = {"layer": len(test_error), "output": False,
                         "reason": "its scores became NaN or infinite"}
            if found:
                info = {**found, "epoch": epoch + 1, "lr": spec.lr, "suggested_lr": spec.lr / 2}
                if stopped:
                    info["batch"] = stopped
                _write(spec, cfg, model, history, state, len(x_train), out_dir,
                       status="diverged", diverged=info)
                raise Diverged(info, out_dir)
            save_checkpoint(out_dir, spec, epoch + 1, history, state["train_seconds"], model)
            saved = epoch + 1
            results = _write(spec, cfg, model, history, state, len(x_train), out_dir,
                             status="complete" if epoch + 1 == spec.epochs else "incomplete")
    except KeyboardInterrupt:
        raise Interrupted(_interrupted(out_dir, epoch, spec.epochs, saved)) from None
    if results is None:
        results = _results(spec, cfg, model, history, state["train_seconds"], len(x_train),
                           status="complete")
    return results


def _interrupted(out_dir, epoch, epochs, saved):
    """What Ctrl-C in epoch ``epoch`` (from 0) leaves: the checkpoint of epoch ``saved``."""
    where = f"interrupted in epoch {epoch + 1}/{epochs}"
    if not saved:
        return f"{where}, before any epoch finished: nothing was saved"
    return (f"{where}: {os.path.join(out_dir, CHECKPOINT)} holds epoch {saved} (continue with "
            f"lela train --resume {out_dir})")


def _epoch(spec, cfg, model, x_train, y_train, epoch, progress):
    """Train one epoch; return its history entry (and its seconds) and, when a float model's
    scores became NaN or infinite, the mini-batch that stopped it (else None)."""
    if spec.resident:
        # The device's order (docs/ARITHMETIC.md, "Resident training: the sample order").
        seed = cfg.stream_seed("order", epoch)
        batches = epoch_batches(len(x_train), cfg.batch, seed, cfg.lfsr_width)
    else:
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(x_train))
        batches = [order[k:k + cfg.batch] for k in range(0, len(order), cfg.batch)]
    correct, seen, stopped = None, 0, None
    t0 = time.perf_counter()
    bar = _progress(len(batches), f"epoch {epoch + 1}/{spec.epochs}", progress)
    try:
        if spec.resident and hasattr(model, "train_epoch"):    # RtlNet: one command an epoch
            correct = model.train_epoch(x_train, y_train, seed, batches)
            seen = len(x_train)
            bar.update(len(batches))
        else:
            pipelines = getattr(model, "pipelines", False)     # RtlNet: the next batch streams
            for number, idx in enumerate(batches, 1):
                if pipelines and number < len(batches):
                    after = batches[number]
                    c = model.train_batch(x_train[idx], y_train[idx],
                                          next=(x_train[after], y_train[after]))
                else:
                    c = model.train_batch(x_train[idx], y_train[idx])
                correct = c if correct is None else [a + b for a, b in zip(correct, c)]
                seen += len(idx)
                bar.update(1)
                if not getattr(model, "finite", True):
                    stopped = number
                    break
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    return {"train_error": [1 - c / seen for c in correct],
            "samples_per_second": seen / seconds, "seconds": seconds}, stopped


def _write(spec, cfg, model, history, state, n_train, out_dir, **status):
    results = _results(spec, cfg, model, history, state["train_seconds"], n_train, **status)
    atomic_write(os.path.join(out_dir, "results.json"),
                 (json.dumps(results, indent=2) + "\n").encode())
    plot_curves(history, spec, os.path.join(out_dir, "curves.png"))
    return results


def _results(spec, cfg, model, history, seconds, n_train, status, diverged=None):
    epochs_done = len(history)
    res = {"args": spec.to_json(), "config": cfg.to_dict(), "status": status,
           "lr": 2.0 ** -cfg.lr_shift if spec.precision == "fixed" else model.lr,
           "test_error_per_epoch": [h["test_error"] for h in history],
           "train_error_per_epoch": [h["train_error"] for h in history],
           "test_accuracy": 1 - history[-1]["test_error"][-1] if history else None,
           "test_accuracy_per_layer": [1 - e for e in history[-1]["test_error"]]
           if history else None,
           "samples_per_second": n_train * epochs_done / seconds if seconds else None,
           "epochs": epochs_done}
    if diverged:
        res["diverged"] = diverged
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
