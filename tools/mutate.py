#!/usr/bin/env python3
"""Mutation testing of the RTL generators in hw/ (issue 11: how strong are the tests?).

Each mutant is one small change to one hw/ file: an operator swapped (+ <-> -, & <-> |, ^ -> |,
also in augmented assignments), a comparison flipped (< <-> <=, > <-> >=, == <-> !=), an integer
constant off by one (n+1 and n-1 are two mutants), the two data arms of a Mux swapped, or a
slice bound off by one (x[a:b] -> x[(a)+1:b], ...). Nothing inside a `raise` statement, an
f-string or `__all__` is mutated (messages and names are not hardware), nor the `+=` of
`m.d.<domain> += ...` (it adds statements to a module, no arithmetic).

The shared work tree is never touched: the committed tree (`git archive HEAD` of --root) is
unpacked into a temporary directory, each mutant is written there, run, and the file restored.
Tests run from the copy's root with PYTHONPATH set to it (so `hw` is the copy's, not the editable
install's), without bytecode caches (a same-size mutant written in the same second could
otherwise reuse the original's .pyc), one process (-p no:xdist), stopping at the first failure
(-x), each mutant's pytest in its own --basetemp, under a timeout.

Which tests see a file (--scope):
  direct  (default) the test files that import the hw module themselves (`from hw.uart import`)
          plus tests/test_hw_<name>.py and tests/test_rtl_<name>.py: the unit's own tests.
          A survivor here may still be killed by an integration test, so the rate is a lower
          bound for the whole selection.
  import  every test file whose imports reach the module, through any chain of modules of the
          repository (the accelerator's tests see nearly every file: slow).
Test files run cheapest first (timed on the unmutated copy). A test that fails on the unmutated
copy cannot judge a mutant: it is deselected and listed in the results (a test file that does
not collect stops the tool). Each test file runs on its own (stopping at the first file that
fails), with a timeout of 3x its baseline time plus 30 s.

Outcomes:
  killed       a test failed (an assertion, pytest.fail, "DID NOT RAISE", or an error raised in
               a test, testbench or model: the mutant's behaviour was seen);
  timeout      the tests did not finish in time (a hang is a detection: counted as killed,
               reported separately);
  survived     every test passed;
  equivalent   survived, and tools/mutation_equivalents.json explains why the change cannot be
               observed (excluded from the rate);
  incompetent  the mutant does not build: its first failure is an exception (not an assertion)
               raised in a hw/ file other than at a `raise` statement (those are parameter checks,
               i.e. behaviour), or inside Amaranth's hdl/lib/back (elaboration, netlist,
               Verilog), or by the simulator's build (Verilog that does not compile); excluded.
Kill rate = (killed + timeout) / (killed + timeout + survived).

Modes: the default runs `make test`'s selection (-m "not slow"); --regress runs everything with
LELA_REGRESS=1 (`make regress`'s selection). Results go to --out (bench/results/mutation.json),
one entry per mode; --rerun-survivors (or --ids) runs mutants again and updates their records,
found by their text (after a test was added; each record keeps its commit). --summary prints the
stored summary without running anything.

Run with the project's venv from the repository root, e.g.
    .venv/bin/python tools/mutate.py --seed 1 --count 50 --files hw/arith.py hw/uart.py
"""

import argparse
import ast
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TOOL_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TOOL_DIR)
REPORT_ENV = "LELA_MUTATE_REPORT"

BINOPS = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.BitAnd: ("&", "|"),
          ast.BitOr: ("|", "&"), ast.BitXor: ("^", "|")}
CMPOPS = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="),
          ast.GtE: (">=", ">"), ast.Eq: ("==", "!="), ast.NotEq: ("!=", "==")}


# --- mutation sites ---------------------------------------------------------------------------

class Mutant:
    """One mutation of one file: ``edits`` are ``(start, end, text)`` byte ranges of the source."""

    def __init__(self, path, kind, line, edits, source):
        self.path, self.kind, self.line, self.edits = path, kind, line, sorted(edits)
        self.original = " / ".join(source[s:e].decode() for s, e, _ in self.edits)
        self.mutated = " / ".join(t for _, _, t in self.edits)
        lines = source.decode().splitlines()
        self.line_before = lines[line - 1].strip()
        self.line_after = apply(source, self.edits).decode().splitlines()[line - 1].strip()
        self.id = None
        self.key = None

    def record(self):
        return {"id": self.id, "file": self.path, "line": self.line, "kind": self.kind,
                "original": self.original, "mutated": self.mutated,
                "line_before": self.line_before, "line_after": self.line_after, "key": self.key}


