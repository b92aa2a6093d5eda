"""A vectorised open-addressing hash index: int64 key -> its position in a sorted key array.

Scoring looks up about one n-gram per order per token. Binary search (`searchsorted`) costs
~20 dependent, cache-missing reads per lookup on a PTB 5-gram table; linear probing at load
factor <= 0.5 costs 1-3. Both insertion and lookup run as whole-array rounds: each round
handles every key still probing, so there is no Python loop per key. A decoder's query probes
one key at a time: `probe_tables` gives it the same tables as memoryviews (a Python int per
read, several times cheaper than indexing a numpy array for a scalar) to run the same probe
sequence inline.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing multiplier
HASH_MULTIPLIER, HASH_MASK = int(_GOLDEN), (1 << 64) - 1  # the same hash on Python ints
EMPTY = np.int64(-1)


class HashIndex:
    def __init__(self, keys: np.ndarray):
        """`keys`: distinct non-negative int64; `lookup` returns their positions in this array."""
        keys = np.asarray(keys, dtype=np.int64)
        self.bits = max(4, int(np.ceil(np.log2(max(2 * keys.size, 1)))))
        size = 1 << self.bits
        self.mask = size - 1
        self.slot_keys = np.full(size, EMPTY, dtype=np.int64)
        self.slot_values = np.zeros(size, dtype=np.int32)
        pending = np.arange(keys.size, dtype=np.int64)
        slots = self._home(keys)
        while pending.size:
            s = slots[pending]
            free = self.slot_keys[s] == EMPTY
            # several pending keys may race for one free slot: one write lands, the rest retry
            self.slot_keys[s[free]] = keys[pending[free]]
            won = self.slot_keys[s] == keys[pending]
            self.slot_values[s[won]] = pending[won]
            pending, s = pending[~won], s[~won]
            slots[pending] = (s + 1) & self.mask  # the slot is taken now: probe the next one
        self._views = None

    def probe_tables(self) -> tuple:
        """(slot keys, slot values, shift, mask) as memoryviews and ints, for a caller that runs
        the probe inline (a decoder's query, several lookups per call, where a method call per
        lookup would be most of the cost): key's home slot is
        ((key * HASH_MULTIPLIER) & HASH_MASK) >> shift, then linear probing to the key or an
        empty slot (-1), as `lookup` does."""
        if self._views is None:
            self._views = (
                memoryview(self.slot_keys),
                memoryview(self.slot_values),
                64 - self.bits,
                self.mask,
            )
        return self._views

    def _home(self, keys: np.ndarray) -> np.ndarray:
        hashed = keys.astype(np.uint64) * _GOLDEN
        return (hashed >> np.uint64(64 - self.bits)).astype(np.int64)

    def lookup(self, query: np.ndarray) -> np.ndarray:
        """Position of each query key, -1 where absent (negative queries are always absent)."""
        query = np.asarray(query, dtype=np.int64)
        result = np.full(query.size, -1, dtype=np.int64)
        active = np.flatnonzero(query >= 0)
        slots = self._home(query[active])
        while active.size:
            found = self.slot_keys[slots]
            hit = found == query[active]
            result[active[hit]] = self.slot_values[slots[hit]]
            going = ~hit & (found != EMPTY)
            active = active[going]
            slots = (slots[going] + 1) & self.mask
        return result

    @property
    def nbytes(self) -> int:
        return int(self.slot_keys.nbytes + self.slot_values.nbytes)
