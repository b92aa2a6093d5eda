"""Micro-benchmarks of the count models' hot paths on PTB: `pytest benchmarks`.

Run base and head alternately in one job to compare (saved runs from other machines are not
comparable); the suites measure whole runs.
"""

import pytest

from lmbench.models.base import Budget
from lmbench.models.registry import resolve


@pytest.mark.parametrize("spec", ["unigram", "add1-2", "add1-3"])
def test_fit(benchmark, ptb, spec):
    vocab_size, train, _ = ptb
    benchmark.extra_info["tokens"] = train.n_predicted
    benchmark.pedantic(
        lambda: resolve(spec).build(vocab_size).fit(train, Budget()), rounds=5, warmup_rounds=1
    )


@pytest.mark.parametrize("spec", ["unigram", "add1-2", "add1-3"])
def test_score(benchmark, ptb, spec):
    vocab_size, train, test = ptb
    model = resolve(spec).build(vocab_size)
    model.fit(train, Budget())
    benchmark.extra_info["tokens"] = test.n_predicted
    log_probs = benchmark.pedantic(lambda: model.log_prob(test), rounds=10, warmup_rounds=1)
    assert log_probs.shape == (test.n_predicted,)
