"""tools/mutate.py on a tiny repository: the mutants it makes, and a killed, a surviving, an
equivalent and an incompetent mutant classified as such, a test failing before any mutation left
out, and the tree it copies untouched."""

import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))
import mutate  # noqa: E402

TINY = '''\
from amaranth.hdl import Mux

WIDTHS = (8, 16)
WIDE = WIDTHS[1]


def add(a, b):
    return a + b


def clamp(x):
    return x if x < 100 else 100


def pick(s, x, n):
    return Mux(s, x, x[:n - 1])
'''

TINY_TEST = '''\
from hw.tiny import add, clamp


def test_add():
    assert add(2, 3) == 5


def test_clamp_small():
    assert clamp(5) == 5


def test_broken_before_any_mutation():
    assert add(1, 1) == 3
'''


def test_enumerates_each_kind_of_mutant():
    by_text = {(m.kind, m.original, m.mutated)
               for m in mutate.enumerate_mutants("hw/tiny.py", TINY.encode())}
    assert ("operator", "+", "-") in by_text
    assert ("comparison", "<", "<=") in by_text
    assert ("constant", "100", "101") in by_text and ("constant", "100", "99") in by_text
    assert ("mux-arms", "x / x[:n - 1]", "x[:n - 1] / x") in by_text
    assert ("slice-bound", "n - 1", "(n - 1) + 1") in by_text
    mutants = mutate.enumerate_mutants("hw/tiny.py", TINY.encode())
    assert len({m.id for m in mutants}) == len(mutants)
    swap = next(m for m in mutants if m.kind == "mux-arms")
    assert swap.line_after == "return Mux(s, x[:n - 1], x)"


def test_leaves_messages_and_module_statements_alone():
    source = b'def f(m, x):\n    m.d.sync += x\n    raise ValueError(f"{x + 1} bad")\n'
    assert mutate.enumerate_mutants("hw/f.py", source) == []


@pytest.fixture
def tiny_repo(tmp_path):
    root = tmp_path / "repo"
    (root / "hw").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "hw" / "__init__.py").write_text("")
    (root / "tests" / "__init__.py").write_text("")
    (root / "hw" / "tiny.py").write_text(TINY)
    (root / "tests" / "test_hw_tiny.py").write_text(TINY_TEST)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(root)]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "tiny"], check=True)
    return root


def test_classifies_killed_survived_equivalent_and_incompetent(tiny_repo, tmp_path):
    mutants = mutate.enumerate_mutants("hw/tiny.py", TINY.encode())

    def pick(kind, original, mutated, where):
        return [m for m in mutants if (m.kind, m.original, m.mutated) == (kind, original, mutated)
                and where in m.line_before][0]          # the first on the line
    killed = pick("operator", "+", "-", "a + b")                    # add(2, 3) == -1
    survivor = pick("comparison", "<", "<=", "x < 100")             # clamp(5) is far from 100
    equivalent = pick("constant", "100", "101", "x < 100")          # so judged below
    incompetent = pick("constant", "1", "2", "WIDE")                # WIDTHS[2]: import fails
    equivalents = tmp_path / "equivalents.json"
    equivalents.write_text(json.dumps([{"key": equivalent.key, "why": "the test never reaches"
                                        " the bound"}]))
    out = tmp_path / "mutation.json"
    before = (tiny_repo / "hw" / "tiny.py").read_text()
    code = mutate.main(["--root", str(tiny_repo), "--out", str(out), "--equivalents",
                        str(equivalents), "--files", "hw/tiny.py", "--ids", killed.id,
                        survivor.id, equivalent.id, incompetent.id])
    assert code == 0
    assert (tiny_repo / "hw" / "tiny.py").read_text() == before      # the copy was mutated
    run = json.loads(out.read_text())["test"]
    outcome = {r["id"]: r["outcome"] for r in run["mutants"]}
    assert outcome[killed.id] == "killed"
    assert outcome[survivor.id] == "survived"
    assert outcome[equivalent.id] == "equivalent"
    assert outcome[incompetent.id] == "incompetent"
    assert run["totals"]["rate"] == pytest.approx(1 / 2)
    # A test failing unmutated would "kill" every mutant: it is left out, and said so.
    assert list(run["deselected"]) == ["tests/test_hw_tiny.py::test_broken_before_any_mutation"]
    record = next(r for r in run["mutants"] if r["id"] == killed.id)
    assert (record["file"], record["line"], record["original"], record["mutated"]) == \
        ("hw/tiny.py", 8, "+", "-")
    assert record["seconds"] > 0


def test_a_mutant_that_crashes_in_hw_is_incompetent(tmp_path):
    tree = str(tmp_path)
    hw = os.path.join(tree, "hw", "x.py")
    os.makedirs(os.path.dirname(hw))
    with open(hw, "w") as f:
        f.write("def f(bits):\n    return bits[3]\n\ndef g(n):\n    raise ValueError(n)\n")
    crash = {"assertion": False, "type": "builtins.IndexError", "message": "",
             "frames": [[os.path.join(tree, "tests", "t.py"), 9, "test"], [hw, 2, "f"]]}
    check = dict(crash, type="builtins.ValueError", frames=[crash["frames"][0], [hw, 5, "g"]])
    seen = dict(crash, frames=[[hw, 2, "f"], [os.path.join(tree, "tests", "t.py"), 9, "h"]])
    assert mutate.classify(crash, tree) == "incompetent"
    assert mutate.classify(check, tree) == "killed"         # a parameter check is behaviour
    assert mutate.classify(seen, tree) == "killed"          # the test choked on its output
    assert mutate.classify(dict(crash, assertion=True), tree) == "killed"
