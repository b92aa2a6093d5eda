"""A unigram cache (Kuhn and De Mori 1990) interpolated with a finished run's probabilities.

p(w | h) = (1 - l) p_model(w | h) + l c(w) / n, where c(w) counts w among the previous n
predicted tokens of the split (n = the cache size, fewer at the split's start). The cache runs
over the whole evaluation stream and is never reset at a sentence or an article, as in the
cache models the RNNLM papers compare with (Mikolov 2012, Table 4.1: KN5 + cache 125.7 on PTB).
It is a distribution over the vocabulary (counts over n), so the mixture is one too. The size is
chosen on valid from `CACHE_SIZES`, the weight by EM on valid; both are then fixed for test.
"""

from __future__ import annotations

import numpy as np

CACHE = "cache"  # the name of the cache component in a MixSpec
CACHE_SIZES = (50, 100, 200, 500, 1000, 2000, 5000)


def cache_log_probs(targets: np.ndarray, size: int) -> np.ndarray:
    """log c(w_i) / n_i for each predicted token w_i: its count among the `size` tokens before it
    (n_i = min(i, size)); NaN at the first token (an empty cache); -inf where w_i is not in it."""
    targets = np.asarray(targets, dtype=np.int64)
    n = targets.size
    order = np.lexsort((np.arange(n), targets))  # by token, then position
    positions = order
    keys = targets[order] * (n + 1) + positions  # ascending
    # the first occurrence of the same token at a position >= i - size
    oldest = np.searchsorted(keys, targets[order] * (n + 1) + np.maximum(positions - size, 0))
    counts = np.empty(n, dtype=np.int64)
    counts[order] = np.arange(n) - oldest
    window = np.minimum(np.arange(n), size)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(counts / window)
    out[0] = np.nan
    return out


def with_cache(model: np.ndarray, cache: np.ndarray, weight: float) -> np.ndarray:
    """The interpolated log-probabilities; the model's alone where the cache is empty."""
    empty = np.isnan(cache)
    with np.errstate(divide="ignore"):
        mixed = np.logaddexp(
            np.log1p(-weight) + model, np.log(weight) + np.where(empty, -np.inf, cache)
        )
    return np.where(empty, model, mixed)


def tune(model_valid: np.ndarray, targets_valid: np.ndarray, sizes=CACHE_SIZES, fit=None):
    """(size, weight, valid log-probabilities) of the best cache on valid: the weight by EM
    (`fit(cache, model)`, the weight of the first) for each size, the size by valid likelihood."""
    best = None
    for size in sizes:
        cache = cache_log_probs(targets_valid, size)
        seen = ~np.isnan(cache)
        weight = fit(cache[seen], model_valid[seen])
        mixed = with_cache(model_valid, cache, weight)
        if best is None or mixed.sum() > best[2].sum():
            best = (size, weight, mixed)
    return best