def apply(source, edits):
    out = source
    for start, end, text in sorted(edits, reverse=True):
        out = out[:start] + text.encode() + out[end:]
    return out


def _find_token(source, start, end, token):
    """Offset of ``token`` in ``source[start:end]`` outside comments (the gap between two
    operands holds only brackets, blanks, comments and the operator)."""
    i = start
    while i < end:
        c = source[i:i + 1]
        if c == b"#":
            while i < end and source[i:i + 1] != b"\n":
                i += 1
            continue
        if source.startswith(token.encode(), i):
            return i
        i += 1
    raise ValueError(f"operator {token!r} not found between offsets {start} and {end}")


def _is_domain(node):
    """``m.d.sync`` (``m.d.sync += ...`` adds statements: no arithmetic to mutate)."""
    return (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
            and node.value.attr == "d")


def enumerate_mutants(path, source):
    """Every mutant of ``source`` (bytes of the file ``path``), in a fixed order."""
    tree = ast.parse(source)
    starts = [0]
    for line in source.split(b"\n"):
        starts.append(starts[-1] + len(line) + 1)

    def at(lineno, col):
        return starts[lineno - 1] + col        # ast columns are UTF-8 byte offsets

    def span(node):
        return at(node.lineno, node.col_offset), at(node.end_lineno, node.end_col_offset)

    def text(node):
        s, e = span(node)
        return source[s:e].decode()

    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Raise, ast.JoinedStr)):
            skip.update(id(n) for n in ast.walk(node))
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                for t in node.targets):
            skip.update(id(n) for n in ast.walk(node))

    mutants = []

    def add(kind, node, edits):
        mutants.append(Mutant(path, kind, node.lineno, edits, source))

    def swap_op(kind, node, left, right, table, op):
        old, new = table[type(op)]
        pos = _find_token(source, span(left)[1], span(right)[0], old)
        add(kind, node, [(pos, pos + len(old), new)])

    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.BinOp) and type(node.op) in BINOPS:
            swap_op("operator", node, node.left, node.right, BINOPS, node.op)
        elif (isinstance(node, ast.AugAssign) and type(node.op) in BINOPS
              and not _is_domain(node.target)):
            old, new = BINOPS[type(node.op)]
            pos = _find_token(source, span(node.target)[1], span(node.value)[0], old + "=")
            add("operator", node, [(pos, pos + len(old), new)])
        elif isinstance(node, ast.Compare):
            operands = [node.left] + node.comparators
            for k, op in enumerate(node.ops):
                if type(op) in CMPOPS:
                    swap_op("comparison", node, operands[k], operands[k + 1], CMPOPS, op)
        elif (isinstance(node, ast.Constant) and type(node.value) is int):
            s, e = span(node)
            raw = source[s:e].decode().lower()
            for delta in (1, -1):
                v = node.value + delta
                new = (hex(v) if raw.startswith("0x") else bin(v) if raw.startswith("0b")
                       else oct(v) if raw.startswith("0o") else str(v))
                add("constant", node, [(s, e, new)])
        elif isinstance(node, ast.Call) and len(node.args) == 3 and not node.keywords and (
                (isinstance(node.func, ast.Name) and node.func.id == "Mux") or
                (isinstance(node.func, ast.Attribute) and node.func.attr == "Mux")):
            a, b = node.args[1], node.args[2]
            add("mux-arms", node, [(*span(a), text(b)), (*span(b), text(a))])
        elif isinstance(node, ast.Slice):
            for bound in (node.lower, node.upper):
                if bound is None or isinstance(bound, ast.Constant):
                    continue                    # constants are mutated as constants
                for sign in ("+", "-"):
                    add("slice-bound", bound, [(*span(bound), f"({text(bound)}) {sign} 1")])

    mutants.sort(key=lambda m: (m.edits[0][0], m.kind, m.mutated))
    stem = os.path.splitext(path)[0].replace("/", ".").removeprefix("hw.")
    seen = {}
    for n, m in enumerate(mutants):
        m.id = f"{stem}-{n:03d}"
        base = f"{m.path}::{m.line_before}::{m.original} -> {m.mutated}"
        seen[base] = seen.get(base, 0) + 1
        m.key = f"{base}::{seen[base]}"         # survives line moves, for the equivalents list
    return mutants


