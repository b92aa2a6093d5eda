"""N-gram keys: (history, word) packed into one int64 in base R = |V| + 2.

Digits are token ids; id |V| is <s> and |V| + 1 pads a history cut short by a segment start, so
the first tokens of a segment have shorter, distinct histories (as `<s> w` is in KenLM). A key's
history is `key // R`; all keys with one history are contiguous in sorted order.
"""

from __future__ import annotations

import numpy as np

from ...protocol import Segments

INT64_MAX = np.iinfo(np.int64).max


def radix(vocab_size: int) -> int:
    return vocab_size + 2


def check_fits(vocab_size: int, order: int) -> None:
    if radix(vocab_size) ** order > INT64_MAX:
        raise ValueError(
            f"order {order} with |V| = {vocab_size} needs {order} ids of "
            f"{int(np.ceil(np.log2(radix(vocab_size))))} bits, more than one int64 key holds; "
            f"use a lower order for additive smoothing"
        )


def ngram_keys(data: Segments, order: int, vocab_size: int) -> np.ndarray:
    """One key per predicted token: its last `order - 1` context tokens and itself."""
    r = radix(vocab_size)
    pad = r - 1
    positions = data.predicted_positions()
    seg_start = data.segment_start_of_each_position()[positions]
    keys = np.zeros(positions.size, dtype=np.int64)
    for back in range(order - 1, 0, -1):  # oldest context token is the most significant digit
        src = positions - back
        digit = np.where(src >= seg_start, data.ids[np.maximum(src, 0)], pad).astype(np.int64)
        keys = keys * r + digit
    return keys * r + data.ids[positions].astype(np.int64)


def history_key(context: np.ndarray, order: int, vocab_size: int) -> int:
    """The history digits of the token that follows `context` (a single segment's tokens)."""
    r = radix(vocab_size)
    key = 0
    tail = list(context[-(order - 1) :]) if order > 1 else []
    tail = [r - 1] * (order - 1 - len(tail)) + tail
    for token in tail:
        key = key * r + int(token)
    return key


class CountTable:
    """Sorted distinct keys with their counts; lookups are one searchsorted per batch."""

    def __init__(self, keys: np.ndarray):
        self.keys, counts = np.unique(keys, return_counts=True)
        self.counts = counts.astype(np.int64)

    def lookup(self, query: np.ndarray) -> np.ndarray:
        if self.keys.size == 0:
            return np.zeros(query.shape, dtype=np.int64)
        idx = np.searchsorted(self.keys, query)
        idx_clipped = np.minimum(idx, self.keys.size - 1)
        found = self.keys[idx_clipped] == query
        return np.where(found, self.counts[idx_clipped], 0)

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.counts.nbytes)

    def __len__(self) -> int:
        return int(self.keys.size)
