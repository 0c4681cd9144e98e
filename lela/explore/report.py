"""What ``lela explore`` writes: one row per point (DIR/points.csv, DIR/points.json) and the
Pareto fronts (DIR/pareto_accuracy.png, DIR/pareto_throughput.png)."""

import csv
import io
import json
import os

from lela.files import atomic_write

__all__ = ["row", "write_tables", "pareto", "plot_fronts", "STATUS_ORDER", "MEASURE_COLUMNS"]

#: A row's status is its worst measurement's, in this order (first is worst).
STATUS_ORDER = ("error", "refused", "does-not-fit", "timing-missed", "diverged", "pending", "ok")

#: The configuration columns every row has (the varied fields follow).
CONFIG_COLUMNS = ("arch", "classes", "batch", "array_rows", "array_cols")

#: The measured columns: (column, measurement, key in its result).
MEASURE_COLUMNS = (
    ("accuracy", "accuracy", "accuracy"),
    ("logic_cells", "bitstream", "logic_cells"),
    ("luts", "bitstream", "luts"),
    ("ffs", "bitstream", "ffs"),
    ("dsps", "bitstream", "dsps"),
    ("block_rams", "bitstream", "block_rams"),
    ("sprams", "bitstream", "sprams"),
    ("fmax_mhz", "bitstream", "fmax_mhz"),
    ("clock_mhz", "bitstream", "clock_mhz"),
    ("timing_met", "bitstream", "timing_met"),
    ("samples_per_second", "throughput", "samples_per_second"),
    ("link_share", "throughput", "link_share"),
    ("energy_nj_per_sample", "throughput", "energy_nj_per_sample"),
    ("train_seconds", "accuracy", "seconds"),
    ("build_seconds", "bitstream", "seconds"),
)


def _text(value):
    if isinstance(value, (list, tuple)):
        return "-".join(map(str, value))
    return value


def weights(config):
    """Weights and biases of the network: the resource axis when no bitstream was measured."""
    arch = config["arch"]
    return sum((j + 1) * n for j, n in zip(arch[:-1], arch[1:]))


def row(point, measured, measure):
    """The row of ``point`` (lela.explore.grid.Point) from its measurements' results
    (``{name: result}``; a measurement of ``measure`` missing from it is pending)."""
    r = {"point": point.index}
    config = point.config or {}
    for name in CONFIG_COLUMNS:
        r[name] = _text(config.get(name))
    for name, value in point.varied.items():
        r[name] = _text(value)
    if point.config:
        r["weights"] = weights(config)
    boards = {s["board"] for s in measure.values() if "board" in s}
    r["board"] = ",".join(sorted(boards)) or None
    for column, name, key in MEASURE_COLUMNS:
        if name in measure:
            r[column] = (measured.get(name) or {}).get(key)
    if point.refused:
        r["status"], r["reason"] = "refused", point.refused
        return r
    statuses, reasons = [], []
    for name in measure:
        result = measured.get(name) or {"status": "pending", "reason": "not computed yet"}
        statuses.append(result["status"])
        if result["status"] != "ok":
            reasons.append(" ".join(f"{name}: {result.get('reason')}".split()))
    r["status"] = min(statuses, key=STATUS_ORDER.index)
    r["reason"] = "; ".join(reasons) or None
    return r


def _cell(value):
    """A CSV cell: empty for no value, floats to 6 significant digits (points.json has them
    whole)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def write_tables(rows, out_dir, summary):
    """DIR/points.csv (one row a point, the union of the rows' columns) and DIR/points.json
    (the summary and the rows), each written atomically."""
    columns = []
    for r in rows:
        columns += [c for c in r if c not in columns]
    for last in ("status", "reason"):
        if last in columns:
            columns.remove(last)
            columns.append(last)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({c: _cell(r.get(c)) for c in columns})
    atomic_write(os.path.join(out_dir, "points.csv"), text.getvalue().encode())
    atomic_write(os.path.join(out_dir, "points.json"),
                 (json.dumps({**summary, "points": rows}, indent=1) + "\n").encode())


def pareto(items):
    """Indices of the non-dominated ``(cost, value)`` pairs: no other pair costs no more and
    gives no less, with one of the two strictly better. Ties are all on the front."""
    front = []
    for i, (c, v) in enumerate(items):
        if not any((c2 <= c and v2 >= v) and (c2 < c or v2 > v)
                   for j, (c2, v2) in enumerate(items) if j != i):
            front.append(i)
    return front


def _label(r):
    parts = [str(r["arch"]), f"b{r['batch']}", f"{r['array_rows']}x{r['array_cols']}"]
    return " ".join(parts)


def plot_fronts(rows, out_dir, title):
    """The two Pareto plots (accuracy against cells, samples/s against cells; against the
    network's weights and biases when no bitstream was measured), the front highlighted and the
    dominated points grey. Returns ``{file: [front point numbers]}`` of the plots written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    have_cells = any(r.get("logic_cells") is not None for r in rows)
    cost, cost_label = (("logic_cells", "logic cells (bitstream)") if have_cells else
                        ("weights", "weights and biases (no bitstream measured)"))
    written = {}
    for value, value_label, name in (("accuracy", "test accuracy (top layer)",
                                      "pareto_accuracy.png"),
                                     ("samples_per_second", "training samples/s (link and "
                                      "array model)", "pareto_throughput.png")):
        usable = [r for r in rows if r["status"] == "ok" and r.get(value) is not None
                  and r.get(cost) is not None]
        failed = [r for r in rows if r["status"] != "ok" and r.get(value) is not None
                  and r.get(cost) is not None]
        if not usable and not failed:
            continue
        front = set(pareto([(r[cost], r[value]) for r in usable]))
        fig, ax = plt.subplots(figsize=(7, 4.5))
        grey = [r for i, r in enumerate(usable) if i not in front]
        best = sorted((r for i, r in enumerate(usable) if i in front), key=lambda r: r[cost])
        if grey:
            ax.scatter([r[cost] for r in grey], [r[value] for r in grey], color="0.7",
                       label="dominated", zorder=2)
        if failed:
            ax.scatter([r[cost] for r in failed], [r[value] for r in failed], color="0.7",
                       marker="x", label="failed (status in points.csv)", zorder=2)
        if best:
            ax.step([r[cost] for r in best], [r[value] for r in best], where="post",
                    color="tab:blue", alpha=0.5, zorder=3)
            ax.scatter([r[cost] for r in best], [r[value] for r in best], color="tab:blue",
                       label="Pareto front", zorder=4)
            for r in best:
                ax.annotate(_label(r), (r[cost], r[value]), textcoords="offset points",
                            xytext=(4, 4), fontsize=7)
        ax.margins(x=0.12, y=0.12)                  # room for the labels at the edges
        ax.set_xlabel(cost_label)
        ax.set_ylabel(value_label)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = os.path.join(out_dir, name)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        atomic_write(path, buf.getvalue())
        written[name] = [r["point"] for r in best]
    return written
