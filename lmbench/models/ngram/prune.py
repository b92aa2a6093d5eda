"""Count pruning as lmplz's `--prune`: drop n-grams whose raw count is <= a per-order threshold.

Discounts are estimated before pruning (from every n-gram); a pruned n-gram's mass goes to its
context's interpolation weight, so distributions still sum to 1. Thresholds must not decrease
with the order, which keeps the surviving set closed under prefixes and suffixes; unigrams are
never pruned. This is the size/quality trade-off deployments made (Chelba et al. 2013).
"""

from __future__ import annotations

import numpy as np

from .counts import NgramCounts
from .smoothing import Weights


def parse_thresholds(text: str, order: int) -> tuple[int, ...] | None:
    """'0 0 1' -> (0, 0, 1, 1, 1) for order 5 (the last value repeats); '' -> None."""
    fields = text.replace(",", " ").split()
    if not fields:
        return None
    try:
        values = [int(f) for f in fields]
    except ValueError:
        raise ValueError(
            f"prune={text!r}: give whole-number count thresholds per order, e.g. prune='0 0 1'"
        ) from None
    if values[0] != 0:
        raise ValueError(
            f"prune={text!r}: unigrams cannot be pruned, the first threshold must be 0"
        )
    if any(b < a for a, b in zip(values, values[1:])) or min(values) < 0:
        raise ValueError(
            f"prune={text!r}: thresholds must be >= 0 and must not decrease with the order"
        )
    values += [values[-1]] * (order - len(values))
    return tuple(values[:order])


def keep_masks(counts: NgramCounts, thresholds: tuple[int, ...]) -> list[np.ndarray]:
    return [
        np.ones(len(o), dtype=bool) if n == 0 else o.counts > thresholds[n]
        for n, o in enumerate(counts.orders)
    ]


def compact(counts: NgramCounts, weights: Weights, keep: list[np.ndarray]) -> None:
    """Remove pruned n-grams in place, renumbering ids and the links between orders."""
    new_ids = [np.cumsum(k) - 1 for k in keep]
    for n in range(1, counts.order):  # orders[n] holds order n + 1; unigram ids are token ids
        o, k = counts.orders[n], keep[n]
        words = o.keys[k] % counts.radix
        o.prefix = new_ids[n - 1][o.prefix[k]].astype(np.int32)
        o.suffix = new_ids[n - 1][o.suffix[k]].astype(np.int32)
        o.keys = o.prefix.astype(np.int64) * counts.radix + words  # still sorted: ids keep order
        for name in ("counts", "anchored", "first"):
            if getattr(o, name) is not None:
                setattr(o, name, getattr(o, name)[k])
        weights.u[n] = weights.u[n][k]
        if n + 1 < len(weights.gamma):  # gamma[i] is over order-i ids (their weight as contexts)
            weights.gamma[n + 1] = weights.gamma[n + 1][k]
