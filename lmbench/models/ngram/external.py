"""Estimation within a memory cap: the in-memory stages as passes over columns on disk.

`count_ngrams`, the smoothers, `weights_from_discounts`, `compact` and `interpolate` hold every
order in memory: about 300 bytes per training token for kn5. Here each order's columns are
`Spill`s and every stage works on chunks whose size the cap sets (`MemoryCap`), the way lmplz
works within `-S`:
- counting: per order, each chunk of positions becomes a sorted run of its distinct n-grams; the
  runs are merged k ways in blocks. Each position's n-gram id, which the next order's keys need,
  comes from its run's map of local to merged ids;
- sums over a context's n-grams (the weights): chunks are cut where the context changes, so each
  context is summed by one `np.bincount` over its n-grams in the order the in-memory path adds
  them, giving the same bits;
- lookups by unsorted ids (continuation counts, the lower order's probability of a suffix):
  `count_ids` and `gather`, one pass over the ids per partition of the table.
The model is the in-memory one to the last bit (tests compare every probability and backoff).
Order 1 (|V| + 1 rows) stays in memory: with the chunk buffers it is the fixed overhead.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ...protocol import Segments
from ...spill import MemoryCap, Spill, count_ids, gather
from .counts import NgramCounts, Order, check_order, checked_ids
from .interpolated import BackoffTables
from .smoothing import (
    absolute_discount,
    counts_of_counts,
    interpolation_weights,
    kn_discount,
    modified_kn_discounts,
    witten_bell_discount,
)
from .unique import unique_inverse_counts

# chunks of positions counted side by side: numpy's sorts and gathers release the GIL
COUNT_WORKERS = min(2, os.cpu_count() or 1)
# bytes held per row in flight, measured from each stage's temporaries (with headroom)
COUNT_BYTES_PER_POSITION = 120  # ids, context, keys, the packed sort and inverse, run columns
MERGE_BYTES_PER_ROW = 140  # a block of each run, concatenated, sorted, summed (131 measured)
COLUMN_BYTES_PER_ROW = 160  # a weights or interpolation chunk: ~8 float64/int64 columns + temps


class Columns:
    """Where one estimation keeps its files, and the chunk size columns use."""

    def __init__(self, folder: Path, cap: MemoryCap):
        self.folder, self.cap = Path(folder), cap
        self.rows = cap.rows(COLUMN_BYTES_PER_ROW)
        self._names = itertools.count(1)  # one next() is atomic: threads may make columns

    def new(self, name: str, dtype, row_shape=()) -> Spill:
        number = next(self._names)
        return Spill(self.folder, f"{number:03d}-{name}", dtype, row_shape, self.rows)

    def of(self, name: str, values: np.ndarray) -> Spill:
        spill = self.new(name, values.dtype, values.shape[1:])
        spill.append(values)
        return spill

    def map(self, name: str, dtype, fn, *columns) -> Spill:
        """A new column, fn(chunk of each column) chunk by chunk (elementwise functions)."""
        out = self.new(name, dtype)
        for start in range(0, len(columns[0]), self.rows):
            out.append(fn(*(c[start : start + self.rows] for c in columns)))
        return out


def id_dtype(positions: int):
    """int32 for the ids and counts of n-grams from fewer than 2^31 positions (half the bytes
    to write, read and sort), int64 beyond."""
    return np.int32 if positions < 2**31 else np.int64


# --- stage 1: counting -----------------------------------------------------------------------


def count_ngrams_capped(
    data: Segments, order: int, vocab_size: int, columns: Columns
) -> NgramCounts:
    """`counts.count_ngrams` within the cap: the same orders, their columns on disk."""
    check_order(order)
    radix = vocab_size + 1
    size = data.ids.size
    id_type = id_dtype(size)  # n-gram ids, counts and links: below the number of positions
    workers = COUNT_WORKERS
    rows = columns.cap.rows(COUNT_BYTES_PER_POSITION * workers)  # `workers` chunks at once
    unigram_counts = np.zeros(radix, dtype=np.int64)
    anchored = np.zeros(radix, dtype=bool)
    for a in range(0, size, rows):
        ids = checked_ids(data.ids[a : a + rows], vocab_size)
        unigram_counts += np.bincount(ids, minlength=radix)
        left = data.tokens_to_the_left(a, a + ids.size)
        anchored |= np.bincount(ids[left == 0], minlength=radix) > 0
    orders = [
        Order(
            keys=np.arange(radix, dtype=np.int64),
            counts=unigram_counts.astype(np.int32),
            prefix=np.zeros(radix, dtype=np.int32),
            suffix=np.zeros(radix, dtype=np.int32),
            anchored=anchored,
            first=np.arange(radix, dtype=np.int32),
        )
    ]

    def tokens(a, b):
        return data.ids[max(a, 0) : b].astype(np.int64)

    current = tokens  # (a, b) -> id of the (n-1)-gram ending at positions a..b-1 (-1: none)
    for n in range(2, order + 1):
        # each position's index in its run: only the next order's keys need it
        runs, local = [], columns.new(f"local{n}", id_type) if n < order else None
        bound = len(orders[-1]) * radix  # keys are below it: a prefix id times the radix

        def chunk(a, n=n, bound=bound, current=current):
            span = (a, min(size, a + rows))
            return _count_chunk(data, span, n, radix, bound, current, columns, id_type)

        starts = range(0, size, rows)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for window in range(0, len(starts), workers):  # no more than `workers` in memory
                for run, position in pool.map(chunk, starts[window : window + workers]):
                    runs.append(run)
                    if local is not None:
                        local.append(position)
        merged, maps = _merge_runs(runs, columns, n, bound, id_type)
        keys, counts, suffix, anchored = merged
        prefix = columns.map(f"prefix{n}", id_type, lambda k: k // radix, keys)
        below = orders[-1].first
        first = columns.map(f"first{n}", np.int32, lambda p, below=below: below[p], prefix)
        orders.append(Order(keys, counts, prefix, suffix, anchored, first))
        if n < order:
            current = _positions_to_ids(local, maps, rows, columns, n, id_type)
    return NgramCounts(order, vocab_size, orders)


def _count_chunk(data: Segments, span, n: int, radix: int, bound: int, current, columns, id_type):
    """Positions a..b-1 (`span`) as a sorted run of their distinct order-n n-grams (keys,
    counts, suffix ids, anchored), and each position's index in the run (-1: no n-gram ends
    there). A function of its own so that its temporaries are freed before the next stage
    allocates; chunks run on threads side by side."""
    a, b = span
    ids, left = data.ids[a:b].astype(np.int64), data.tokens_to_the_left(a, b)
    here = current(a, b)
    before = np.concatenate([[-1], current(a - 1, b - 1)]) if a == 0 else current(a - 1, b - 1)
    valid = np.flatnonzero(left >= n - 1)
    keys = before[valid].astype(np.int64)
    keys *= radix
    keys += ids[valid]
    del before, ids
    uniq, inverse, counts = unique_inverse_counts(keys, bound)
    del keys
    suffix = np.empty(uniq.size, dtype=id_type)
    suffix[inverse] = here[valid]
    starts_here = np.zeros(uniq.size, dtype=bool)
    starts_here[inverse[left[valid] == n - 1]] = True
    run = [
        columns.of(f"run{n}.keys", uniq),
        columns.of(f"run{n}.counts", counts.astype(id_type)),
        columns.of(f"run{n}.suffix", suffix),
        columns.of(f"run{n}.anchored", starts_here),
    ]
    position = np.full(b - a, -1, dtype=id_type)
    position[valid] = inverse
    return run, position


def _merge_runs(runs: list[list[Spill]], columns: Columns, n: int, bound: int, id_type):
    """Merge sorted runs (keys, counts, suffix, anchored) into one order: equal keys sum their
    counts and or their `anchored`. Returns the order's columns and, per run, its map from local
    to merged ids. Blocks are cut in order and merged `COUNT_WORKERS` at a time on threads (the
    sorts and scatters release the GIL); each appends in order, so the result is the same."""
    if len(runs) == 1:  # one run is the order already
        return runs[0], [None]
    out = [columns.new(f"keys{n}", np.int64), columns.new(f"counts{n}", id_type)]
    out += [columns.new(f"suffix{n}", id_type), columns.new(f"anchored{n}", bool)]
    maps = [columns.new(f"map{n}.{r}", id_type) for r in range(len(runs))]
    workers = COUNT_WORKERS
    block = columns.cap.rows(MERGE_BYTES_PER_ROW * len(runs) * workers)  # `workers` in memory

    merged, cuts = 0, _merge_cuts(runs, block)
    with ThreadPoolExecutor(max_workers=workers) as pool:

        def submit(cut):  # (rows taken from each run, the block's merge)
            return cut[1], pool.submit(_merge_block, runs, *cut, bound, id_type)

        # a rolling window: `workers` blocks in flight; the oldest is appended (in order) while
        # the others merge, and its place goes to the next cut
        pending = deque(submit(cut) for cut in itertools.islice(cuts, workers))
        while pending:
            take, future = pending.popleft()
            *merged_columns, inverse = future.result()
            if (cut := next(cuts, None)) is not None:
                pending.append(submit(cut))
            for column, values in zip(out, merged_columns, strict=True):
                column.append(values)
            at = 0
            for r, t in enumerate(take):
                maps[r].append(merged + inverse[at : at + t])
                at += t
            merged += len(merged_columns[0])
            del merged_columns, inverse  # nothing of this block outlives its append
    for run in runs:
        for column in run:
            column.close()
    return out, maps


def _merge_cuts(runs: list[list[Spill]], block: int) -> Iterator[tuple]:
    """The merge's blocks, in order: (each run's first row, rows taken from each run, their
    keys). A block holds every key up to the smallest last key of a run's block that does not
    end its run, so no key is split between blocks."""
    cursor = [0] * len(runs)
    while any(c < len(run[0]) for c, run in zip(cursor, runs)):
        heads = [run[0][c : c + block] for c, run in zip(cursor, runs)]
        bounds = [h[-1] for h, c, run in zip(heads, cursor, runs) if c + h.size < len(run[0])]
        cutoff = min(bounds) if bounds else None
        take = [
            h.size if cutoff is None else int(np.searchsorted(h, cutoff, "right")) for h in heads
        ]
        assert any(take), "the merge's cut took no row"  # the run with the smallest bound ends
        # a part of a head is copied: a view would keep the whole head alive in the window
        yield list(cursor), take, [h if t == h.size else h[:t].copy() for h, t in zip(heads, take)]
        cursor = [c + t for c, t in zip(cursor, take)]


def _merge_block(runs, cursor, take, heads, bound: int, id_type) -> tuple:
    """One block of the merge: its distinct keys with summed counts, suffix and anchored, and
    each taken row's index among them."""
    part = [[col[c : c + t] for col in run[1:]] for c, t, run in zip(cursor, take, runs)]
    uniq, inverse, _ = unique_inverse_counts(np.concatenate(heads), bound)
    counts = np.bincount(inverse, weights=np.concatenate([p[0] for p in part]))
    suffix = np.empty(uniq.size, dtype=id_type)
    suffix[inverse] = np.concatenate([p[1] for p in part])
    starts = np.concatenate([p[2] for p in part]).astype(np.float64)
    anchored = np.bincount(inverse, weights=starts) > 0
    return uniq, counts.astype(id_type), suffix, anchored, inverse


