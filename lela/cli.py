"""The ``lela`` command: one entry point, one subcommand per job."""

import argparse
import math
import sys

from contract.config import ConfigError
from sw_model.data import DATASETS, DataError

ALGOS = ("lel", "lel-sign", "lel-train", "bp", "fa")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"lela: error: {message}\n")


class _BadArch(str):
    """An --arch that parse_arch refused: its one-line message, reported as a UserError (exit
    status 1) when the run is set up."""


def _arch(text):
    """--arch: a fully connected network's sizes (a tuple of ints, as before convolutions) or a
    convolutional network's canonical text (contract.architecture)."""
    from contract.architecture import ArchError, parse_arch
    try:
        arch = parse_arch(text)
    except ArchError as e:
        detail = str(e).removeprefix(f"arch '{text}': ")
        if text.split("-")[0].isdigit():
            return _BadArch(f"--arch '{text}' is not a dash-separated list of sizes (e.g. "
                            f"784-1000-1000-1000): {detail}")
        return _BadArch(f"--arch '{text}': {detail}")
    return arch.text if arch.convolutional else arch.sizes()


def _number(kind, accept, requirement):
    """An argparse type: ``kind`` parsed from the text, refused unless ``accept(value)``."""
    noun = "an integer" if kind is int else "a number"

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not {noun}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{text} {requirement}")
        return value
    return parse


def _positive(kind):
    return _number(kind, lambda v: v > 0, "must be positive")


_nonneg_int = _number(int, lambda v: v >= 0, "must not be negative")
_learning_rate = _number(float, lambda v: math.isfinite(v) and v > 0,
                         "must be a finite positive number")
_fraction = _number(float, lambda v: 0 <= v < 1, "must be in [0, 1)")


