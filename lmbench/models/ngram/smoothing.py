"""Stages 2-3: effective counts and discounts per smoothing method -> interpolation weights.

Every interpolated smoother here has the same shape. With a(g) the effective count of n-gram
g = (h, w), S(h) = sum of a(h .), and d(g) the mass taken from g:

    u(w | h)  = (a(g) - d(g)) / S(h)          gamma(h) = sum of d(h .) / S(h)
    p(w | h)  = u(w | h) + gamma(h) p(w | h minus its oldest word),   p(w | empty) floor: 1/|V|

They differ only in a and d:
- modified Kneser-Ney (Chen & Goodman 1998, as KenLM's lmplz): a = raw counts at the highest
  order, continuation counts N1+(. g) below it, raw counts for n-grams starting with <s>;
  d = D1, D2 or D3+ by a, estimated per order from counts of counts.
- Witten-Bell: a = raw counts, d = a T(h) / (S(h) + T(h)), T(h) distinct words after h.
- absolute discounting: a = raw counts, d = min(a, D), D = n1 / (n1 + 2 n2) per order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import DataError
from .counts import NgramCounts

FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # lmplz --discount_fallback


class DiscountError(DataError, ValueError):
    """The data has no modified-KN estimate (a discount out of range): lmplz refuses it too."""


@dataclass
class Discounted:
    """What a smoother decides: effective counts a and the mass d taken from each n-gram."""

    a: list[np.ndarray]
    d: list[np.ndarray]
    notes: dict


@dataclass
class Weights:
    """u per order (over that order's n-gram ids) and gamma per context order (gamma[0]: empty)."""

    u: list[np.ndarray]
    gamma: list[np.ndarray]  # gamma[n] over order-n ids; NaN where the n-gram is never a context
    notes: dict


def raw_counts(counts: NgramCounts) -> list[np.ndarray]:
    return [o.counts.astype(np.float64) for o in counts.orders]


def continuation_counts(counts: NgramCounts) -> list[np.ndarray]:
    """Adjusted counts as lmplz: raw at the top order and for n-grams starting with <s>."""
    bos = counts.vocab_size
    top = counts.order
    adjusted = [None] * top
    adjusted[top - 1] = counts.orders[top - 1].counts.astype(np.float64)
    for n in range(top - 1, 0, -1):
        o = counts.orders[n - 1]
        left = np.bincount(counts.orders[n].suffix, minlength=len(o)) + o.anchored
        adjusted[n - 1] = np.where(o.first == bos, o.counts, left).astype(np.float64)
    return adjusted


def _without_bos(a: list[np.ndarray], vocab_size: int) -> list[np.ndarray]:
    """<s> is context only: it takes no unigram probability mass."""
    a = list(a)
    a[0] = a[0].copy()
    a[0][vocab_size] = 0.0
    return a


def counts_of_counts(a: np.ndarray, upto: int = 4) -> list[int]:
    """How many n-grams have (effective) count 1, 2, ..., `upto`."""
    return [int(np.count_nonzero(a == k)) for k in range(1, upto + 1)]


def modified_kn_discounts(
    t: list[int], order: int, fallback: bool
) -> tuple[tuple[float, float, float], bool]:
    """D1, D2, D3+ from the counts of adjusted counts 1..4 (`t`), and whether they fell back."""
    try:
        if min(t) == 0:
            raise DiscountError(
                f"counts of adjusted counts 1..4 are {t}; a zero leaves a discount undefined"
            )
        y = t[0] / (t[0] + 2 * t[1])
        d = tuple(k - (k + 1) * y * t[k] / t[k - 1] for k in (1, 2, 3))
        for k, value in enumerate(d, 1):
            if not 0.0 <= value <= k:
                raise DiscountError(f"discount D{k} = {value:.4g} is out of range [0, {k}]")
        return d, False
    except DiscountError as exc:
        if fallback:
            return FALLBACK_DISCOUNTS, True
        raise DiscountError(
            f"{order}-gram modified Kneser-Ney: {exc}. This happens on small or artificial data; "
            f"rerun with --set discount_fallback=true to use lmplz's fallback discounts "
            f"{' '.join(map(str, FALLBACK_DISCOUNTS))}"
        ) from None


def kn_discount(a: np.ndarray, values: tuple[float, float, float]) -> np.ndarray:
    """The mass modified KN takes from each n-gram: D1, D2 or D3+ by its adjusted count."""
    return np.array([0.0, *values])[np.minimum(a, 3).astype(np.int64)]


def absolute_discount(n1: int, n2: int) -> float:
    return n1 / (n1 + 2 * n2) if n1 + n2 > 0 else 0.5


def witten_bell_discount(a: np.ndarray, group: np.ndarray) -> np.ndarray:
    """d = a T(h) / (S(h) + T(h)) with `group` the context of each n-gram (all of a context's
    n-grams must be in `a`)."""
    total = np.bincount(group, weights=a)
    types = np.bincount(group, weights=(a > 0).astype(np.float64))
    with np.errstate(invalid="ignore"):  # contexts with no extension: never looked up
        share = types / (total + types)
    return a * share[group]


def interpolation_weights(
    a: np.ndarray, d: np.ndarray, group: np.ndarray, contexts: int
) -> tuple[np.ndarray, np.ndarray]:
    """u over the n-grams and gamma over contexts 0..contexts-1 (`group`: each n-gram's context;
    all of a context's n-grams must be in `a`, in order, for the sums to be the same bits)."""
    total = np.bincount(group, weights=a, minlength=contexts)
    taken = np.bincount(group, weights=d, minlength=contexts)
    with np.errstate(invalid="ignore", divide="ignore"):
        u = np.where(a > d, (a - d) / total[group], 0.0)
        gamma = np.where(total > 0, taken / total, np.nan)
    return u, gamma


def weights_from_discounts(
    counts: NgramCounts, plan: Discounted, keep: list | None = None
) -> Weights:
    """u and gamma per order. A pruned n-gram (keep False) gives its whole count to its context's
    gamma, as lmplz does, so every distribution still sums to 1. The plan's a and d are consumed
    (freed order by order): they and the weights are never all held at once."""
    a, d = plan.a, plan.d
    plan.a = plan.d = None
    u, gamma = [], [None] * counts.order
    for n in range(1, counts.order + 1):
        o = counts.orders[n - 1]
        if n == 1:
            group, contexts = np.zeros(len(o), dtype=np.int64), 1
        else:
            group, contexts = o.prefix, len(counts.orders[n - 2])
        dn = d[n - 1] if keep is None else np.where(keep[n - 1], d[n - 1], a[n - 1])
        un, gamma[n - 1] = interpolation_weights(a[n - 1], dn, group, contexts)
        a[n - 1] = d[n - 1] = dn = None
        u.append(un)
    if not np.isfinite(gamma[0][0]):
        raise ValueError("empty training data: no token to estimate a unigram distribution from")
    return Weights(u, gamma, plan.notes)


def kneser_ney(counts: NgramCounts, fallback: bool) -> Discounted:
    a = _without_bos(continuation_counts(counts), counts.vocab_size)
    d, discounts, fell_back = [], {}, []
    for n in range(1, counts.order + 1):
        values, used = modified_kn_discounts(counts_of_counts(a[n - 1]), n, fallback)
        discounts[n] = list(values)
        if used:
            fell_back.append(n)
        d.append(kn_discount(a[n - 1], values))
    return Discounted(a, d, {"discounts": discounts, "discount_fallback_orders": fell_back})


def witten_bell(counts: NgramCounts) -> Discounted:
    a = _without_bos(raw_counts(counts), counts.vocab_size)
    d = []
    for n in range(1, counts.order + 1):
        o = counts.orders[n - 1]
        group = np.zeros(len(o), dtype=np.int64) if n == 1 else o.prefix
        d.append(witten_bell_discount(a[n - 1], group))
    return Discounted(a, d, {})


def absolute(counts: NgramCounts) -> Discounted:
    a = _without_bos(raw_counts(counts), counts.vocab_size)
    d, discounts = [], {}
    for n in range(1, counts.order + 1):
        value = absolute_discount(*counts_of_counts(a[n - 1], upto=2))
        discounts[n] = value
        d.append(np.minimum(a[n - 1], value))
    return Discounted(a, d, {"discounts": discounts})
