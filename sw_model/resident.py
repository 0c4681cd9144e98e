"""Resident training's sample order (docs/ARITHMETIC.md, "Resident training: the sample order").

A board with ``resident_samples`` holds the training set and draws each epoch's order itself
(hw/host_link/sample_shuffler.py); this is the same rule, for the golden model and the host.
"""

import numpy as np

from contract.config import ORDER_DRAW_BITS as DRAW_BITS
from sw_model.lfsr import chunks

__all__ = ["DRAW_BITS", "epoch_order", "epoch_batches"]


def epoch_order(n, seed, lfsr_width=31):
    """The order in which ``TRAIN_EPOCH(n, B, seed)`` visits stored samples ``0 .. n-1``: a
    forward Fisher-Yates shuffle of the identity, ``j = i + (u[i] * (n - i) >> 16)``."""
    n = int(n)
    if n < 1:
        raise ValueError(f"an epoch visits at least one sample, not {n}")
    if n > 1 << DRAW_BITS:
        raise ValueError(f"an epoch visits at most {1 << DRAW_BITS} samples, not {n}")
    draws = chunks(lfsr_width, seed or 1, DRAW_BITS, n).astype(np.int64)
    remaining = n - np.arange(n, dtype=np.int64)
    picks = np.arange(n, dtype=np.int64) + ((draws * remaining) >> DRAW_BITS)
    # The swaps depend on each other (a later pick may land on an earlier swap's target), so
    # they run in order; n is at most 65 536.
    perm = list(range(n))
    for i, j in enumerate(picks.tolist()):
        perm[i], perm[j] = perm[j], perm[i]
    return np.asarray(perm, dtype=np.int64)


def epoch_batches(n, batch, seed, lfsr_width=31):
    """The mini-batches of ``TRAIN_EPOCH(n, batch, seed)``: index arrays into the stored
    samples, ``batch`` each but the last."""
    if not 1 <= batch:
        raise ValueError(f"a mini-batch holds at least one sample, not {batch}")
    order = epoch_order(n, seed, lfsr_width)
    return [order[k:k + batch] for k in range(0, n, batch)]
