"""Batch normalisation on the whole core (docs/ARITHMETIC.md, "Batch normalisation"): a core
built with it, in Verilator behind the host driver, against the golden model at every
external-memory write (INIT's words, each TRAIN's running statistics and updated weights,
biases and scales, in the core's order), every reply, and the weights, scales and running
statistics read back after every command; with random latency and stalls on the memory port
and both host streams (sim/scenarios.py's checks)."""

import os
import re

import numpy as np
import pytest

from host.driver import Accelerator
from sim.accelerator_sim import HarnessBench, build_accelerator
from sim.scenarios import (configure_and_init, perturbed_scenario, train_and_check,
                           training_scenario, check_inference)
from tests.accelerator_checks import HARDWARE, TIMEOUT

pytestmark = pytest.mark.xdist_group("accelerator-bn")

#: The core: HARDWARE's array and sizes, built with batch normalisation (no dropout: the config
#: refuses the two together).
NORMALISED = HARDWARE.replace(batch_norm=True, dropout=0)
STALLS = dict(read_latency=9, stall=0.3, rx_stall=0.3, tx_stall=0.3)


@pytest.fixture(scope="session")     # built once a worker (xdist interleaves modules)
def harness(tmp_path_factory):
    root = os.environ.get("LELA_BUILD_CACHE") or str(tmp_path_factory.mktemp("accelerator"))
    return build_accelerator(NORMALISED, os.path.join(root, "accelerator_bn"),
                             frame_timeout=TIMEOUT)


CASES = {
    "symmetric-stochastic": dict(),
    "sign-nearest": dict(feedback="sign", rounding="nearest-even", seed=4),
    # Partial tiles (13, 11 and 7 neurons on 4 rows) and layers of other sizes.
    "odd-sizes": dict(arch=(13, 11, 7), seed=3, bn_momentum_shift=0, bn_eps_shift=4),
    "settings": dict(bn_stat_frac=5, bn_eps_shift=14, bn_momentum_shift=6, seed=9),
}


@pytest.mark.parametrize("case", list(CASES))
def test_training_matches_golden_at_every_write(harness, tmp_path, case):
    """Mini-batches of 8, 5 (a partial group), 8 and 1 sample, then inference (early exit
    too), counters: every write and read-back equal the golden model's."""
    cfg = NORMALISED.replace(**CASES[case])
    rng = np.random.default_rng(len(case))
    with HarnessBench(harness, cfg, tmp_path / "writes.bin", seed=len(case), **STALLS) as bench:
        training_scenario(bench, cfg, rng, (8, 5, 8, 1), 11, case)


def test_frozen_layers_move_only_their_statistics(harness, tmp_path):
    """Layer-by-layer training: a frozen layer normalises with its batch statistics and writes
    its moved running statistics, nothing else; the trained layers move."""
    cfg = NORMALISED
    rng = np.random.default_rng(5)
    with HarnessBench(harness, cfg, tmp_path / "writes.bin", seed=5, **STALLS) as bench:
        acc = Accelerator(bench.link)
        net = configure_and_init(bench, acc, cfg, "frozen")
        for stage, frozen in enumerate(([1, 2], [0, 2], [])):
            acc.set_frozen(frozen)
            net.set_frozen(frozen)
            before = [bn.state() for bn in net.batch_norm]
            weights = [w.copy() for w in net.weights]
            train_and_check(bench, acc, cfg, net, rng, (8, 3), f"stage {stage} {frozen}")
            for i, bn in enumerate(net.batch_norm):
                assert not np.array_equal(bn.mean, before[i]["mean"]), (stage, i)
                assert np.array_equal(bn.gamma, before[i]["gamma"]) == (i in frozen)
                assert np.array_equal(net.weights[i], weights[i]) == (i in frozen)
        check_inference(bench, acc, cfg, net, rng, 9, "after the stages")


def test_the_same_core_trains_without_batch_norm(harness, tmp_path):
    """The normalising core with a network that does not normalise: the plain rules, bit-exact
    (its tiles then have J + 1 words)."""
    cfg = HARDWARE.replace(dropout=0, seed=7)
    rng = np.random.default_rng(7)
    with HarnessBench(harness, cfg, tmp_path / "writes.bin", seed=7, **STALLS) as bench:
        training_scenario(bench, cfg, rng, (8, 4), 6, "plain on a normalising core")


def test_perturbed_golden_model_is_caught(harness, tmp_path):
    """The golden model's momentum one shift off: the first TRAIN's running statistics
    differ, and the check names the word."""
    cfg = NORMALISED
    with HarnessBench(harness, cfg, tmp_path / "writes.bin", seed=2, **STALLS) as bench:
        message = perturbed_scenario(bench, cfg, cfg.replace(bn_momentum_shift=2),
                                     np.random.default_rng(2))
    assert re.search(r"\(tile \d+, mean (low|high)\)", message), message