def _shift_list(text):
    """``0,0,3``: one non-negative integer per hidden layer."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of "
                                         "integers (e.g. 0,0,3)") from None
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: shifts must not be negative")
    return values


#: ``lela train``'s options that say how a run trains (RunSpec fields) and where it writes: a
#: resumed run takes them from its checkpoint and refuses any that contradict it.
RUN_OPTIONS = ("dataset", "data_dir", "arch", "algo", "precision", "batch", "lr", "seed",
               "float_dtype", "loss", "rounding", "dropout", "backend", "port", "baud",
               "reply_timeout", "config", "holdout", "train_limit", "out", "lr_decay",
               "schedule", "batch_norm", "layer_lr_shift", "resident")


def build_parser(explicit_only=False):
    """The ``lela`` parser; with ``explicit_only``, ``train`` leaves out every RUN_OPTIONS
    option not given on the command line (to tell a default from a value given)."""
    parser = _Parser(prog="lela", description="Local Error Learning Accelerator: golden model, "
                     "float references, RTL generation, simulation of the RTL, bitstreams, training on a board and "
                     "design-space exploration.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    t = sub.add_parser("train", help="train a network with local errors (or a reference)",
                       description="Train a network (fully connected or convolutional, "
                       "--arch) and report every layer's test error after each epoch. Writes DIR/results.json, DIR/curves.png "
                       "and an atomic DIR/checkpoint.pkl after every epoch. A run that "
                       "diverges stops with one line naming the layer and a smaller learning "
                       "rate, exit status 1 and \"status\": \"diverged\" in results.json.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--dataset", choices=DATASETS, default="digits",
                   help="digits (scikit-learn, built in), fashion-mnist (Debian package "
                   "dataset-fashion-mnist, or --data-dir), mnist (IDX files in --data-dir), "
                   "cifar10 (the python-version batches data_batch_1..5 and test_batch in "
                   "--data-dir or its cifar-10-batches-py) or svhn (train_32x32.mat and "
                   "test_32x32.mat in --data-dir); cifar10 and svhn have 3072 features")
    t.add_argument("--data-dir", default="", help="directory of the data set's files: IDX "
                   "files (plain or .gz), CIFAR-10 batches or SVHN .mat files")
    t.add_argument("--arch", type=_arch, default=None,
                   help="input and hidden layer sizes, e.g. 784-1000-1000-1000, or a "
                   "convolutional network, e.g. 1x28x28-c32k5-p2-c64k5-p2-f512: "
                   "c<filters>k<kernel> (v: no padding), p2: 2 x 2 max pooling, f<neurons> "
                   "(default: 64-128-128 for digits, F-1000-1000-1000 otherwise, F the data "
                   "set's features: 784, or 3072 for cifar10 and svhn)")
    t.add_argument("--algo", choices=ALGOS, default="lel",
                   help="lel: local errors, symmetric feedback; lel-sign: sign-concordant "
                   "feedback; lel-train: trainable local classifiers; bp: backprop; fa: "
                   "feedback alignment (the last three in float only)")
    t.add_argument("--precision", choices=("fixed", "float"), default="fixed",
                   help="fixed: the bit-exact golden model of the accelerator; float: reference")
    t.add_argument("--epochs", type=_positive(int), default=None,
                   help="epochs to train (default 10; with --resume, the new total)")
    t.add_argument("--batch", type=_positive(int), default=None,
                   help="mini-batch size (default: the config's, else 32)")
    t.add_argument("--lr", type=_learning_rate, default=None,
                   help="learning rate on the batch-summed gradient (a power of two for fixed "
                   "point); default: the config's, else the Fashion-MNIST tuning's per "
                   "algorithm and precision (docs/RESULTS.md): 2**-8; fa 2**-10, on digits "
                   "2**-7")
    t.add_argument("--lr-decay", type=_nonneg_int, default=None, metavar="N",
                   help="halve the learning rate every N epochs (fixed point: the shift grows "
                   "by one; on a device the host rewrites it between epochs); 0: constant "
                   "(default: the config's lr_decay_epochs, else 0)")
    t.add_argument("--schedule", choices=("simultaneous", "layerwise"), default="simultaneous",
                   help="simultaneous: every layer trains every epoch; layerwise: the epochs "
                   "split evenly over the layers, layer 1 first, the others frozen (forward "
                   "only: on a device their error and update work is skipped)")
    t.add_argument("--seed", type=_positive(int), default=None,
                   help="seeds weights, local classifiers, rounding and shuffling (default: "
                   "the config's, else 1)")
    t.add_argument("--float-dtype", choices=("float64", "float32"), default="float64",
                   help="arithmetic of the float references")
    t.add_argument("--loss", choices=("square-hinge", "softmax-ce"), default=None,
                   help="local loss: one-vs-all square hinge, or base-2 softmax cross-entropy")
    t.add_argument("--rounding", choices=("stochastic", "nearest-even"), default=None,
                   help="weight-update rounding in fixed point (default: the config's, else "
                   "stochastic)")
    t.add_argument("--dropout", type=_fraction, default=None,
                   help="dropout probability on hidden activations during training (default: "
                   "the config's, else 0)")
    t.add_argument("--layer-lr-shift", type=_shift_list, default=None, metavar="S1,S2,...",
                   help="per hidden layer, halve its learning rate this many more times "
                   "(0..16 each), e.g. 0,0,3 for a slower top layer; golden model and float "
                   "references (default: the config's layer_lr_shift, else none)")
    t.add_argument("--batch-norm", action="store_true", default=None,
                   help="normalise every hidden layer's output over the mini-batch, with a "
                   "scale trained by the layer's local error (docs/ARITHMETIC.md; golden model "
                   "and local-error float references; default: the config's, else off)")
    t.add_argument("--backend", choices=("golden", "rtl", "serial"), default="golden",
                   help="golden: the NumPy golden model; rtl: the accelerator's Verilog in "
                   "Verilator; serial: a board running the accelerator, on --port. rtl and "
                   "serial go through the host driver and are checked against the golden model "
                   "after every mini-batch and epoch")
    t.add_argument("--port", default="", help="serial backend: the board's serial port "
                   "(e.g. /dev/ttyUSB1) or a pyserial URL")
    t.add_argument("--baud", type=_positive(int), default=None,
                   help="serial backend: the UART's baud rate, the one the board's bitstream "
                   "was built with (its report.json's baud; default: the config's baud, "
                   "3000000 in configs/icebreaker.toml and ulx3s.toml, else 115200)")
    t.add_argument("--reply-timeout", type=_positive(float), default=None, metavar="SECONDS",
                   help="serial backend: how long to wait for a reply before the command "
                   "counts as lost (default: 2, or twice a longest frame's time on the line; a "
                   "board answers any command of the paper's networks in well under a second, "
                   "a simulated board on a pseudo-terminal needs a minute or more)")
    t.add_argument("--resident", action="store_true", default=None,
                   help="resident training: the training set is stored on the device once and "
                   "each epoch is one TRAIN_EPOCH command, the device drawing the sample order "
                   "(docs/ARITHMETIC.md, 'Resident training'; the golden backend draws the "
                   "same order). serial: the board's config must hold the set "
                   "(resident_samples); rtl: the simulated core is built to hold it")
    t.add_argument("--config", default="", help="TOML file with fixed-point formats "
                   "(configs/*.toml); command-line sizes and seeds override it")
    t.add_argument("--holdout", type=_nonneg_int, default=0,
                   help="test on the last N training samples instead of the test set (tuning)")
    t.add_argument("--train-limit", type=_nonneg_int, default=0,
                   help="train on the first N training samples only")
    t.add_argument("--out", default="runs/latest", help="output directory DIR (a new run "
                   "refuses one that holds another run's checkpoint.pkl or results.json)")
    t.add_argument("--force", action="store_true", help="let a new run replace the run in "
                   "--out")
    t.add_argument("--resume", metavar="DIR", default=None,
                   help="continue the run in DIR from its checkpoint with its own settings "
                   "(--epochs may extend it, --port, --baud and --reply-timeout move its "
                   "board; any other option that contradicts the checkpoint is refused)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    v = sub.add_parser("verilog", help="generate Verilog for a configuration",
                       description="Generate byte-identical Verilog for the accelerator (and, on "
                       "request, its units) of a configuration, one file per unit "
                       "(DIR/lela_<unit>.v), and with the accelerator its register map "
                       "(DIR/lela_registers.json and .h).",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    v.add_argument("--config", required=True, help="TOML configuration (configs/*.toml)")
    v.add_argument("--unit", action="append", default=None,
                   choices=("accelerator", "training_core", "lfsr", "classifier", "mac_array",
                            "drain_rounding", "forward_drain", "error_stage", "local_error",
                            "back_projection", "updater", "weight_init", "sdram"),
                   help="unit to generate (repeatable; default: the whole accelerator, "
                   "lela_accelerator.v)")
    v.add_argument("-o", "--out", default="build/verilog", help="output directory DIR")
    b = sub.add_parser("bitstream", help="build a board's bitstream with the YoWASP tools",
                       description="Synthesise, place and route the board top (hw/boards) with "
                       "YoWASP Yosys and nextpnr from PyPI, and write DIR/top.bin|top.bit and "
                       "DIR/report.json (resources, fmax_mhz, the clock constraint, timing_met, "
                       "and baud: the UART's rate, the config's field baud, which `lela train "
                       "--backend serial` must use). Exit status 1 when the design does not "
                       "fit or misses timing.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    b.add_argument("--board", required=True, choices=("icebreaker", "ulx3s", "ulx3s-sdram"))
    b.add_argument("--config", default=None, help="network (default: the board's own "
                   "configs/<board>.toml)")
    b.add_argument("-o", "--out", default=None, help="output directory (default build/<board>)")
    b.add_argument("--seeds", type=_positive(int), nargs="+", default=[1], metavar="N",
                   help="nextpnr seeds: with several, each builds in DIR/seed<N>, the fastest "
                   "seed's bitstream is kept in DIR and report.json carries the sweep (Fmax "
                   "per seed, min / median / max); the exit status is 1 unless every seed "
                   "meets timing")
    b.add_argument("--jobs", type=_positive(int), default=1, metavar="N",
                   help="with several --seeds, how many seeds build at a time, each in a "
                   "process of its own (a Yosys run, then a nextpnr run: an 8 x 8 ULX3S "
                   "route holds about 1.5 GB)")
    b.add_argument("--clock-mhz", type=_positive(float), default=None, metavar="MHZ",
                   help="the core clock (the PLL's output and the timing constraint), for "
                   "trying a config faster or slower than the board's own (iCEBreaker 22.5, "
                   "ULX3S 50 MHz: the default); refused where the PLL does not make it within "
                   "1 kHz, or the SDRAM or the UART's baud cannot run at it")
    from gen.bitstream import LUT_MAPPINGS, PLACERS
    b.add_argument("--lut-mapping", choices=LUT_MAPPINGS, default="auto",
                   help="ECP5 only: how Yosys maps logic to LUTs. auto is abc9 (timing-driven), "
                   "and classic ABC where abc9 stops on an internal assertion of Yosys "
                   "(report.json's lut_mapping and lut_mapping_fallback say which ran and why)")
    b.add_argument("--placer", choices=PLACERS, default="heap",
                   help="nextpnr's placer: heap (analytic) or static (electrostatic: spreads "
                   "the design further; what the 8 x 8 ULX3S config, configs/ulx3s_8x8.toml, "
                   "needs to route)")
    b.add_argument("--timing-ripup", action="store_true",
                   help="nextpnr's timing-driven rip-up in its router (--tmg-ripup): nets on "
                   "paths that miss the clock are ripped up and rerouted, not only those on "
                   "overused wires; slower routing, and what the 8 x 8 ULX3S config needs "
                   "near 75 MHz (report.json's timing_ripup)")
    g = sub.add_parser("program", help="load a built bitstream into a board",
                       description="Program the board's SRAM with iceprog (iCEBreaker) or "
                       "openFPGALoader (ULX3S), Debian packages fpga-icestorm and "
                       "openfpgaloader, and say the baud rate its UART runs at (the build's "
                       "report.json).")
    g.add_argument("--board", required=True, choices=("icebreaker", "ulx3s", "ulx3s-sdram"))
    g.add_argument("-o", "--out", default=None, help="build directory (default build/<board>)")
    s = sub.add_parser("simulate-board", help="simulate a board on a pseudo-terminal for "
                       "lela train --backend serial",
                       description="Build a board's gateware (UART, host interface, core, its "
                       "weight memory; for ulx3s-sdram the SDRAM controller with a model of the "
                       "board's SDRAM that checks every timing rule) in Verilator for one "
                       "network, and serve it on a pseudo-terminal until Ctrl-C: lela train "
                       "--backend serial --port <the printed port> trains on it as on the "
                       "board. A simulated mini-batch takes seconds: give lela train a "
                       "--reply-timeout of a minute or more for large networks.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--board", required=True, choices=("icebreaker", "ulx3s", "ulx3s-sdram"))
    s.add_argument("--config", default=None, help="network (default: the board's own "
                   "configs/<board>.toml)")
    s.add_argument("--arch", type=_arch, default=None, help="input and hidden layer sizes "
                   "replacing the config's, e.g. 784-256-256-256 (the config used is written "
                   "beside the build)")
    s.add_argument("--divisor", type=_positive(int), default=8,
                   help="the simulated UART's clock cycles a bit (at least 4)")
    s.add_argument("--build-dir", default="build/board-sim", help="where builds are kept, "
                   "one directory per board, network and divisor")
    _add_explore(sub)
    if explicit_only:
        # Not set_defaults(): argparse would parse a SUPPRESS default with the option's type.
        for action in t._actions:
            if action.dest in RUN_OPTIONS:
                action.default = argparse.SUPPRESS
    return parser


def _add_explore(sub):
    from lela.explore.grid import __doc__ as grid_format
    e = sub.add_parser(
        "explore", help="measure a grid of configurations on a Dask cluster",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Measure every point of a grid of configurations (accuracy of the golden "
        "model, a board's bitstream: cells, DSPs, block RAMs, Fmax; the link and array "
        "throughput model: samples/s and an energy estimate), each point a task on a Dask "
        "cluster: a local one of --workers processes, or an existing one at --address (start "
        "`dask scheduler` and `dask worker tcp://HOST:8786` from this checkout on each "
        "machine). Results are cached in DIR/cache by the point's config, the measurement and "
        "the versions of lela and the tools: a rerun, a grown grid or an interrupted "
        "exploration computes only what is missing. A point that is refused, does not fit, "
        "misses timing or diverges is a row with its status and reason. Writes "
        "DIR/points.csv, DIR/points.json, DIR/pareto_accuracy.png and "
        "DIR/pareto_throughput.png.\n\nThe grid file (TOML):\n\n"
        + "\n\n".join(grid_format.split("\n\n")[1:-1]) + "\n\nA mistake in the grid file is one line naming "
        "it; a point whose values the config refuses is a row with status refused.")
    e.add_argument("grid", metavar="GRID.toml", help="the grid (configs/explore/*.toml)")
    e.add_argument("--out", required=True, metavar="DIR", help="output directory (a rerun "
                   "into the same DIR uses its cache)")
    e.add_argument("--address", default=None, metavar="tcp://HOST:8786",
                   help="an existing Dask scheduler (default: a local cluster)")
    e.add_argument("--workers", type=_positive(int), default=None,
                   help="worker processes of the local cluster (default: the machine's cores)")
    e.add_argument("--force", action="store_true", help="write into an --out that holds "
                   "other files")
    e.add_argument("--quiet", action="store_true", help="no progress bar")


def _explore(args):
    from lela.explore.run import explore
    if args.address and args.workers:
        from lela.train import UserError
        raise UserError("--workers sets the local cluster's size; an --address cluster has "
                        "its own workers")
    s = explore(args.grid, args.out, address=args.address, workers=args.workers,
                force=args.force, progress=not args.quiet)
    counts = ", ".join(f"{n} {status}" for status, n in s["status_counts"].items())
    print(f"{s['point_count']} points ({counts}): {s['cached']} from the cache, {s['computed']} "
          f"measured in {s['seconds']} s")
    print(f"wrote {args.out}/points.csv, points.json"
          + "".join(f", {name}" for name in s["pareto_fronts"]))
    return 0


def _asked(argv):
    """The RUN_OPTIONS given on ``lela train``'s command line ``argv``, with their values."""
    given = vars(build_parser(explicit_only=True).parse_args(argv))
    return {name: given[name] for name in RUN_OPTIONS if name in given}


