"""Where a design's routing is crowded, by module, from nextpnr's router2 heat maps.

``nextpnr-ecp5 --router router2 --router2-heatmap PREFIX`` writes, at each router iteration,
``PREFIX_congestion_by_net_<N>.csv``: one line per net that uses an overused wire, with how
many of its wires are overused. This sums those lines by the module that drives each net
(the names of gen/timing_paths.py's groups), so that a build that does not route says what
crowds it: on the 8 x 8 ULX3S, the MAC array's products and operands, then the drain register.
"""

import argparse
import csv
import re
import sys
from collections import Counter

from .timing_paths import module_of

__all__ = ["summarise", "main"]


def summarise(rows, depth=3):
    """``rows`` of (net, overused wires): ``[(module, overused, nets), ...]``, most first. A
    signal's index in its name counts as ``#`` (the 64 lanes' ``product_0`` ... ``product_63``
    are one group, ``product_#``)."""
    overuse, nets = Counter(), Counter()
    for net, count in rows:
        module = re.sub(r"\d+", "#", module_of(re.sub(r"\[\d+\]$", "", net), depth))
        overuse[module] += count
        nets[module] += 1
    return [(module, total, nets[module]) for module, total in overuse.most_common()]


def _read(path):
    rows = []
    with open(path, newline="") as f:
        for line, fields in enumerate(csv.reader(f), 1):
            if not fields:
                continue
            if len(fields) != 2 or not fields[1].strip().isdigit():
                raise ValueError(f"{path}:{line}: not a 'net,count' line of a congestion-by-net "
                                 f"heat map")
            rows.append((fields[0], int(fields[1])))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m gen.congestion",
        description="Sum a nextpnr router2 congestion-by-net heat map "
                    "(--router2-heatmap PREFIX writes PREFIX_congestion_by_net_<iteration>.csv) "
                    "by the module driving each net: what crowds a build that does not route.")
    ap.add_argument("heatmap", help="a congestion_by_net CSV of nextpnr's router2")
    ap.add_argument("--depth", type=int, default=3, help="module levels in a name (default 3)")
    ap.add_argument("--top", type=int, default=25, help="modules listed (default 25)")
    args = ap.parse_args(argv)
    try:
        rows = _read(args.heatmap)
    except OSError as e:
        print(f"gen.congestion: cannot read {args.heatmap}: {e.strerror}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"gen.congestion: {e}", file=sys.stderr)
        return 2
    total = sum(count for _, count in rows)
    print(f"{total} overused wires on {len(rows)} nets")
    for module, overused, nets in summarise(rows, args.depth)[:args.top]:
        print(f"{overused:7d} {100 * overused / max(total, 1):5.1f} % {nets:6d} nets  {module}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