def sample(all_mutants, count, seed):
    """``count`` mutants, shuffled per file with ``seed`` and taken from the files in turn (every
    file is sampled, whatever its size)."""
    rng = random.Random(seed)
    queues = []
    for path in sorted(all_mutants):
        q = list(all_mutants[path])
        rng.shuffle(q)
        queues.append(q)
    chosen = []
    while len(chosen) < count and any(queues):
        for q in queues:
            if q and len(chosen) < count:
                chosen.append(q.pop())
    return chosen


# --- which tests see which file ---------------------------------------------------------------

def _imports(tree_root, path):
    """Modules of the repository that ``path`` imports (dotted names)."""
    with open(os.path.join(tree_root, path), "rb") as f:
        tree = ast.parse(f.read())
    package = os.path.dirname(path).replace("/", ".")
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(p for p in parts + [base] if p)
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    found = set()
    for name in names:
        for candidate in (name.replace(".", "/") + ".py", name.replace(".", "/") + "/__init__.py"):
            if os.path.exists(os.path.join(tree_root, candidate)):
                found.add(candidate)
    return found


def tests_for(tree_root, path, scope):
    tests = sorted(f"tests/{f}" for f in os.listdir(os.path.join(tree_root, "tests"))
                   if f.startswith("test_") and f.endswith(".py"))
    stem = os.path.splitext(os.path.basename(path))[0]
    if scope == "direct":
        own = {f"tests/test_hw_{stem}.py", f"tests/test_rtl_{stem}.py"}
        return [t for t in tests if t in own or path in _imports(tree_root, t)]
    cache = {}

    def closure(start):
        seen, todo = set(), [start]
        while todo:
            f = todo.pop()
            if f in seen:
                continue
            seen.add(f)
            if f not in cache:
                cache[f] = _imports(tree_root, f)
            todo.extend(cache[f])
        return seen
    return [t for t in tests if path in closure(t)]


# --- running ----------------------------------------------------------------------------------

def pytest_exception_interact(node, call, report):
    """pytest hook (this file is loaded as a plugin in each run): record each failure's
    exception and frames for the classification."""
    out = os.environ.get(REPORT_ENV)
    if not out or call.excinfo is None:
        return
    exc = call.excinfo.value
    frames, tb = [], call.excinfo.tb
    while tb is not None:
        frames.append([tb.tb_frame.f_code.co_filename, tb.tb_lineno, tb.tb_frame.f_code.co_name])
        tb = tb.tb_next
    kind = type(exc)
    with open(out, "a") as f:
        f.write(json.dumps({
            "nodeid": report.nodeid, "when": report.when,
            "type": f"{kind.__module__}.{kind.__qualname__}",
            "assertion": isinstance(exc, AssertionError) or kind.__module__ == "_pytest.outcomes",
            "message": str(exc).splitlines()[0][:300] if str(exc) else "",
            "frames": frames}) + "\n")


def classify(failure, tree):
    """``killed`` or ``incompetent`` for the first failure of a run (see the module doc)."""
    if failure["assertion"]:
        return "killed"
    frames = failure["frames"]
    if failure["type"].endswith("CalledProcessError") and any(
            "cocotb_tools" in f and fn == "build" for f, _, fn in frames):
        return "incompetent"
    innermost = frames[-1][0] if frames else ""
    if re.search(r"[/\\]amaranth[/\\](hdl|lib|back)[/\\]", innermost):
        return "incompetent"
    hw = os.path.join(tree, "hw") + os.sep
    ours = [f for f in frames if f[0].startswith(tree + os.sep)]
    if ours and ours[-1][0].startswith(hw):
        with open(ours[-1][0]) as f:
            line = f.read().splitlines()[ours[-1][1] - 1].strip()
        return "killed" if line.startswith("raise") else "incompetent"
    return "killed"


def test_env(tree, regress, report=""):
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("LELA_REGRESS", None)
    if regress:
        env["LELA_REGRESS"] = "1"
    env.update(PYTHONPATH=os.pathsep.join([tree, TOOL_DIR]), PYTHONDONTWRITEBYTECODE="1",
               **{REPORT_ENV: report})
    return env


