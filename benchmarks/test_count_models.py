"""Micro-benchmarks of the count models' hot paths on PTB: `nox -s microbench`.

Counting, estimating (counts -> interpolated backoff tables) and scoring, separately. Compare
base and head alternately in one job; saved runs from other machines are not comparable.
"""

import pytest

from lmbench.models.base import Budget
from lmbench.models.ngram.counts import count_ngrams
from lmbench.models.ngram.interpolated import interpolate
from lmbench.models.ngram.smoothing import kneser_ney, weights_from_discounts
from lmbench.models.registry import resolve


@pytest.mark.parametrize("order", [3, 5])
def test_count(benchmark, ptb, order):
    vocab_size, train, _ = ptb
    benchmark.extra_info["tokens"] = train.n_predicted
    benchmark.pedantic(lambda: count_ngrams(train, order, vocab_size), rounds=5, warmup_rounds=1)


def test_estimate_kn5(benchmark, ptb):
    vocab_size, train, _ = ptb

    def estimate():
        counts = count_ngrams(train, 5, vocab_size)
        return interpolate(counts, weights_from_discounts(counts, kneser_ney(counts, False)))

    benchmark.pedantic(estimate, rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("spec", ["unigram", "add1-2", "add1-3", "kn3", "kn5"])
def test_fit(benchmark, ptb, spec):
    vocab_size, train, _ = ptb
    benchmark.extra_info["tokens"] = train.n_predicted
    benchmark.pedantic(
        lambda: resolve(spec).build(vocab_size).fit(train, Budget()), rounds=5, warmup_rounds=1
    )


@pytest.mark.parametrize("spec", ["unigram", "add1-2", "add1-3", "kn3", "kn5"])
def test_score(benchmark, ptb, spec):
    vocab_size, train, test = ptb
    model = resolve(spec).build(vocab_size)
    model.fit(train, Budget())
    benchmark.extra_info["tokens"] = test.n_predicted
    log_probs = benchmark.pedantic(lambda: model.log_prob(test), rounds=10, warmup_rounds=1)
    assert log_probs.shape == (test.n_predicted,)