def _verilog(args):
    from contract.config import load_config
    cfg = load_config(args.config)
    from gen.units import build_unit, check_buildable
    check_buildable(cfg)
    from gen.verilog import write_verilog
    for name in args.unit or ["accelerator"]:
        component = build_unit(cfg, name)
        path = write_verilog(component, f"lela_{name}", args.out)
        print(f"wrote {path}")
        if name == "accelerator":
            from gen.regmap import write_register_map
            for path in write_register_map(cfg, args.out):
                print(f"wrote {path}")
    return 0


def _bitstream(args):
    from gen.bitstream import build_bitstream
    from hw.boards import BOARDS
    from lela.train import UserError
    out = args.out or f"build/{args.board}"
    board = BOARDS[args.board]
    family = board.platform().family
    if args.lut_mapping != "auto" and family != "ecp5":
        raise UserError(f"--lut-mapping chooses an ECP5 build's LUT mapping; the {args.board} "
                        f"is an {family}")
    if args.clock_mhz is not None:
        board = board.replace(clock_hz=round(args.clock_mhz * 1e6))
        problem = board.clock_problem()
        if problem:
            raise UserError(f"--clock-mhz {args.clock_mhz:g}: the {args.board}: {problem}")
    if len(args.seeds) > 1:
        return _bitstream_sweep(args, board, out)
    report = build_bitstream(board, args.config, out, seed=args.seeds[0],
                             lut_mapping=args.lut_mapping, placer=args.placer,
                             timing_ripup=args.timing_ripup)
    if report.get("lut_mapping_fallback"):
        print(f"{args.board}: {report['lut_mapping_fallback']}: mapped with classic ABC")
    if not report["fits"]:
        raise UserError(f"the design does not fit the {args.board}: {report['error']} "
                        f"(see {out}/report.json)")
    print(f"{args.board}: {report.get('luts')} LUTs, {report.get('ffs')} FFs, "
          f"{report.get('dsps')} DSPs, {report.get('block_rams')} block RAMs; "
          f"{report['fmax_mhz']} MHz against {report['clock_mhz']} MHz; UART at "
          f"{report['baud']} baud")
    print(f"wrote {out}/report.json")
    if not report["timing_met"]:
        raise UserError(f"timing not met: {report['fmax_mhz']} MHz < {report['clock_mhz']} MHz")
    return 0