def check_imports_resolve_to(tree):
    """The venv is an editable install of the shared tree: make sure ``hw`` is the copy's."""
    where = subprocess.run([sys.executable, "-c", "import hw; print(hw.__file__)"], cwd=tree,
                           env=test_env(tree, False), check=True, capture_output=True,
                           text=True).stdout.strip()
    if not where.startswith(tree + os.sep):
        raise RuntimeError(f"hw resolves to {where}, not to the copy in {tree}")
    return where


def run_tests(tree, tests, regress, timeout, log, stop_first=True, deselect=()):
    """Run ``tests`` in ``tree``: ``(exit code or None on timeout, seconds, failures)``."""
    report = os.path.join(os.path.dirname(tree), "failures.jsonl")
    if os.path.exists(report):
        os.remove(report)
    basetemp = os.path.join(os.path.dirname(tree), "pytest-tmp")
    env = test_env(tree, regress, report)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
           "no:xdist", "-p", "mutate", f"--basetemp={basetemp}"]
    cmd += ["-x"] if stop_first else []
    for nodeid in deselect:
        cmd += ["--deselect", nodeid]
    if not regress:
        cmd += ["-m", "not slow"]
    cmd += tests
    t0 = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)     # the pytest and its simulators, ours only
            proc.wait()
            code = None
    seconds = time.monotonic() - t0
    failures = []
    if os.path.exists(report):
        with open(report) as f:
            failures = [json.loads(line) for line in f]
    return code, seconds, failures


