"""Layer-by-layer training's frozen layers (docs/ARITHMETIC.md, "Frozen layers") on the whole
core: a TRAIN runs a frozen layer forward only, writes none of its weights, counts 0 for it,
and the layers above train on its activations, every write and weight equal to the golden
model's; the cycles it saves show in the ``train_cycles`` counter."""

import numpy as np
import pytest

from host.driver import Accelerator
from sim.accelerator_sim import HarnessBench
from sim.scenarios import configure_and_init, train_and_check
from tests.accelerator_checks import HARDWARE

pytestmark = pytest.mark.xdist_group("accelerator")

STALLS = dict(read_latency=5, stall=0.2, rx_stall=0.2, tx_stall=0.2)


def _train_cycles(bench, acc, net, rng, batches, label):
    before = acc.counters()["train_cycles"]
    totals = train_and_check(bench, acc, net.cfg, net, rng, batches, label)
    return acc.counters()["train_cycles"] - before, totals


@pytest.mark.parametrize("dropout", [0, 48])
def test_layerwise_stages_bit_exact(tiny_harness, tmp_path, dropout):
    """The stages of layer-by-layer training on the 3-layer test network (layer 0 alone, then
    1 on frozen 0, then 2 on frozen 0 and 1), then all layers again: each stage's weights of the
    frozen layers do not move and the trained ones do."""
    cfg = HARDWARE.replace(dropout=dropout, seed=7)
    rng = np.random.default_rng(dropout + 1)
    with HarnessBench(tiny_harness, cfg, tmp_path / "writes.bin", seed=2, **STALLS) as bench:
        acc = Accelerator(bench.link)
        net = configure_and_init(bench, acc, cfg, "frozen")
        cycles = {}
        for stage, frozen in enumerate(([1, 2], [0, 2], [0, 1], [])):
            acc.set_frozen(frozen)
            net.set_frozen(frozen)
            before = [w.copy() for w in net.weights]
            cycles[stage], totals = _train_cycles(bench, acc, net, rng, (8, 8),
                                                  f"stage {stage} frozen {frozen}")
            for i in range(cfg.layers):
                moved = not np.array_equal(before[i], net.weights[i])
                assert moved == (i not in frozen), (stage, i)
                if i in frozen:
                    assert totals[i] == 0
    # Two layers of three frozen: fewer training cycles than all three trained.
    assert max(cycles[0], cycles[1], cycles[2]) < cycles[3]


def test_freezing_needs_a_layer_of_the_network(tiny_harness):
    from sim.accelerator_sim import open_accelerator
    with open_accelerator(tiny_harness) as link:
        acc = Accelerator(link)
        acc.configure(HARDWARE)
        with pytest.raises(ValueError, match="cannot freeze layer 3"):
            acc.set_frozen([3])
