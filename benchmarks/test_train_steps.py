"""Micro-benchmarks of neural training on PTB shapes: a few optimizer steps per model.

Through the model interface (`fit` with a token budget), so base and head commits run the same
benchmark code; each round builds a fresh model with the same seed and takes the same steps.
"""

import pytest

from lmbench.models.base import Budget
from lmbench.models.registry import resolve

STEPS = 8
SPECS = ["mlp", "rnn", "lstm", "gru", "transformer"]


@pytest.mark.parametrize("spec", SPECS)
def test_train_steps(benchmark, ptb, spec):
    vocab_size, train, _ = ptb
    resolved = resolve(spec)
    config = resolved.config
    tokens = STEPS * config.batch_size * config.bptt
    data = train.head(4 * tokens)
    benchmark.extra_info["tokens"] = tokens

    def fit():
        model = resolved.build(vocab_size, "cpu", 0)
        return model.fit(data, Budget(tokens=tokens))

    report = benchmark.pedantic(fit, rounds=3, warmup_rounds=1)
    assert report.train_tokens == tokens
