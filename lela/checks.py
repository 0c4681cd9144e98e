"""What ``lela train`` checks before any work starts: the options, the paths, the checkpoint a run
resumes and the memory its model needs. Every problem is one :class:`UserError` line naming it;
nothing is read at length, trained, written or overwritten before these pass."""

import math
import os
import tempfile

__all__ = ["UserError", "RUN_FILES", "TEMP_PREFIX", "check_lr", "check_out_dir",
           "check_writable", "remove_stale_temps", "check_resume", "model_bytes",
           "available_memory", "check_memory", "BYTES_PER_WEIGHT", "BOARDS_WITHOUT_BATCH_NORM"]

#: Why a board does not train a batch-normalised network.
BOARDS_WITHOUT_BATCH_NORM = ("the boards' cores (configs/icebreaker.toml, configs/ulx3s.toml) "
                             "are built without batch normalisation; train it with --backend "
                             "rtl or golden")
#: The files that make a directory a run's: a new run refuses to replace them without --force.
RUN_FILES = ("checkpoint.pkl", "results.json")
#: Prefix of the temporary files an atomic write renames into place (lela.files.atomic_write).
TEMP_PREFIX = ".tmp-"


class UserError(Exception):
    """A problem with what the user asked for; reported as one line, no traceback."""


def check_lr(lr):
    """A learning rate is a finite positive number (0 stands for the default)."""
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr < 0:
        raise UserError(f"--lr {lr}: the learning rate must be a finite positive number")


def check_out_dir(out, force=False):
    """A new run's output directory: a directory, or a path where one can be made, that this
    process can write, and that holds no run (:data:`RUN_FILES`) unless ``force``."""
    if os.path.lexists(out) and not os.path.isdir(out):
        raise UserError(f"--out {out}: is a file, not a directory")
    if os.path.isdir(out) and not force:
        present = [name for name in RUN_FILES if os.path.exists(os.path.join(out, name))]
        if present:
            raise UserError(f"--out {out} holds a run already ({', '.join(present)}): pass "
                            f"--force to replace it, or --resume {out} to continue it")
    check_writable(out, "--out")


def check_writable(path, option):
    """``path`` (a directory, or where one would be made) can be written: a file is made and
    removed in it, or in the nearest directory above it that exists."""
    existing = os.path.abspath(path)
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UserError(f"{option} {path}: {existing} is a file, not a directory")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=TEMP_PREFIX)
    except OSError as e:
        raise UserError(f"{option} {path}: cannot write in {existing} ({e.strerror})") from None
    os.close(fd)
    os.unlink(probe)


def remove_stale_temps(out):
    """Remove the temporary files a killed write left in ``out``; return their names."""
    stale = []
    for name in sorted(os.listdir(out)):
        path = os.path.join(out, name)
        if name.startswith(TEMP_PREFIX) and os.path.isfile(path) and not os.path.islink(path):
            os.unlink(path)
            stale.append(name)
    return stale


#: Options a resumed run takes from the command line: where the board is, not how it trains.
RESUME_MAY_SET = ("port", "baud", "reply_timeout")


def _shown(name, value):
    if name == "arch" and value:
        return value if isinstance(value, str) else "-".join(str(v) for v in value)
    return "(default)" if value is None or value == "" else str(value)


def _same(name, asked, recorded):
    if name in ("config", "data_dir") and asked and recorded:
        return os.path.realpath(asked) == os.path.realpath(recorded)
    if name == "arch":                  # sizes, or a convolutional network's text
        def key(arch):
            return arch if isinstance(arch, str) else tuple(arch or ())
        return key(asked) == key(recorded)
    return asked == recorded


def check_resume(recorded, asked, resume_dir):
    """Refuse command-line options (``asked``: RunSpec field -> value, or ``"out"``) that
    contradict the run ``resume_dir``'s checkpoint (``recorded``: its RunSpec as a dict)."""
    wrong = []
    for name, value in asked.items():
        if name == "out":
            if os.path.realpath(value) != os.path.realpath(resume_dir):
                wrong.append(f"--out {value} (the run writes to {resume_dir})")
        elif name not in RESUME_MAY_SET and not _same(name, value, recorded.get(name)):
            wrong.append(f"--{name.replace('_', '-')} {_shown(name, value)} (the checkpoint "
                         f"has {_shown(name, recorded.get(name))})")
    if wrong:
        raise UserError(f"--resume {resume_dir} continues the run with its own settings; "
                        f"these options contradict its checkpoint: {'; '.join(wrong)} (start a "
                        "new run with --out to change them)")


#: Bytes a model holds per weight at its peak: the weight (float64), its update (the batch
#: gradient) and, while a checkpoint is written, the state's copy and its pickled bytes.
BYTES_PER_WEIGHT = 32
#: Samples evaluated at once (lela.train.evaluate), a few float64 arrays of each layer's width.
EVAL_CHUNK = 2000


def model_bytes(cfg, algo="lel"):
    """An estimate of the memory (bytes) training network ``cfg`` with ``algo`` needs, and the
    number of weights and biases it counts."""
    arch, layers = cfg.arch, cfg.layers
    weights = sum((arch[i] + 1) * arch[i + 1] for i in range(layers))
    fixed = 2 * cfg.classes * sum(arch[1:])                 # local classifiers and feedback
    if algo in ("bp", "fa"):
        weights += (arch[-1] + 1) * cfg.classes             # the output layer
    if algo == "fa":                                        # the fixed feedback matrices
        fixed += sum(arch[i] * arch[i + 1] for i in range(1, layers)) + cfg.classes * arch[-1]
    activations = 3 * EVAL_CHUNK * sum(arch)
    return BYTES_PER_WEIGHT * weights + 8 * (fixed + activations), weights


def available_memory():
    """Bytes of memory available to a new allocation (MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(n):
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def check_memory(cfg, algo="lel"):
    """Refuse a network whose model needs more memory than the machine has available."""
    need, weights = model_bytes(cfg, algo)
    have = available_memory()
    if have is not None and need > have:
        arch = "-".join(map(str, cfg.arch))
        raise UserError(f"--arch {arch}: the model needs about {_gib(need)} of memory "
                        f"({weights:,} weights and biases at {BYTES_PER_WEIGHT} bytes each, and "
                        f"the activations of {EVAL_CHUNK:,} test samples at a time), more than "
                        f"the {_gib(have)} available")