def _positions_to_ids(local: Spill, maps: list, rows: int, columns: Columns, n: int, dtype):
    """Each position's merged order-n id (-1: none), as a function of a position range."""
    ids = columns.new(f"at{n}", dtype)
    for r, (_, position) in enumerate(local.chunks(rows)):
        if maps[r] is not None:
            table = maps[r][:]
            position = np.where(position >= 0, table[np.maximum(position, 0)], -1)
        ids.append(position)
    local.close()

    def current(a, b):
        return ids[max(a, 0) : b]

    return current


# --- stages 2-4: effective counts, discounts, weights, pruning, interpolation -----------------


def effective_counts(counts: NgramCounts, method: str, columns: Columns) -> list:
    """`a` per order: KN's adjusted counts (`continuation_counts`), raw counts otherwise; <s>
    takes no unigram mass. Order 1 is an array, the others are columns."""
    bos, top = counts.vocab_size, counts.order
    a = [None] * top
    for n in range(top, 0, -1):
        o = counts.orders[n - 1]
        if method != "kn" or n == top:
            a[n - 1] = _as_float(o.counts, columns, n)
            continue
        left = count_ids(counts.orders[n].suffix, len(o), columns.cap)
        if n == 1:
            left = left[:]
        a[n - 1] = _where_first_is_bos(o, left, bos, columns, n)
    a[0] = a[0].copy()
    a[0][bos] = 0.0
    return a


