"""Additive (add-k) smoothing: P(w | h) = (c(h w) + k) / (c(h) + k |V|).

`add1-2` is the Laplace bigram, `add1-3` the Laplace trigram, `unigram` is add-k of order 1.
It shows why smoothing mattered: k|V| pseudo-counts swamp the evidence of rare histories.
Near a segment start the history is what the segment holds (as `<s> w` in KenLM).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...protocol import Segments
from ..base import Budget, FitReport, LanguageModel
from .counts import check_order, count_ngrams
from .lookup import HashIndex


@dataclass(frozen=True)
class AdditiveConfig:
    order: int = 2  # N: the history is the previous N - 1 tokens
    k: float = 1.0  # pseudo-count added to every (history, word) pair; 1 = Laplace

    def __post_init__(self):
        check_order(self.order)
        if not self.k > 0:
            raise ValueError(
                f"k must be > 0 (k = 0 gives unseen words zero probability), got {self.k}"
            )


class AdditiveNgram(LanguageModel):
    family = "ngram"

    def fit(self, train: Segments, budget: Budget, on_eval=None) -> FitReport:
        train, ended_by = budget.count_slice(train)
        self.counts = count_ngrams(train, self.config.order, self.vocab_size)
        orders = self.counts.orders
        # joint[n-1]: c(h w) per order-n n-gram; history[n-1]: c(h) per order-(n-1) n-gram
        self.joint = [np.bincount(train.targets(), minlength=self.vocab_size + 1)] + [
            o.counts for o in orders[1:]
        ]
        self.history = [np.array([train.n_predicted])] + [
            np.bincount(o.prefix, weights=o.counts, minlength=len(orders[n]))
            for n, o in enumerate(orders[1:])
        ]
        self.lookups = [None] + [HashIndex(o.keys) for o in orders[1:]]
        return FitReport(train_tokens=train.n_predicted, ended_by=ended_by)

    def log_prob(self, data: Segments) -> np.ndarray:
        found = self.counts.index(data, self.lookups)
        positions = data.predicted_positions()
        left = positions - data.segment_start_of_each_position()[positions]
        use = np.minimum(left + 1, self.config.order)  # the order each token is predicted at
        joint = np.zeros(positions.size)
        history = np.zeros(positions.size)
        for n in range(1, self.config.order + 1):
            at = np.flatnonzero(use == n)
            ngram = found[n - 1][positions[at]]
            joint[at] = _gather(self.joint[n - 1], ngram)
            if n == 1:
                history[at] = self.history[0][0]
            else:
                h = found[n - 2][positions[at] - 1]
                history[at] = _gather(self.history[n - 1], h)
        k, v = self.config.k, self.vocab_size
        return np.log(joint + k) - np.log(history + k * v)

    def context_size(self) -> int:
        return self.config.order - 1

    def num_params(self) -> int:
        return int(sum(j.size for j in self.joint) + sum(h.size for h in self.history))

    def index_bytes(self) -> int:
        """Bytes of the hash indexes scoring uses (beside `size_bytes`, as for Kneser-Ney)."""
        return int(sum(lookup.nbytes for lookup in self.lookups[1:]))

    def size_bytes(self) -> int:
        tables = sum(o.keys.nbytes + o.prefix.nbytes + o.suffix.nbytes for o in self.counts.orders)
        counts = sum(j.nbytes for j in self.joint) + sum(h.nbytes for h in self.history)
        return int(tables + counts)


def _gather(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """values[ids], 0 where an id is -1 (an n-gram not in the table; the table may be empty)."""
    if values.size == 0:
        return np.zeros(ids.size)
    return np.where(ids >= 0, values[np.maximum(ids, 0)], 0)
