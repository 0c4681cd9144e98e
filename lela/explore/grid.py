"""The grid file of ``lela explore``: a base config, the fields to vary, the measurements.

    base = "../digits.toml"          # a configs/*.toml, relative to this grid file

    [vary]                           # every combination, in the order written
    arch = [[64, 16], [64, 32]]      # a list of values ...
    batch = { from = 4, to = 16, times = 2 }   # ... or a range: 4, 8, 16 (to is included)
    lr_shift = { from = 6, to = 8 }  # 6, 7, 8 (step = 1 unless given)
    array = ["1x1", "2x2"]           # shorthand: array_rows x array_cols together

    [measure.accuracy]               # the golden model on a data set
    dataset = "digits"
    epochs = 1
    train_limit = 300                # optional: the first N training samples only

    [measure.bitstream]              # the board's bitstream: cells, DSPs, block RAMs, Fmax
    board = "icebreaker"
    seed = 1                         # optional: nextpnr's seed

    [measure.throughput]             # the analytic link and array model: samples/s, energy
    board = "icebreaker"             # optional when [measure.bitstream] names one
    baud = 115200                    # optional: the config's field baud by default

A mistake in the grid file is a :class:`GridError` naming it (one line); a point whose values
the config refuses is not a mistake of the grid but a result (``status = "refused"``).
"""

import dataclasses
import itertools
import os

from contract.config import ConfigError, NetConfig, flatten_sections, read_toml

__all__ = ["GridError", "Grid", "Point", "load_grid", "MEASUREMENTS"]

MEASUREMENTS = ("accuracy", "bitstream", "throughput")

#: Each measurement's keys: name -> (type, required, default).
_MEASURE_KEYS = {
    "accuracy": {"dataset": (str, True, None), "epochs": (int, True, None),
                 "train_limit": (int, False, 0), "data_dir": (str, False, "")},
    "bitstream": {"board": (str, True, None), "seed": (int, False, 1)},
    "throughput": {"board": (str, False, None), "baud": (int, False, None),
                   "cycles_per_beat": (float, False, 1.02)},
}

#: Vary keys besides NetConfig's fields.
_SHORTHANDS = ("array",)
_TOP_KEYS = ("base", "vary", "measure")


class GridError(ValueError):
    """The grid file is malformed; the message names the key."""


@dataclasses.dataclass(frozen=True)
class Point:
    """One configuration of the grid: its index, the values varied, the full config (a dict of
    NetConfig's fields) or why the config refuses it."""
    index: int
    varied: dict
    config: dict = None
    refused: str = None


@dataclasses.dataclass
class Grid:
    path: str
    base: str
    vary: dict                      # field -> list of values, in the order of the file
    measure: dict                   # measurement -> its settings (defaults filled in)

    def points(self):
        """Every combination of the varied values (the last field varies fastest)."""
        base = _flat(read_toml(self.base))
        names = list(self.vary)
        out = []
        for index, values in enumerate(itertools.product(*(self.vary[n] for n in names))):
            varied = dict(zip(names, values))
            fields = dict(base)
            for name, value in varied.items():
                if name == "array":
                    fields["array_rows"], fields["array_cols"] = _array(value)
                else:
                    fields[name] = value
            try:
                cfg = NetConfig.from_dict(fields, source="point")
            except (ConfigError, TypeError) as e:
                out.append(Point(index, varied, refused=str(e)))
                continue
            out.append(Point(index, varied, config=cfg.to_dict()))
        return out


_flat = flatten_sections


def _array(value):
    """``"2x4"`` or ``[2, 4]``: (rows, cols)."""
    if isinstance(value, str):
        rows, sep, cols = value.partition("x")
        if sep and rows.isdigit() and cols.isdigit():
            return int(rows), int(cols)
    elif isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value):
        return tuple(value)
    raise GridError(f"[vary] array: {value!r} is not ROWSxCOLS (e.g. \"2x4\") or [rows, cols]")


def _range(name, spec):
    """``{from, to[, step | times]}``: an inclusive arithmetic or geometric range."""
    where = f"[vary] {name}"
    unknown = sorted(set(spec) - {"from", "to", "step", "times"})
    if unknown:
        raise GridError(f"{where}: unknown range key '{unknown[0]}' (a range is {{ from = A, "
                        "to = B }, with step = S or times = T)")
    if "from" not in spec or "to" not in spec:
        raise GridError(f"{where}: a range needs both 'from' and 'to'")
    if "step" in spec and "times" in spec:
        raise GridError(f"{where}: a range takes 'step' or 'times', not both")
    start, stop = spec["from"], spec["to"]
    for key in spec:
        if type(spec[key]) is not int:
            raise GridError(f"{where}: range key '{key}' must be an integer, not {spec[key]!r}")
    if stop < start:
        raise GridError(f"{where}: range 'to' ({stop}) is below 'from' ({start})")
    values = []
    if "times" in spec:
        if spec["times"] < 2 or start < 1:
            raise GridError(f"{where}: a geometric range needs times >= 2 and from >= 1")
        v = start
        while v <= stop:
            values.append(v)
            v *= spec["times"]
    else:
        step = spec.get("step", 1)
        if step < 1:
            raise GridError(f"{where}: range 'step' must be positive")
        values = list(range(start, stop + 1, step))
    return values