def unpack(root, dest):
    """The committed tree of ``root`` (HEAD) in ``dest``; returns the commit."""
    commit = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], check=True,
                            capture_output=True, text=True).stdout.strip()
    os.makedirs(dest)
    archive = subprocess.Popen(["git", "-C", root, "archive", "--format=tar", commit],
                               stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", dest], stdin=archive.stdout, check=True)
    if archive.wait():
        raise RuntimeError("git archive failed")
    return commit


def load_equivalents(path):
    if not path or not os.path.exists(path):
        return {}
    with open(path) as f:
        return {e["key"]: e["why"] for e in json.load(f)}


def summarise(run):
    """The counts and the readable summary of one mode's records."""
    records = run["mutants"]
    reruns = "".join(f", re-run at {c[:10]}" for c in run.get("reruns", []))
    lines = [f"mode {run['mode']} (scope {run['scope']}, seed {run['seed']}, "
             f"commit {run['commit'][:10]}{reruns}): {len(records)} mutants"]
    for nodeid, why in run.get("deselected", {}).items():
        lines.append(f"deselected (fails unmutated): {nodeid}: {why[:120]}")
    per_file = {}
    for r in records:
        per_file.setdefault(r["file"], []).append(r)
    totals = {}
    lines.append(f"{'file':34} {'n':>3} {'kill':>4} {'t/o':>3} {'surv':>4} {'equiv':>5} "
                 f"{'incomp':>6} {'rate':>6}")
    for path in sorted(per_file) + [None]:
        rs = records if path is None else per_file[path]
        c = {o: sum(r["outcome"] == o for r in rs)
             for o in ("killed", "timeout", "survived", "equivalent", "incompetent", "error")}
        judged = c["killed"] + c["timeout"] + c["survived"]
        rate = (c["killed"] + c["timeout"]) / judged if judged else float("nan")
        if path is None:
            totals = dict(c, rate=rate, judged=judged)
            lines.append("-" * 72)
        lines.append(f"{path or 'all':34} {len(rs):3d} {c['killed']:4d} {c['timeout']:3d} "
                     f"{c['survived']:4d} {c['equivalent']:5d} {c['incompetent']:6d} "
                     f"{100 * rate:5.1f}%")
    for title, outcome in (("survivors", "survived"), ("equivalent", "equivalent"),
                           ("incompetent", "incompetent"), ("errors", "error")):
        rs = [r for r in records if r["outcome"] == outcome]
        if rs:
            lines.append(f"{title}:")
        for r in rs:
            lines.append(f"  {r['id']} {r['file']}:{r['line']} {r['kind']}: "
                         f"{r['original']!r} -> {r['mutated']!r}   [{r['line_after']}]")
            if r.get("why"):
                lines.append(f"      why: {r['why']}")
            if outcome == "incompetent" and r.get("detail"):
                lines.append(f"      {r['detail']}")
    return totals, "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="tools/mutate.py", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1, help="sampling seed (default 1)")
    parser.add_argument("--count", type=int, default=50, help="mutants to run (default 50)")
    parser.add_argument("--files", nargs="+", metavar="HW_FILE",
                        help="hw/ files to mutate, relative to --root (default: every hw/ file)")
    parser.add_argument("--ids", nargs="+", metavar="ID",
                        help="run these mutant ids (from a listing or an earlier run) instead of "
                             "a sample, and update their records in --out")
    parser.add_argument("--rerun-survivors", action="store_true",
                        help="run again the survivors (and equivalents) stored in --out for the "
                             "mode, found by their text (ids move when a file changes), and "
                             "update their records: after adding a test")
    parser.add_argument("--regress", action="store_true",
                        help="`make regress`'s selection (LELA_REGRESS=1, slow tests included)")
    parser.add_argument("--scope", choices=("direct", "import"), default="direct",
                        help="which test files see a hw file (see above; default direct)")
    parser.add_argument("--list", action="store_true",
                        help="print the sampled mutants and their tests, run nothing")
    parser.add_argument("--summary", action="store_true",
                        help="print the summary stored in --out for the mode, run nothing")
    parser.add_argument("--root", default=REPO, help="the git repository to copy (default: "
                        "this one); its committed HEAD is tested, not the work tree")
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "results",
                                                      "mutation.json"),
                        help="results JSON (default bench/results/mutation.json)")
    parser.add_argument("--equivalents", default=os.path.join(TOOL_DIR,
                                                              "mutation_equivalents.json"),
                        help="JSON list of {key, why}: survivors judged equivalent")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy and logs")
    args = parser.parse_args(argv)
    mode = "regress" if args.regress else "test"

    stored = {}
    if os.path.exists(args.out):
        with open(args.out) as f:
            stored = json.load(f)
    if args.summary:
        if mode not in stored:
            parser.error(f"{args.out} has no {mode} run")
        print(summarise(stored[mode])[1])
        return 0

    work = tempfile.mkdtemp(prefix="lela-mutate-")
    tree = os.path.join(work, "tree")
    try:
        commit = unpack(args.root, tree)
        rerun_keys = None
        if args.rerun_survivors:
            if mode not in stored:
                parser.error(f"{args.out} has no {mode} run")
            rerun_keys = [r["key"] for r in stored[mode]["mutants"]
                          if r["outcome"] in ("survived", "equivalent")]
            args.files = sorted({k.split("::", 1)[0] for k in rerun_keys})
        files = args.files or sorted(
            os.path.relpath(os.path.join(d, f), tree)
            for d, _, fs in os.walk(os.path.join(tree, "hw")) for f in fs
            if f.endswith(".py") and f != "__init__.py")
        if args.ids:
            stems = {i.rsplit("-", 1)[0] for i in args.ids}
            files = sorted({f for f in files if os.path.splitext(f)[0].replace("/", ".")
                            .removeprefix("hw.") in stems} | set(args.files or []))
        sources, everything = {}, {}
        for path in files:
            with open(os.path.join(tree, path), "rb") as f:
                sources[path] = f.read()
            everything[path] = enumerate_mutants(path, sources[path])
        if rerun_keys is not None:
            by_key = {m.key: m for ms in everything.values() for m in ms}
            gone = [k for k in rerun_keys if k not in by_key]
            if gone:
                print("no longer in the source (not re-run):\n  " + "\n  ".join(gone))
            chosen = [by_key[k] for k in rerun_keys if k in by_key]
        elif args.ids:
            by_id = {m.id: m for ms in everything.values() for m in ms}
            missing = [i for i in args.ids if i not in by_id]
            if missing:
                parser.error(f"unknown mutant ids: {' '.join(missing)}")
            chosen = [by_id[i] for i in args.ids]
        else:
            chosen = sample(everything, args.count, args.seed)
        tests = {p: tests_for(tree, p, args.scope) for p in files}
        print(f"{sum(map(len, everything.values()))} candidate mutants in {len(files)} files; "
              f"running {len(chosen)} ({mode}, scope {args.scope}, commit {commit[:10]})")
        if args.list:
            for m in chosen:
                print(f"{m.id:24} {m.path}:{m.line} {m.kind}: {m.original!r} -> "
                      f"{m.mutated!r}  tests: {' '.join(tests[m.path]) or '-'}")
            return 0

        print(f"hw imports from {check_imports_resolve_to(tree)}")
        # The unmutated copy must pass; its times order the tests and set the timeouts.
        # A test that fails unmutated cannot judge a mutant: it is deselected and reported
        # (a file that does not even collect stops the tool).
        baseline, broken = {}, {}
        for t in sorted({t for m in chosen for t in tests[m.path]}):
            code, seconds, failures = run_tests(tree, [t], args.regress, None,
                                                os.path.join(work, "baseline.log"),
                                                stop_first=False)
            failing = {f["nodeid"]: f"{f['type']}: {f['message']}" for f in failures
                       if f["when"] in ("setup", "call", "teardown")}
            if code not in (0, 5) and not (code == 1 and failing and
                                           len(failing) == len(failures)):
                with open(os.path.join(work, "baseline.log")) as f:
                    sys.stdout.write(f.read()[-3000:])
                print(f"the unmutated {t} fails: nothing to measure against", file=sys.stderr)
                return 2
            broken.update(failing)
            baseline[t] = seconds
            print(f"baseline {t}: {seconds:.1f} s")
            for nodeid, why in failing.items():
                print(f"  FAILS UNMUTATED, deselected: {nodeid} ({why[:150]})")

        equivalents = load_equivalents(args.equivalents)
        records = []
        for n, m in enumerate(chosen, 1):
            ts = sorted((t for t in tests[m.path] if t in baseline), key=baseline.get)
            rec = m.record()
            rec["commit"] = commit
            rec["tests"] = ts
            target = os.path.join(tree, m.path)
            if not ts:
                rec.update(outcome="survived", seconds=0.0, detail="no test sees this file")
            else:
                with open(target, "wb") as f:
                    f.write(apply(sources[m.path], m.edits))
                rec.update(outcome="survived", seconds=0.0)
                try:
                    # One file at a time, each under its own timeout: a hang in a quick unit
                    # test is not waited out for the length of every slow file after it.
                    for t in ts:
                        timeout = 3 * baseline[t] + 30
                        code, seconds, failures = run_tests(
                            tree, [t], args.regress, timeout, os.path.join(work, f"{m.id}.log"),
                            deselect=sorted(broken))
                        rec["seconds"] += seconds
                        if code is None:
                            rec.update(outcome="timeout",
                                       detail=f"{t}: no result after {timeout:.0f} s")
                        elif code in (0, 5):
                            continue
                        elif failures:
                            first = failures[0]
                            rec["outcome"] = classify(first, tree)
                            rec["detail"] = (f"{first['nodeid']} ({first['when']}): "
                                             f"{first['type']}: {first['message']}")
                        else:
                            rec.update(outcome="error", detail=f"{t}: pytest exit code {code}, "
                                       f"no failure recorded (log kept in {work})")
                            args.keep = True
                        break
                finally:
                    with open(target, "wb") as f:
                        f.write(sources[m.path])
                rec["seconds"] = round(rec["seconds"], 2)
            if rec["outcome"] == "survived" and m.key in equivalents:
                rec.update(outcome="equivalent", why=equivalents[m.key])
            records.append(rec)
            print(f"[{n}/{len(chosen)}] {m.id:22} {rec['outcome']:11} {rec['seconds']:6.1f} s  "
                  f"{m.path}:{m.line} {m.original!r} -> {m.mutated!r}", flush=True)

        if (args.ids or rerun_keys is not None) and mode in stored:
            run = stored[mode]
            done = {r["key"] for r in records}
            run["mutants"] = [r for r in run["mutants"] if r["key"] not in done] + records
            run["mutants"].sort(key=lambda r: (r["file"], r["line"], r["id"]))
            run.setdefault("reruns", []).append(commit)
            run.setdefault("deselected", {}).update(broken)
        else:
            run = {"mode": mode, "scope": args.scope, "seed": args.seed, "count": args.count,
                   "commit": commit, "files": files,
                   "candidates": {p: len(ms) for p, ms in everything.items()},
                   "deselected": broken,
                   "mutants": records}
        run["totals"], text = summarise(run)
        stored[mode] = run
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(stored, f, indent=1)
            f.write("\n")
        print(text)
        return 0
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
