"""Every slow path of a routed design, from nextpnr's SDF (``--sdf``).

nextpnr reports one critical path per clock; closing timing wants all of them. This reads the
delays nextpnr wrote (each routed connection's ``INTERCONNECT``, each cell's ``IOPATH`` arcs,
clock-to-output arcs and ``SETUPHOLD`` checks), walks arrival times forward from every
register and block RAM output, and lists each endpoint (a flip-flop's or RAM's data, enable or
reset input) whose arrival plus setup exceeds the target period. Endpoints are grouped by the
module of the path's start and of its end, worst group first, each with its worst path.

On the ULX3S's build its worst arrival is nextpnr's own reported Fmax to 0.01 MHz (both use the
same delays: the longest, ``max``, of each ``min:typ:max`` triple). Paths from input pads and
constants are left out (asynchronous, as nextpnr's own clock report leaves them).

    python -m gen.timing_paths build/ulx3s/top.sdf --mhz 75
"""

import argparse
import collections
import re
import sys

__all__ = ["analyse", "module_of", "main"]

#: Clock pins of the ECP5's and iCE40's cells: an arc from one of these is a clock-to-output.
CLOCK_PINS = frozenset({"CLK", "CLKA", "CLKB", "CLK0", "CLK1", "CLK2", "CLK3", "WCK",
                        "RCLK", "WCLK", "CLKI"})

_TOKEN = re.compile(
    r"\(INTERCONNECT (?P<src>\S+) (?P<dst>\S+) \((?P<idelay>[-\d.:]+)\)"
    r"|\(INSTANCE ?(?P<inst>[^)]*)\)"
    r"|\(IOPATH (?P<pin_in>\S+) (?P<pin_out>\S+) \((?P<pdelay>[-\d.:]+)\)"
    r"|\(SETUPHOLD \((?:pos|neg)edge (?P<data>\S+)\) \((?:pos|neg)edge \S+\)"
    r" \((?P<setup>[-\d.:]+)\)"
    r"|\(TIMESCALE (?P<scale>\d+)\s*(?P<unit>[pn]s)\)")


def _unescape(name):
    return re.sub(r"\\(.)", r"\1", name)


def _longest(triple, scale):
    """The ``max`` of an SDF ``min:typ:max`` triple (or a single value), in ns."""
    return float(triple.split(":")[-1]) * scale


def _parse(text):
    fanin = collections.defaultdict(list)   # input pin -> [(driving pin, routing delay)]
    arcs = collections.defaultdict(list)    # output pin -> [(input pin name, delay)]
    clocked = {}                            # output pin -> clock-to-output
    setup = {}                              # input pin -> setup time
    scale, cell = 1e-3, None                # TIMESCALE 1ps: delays in ps
    for t in _TOKEN.finditer(text):
        if t["scale"]:
            scale = int(t["scale"]) * (1e-3 if t["unit"] == "ps" else 1.0)
        elif t["src"]:
            src, dst = _unescape(t["src"]).rsplit("/", 1), _unescape(t["dst"]).rsplit("/", 1)
            fanin[tuple(dst)].append((tuple(src), _longest(t["idelay"], scale)))
        elif t["inst"] is not None:
            cell = _unescape(t["inst"].strip())
        elif t["pin_in"]:
            delay = _longest(t["pdelay"], scale)
            if t["pin_in"] in CLOCK_PINS:
                pin = (cell, t["pin_out"])
                clocked[pin] = max(delay, clocked.get(pin, 0.0))
            else:
                arcs[(cell, t["pin_out"])].append((t["pin_in"], delay))
        elif t["data"]:
            pin = (cell, t["data"])
            setup[pin] = max(_longest(t["setup"], scale), setup.get(pin, 0.0))
    return fanin, arcs, clocked, setup


def module_of(cell, depth=3):
    """The module path of a cell of a flattened Amaranth design, ``depth`` levels deep: the
    name without the board wrapper's prefixes and without what Yosys and nextpnr append to a
    net's name for the cells that compute it."""
    name = re.sub(r"^(link\.)?(accelerator\.)?", "", cell)
    name = re.sub(r"(_TRELLIS_FF|_LUT4|_CCU2C|_PFUMX|_L6MUX21|_MULT18X18D|_TRELLIS_DPR16X4"
                  r"|\$CCU2_COMB|_DP16KD|_SB_|\.\d+\.\d+$).*", "", name)
    name = re.sub(r"\$\d+", "", name)
    return ".".join(name.split(".")[:depth])