def _values(name, spec):
    if isinstance(spec, dict):
        values = _range(name, spec)
    elif isinstance(spec, list):
        values = spec
    else:
        raise GridError(f"[vary] {name}: give a list of values or a range {{ from = A, to = B }}, "
                        f"not {spec!r}")
    if not values:
        raise GridError(f"[vary] {name}: no values")
    if name == "array":
        for v in values:
            _array(v)
    return values


def _measure(raw, path):
    if not isinstance(raw, dict) or not raw:
        raise GridError(f"{path}: [measure] must name at least one of {', '.join(MEASUREMENTS)}")
    out = {}
    for name, settings in raw.items():
        if name not in MEASUREMENTS:
            raise GridError(f"{path}: unknown measurement [measure.{name}] (choose "
                            f"{', '.join(MEASUREMENTS)})")
        if not isinstance(settings, dict):
            raise GridError(f"{path}: [measure.{name}] must be a table")
        keys = _MEASURE_KEYS[name]
        for key in settings:
            if key not in keys:
                raise GridError(f"{path}: [measure.{name}] unknown key '{key}' (known: "
                                f"{', '.join(keys)})")
        done = {}
        for key, (kind, required, default) in keys.items():
            if key not in settings:
                if required:
                    raise GridError(f"{path}: [measure.{name}] needs '{key}'")
                done[key] = default
                continue
            value = settings[key]
            if kind is float and type(value) is int:
                value = float(value)
            if type(value) is not kind:
                raise GridError(f"{path}: [measure.{name}] {key} must be "
                                f"{'an integer' if kind is int else kind.__name__}, not "
                                f"{value!r}")
            if kind in (int, float) and value <= 0 and key != "train_limit":
                raise GridError(f"{path}: [measure.{name}] {key} must be positive")
            done[key] = value
        out[name] = done
    _check_names(out, path)
    return out


def _check_names(measure, path):
    """Data sets and boards that exist; the throughput's board defaults to the bitstream's."""
    from hw.boards import BOARDS
    from sw_model.data import DATASETS
    if "accuracy" in measure and measure["accuracy"]["dataset"] not in DATASETS:
        raise GridError(f"{path}: [measure.accuracy] dataset '{measure['accuracy']['dataset']}' "
                        f"is not one of {', '.join(DATASETS)}")
    if "accuracy" in measure and measure["accuracy"]["train_limit"] < 0:
        raise GridError(f"{path}: [measure.accuracy] train_limit must not be negative")
    if "throughput" in measure and measure["throughput"]["board"] is None:
        if "bitstream" not in measure:
            raise GridError(f"{path}: [measure.throughput] needs 'board' (or a "
                            "[measure.bitstream] that names one)")
        measure["throughput"]["board"] = measure["bitstream"]["board"]
    for name in ("bitstream", "throughput"):
        if name in measure and measure[name]["board"] not in BOARDS:
            raise GridError(f"{path}: [measure.{name}] board '{measure[name]['board']}' is not "
                            f"one of {', '.join(sorted(BOARDS))}")


def load_grid(path):
    """The :class:`Grid` of TOML file ``path``; any mistake is one :class:`GridError`."""
    try:
        raw = read_toml(path)
    except ConfigError as e:
        raise GridError(str(e).replace("config file", "grid file")) from None
    for key in raw:
        if key not in _TOP_KEYS:
            raise GridError(f"{path}: unknown key '{key}' (a grid has {', '.join(_TOP_KEYS)})")
    if not isinstance(raw.get("base"), str):
        raise GridError(f"{path}: needs base = \"CONFIG.toml\" (the config the grid varies, "
                        "relative to the grid file)")
    base = os.path.join(os.path.dirname(os.path.abspath(path)), raw["base"])
    try:
        read_toml(base)
    except ConfigError as e:
        raise GridError(f"{path}: base: {e}") from None
    vary = raw.get("vary", {})
    if not isinstance(vary, dict):
        raise GridError(f"{path}: [vary] must be a table of fields")
    known = {f.name for f in dataclasses.fields(NetConfig)}
    for name in vary:
        if name not in known and name not in _SHORTHANDS:
            raise GridError(f"{path}: [vary] unknown field '{name}' (a config field of "
                            "docs/ARITHMETIC.md, or array)")
    if "array" in vary and ({"array_rows", "array_cols"} & set(vary)):
        raise GridError(f"{path}: [vary] array sets array_rows and array_cols: vary either")
    values = {name: _values(name, spec) for name, spec in vary.items()}
    return Grid(path=path, base=base, vary=values, measure=_measure(raw.get("measure"), path))