def _bitstream_sweep(args, board, out):
    from gen.bitstream import build_seed_sweep
    from lela.train import UserError
    seeds = list(dict.fromkeys(args.seeds))
    report = build_seed_sweep(board, args.config, out, seeds,
                              log=lambda line: print(line, flush=True),
                              lut_mapping=args.lut_mapping, placer=args.placer,
                              timing_ripup=args.timing_ripup, jobs=args.jobs)
    sweep = report["seed_sweep"]
    if not any(s["fits"] for s in sweep["seeds"].values()):
        raise UserError(f"the design does not fit the {args.board}: {report['error']} "
                        f"(see {out}/seed{seeds[0]}/report.json)")
    print(f"{args.board}: Fmax {sweep['fmax_mhz_min']} / {sweep['fmax_mhz_median']} / "
          f"{sweep['fmax_mhz_max']} MHz (min / median / max of seeds "
          f"{', '.join(map(str, seeds))}) against {report['clock_mhz']} MHz; seed "
          f"{report['seed']}'s bitstream kept")
    print(f"wrote {out}/report.json")
    if not sweep["timing_met_every_seed"]:
        missed = [s for s, r in sweep["seeds"].items() if not (r["fits"] and r["timing_met"])]
        raise UserError(f"timing not met at seed {', '.join(missed)}")
    return 0