def _as_float(values, columns: Columns, n: int):
    if isinstance(values, np.ndarray):
        return values.astype(np.float64)
    return columns.map(f"a{n}", np.float64, lambda c: c.astype(np.float64), values)


def _where_first_is_bos(o: Order, left, bos: int, columns: Columns, n: int):
    def adjusted(first, counts, left, anchored):
        return np.where(first == bos, counts, left + anchored).astype(np.float64)

    if isinstance(left, np.ndarray):
        return adjusted(o.first, o.counts, left, o.anchored)
    return columns.map(f"a{n}", np.float64, adjusted, o.first, o.counts, left, o.anchored)


def discount_rule(method: str, a: list, fallback: bool):
    """(d(n, a chunk, context of each n-gram in the chunk), notes), as the in-memory smoother."""
    if method == "wb":
        return (lambda n, an, group: witten_bell_discount(an, group)), {}
    upto = 4 if method == "kn" else 2
    tallies = []
    for column in a:
        chunks = [column] if isinstance(column, np.ndarray) else (c for _, c in column.chunks())
        tally = np.zeros(upto, dtype=np.int64)
        for chunk in chunks:
            tally += counts_of_counts(chunk, upto)
        tallies.append(tally.tolist())
    if method == "abs":
        values = {n: absolute_discount(*t) for n, t in enumerate(tallies, 1)}
        return (lambda n, an, group: np.minimum(an, values[n])), {"discounts": values}
    found = {n: modified_kn_discounts(t, n, fallback) for n, t in enumerate(tallies, 1)}
    notes = {
        "discounts": {n: list(v) for n, (v, _) in found.items()},
        "discount_fallback_orders": [n for n, (_, used) in found.items() if used],
    }
    return (lambda n, an, group: kn_discount(an, found[n][0])), notes


