"""Stage 4 and the scorer: interpolated probabilities and backoff weights, then batched lookups.

After interpolation the model is a backoff table, exactly what an ARPA file holds:
    log p(w | h) = log P(longest n-gram of (h, w) in the model) + sum of log b(contexts skipped)
so scoring is one hash lookup per order over the whole text, no Python loop per token.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ...errors import UsageError
from ...protocol import Segments
from ...spill import MemoryCap, fixed_mmap_threshold, parse_size, physical_memory
from ..base import Budget, FitReport, LanguageModel
from .counts import NgramCounts, check_order, count_ngrams
from .lookup import HASH_MASK, HASH_MULTIPLIER, HashIndex
from .prune import compact, keep_masks, parse_thresholds
from .smoothing import Discounted, weights_from_discounts

# per token and order: the in-memory estimate's peak above what was resident before it, with
# headroom over the measured 26 (kn5 to ARPA: WikiText-2's 2.1 M tokens, 25.5; 10 M sampled
# tokens, 26: 1,382 MB at the peak)
IN_MEMORY_BYTES_PER_TOKEN = 40
DEFAULT_MEMORY_SHARE = 0.8  # no memory= given: 80% of physical memory, as lmplz's -S default


@dataclass(frozen=True)
class NgramConfig:
    order: int = 5  # N: condition on the previous N - 1 tokens
    discount_fallback: bool = False  # KN only: lmplz's 0.5/1/1.5 when a discount is undefined
    prune: str = ""  # raw-count thresholds per order as lmplz --prune, e.g. "0 0 1"; "" keeps all
    # a cap on estimation memory as lmplz -S (2G, 500M): the model is estimated in memory when
    # its estimate fits, through columns on disk otherwise; "" caps at 80% of physical memory
    memory: str = ""

    HASH_OMITS_DEFAULT: ClassVar[dict] = {"memory": ""}

    def __post_init__(self):
        check_order(self.order)
        parse_thresholds(self.prune, self.order)  # fail at --set time, not mid-run
        if self.memory:
            parse_size(self.memory)

    def memory_cap(self) -> int:
        if self.memory:
            return parse_size(self.memory)
        return int(DEFAULT_MEMORY_SHARE * physical_memory())

    def in_memory_estimate(self, tokens: int) -> int:
        return IN_MEMORY_BYTES_PER_TOKEN * self.order * tokens


@dataclass
class BackoffTables:
    counts: NgramCounts  # keys and trie links (the counts themselves are not needed to score)
    log_prob: list[np.ndarray]  # natural log, per order over its n-gram ids; <s>: -inf
    log_backoff: list[np.ndarray]  # natural log, per order; 0 where the n-gram is never a context
    notes: dict = field(default_factory=dict)
    spill: object = None  # `external.Columns` when the columns are on disk (a capped estimate)
    _lookups: list | None = None

    @property
    def lookups(self) -> list | None:
        """Per order: a HashIndex over its keys (order 1: None, ids are tokens). Built on first
        use: exporting ARPA needs none, scoring pays for it once. None for columns on disk:
        their lookups are passes over the sorted keys (`Spill.searchsorted`)."""
        if self.spill is not None:
            return None
        if self._lookups is None:
            self._lookups = [None] + [HashIndex(o.keys) for o in self.counts.orders[1:]]
        return self._lookups


def interpolate(counts: NgramCounts, weights) -> BackoffTables:
    """p_n = u_n + gamma(context) p_{n-1}(suffix), order by order; weights are consumed (freed)."""
    vocab = counts.vocab_size
    prob = weights.u[0] + weights.gamma[0][0] / vocab  # the floor: uniform over |V| (<s> excluded)
    prob[vocab] = 0.0
    log_prob, log_backoff = [], []
    with np.errstate(divide="ignore"):
        for n in range(1, counts.order + 1):
            if n > 1:
                o, below, gamma = counts.orders[n - 1], prob, weights.gamma[n - 1]
                prob = weights.u[n - 1] + gamma[o.prefix] * below[o.suffix]
                log_prob.append(np.log(below, out=below))
                # order n-1's gammas are its backoff weights (1 where it is never a context)
                log_backoff.append(np.log(np.nan_to_num(gamma, nan=1.0, copy=False), out=gamma))
                weights.gamma[n - 1] = None
            weights.u[n - 1] = None
        log_prob.append(np.log(prob, out=prob))
    return BackoffTables(counts, log_prob, log_backoff, weights.notes)


def score(tables: BackoffTables, data: Segments) -> np.ndarray:
    """Natural-log probability of every predicted token of `data`."""
    found = tables.counts.index(data, tables.lookups)
    positions = data.predicted_positions()
    result = np.zeros(positions.size)
    matched = np.zeros(positions.size, dtype=bool)
    for n in range(tables.counts.order, 0, -1):
        ids = found[n - 1][positions]
        hit = (ids >= 0) & ~matched
        result[hit] += tables.log_prob[n - 1][ids[hit]]
        if n >= 2:  # no order-n match: back off through the order-(n-1) context, if it exists
            context = found[n - 2][positions - 1]
            skip = ~matched & ~hit & (context >= 0)
            result[skip] += tables.log_backoff[n - 2][context[skip]]
        matched |= hit
    return result


class InterpolatedNgram(LanguageModel):
    """A count model estimated by `estimate` (a smoothing method), scored as a backoff table."""

    family = "ngram"
    method: ClassVar[str] = ""  # the smoother's name in `external.estimate_capped`

    @staticmethod
    def estimate(counts: NgramCounts, config) -> Discounted:  # pragma: no cover - abstract
        raise NotImplementedError

    _query_views = None  # memoryviews of the tables for `query`, made on its first call

    def fit(self, train: Segments, budget: Budget, on_eval=None) -> FitReport:
        train, ended_by = budget.count_slice(train)
        self._query_views = None
        cap = self.config.memory_cap()
        fixed_mmap_threshold()  # freed arrays go back to the system: the peak is what is live
        if self.config.in_memory_estimate(train.ids.size) > cap:
            self.tables = self._estimate_capped(train, MemoryCap(cap))
        else:
            self.tables = self._estimate_in_memory(train)
        self.tables.notes["estimation"] = {
            "memory_cap_bytes": cap,
            "on_disk": self.tables.spill is not None,
        }
        return FitReport(train_tokens=train.n_predicted, ended_by=ended_by, notes=self.tables.notes)

    def _estimate_capped(self, train: Segments, cap: MemoryCap) -> BackoffTables:
        from .external import Columns, count_ngrams_capped, estimate_capped

        # the folder lives as long as the model: its columns are the model
        self._spill_folder = tempfile.TemporaryDirectory(prefix="lmbench-ngram-")
        columns = Columns(self._spill_folder.name, cap)
        counts = count_ngrams_capped(train, self.config.order, self.vocab_size, columns)
        thresholds = parse_thresholds(self.config.prune, self.config.order)
        return estimate_capped(
            counts, self.method, self.config.discount_fallback, thresholds, columns
        )

    def _estimate_in_memory(self, train: Segments) -> BackoffTables:
        counts = count_ngrams(train, self.config.order, self.vocab_size)
        plan = self.estimate(counts, self.config)
        thresholds = parse_thresholds(self.config.prune, self.config.order)
        keep = keep_masks(counts, thresholds) if thresholds else None
        for o in counts.orders:  # from here on, keys and links only
            o.counts = o.anchored = o.first = None
        weights = weights_from_discounts(counts, plan, keep)
        if keep is not None:
            plan.notes["ngrams_before_pruning"] = [len(o) for o in counts.orders]
            compact(counts, weights, keep)
        plan.notes["ngrams"] = [len(o) for o in counts.orders]
        return interpolate(counts, weights)

    def log_prob(self, data: Segments) -> np.ndarray:
        return score(self.tables, data)

    def context_size(self) -> int:
        return self.config.order - 1

    def query_unavailable(self) -> str | None:
        if self.tables.spill is None:
            return None
        return (
            "this n-gram model was estimated on disk (its in-memory estimate exceeded "
            f"memory={self.config.memory or 'the default cap'}): per-query decoding needs the "
            "in-memory tables; rerun with a larger --set memory=SIZE, or score in bulk"
        )

    def query_start(self, first: int) -> tuple[int, ...]:
        # state: ids of the n-grams ending at the last token, orders 1 .. N - 1
        return (first,)[: self.config.order - 1]

    def query(self, state: tuple[int, ...], word: int) -> tuple[float, tuple[int, ...]]:
        """KenLM's query: extend the context's n-grams by `word` from order 2 up until one is
        missing (the surviving set is closed under suffixes, so no longer one exists), take the
        longest one's probability and the backoffs of the longer contexts it skipped."""
        if self._query_views is None:
            t = self.tables
            if self.query_unavailable():
                raise UsageError(self.query_unavailable())
            self._query_views = (
                [memoryview(p) for p in t.log_prob],
                [memoryview(b) for b in t.log_backoff],
                [None] + [lookup.probe_tables() for lookup in t.lookups[1:]],
                t.counts.radix,
            )
        log_prob, log_backoff, probes, radix = self._query_views
        ids = [word]
        for context in state:  # the context's n-gram of each order extended by `word`
            # HashIndex.lookup's probe for one key, inlined (`probe_tables`): a method call per
            # order would be most of a query's cost
            slot_keys, slot_values, shift, mask = probes[len(ids)]
            key = context * radix + word
            slot = ((key * HASH_MULTIPLIER) & HASH_MASK) >> shift
            found = slot_keys[slot]
            while found != key and found != -1:
                slot = (slot + 1) & mask
                found = slot_keys[slot]
            if found == -1:
                break
            ids.append(slot_values[slot])
        best = len(ids)
        logp = 0.0  # summed in `score`'s order (longest context's backoff first): the same bits
        for k in range(len(state), best - 1, -1):
            logp += log_backoff[k - 1][state[k - 1]]
        logp += log_prob[best - 1][ids[-1]]
        return logp, tuple(ids[: self.config.order - 1])

    def export_arpa(self, path, itos: tuple[str, ...]):
        from .arpa import write_arpa

        return write_arpa(self.tables, itos, path)

    def num_params(self) -> int:
        return int(
            sum(p.size for p in self.tables.log_prob) + sum(b.size for b in self.tables.log_backoff)
        )

    def index_bytes(self) -> int:
        """Bytes of the hash indexes scoring builds over the keys (beside `size_bytes`)."""
        lookups = self.tables.lookups or []
        return int(sum(i.slot_keys.nbytes + i.slot_values.nbytes for i in lookups if i))

    def size_bytes(self) -> int:
        keys = sum(
            o.keys.nbytes + o.prefix.nbytes + o.suffix.nbytes for o in self.tables.counts.orders
        )
        return int(
            keys
            + sum(p.nbytes for p in self.tables.log_prob)
            + sum(b.nbytes for b in self.tables.log_backoff)
        )