def _program(args):
    from gen.program import ProgramError, built_baud, program
    from lela.train import UserError
    out = args.out or f"build/{args.board}"
    try:
        program(args.board, out)
    except ProgramError as e:
        raise UserError(str(e)) from None
    baud = built_baud(out)
    print(f"programmed the {args.board}" + (f": its UART runs at {baud} baud (lela train "
                                             f"--backend serial --baud {baud})" if baud else ""))
    return 0


def _simulate_board(args):
    from lela.checks import UserError
    from lela.simulate_board import simulate_board
    if isinstance(args.arch, _BadArch):
        raise UserError(args.arch)
    if isinstance(args.arch, str):
        raise UserError(f"--arch {args.arch}: the boards train fully connected networks")
    last = simulate_board(args.board, args.config, args.arch or (), args.divisor,
                          args.build_dir)
    print(f"\nstopped the simulated {args.board}" + (f" ({last})" if last else ""))
    return 0


def _run_spec(args, argv):
    """The RunSpec, the run directory and how to run it (resume, force) of `lela train`."""
    from lela.train import RunSpec, UserError
    if isinstance(args.arch, _BadArch):
        raise UserError(args.arch)
    if args.resume:
        spec = RunSpec(epochs=args.epochs or 0)
        return spec, args.resume, dict(resume=True, asked=_asked(argv))
    if args.precision == "fixed" and args.algo not in ("lel", "lel-sign"):
        raise UserError(f"--algo {args.algo} exists in float only (use --precision float)")
    if args.batch_norm and args.algo in ("bp", "fa"):
        raise UserError(f"--batch-norm is trained by local errors: --algo {args.algo} has no "
                        "local classifiers (use lel, lel-sign or lel-train)")
    if args.batch_norm and args.backend == "serial":
        from lela.checks import BOARDS_WITHOUT_BATCH_NORM
        raise UserError(f"--batch-norm: {BOARDS_WITHOUT_BATCH_NORM}")
    if args.backend != "golden" and args.precision != "fixed":
        raise UserError(f"--backend {args.backend} trains the fixed-point accelerator (drop "
                        "--precision float)")
    if args.backend == "serial" and not args.port:
        raise UserError("--backend serial needs --port (e.g. /dev/ttyUSB1)")
    spec = RunSpec(dataset=args.dataset, arch=args.arch or (), algo=args.algo,
                   precision=args.precision, epochs=args.epochs or 10, batch=args.batch,
                   lr=args.lr or 0.0, seed=args.seed, loss=args.loss, config=args.config,
                   data_dir=args.data_dir, holdout=args.holdout,
                   train_limit=args.train_limit, dropout=args.dropout,
                   rounding=args.rounding, float_dtype=args.float_dtype,
                   backend=args.backend, port=args.port, baud=args.baud,
                   reply_timeout=args.reply_timeout,
                   lr_decay=args.lr_decay, schedule=args.schedule, batch_norm=args.batch_norm,
                   layer_lr_shift=args.layer_lr_shift, resident=bool(args.resident))
    return spec, args.out, dict(force=args.force)


