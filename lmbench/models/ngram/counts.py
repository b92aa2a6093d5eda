"""Stage 1: count every n-gram of orders 1..N, each identified by a context id (a trie in arrays).

An order-n n-gram is keyed by (id of its first n-1 tokens among order n-1 n-grams, last token):
key = prefix_id * R + token with R = |V| + 1 (<s> included). Keys stay far below 2^63 whatever
the order or vocabulary, unlike packing n token ids of 14-16 bits each into one integer. Sorting
the keys of order n sorts its n-grams lexicographically, so ids are stable and lookups are one
`searchsorted` per order.

Only n-grams wholly inside a segment exist (a segment's first token has no left context).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...protocol import Segments
from .unique import unique_inverse_counts


@dataclass
class Order:
    """The distinct n-grams of one order n, in key order (their ids are positions here)."""

    keys: np.ndarray  # int64 sorted; order 1: the token id itself
    counts: np.ndarray  # int32 raw occurrence counts
    prefix: np.ndarray  # int32 id of the first n-1 tokens (order n-1); order 1: zeros
    suffix: np.ndarray  # int32 id of the last n-1 tokens (order n-1); order 1: zeros
    anchored: np.ndarray  # bool: occurs at a segment start (nothing to its left)
    first: np.ndarray  # int32 first token of the n-gram

    def __len__(self) -> int:
        return int(self.keys.size)


@dataclass
class NgramCounts:
    order: int
    vocab_size: int  # predicted vocabulary |V|; token id |V| is <s>
    orders: list[Order]  # orders[n - 1] holds the n-grams of order n

    @property
    def radix(self) -> int:
        return self.vocab_size + 1

    def words(self, n: int) -> np.ndarray:
        """(number of order-n n-grams, n) token ids, oldest first."""
        words = self.orders[0].keys[:, None]
        for m in range(2, n + 1):
            o = self.orders[m - 1]
            words = np.hstack([words[o.prefix], (o.keys % self.radix)[:, None]])
        return words

    def index(self, data: Segments, lookups: list | None = None) -> list[np.ndarray]:
        """For every position of `data` and order n: id of the n-gram ending there, -1 if none.

        `lookups[n - 1]` (a `HashIndex` over order n's keys) replaces binary search when given.
        """
        ids = checked_ids(data.ids, self.vocab_size)
        left = data.tokens_to_the_left()
        found = [ids]
        for n in range(2, self.order + 1):
            prev = np.full(ids.size, -1, dtype=np.int64)
            prev[1:] = found[-1][:-1]
            keys = np.where((left >= n - 1) & (prev >= 0), prev * self.radix + ids, -1)
            if lookups is not None:
                found.append(lookups[n - 1].lookup(keys))
                continue
            table = self.orders[n - 1].keys  # an array, or a `Spill` on disk
            if len(table) == 0:
                found.append(np.full(ids.size, -1, dtype=np.int64))
                continue
            at = np.minimum(table.searchsorted(keys), len(table) - 1)
            found.append(np.where((keys >= 0) & (table[at] == keys), at, -1))
        return found


MAX_ORDER = 10  # beyond this the counts are almost all singletons: a typo, not a model


def check_order(order: int) -> None:
    if not 1 <= order <= MAX_ORDER:
        raise ValueError(f"order must be between 1 and {MAX_ORDER}, got {order}")


def checked_ids(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """`ids` as int64, or a clear error naming the first token id outside the vocabulary."""
    ids = np.asarray(ids).astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() > vocab_size):
        bad = int(ids[(ids < 0) | (ids > vocab_size)][0])
        raise ValueError(f"token id {bad} is outside the vocabulary of {vocab_size} words (+ <s>)")
    return ids


def count_ngrams(data: Segments, order: int, vocab_size: int) -> NgramCounts:
    check_order(order)
    radix = vocab_size + 1
    ids = checked_ids(data.ids, vocab_size)
    left = data.tokens_to_the_left()
    unigram = Order(
        keys=np.arange(radix, dtype=np.int64),
        counts=np.bincount(ids, minlength=radix).astype(np.int32),
        prefix=np.zeros(radix, dtype=np.int32),
        suffix=np.zeros(radix, dtype=np.int32),
        anchored=np.bincount(ids[left == 0], minlength=radix) > 0,
        first=np.arange(radix, dtype=np.int32),
    )
    orders = [unigram]
    current = ids  # id of the (n-1)-gram ending at each position (order 1: the token)
    for n in range(2, order + 1):
        valid = np.flatnonzero(left >= n - 1)
        keys = current[valid - 1].astype(np.int64)
        keys *= radix
        keys += ids[valid]
        uniq, inverse, counts = unique_inverse_counts(keys, len(orders[-1]) * radix)
        del keys
        suffix = np.empty(uniq.size, dtype=np.int32)
        suffix[inverse] = current[valid]
        anchored = np.zeros(uniq.size, dtype=bool)
        anchored[inverse[left[valid] == n - 1]] = True
        prefix = (uniq // radix).astype(np.int32)
        orders.append(
            Order(uniq, counts.astype(np.int32), prefix, suffix, anchored, orders[-1].first[prefix])
        )
        del counts
        current = np.full(ids.size, -1, dtype=np.int32)  # ids fit: fewer n-grams than tokens
        current[valid] = inverse
        del inverse, valid
    return NgramCounts(order, vocab_size, orders)