def context_chunks(prefix: Spill, rows: int) -> Iterator[tuple[int, int]]:
    """(start, stop) chunks of an order cut where its context (sorted `prefix`) changes."""
    start, size = 0, len(prefix)
    while start < size:
        stop = min(size, start + rows)
        while stop < size:
            tail = prefix[stop - 1 : stop + 1]
            if tail[0] != tail[1]:
                break
            block = prefix[stop : stop + rows]  # a context longer than a chunk: take all of it
            stop += int(np.searchsorted(block, tail[0], side="right"))
        yield start, stop
        start = stop


def estimate_capped(
    counts: NgramCounts, method: str, fallback: bool, thresholds, columns: Columns
) -> BackoffTables:
    """Effective counts, discounts, weights, pruning and interpolation within the cap."""
    a = effective_counts(counts, method, columns)
    discount, notes = discount_rule(method, a, fallback)
    keep = None
    if thresholds:
        keep = [None] + [
            columns.map(f"keep{n}", bool, lambda c, t=thresholds[n - 1]: c > t, o.counts)
            for n, o in enumerate(counts.orders[1:], 2)
        ]
    u, gamma = _weights(counts, a, discount, keep, columns)
    for column in a[1:]:
        column.close()
    if keep is not None:
        notes["ngrams_before_pruning"] = [len(o) for o in counts.orders]
        _compact(counts, u, gamma, keep, columns)
    notes["ngrams"] = [len(o) for o in counts.orders]
    for o in counts.orders:  # scoring needs keys and links only
        for name in ("counts", "anchored", "first"):
            column = getattr(o, name)
            if isinstance(column, Spill):
                column.close()
            setattr(o, name, None)
    return _interpolate(counts, u, gamma, notes, columns)


def _weights(counts: NgramCounts, a: list, discount, keep, columns: Columns):
    """`weights_from_discounts` by context-aligned chunks: u per order, gamma per context order."""
    alone = np.zeros(a[0].size, dtype=np.int64)  # order 1: one context, the empty one
    u1, g0 = interpolation_weights(a[0], discount(1, a[0], alone), alone, 1)
    if not np.isfinite(g0[0]):
        raise ValueError("empty training data: no token to estimate a unigram distribution from")
    u, gamma = [u1], [g0]
    for n in range(2, counts.order + 1):
        o = counts.orders[n - 1]
        contexts = len(counts.orders[n - 2])
        un, gn = columns.new(f"u{n}", np.float64), np.full(contexts, np.nan)
        gn = gn if n == 2 else columns.new(f"gamma{n - 1}", np.float64)
        written = 0  # contexts whose gamma is out
        for start, stop in context_chunks(o.prefix, columns.rows):
            weights, context_gamma, lo, hi = _weights_chunk(
                o, a[n - 1], discount, keep, n, start, stop
            )
            un.append(weights)
            _write_gamma(gn, written, lo, context_gamma)
            written = hi
            del weights, context_gamma
        _write_gamma(gn, written, contexts, np.empty(0))
        u.append(un)
        gamma.append(gn)
    return u, gamma


def _weights_chunk(o: Order, a, discount, keep, n: int, start: int, stop: int):
    """u over rows start..stop-1 of order n and gamma over the contexts they cover (lo..hi-1)."""
    prefix, an = o.prefix[start:stop], a[start:stop]
    lo, hi = int(prefix[0]), int(prefix[-1]) + 1
    group = prefix - lo
    del prefix
    dn = discount(n, an, group)
    if keep is not None:
        dn = np.where(keep[n - 1][start:stop], dn, an)
    weights, context_gamma = interpolation_weights(an, dn, group, hi - lo)
    return weights, context_gamma, lo, hi