def _train_and_report(args, argv):
    from lela.train import run
    spec, out, how = _run_spec(args, argv)
    results = run(spec, out, progress=not args.quiet, **how)
    acc = results["test_accuracy_per_layer"]
    print("final test accuracy per layer: " + "  ".join(f"{100 * a:.2f}%" for a in acc))
    if results.get("backend") in ("rtl", "serial"):
        same = "equal" if results["bit_exact"] else "DIFFERENT"
        print(f"final weights: accelerator {results['weight_hash'][:16]}, golden model "
              f"{results['golden_weight_hash'][:16]}: {same}")
        c = results["counters"]
        print(f"device: {c['cycles']} cycles, MAC array busy "
              f"{100 * c['mac_busy_cycles'] / max(1, c['cycles']):.1f} %")
    print(f"wrote {out}/results.json, {out}/curves.png")
    return 0


def main(argv=None):
    from lela.explore.run import Interrupted as ExploreInterrupted
    from lela.train import Interrupted, UserError
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return _train_and_report(args, argv)
        if args.command == "verilog":
            return _verilog(args)
        if args.command == "bitstream":
            return _bitstream(args)
        if args.command == "program":
            return _program(args)
        if args.command == "explore":
            return _explore(args)
        if args.command == "simulate-board":
            return _simulate_board(args)
    except (UserError, ConfigError, DataError) as e:
        print(f"lela: error: {e}", file=sys.stderr)
        return 1
    except ExploreInterrupted as e:
        print(f"\nlela: {e}", file=sys.stderr)
        return 130
    except Interrupted as e:
        # A newline first: the progress bar or the terminal's ^C may hold the line.
        print(f"\nlela: {e}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        what = " before training started: nothing was written" if args.command == "train" else ""
        print(f"\nlela: interrupted{what}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
