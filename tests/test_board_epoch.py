"""bench/board_epoch.py: an epoch's prediction from a simulated board's mini-batches, by hand."""

import pytest

from bench.board_epoch import predict
from contract.config import NetConfig
from host.energy import mac_beats


def _run(cfg, train, link_bytes, exact=True):
    beats = mac_beats(list(cfg.arch), cfg.classes, cfg.batch, cfg.array_rows, cfg.array_cols)
    words = sum(n * j + n for j, n in zip(cfg.arch[:-1], cfg.arch[1:]))
    row = {"bit_exact": exact, "train_cycles": train, "mac_busy_cycles": beats,
           "ext_read_words": 2 * words, "ext_write_words": words, "link_bytes": link_bytes}
    return {"network": list(cfg.arch), "bit_exact": exact, "clock_hz": 1_000_000,
            "minibatches": [row, dict(row, train_cycles=train + 2)]}


def test_an_epoch_from_the_measured_minibatches():
    cfg = NetConfig(arch=(16, 8, 8), batch=4, array_rows=4, array_cols=4)
    words = 16 * 8 + 8 + 8 * 8 + 8                            # 208 weights and biases
    p = predict(_run(cfg, 9_000, 1_000), cfg)
    assert p["train_cycles"] == 9_001 and p["sdram_columns"] == 3 * words
    assert p["epoch_minibatches"] == 15_000                   # 60 000 / 4
    slow, fast = p["per_baud"]["115200"], p["per_baud"]["3000000"]
    link = 1_000 * 10 / 115_200 * 1e6                          # 86 806 cycles at 1 MHz
    assert slow["link_cycles"] == round(link)
    assert slow["minibatch_seconds"] == pytest.approx((link + 9_001) / 1e6)
    assert slow["epoch_seconds_alternating"] == pytest.approx(15_000 * (link + 9_001) / 1e6)
    assert slow["epoch_seconds_overlapped"] == pytest.approx(15_000 * link / 1e6)
    assert slow["bound_by"] == "link"
    assert fast["link_cycles"] == 3_333 and fast["bound_by"] == "array"
    assert fast["epoch_seconds_overlapped"] == pytest.approx(15_000 * 9_001 / 1e6)
    assert sum(fast[k] for k in ("share_link", "share_array", "share_train_not_array")) \
        == pytest.approx(1)
    bp = p["backprop_same_chip"]
    assert bp["mac_beats"] == mac_beats([16, 8, 8], 10, 4, 4, 4, "backprop")
    assert bp["train_cycles_estimate"] == pytest.approx(9_001 / p["mac_busy_cycles"]
                                                        * bp["mac_beats"])
    # backprop spills the two hidden vectors (4 x 8 bytes each: 16 columns, written and read),
    # reads the input (4 x 16 bytes: 32 columns) again for layer 1's gradient and streams its
    # output layer (10 x 9 words, read twice and written once)
    assert bp["sdram_columns"] == 3 * words + 3 * 90 + 2 * 2 * 16 + 32


def test_a_run_that_was_not_bit_exact_is_refused():
    cfg = NetConfig(arch=(16, 8, 8), batch=4, array_rows=4, array_cols=4)
    with pytest.raises(SystemExit, match="not bit-exact"):
        predict(_run(cfg, 9_000, 1_000, exact=False), cfg)