def analyse(sdf_text, target_mhz, *, depth=3, groups=40):
    """The slow paths of the design whose SDF is ``sdf_text`` against ``target_mhz``:
    ``{"target_mhz", "endpoints", "failing", "worst_ns", "fmax_mhz", "groups": [...]}``; each
    group ``{"from", "to", "count", "worst_ns", "path": [[cell, pin, arrival_ns], ...]}``, worst
    first, at most ``groups`` of them."""
    fanin, arcs, clocked, setup = _parse(sdf_text)
    arrival, previous = {}, {}

    def visit(pin):
        # Iterative depth-first walk (the cones are deeper than Python's recursion limit).
        stack, waiting = [pin], set()
        while stack:
            node = stack[-1]
            if node in arrival:
                stack.pop()
                continue
            if node in clocked:
                inputs = []
            elif node in arcs:
                inputs = [((node[0], p), d) for p, d in arcs[node]]
            else:
                inputs = fanin.get(node, [])
            pending = [src for src, _ in inputs if src not in arrival]
            if pending:
                if node in waiting:
                    raise ValueError(f"combinational loop through {node[0]}.{node[1]}")
                waiting.add(node)
                stack.extend(pending)
                continue
            # A pin with nothing before it and no clock (an input pad, a constant) starts
            # no timed path: None, which no arrival takes as its maximum.
            best, came_from = clocked.get(node), None
            for src, delay in inputs:
                if arrival[src] is not None and (best is None or arrival[src] + delay > best):
                    best, came_from = arrival[src] + delay, src
            arrival[node], previous[node] = best, came_from
            stack.pop()

    def path(pin):
        out = []
        while pin is not None:
            out.append(pin)
            pin = previous.get(pin)
        return out[::-1]

    ends = []
    for pin, setup_time in setup.items():
        visit(pin)
        if arrival[pin] is not None:        # reached from a register or a RAM
            ends.append((arrival[pin] + setup_time, pin))
    ends.sort(key=lambda e: (-e[0], e[1]))
    period = 1000.0 / target_mhz
    grouped = {}
    for total, pin in ends:
        if total <= period:
            break
        steps = path(pin)
        key = (module_of(steps[0][0], depth), module_of(pin[0], depth))
        group = grouped.get(key)
        if group is None:
            grouped[key] = {"from": key[0], "to": key[1], "count": 1,
                            "worst_ns": round(total, 3),
                            "path": [[c, p, round(arrival[(c, p)], 3)] for c, p in steps]}
        else:
            group["count"] += 1
    worst = ends[0][0] if ends else None
    return {
        "target_mhz": target_mhz, "endpoints": len(ends),
        "failing": sum(1 for total, _ in ends if total > period),
        "worst_ns": round(worst, 3) if worst else None,
        "fmax_mhz": round(1000.0 / worst, 2) if worst else None,
        "groups": list(grouped.values())[:groups],
        "group_count": len(grouped),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m gen.timing_paths",
        description="List every endpoint of a routed design that misses a clock, grouped by "
                    "the modules its worst path starts and ends in (from nextpnr's --sdf).")
    ap.add_argument("sdf", help="nextpnr's SDF (lela bitstream writes DIR/top.sdf)")
    ap.add_argument("--mhz", type=float, required=True, help="the target clock")
    ap.add_argument("--groups", type=int, default=30, help="groups listed (default 30)")
    ap.add_argument("--paths", type=int, default=5,
                    help="groups whose worst path is printed in full (default 5)")
    ap.add_argument("--depth", type=int, default=3, help="module levels in a group's name")
    args = ap.parse_args(argv)
    try:
        with open(args.sdf) as f:
            text = f.read()
    except OSError as e:
        print(f"gen.timing_paths: cannot read {args.sdf}: {e.strerror}", file=sys.stderr)
        return 2
    if args.mhz <= 0:
        print("gen.timing_paths: --mhz must be positive", file=sys.stderr)
        return 2
    result = analyse(text, args.mhz, depth=args.depth, groups=args.groups)
    if not result["endpoints"]:
        print(f"gen.timing_paths: {args.sdf} has no timed endpoint (not an SDF of nextpnr?)",
              file=sys.stderr)
        return 2
    print(f"{result['failing']} of {result['endpoints']} endpoints miss {args.mhz:g} MHz; "
          f"worst {result['worst_ns']:.2f} ns ({result['fmax_mhz']:.2f} MHz); "
          f"{result['group_count']} groups")
    for g in result["groups"]:
        print(f"{g['worst_ns']:7.2f} ns {1000 / g['worst_ns']:6.1f} MHz {g['count']:5d}  "
              f"{g['from']} -> {g['to']}")
    for g in result["groups"][:args.paths]:
        print(f"\n{g['from']} -> {g['to']}: {g['worst_ns']:.2f} ns")
        for cell, pin, at in g["path"]:
            print(f"  {at:7.2f}  {cell}.{pin}")
    return 0 if result["failing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
