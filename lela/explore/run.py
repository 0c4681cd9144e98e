"""``lela explore``: every point of a grid measured on a cluster, cached, tabled and plotted.

The client reads the grid, looks every measurement of every point up in the cache
(lela.explore.cache), sends the points with something left to measure to the cluster
(lela.explore.engine), caches each result atomically as it arrives, and writes the tables and
the plots (lela.explore.report) at the end, and also when interrupted (the points not measured
yet are ``pending``). A rerun computes only what the cache lacks.
"""

import json
import os
import time

from lela.checks import UserError, check_writable, remove_stale_temps
from lela.explore import cache as cache_mod
from lela.explore.cache import Cache
from lela.explore.engine import cluster, run_tasks, worker_count
from lela.explore.grid import GridError, load_grid
from lela.explore.report import plot_fronts, row, write_tables
from lela.files import atomic_write

__all__ = ["explore", "Interrupted", "MARKER"]

#: What marks a directory as an exploration's (a rerun may write into it without --force).
MARKER = "explore.json"


class Interrupted(Exception):
    """Ctrl-C during an exploration; the message says what the cache holds."""


def check_out(out_dir, force):
    """DIR is new, empty or an exploration's (its cache is what a rerun resumes from); another
    directory is refused unless ``force``."""
    if os.path.lexists(out_dir) and not os.path.isdir(out_dir):
        raise UserError(f"--out {out_dir}: is a file, not a directory")
    if os.path.isdir(out_dir) and not force:
        names = os.listdir(out_dir)
        if names and MARKER not in names:
            raise UserError(f"--out {out_dir}: holds files that are not an exploration's (no "
                            f"{MARKER}): pass --force to write into it")
    check_writable(out_dir, "--out")


def explore(grid_path, out_dir, address=None, workers=None, force=False, progress=True,
            log=print, on_result=None):
    """Measure every point of the grid at ``grid_path`` into ``out_dir``; return the summary
    (also DIR/explore.json): the counts of points, cached and computed, the time and the
    cluster. ``on_result(tag, result)`` is called after each result is cached (tests)."""
    try:
        grid = load_grid(grid_path)
    except GridError as e:
        raise UserError(str(e)) from None
    check_out(out_dir, force)
    points = grid.points()
    store = Cache(out_dir)
    for directory in (out_dir, store.dir):          # what a killed write left behind
        if os.path.isdir(directory):
            remove_stale_temps(directory)
    keys, measured, todo = {}, {}, []
    for p in points:
        if p.refused:
            continue
        keys[p.index] = {m: cache_mod.key(p.config, m, s) for m, s in grid.measure.items()}
        measured[p.index] = {}
        missing = {}
        for m, s in grid.measure.items():
            hit = store.get(m, keys[p.index][m])
            if hit is None:
                missing[m] = s
            else:
                measured[p.index][m] = hit
        if missing:
            todo.append((p.index, {"config": p.config, "todo": missing,
                                   "source": cache_mod.source_hash()}))
    refused = sum(1 for p in points if p.refused)
    summary = {"grid": os.path.abspath(grid_path), "base": grid.base, "vary": grid.vary,
               "measure": grid.measure, "point_count": len(points), "refused_by_config": refused,
               "cached": len(points) - refused - len(todo), "computed": 0,
               "measurements_computed": 0, "errors_not_cached": 0,
               "lela_source": cache_mod.source_hash()}
    os.makedirs(out_dir, exist_ok=True)
    _write_marker(out_dir, summary)
    log(f"{len(points)} points: {summary['cached']} cached, {refused} refused by the config, "
        f"{len(todo)} to measure")
    t0 = time.perf_counter()
    interrupted = False
    if todo:
        def arrived(index, result):
            for m, r in result.items():
                measured[index][m] = r
                summary["measurements_computed"] += 1
                if r["status"] == "error":
                    summary["errors_not_cached"] += 1     # a rerun tries it again
                else:
                    store.put(m, keys[index][m], r)
            summary["computed"] += 1
            if on_result:
                on_result(index, result)
        try:
            with cluster(address, workers) as (client, where):
                summary["cluster"] = where
                summary["workers"] = worker_count(client)
                log(f"measuring {len(todo)} points on {where}")
                run_tasks(client, todo, arrived, progress)
        except KeyboardInterrupt:
            interrupted = True
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    summary["interrupted"] = interrupted
    rows = [row(p, measured.get(p.index, {}), grid.measure) for p in points]
    summary["status_counts"] = {s: sum(r["status"] == s for r in rows)
                                for s in sorted({r["status"] for r in rows})}
    title = f"{os.path.basename(grid_path)}: {len(points)} points"
    summary["pareto_fronts"] = plot_fronts(rows, out_dir, title)
    write_tables(rows, out_dir, summary)
    _write_marker(out_dir, summary)
    if interrupted:
        raise Interrupted(f"interrupted: {summary['computed']} of {len(todo)} points measured "
                          f"this time, cached in {os.path.join(out_dir, 'cache')}; the same "
                          "command computes the rest")
    return summary


def _write_marker(out_dir, summary):
    atomic_write(os.path.join(out_dir, MARKER),
                 (json.dumps(summary, indent=1, default=str) + "\n").encode())
