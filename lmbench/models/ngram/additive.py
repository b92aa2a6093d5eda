"""Additive (add-k) smoothing: P(w | h) = (c(h w) + k) / (c(h) + k |V|).

`add1-2` is the Laplace bigram, `add1-3` the Laplace trigram, `unigram` is add-k of order 1.
It shows why smoothing mattered: k|V| pseudo-counts swamp the evidence of rare histories.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...protocol import Segments
from ..base import Budget, FitReport, LanguageModel
from .keys import CountTable, check_fits, history_key, ngram_keys, radix


@dataclass(frozen=True)
class AdditiveConfig:
    order: int = 2  # N: the history is the previous N - 1 tokens
    k: float = 1.0  # pseudo-count added to every (history, word) pair; 1 = Laplace

    def __post_init__(self):
        if self.order < 1:
            raise ValueError(f"order must be >= 1, got {self.order}")
        if not self.k > 0:
            raise ValueError(
                f"k must be > 0 (k = 0 gives unseen words zero probability), got {self.k}"
            )


class AdditiveNgram(LanguageModel):
    family = "ngram"

    def fit(self, train: Segments, budget: Budget, on_eval=None) -> FitReport:
        check_fits(self.vocab_size, self.config.order)
        ended_by = "data"
        if budget.tokens is not None and budget.tokens < train.n_predicted:
            train, ended_by = train.head(budget.tokens), "tokens"
        keys = ngram_keys(train, self.config.order, self.vocab_size)
        self.ngrams = CountTable(keys)
        self.histories = CountTable(keys // radix(self.vocab_size))
        return FitReport(train_tokens=train.n_predicted, ended_by=ended_by)

    def _log_prob_keys(self, keys: np.ndarray) -> np.ndarray:
        k, v = self.config.k, self.vocab_size
        joint = self.ngrams.lookup(keys)
        hist = self.histories.lookup(keys // radix(v))
        return np.log(joint + k) - np.log(hist + k * v)

    def log_prob(self, data: Segments) -> np.ndarray:
        return self._log_prob_keys(ngram_keys(data, self.config.order, self.vocab_size))

    def next_log_probs(self, context: np.ndarray) -> np.ndarray:
        h = history_key(context, self.config.order, self.vocab_size)
        return self._log_prob_keys(
            h * radix(self.vocab_size) + np.arange(self.vocab_size, dtype=np.int64)
        )

    def num_params(self) -> int:
        return len(self.ngrams) + len(self.histories)

    def size_bytes(self) -> int:
        return self.ngrams.nbytes + self.histories.nbytes
