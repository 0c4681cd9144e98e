"""One point's measurements, run on a worker: what ``lela explore`` sends to the cluster.

:func:`measure_point` takes a plain payload (the point's full config as a dict, the
measurements still to take and their settings, the client's source hash) and returns a plain
dict per measurement, each with ``status`` (``ok``, ``refused``, ``diverged``,
``does-not-fit``, ``timing-missed`` or ``error``) and, unless ok, a one-line ``reason``. It never
raises for a point: a point that does not fit, misses timing or diverges is a result. Every file
a measurement writes (the training run, the bitstream build) goes to a temporary directory on
the worker, which need not share a file system with the client.
"""

import contextlib
import json
import os
import tempfile
import time
import traceback

__all__ = ["measure_point", "MEASURES", "write_toml"]


def write_toml(config, path):
    """A config dict (NetConfig.to_dict: ints, strings, booleans, lists of ints) as flat TOML."""
    lines = []
    for name, value in config.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (int, float)):
            text = repr(value)
        elif isinstance(value, str):
            text = json.dumps(value)
        else:
            text = "[" + ", ".join(str(v) for v in value) + "]"
        lines.append(f"{name} = {text}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _quiet(*args, **kwargs):
    pass


def accuracy(config, settings, workdir):
    """The golden model trained on the data set (lela.train.run, as ``lela train`` runs it):
    the top layer's test accuracy and every layer's."""
    from lela.train import Diverged, RunSpec, UserError, run
    path = os.path.join(workdir, "point.toml")
    write_toml(config, path)
    spec = RunSpec(dataset=settings["dataset"], precision="fixed",
                   algo="lel-sign" if config["feedback"] == "sign" else "lel",
                   epochs=settings["epochs"], config=path, data_dir=settings["data_dir"],
                   train_limit=settings["train_limit"])
    try:
        results = run(spec, os.path.join(workdir, "train"), progress=False, log=_quiet)
    except Diverged as e:
        i = e.info
        return {"status": "diverged", "reason": f"layer {i['layer']} in epoch {i['epoch']}: "
                f"{i['reason']}", "epochs": i["epoch"]}
    except UserError as e:
        return {"status": "refused", "reason": str(e)}
    return {"status": "ok", "accuracy": results["test_accuracy"],
            "accuracy_per_layer": results["test_accuracy_per_layer"],
            "epochs": results["epochs"], "train_samples_per_second":
            results["samples_per_second"]}


def bitstream(config, settings, workdir):
    """The board's bitstream (gen.bitstream.build_bitstream): resources, Fmax, timing."""
    from contract.config import ConfigError, NetConfig
    from gen.bitstream import build_bitstream
    try:
        cfg = NetConfig.from_dict(config, source="point")
        report = build_bitstream(settings["board"], cfg, os.path.join(workdir, "build"),
                                 seed=settings["seed"])
    except ConfigError as e:
        return {"status": "refused", "reason": str(e)}
    keep = ("logic_cells", "luts", "ffs", "dsps", "block_rams", "sprams", "fmax_mhz",
            "clock_mhz", "timing_met", "fits", "over", "build_seconds", "device")
    out = {k: report.get(k) for k in keep}
    out["critical_path_ns"] = (report.get("critical_path") or {}).get("delay_ns")
    if not report["fits"]:
        over = f" (over: {', '.join(report['over'])})" if report["over"] else ""
        return {**out, "status": "does-not-fit", "reason": f"{report['error']}{over}"}
    if not report["timing_met"]:
        return {**out, "status": "timing-missed", "reason": f"Fmax {report['fmax_mhz']} MHz < "
                f"the {report['clock_mhz']} MHz clock"}
    return {**out, "status": "ok"}


def throughput(config, settings, workdir):
    """Samples/s of training through the board's UART link by the analytic model
    (host.throughput.training_rate, in the schedule today's driver uses on that config:
    host.throughput.schedule_for) at the board's clock, and the energy estimate. The link runs
    at the setting ``baud``, else the point's config's (its field ``baud``): the UART's average
    rate at that baud (hw/boards/top.py ``Board.line_baud``); a rate the board cannot run is
    refused."""
    from contract.config import NetConfig
    from host.energy import training_energy
    from host.throughput import array_bound, macs_per_sample, schedule_for, training_rate
    from hw.boards import BOARDS
    cfg = NetConfig.from_dict(config, source="point")
    board = BOARDS[settings["board"]].replace(baud=settings["baud"] or cfg.baud)
    problem = board.baud_problem()
    if problem:
        return {"status": "refused", "reason": f"{board.name}: {problem}"}
    line_baud = board.line_baud
    lanes = cfg.array_rows * cfg.array_cols
    schedule = schedule_for(cfg.arch[0], cfg.batch, cfg.rx_buffer, cfg.resident_samples)
    rate, link_s, core_s = training_rate(cfg.arch, cfg.classes, cfg.batch, lanes,
                                         board.clock_hz, line_baud, settings["cycles_per_beat"],
                                         schedule=schedule)
    macs = macs_per_sample(cfg.arch, cfg.classes)
    energy = training_energy(cfg)
    return {"status": "ok", "samples_per_second": rate, "schedule": schedule,
            "link_share": link_s / (link_s + core_s),
            "array_bound": array_bound(macs, lanes, board.clock_hz),
            "core_only_samples_per_second": cfg.batch / core_s, "clock_mhz":
            board.clock_hz / 1e6, "line_baud": line_baud, "macs_per_sample": macs,
            "energy_nj_per_sample": energy["total_pj"] / 1e3, "energy": energy}


MEASURES = {"accuracy": accuracy, "bitstream": bitstream, "throughput": throughput}


def measure_point(payload):
    """``{measurement: result}`` for ``payload = {"config", "todo": {measurement: settings},
    "source"}``; a worker whose lela source differs from the client's refuses (its results would
    be cached under the client's versions)."""
    from lela.explore.cache import source_hash
    if payload["source"] != source_hash():
        reason = (f"the worker's lela source ({source_hash()[:12]}) differs from the client's "
                  f"({payload['source'][:12]}): run the workers from the same checkout")
        return {name: {"status": "error", "reason": reason} for name in payload["todo"]}
    out = {}
    for name, settings in payload["todo"].items():
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="lela-explore-") as workdir:
            try:
                result = MEASURES[name](payload["config"], settings, workdir)
            except Exception as e:      # a point's failure is its result, never the run's
                last = traceback.extract_tb(e.__traceback__)[-1]
                result = {"status": "error", "reason": f"{type(e).__name__}: {e} (at "
                          f"{os.path.basename(last.filename)}:{last.lineno})"}
        result["seconds"] = round(time.perf_counter() - t0, 2)
        result["worker_pid"] = os.getpid()
        with contextlib.suppress(Exception):
            from distributed import get_worker
            result["worker"] = get_worker().address
        out[name] = result
    return out
