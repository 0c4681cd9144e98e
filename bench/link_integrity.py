"""The host link's integrity numbers (docs/RESULTS.md, "Host link integrity (issue 12)").

    python bench/link_integrity.py fuzz [--episodes N]     link fuzz on the fast harness
    python bench/link_integrity.py flips [--bytes 0,1,-1]  single-bit flips of a LOAD_BATCH on
                                                           the board simulation (all bytes by
                                                           default: about an hour)
    python bench/link_integrity.py cost                    bytes the tag adds per mini-batch

-> bench/results/link_integrity.json (each part replaces its own entry; ``fuzz_<episodes>``). ``fuzz`` runs
sim/link_fuzzer.py as tests/test_link_fuzz.py does (same build, seed and stalls), ``flips``
:func:`sim.board_sim.train_through_a_flip` as tests/test_board_sim.py does.
"""

import argparse
import json
import os
import pathlib
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from contract.config import load_config                                  # noqa: E402
from contract.protocol import FRAME_OVERHEAD                             # noqa: E402
from contract.registers import counter_names                             # noqa: E402

RESULTS = os.path.join(ROOT, "bench", "results", "link_integrity.json")
BUILD = os.path.join(ROOT, "build", "link_integrity")


def fuzz(episodes):
    from sim.accelerator_sim import build_accelerator, open_accelerator
    from sim.link_fuzzer import run_fuzz
    from tests.accelerator_checks import HARDWARE, TIMEOUT
    from tests.test_link_fuzz import MAX_CYCLES, STALLS
    exe = build_accelerator(HARDWARE, os.path.join(BUILD, "accelerator_tiny"),
                            frame_timeout=TIMEOUT)
    start = time.perf_counter()
    with open_accelerator(exe, **STALLS) as link:
        stats = run_fuzz(link, HARDWARE, seed=12, episodes=episodes, frame_timeout=TIMEOUT,
                         max_cycles=MAX_CYCLES)
        cycles = link.cycle
    return dict(vars(stats), seconds=round(time.perf_counter() - start, 1), cycles=cycles)


def flips(byte_list):
    from hw.boards.icebreaker import ICEBREAKER
    from sim.board_sim import build_board, first_load_batch, train_through_a_flip
    from tests.accelerator_checks import small_config
    os.makedirs(BUILD, exist_ok=True)
    cfg = load_config(small_config(pathlib.Path(BUILD) / "board.toml"))
    exe = build_board(cfg, os.path.join(BUILD, "board_sim"), board=ICEBREAKER)
    rng = np.random.default_rng(12)            # tests/test_board_sim.py's mini-batches
    batches = [(rng.integers(0, 256, size=(8, 64)), rng.integers(0, 10, size=8))
               for _ in range(2)]
    start, length = first_load_batch(exe, cfg, *batches[0])
    byte_list = range(length) if byte_list is None else [b % length for b in byte_list]
    outcomes, problems, raised_at = {}, [], []
    t0 = time.perf_counter()
    for byte in byte_list:
        for bit in range(8):
            outcome, problem = train_through_a_flip(exe, cfg, batches, start + byte, bit)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if outcome == "raised":
                raised_at.append([byte, bit])
            if problem:
                problems.append(f"byte {byte} bit {bit}: {problem}")
    return dict(frame_bytes=length, bytes=list(byte_list), flips=sum(outcomes.values()),
                outcomes=outcomes, raised_at=raised_at, problems=problems,
                seconds=round(time.perf_counter() - t0, 1))


def cost():
    """Bytes per mini-batch of configs/digits.toml through the driver, and the tag's share."""
    cfg = load_config(os.path.join(ROOT, "configs", "digits.toml"))
    load = 2 + cfg.batch * (cfg.arch[0] + 1)   # LOAD_BATCH payload: first, count, rows
    train = [(load, 1), (1, 1 + 2 * cfg.layers)]               # (request, reply) payloads
    counters = (0, 1 + 8 * len(counter_names(cfg.layers)))     # READ_COUNTERS, with retries
    out = {}
    for name, frames in (("retries=0", train), ("retries>0", train + [counters])):
        total = sum(req + rep + 2 * FRAME_OVERHEAD for req, rep in frames)
        tag = 2 * len(frames)
        out[name] = dict(frames=2 * len(frames), bytes=total, tag_bytes=tag,
                         tag_share=round(tag / total, 5))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=["fuzz", "flips", "cost"])
    ap.add_argument("--episodes", type=int, default=1000)
    ap.add_argument("--bytes", help="comma-separated byte indices of the frame (negative from "
                                    "its end); default every byte")
    args = ap.parse_args(argv)
    if args.part == "fuzz":
        result = fuzz(args.episodes)
    elif args.part == "flips":
        result = flips(None if args.bytes is None else [int(b) for b in args.bytes.split(",")])
    else:
        result = cost()
    results = json.load(open(RESULTS)) if os.path.exists(RESULTS) else {}
    key = f"fuzz_{args.episodes}" if args.part == "fuzz" else args.part
    results[key] = result
    with open(RESULTS, "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