def _write_gamma(gamma, written: int, lo: int, values: np.ndarray) -> None:
    """Contexts written..lo-1 have no extension (NaN, as the in-memory bincount's zero totals);
    `values` follow from lo."""
    filler = np.full(lo - written, np.nan)
    if isinstance(gamma, np.ndarray):
        gamma[written:lo] = filler
        gamma[lo : lo + values.size] = values
    else:
        gamma.append(np.concatenate([filler, values]))


def _compact(counts: NgramCounts, u: list, gamma: list, keep: list, columns: Columns) -> None:
    """`prune.compact` on columns: drop pruned n-grams, renumber ids and the links to them."""
    radix = counts.radix
    new_ids = np.arange(len(counts.orders[0]))  # unigrams are never pruned
    for n in range(2, counts.order + 1):
        o, k = counts.orders[n - 1], keep[n - 1]
        kept = {name: columns.new(f"{name}{n}'", dt) for name, dt in _KEPT.items()}
        renumbered = columns.new(f"ids{n}'", np.int64)
        total = 0
        for start in range(0, len(o), columns.rows):
            z = slice(start, start + columns.rows)
            mask = k[z]
            prefix = o.prefix[z][mask]
            kept["prefix"].append(new_ids[prefix])
            kept["words"].append(o.keys[z][mask] % radix)
            kept["suffix"].append(o.suffix[z][mask])
            kept["counts"].append(o.counts[z][mask])
            kept["u"].append(u[n - 1][z][mask])
            if n < counts.order:
                kept["gamma"].append(gamma[n][z][mask])
            renumbered.append(np.cumsum(mask) - 1 + total)
            total += int(mask.sum())
        suffix = gather(new_ids, kept["suffix"], columns.new(f"suffix{n}'", np.int64), columns.cap)
        keys = columns.map(
            f"keys{n}'",
            np.int64,
            lambda p, w: p.astype(np.int64) * radix + w,
            kept["prefix"],
            kept["words"],
        )
        for old in (
            o.keys,
            o.prefix,
            o.suffix,
            o.counts,
            u[n - 1],
            k,
            kept["suffix"],
            kept["words"],
        ):
            old.close()
        if n < counts.order:
            gamma[n].close()
            gamma[n] = kept["gamma"]
        else:
            kept["gamma"].close()
        o.keys, o.prefix, o.suffix, o.counts = keys, kept["prefix"], suffix, kept["counts"]
        u[n - 1] = kept["u"]
        new_ids = renumbered


_KEPT = {
    "prefix": np.int64,
    "words": np.int64,
    "suffix": np.int64,
    "counts": np.int64,
    "u": np.float64,
    "gamma": np.float64,
}


def _interpolate(counts: NgramCounts, u: list, gamma: list, notes: dict, columns: Columns):
    """`interpolated.interpolate` on columns: p_n = u_n + gamma(context) p_{n-1}(suffix)."""
    vocab = counts.vocab_size
    prob = u[0] + gamma[0][0] / vocab
    prob[vocab] = 0.0
    log_prob, log_backoff = [], []
    with np.errstate(divide="ignore"):
        for n in range(2, counts.order + 1):
            o, below, context = counts.orders[n - 1], prob, gamma[n - 1]
            seen = gather(below, o.suffix, columns.new(f"below{n}", np.float64), columns.cap)
            prob = columns.new(f"prob{n}", np.float64)
            for start in range(0, len(o), columns.rows):
                z = slice(start, start + columns.rows)
                prefix = o.prefix[z]
                weight = (
                    context[prefix] if isinstance(context, np.ndarray) else context.take(prefix)
                )
                prob.append(u[n - 1][z] + weight * seen[z])
                del prefix, weight  # not held into the next order's gather
            seen.close()
            u[n - 1].close()
            log_prob.append(_log(below, columns, n - 1))
            log_backoff.append(_log(context, columns, n - 1, nan_is_one=True))
        log_prob.append(_log(prob, columns, counts.order))
    return BackoffTables(counts, log_prob, log_backoff, notes, spill=columns)


def _log(values, columns: Columns, n: int, nan_is_one: bool = False):
    def log(v):
        return np.log(np.nan_to_num(v, nan=1.0, copy=False) if nan_is_one else v)

    if isinstance(values, np.ndarray):
        return log(values)
    out = columns.map(f"log{n}", np.float64, log, values)
    values.close()
    return out
