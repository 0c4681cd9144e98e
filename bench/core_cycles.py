"""The counters of a fixed run (three mini-batches and an inference) on the Verilator harness:
a refactoring of the training core must leave every one of them unchanged.

    python bench/core_cycles.py BUILD_DIR digits [digits-lean ...] > counters.json

``NAME-lean`` builds configs/NAME.toml without dropout, sign-concordant feedback and early exit.
"""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np                                                  # noqa: E402

from contract.config import load_config                             # noqa: E402
from host.driver import Accelerator                                 # noqa: E402
from sim.accelerator_sim import build_accelerator, open_accelerator  # noqa: E402

LEAN = dict(dropout=False, sign_feedback=False, early_exit=False)


def run(build_dir, name):
    lean = name.endswith("-lean")
    cfg = load_config(os.path.join(ROOT, "configs", f"{name.removesuffix('-lean')}.toml"))
    exe = build_accelerator(cfg, os.path.join(build_dir, name), **(LEAN if lean else {}))
    rng = np.random.default_rng(1)
    with open_accelerator(exe, seed=1) as link:
        acc = Accelerator(link)
        acc.configure(cfg)
        acc.init_weights()
        before = acc.counters()
        correct = []
        for batch in (cfg.batch, cfg.batch, 3):
            x = rng.integers(0, 256, size=(batch, cfg.arch[0]))
            y = rng.integers(0, cfg.classes, size=batch)
            correct.append(acc.train_batch(x, y))
        preds, _ = acc.infer(rng.integers(0, 256, size=(7, cfg.arch[0])))
        after = acc.counters()
        return dict(counters={k: after[k] - before[k] for k in after}, correct=correct,
                    preds=np.asarray(preds).tolist(), hash=acc.weight_hash())


if __name__ == "__main__":
    print(json.dumps({name: run(sys.argv[1], name) for name in sys.argv[2:]}, sort_keys=True))
