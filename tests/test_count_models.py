import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lmbench.errors import UsageError
from lmbench.models.base import Budget
from lmbench.models.registry import resolve

from .conftest import segments


@settings(max_examples=40, deadline=None)
@given(
    lines=st.lists(st.lists(st.integers(1, 6), min_size=0, max_size=8), min_size=1, max_size=6),
    context=st.lists(st.integers(0, 6), max_size=4),
    spec=st.sampled_from(
        ["unigram", "add1-2", "add0.5-3", "add1-4", "kn1", "kn3", "kn5", "wb2", "wb4", "abs3"]
    ),
    mode=st.sampled_from(["stream", "sentence"]),
)
@example(lines=[[]], context=[0], spec="add0.5-3", mode="stream")  # no trigram: an empty table
def test_next_token_distribution_sums_to_one(lines, context, spec, mode):
    vocab_size = 7
    spec, _, prune = spec.partition(" prune=")
    sets = {"discount_fallback": "true"} if spec.startswith("kn") else {}
    if prune:
        sets["prune"] = prune
    model = resolve(spec, sets).build(vocab_size)
    model.fit(segments(lines, mode, vocab_size), Budget())
    start = [vocab_size] if mode == "sentence" else [0]
    logp = model.next_log_probs(np.array(start + context, dtype=np.int32))
    assert logp.shape == (vocab_size,)
    assert np.exp(logp).sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("spec", ["add0.5-3", "kn3", "wb3", "abs4"])
def test_log_prob_agrees_with_next_token_distribution(spec):
    vocab_size = 5
    sets = {"discount_fallback": "true"} if spec.startswith("kn") else {}
    model = resolve(spec, sets).build(vocab_size)
    model.fit(segments([[1, 2, 3], [2, 3, 4], [1, 1]], "stream", vocab_size), Budget())
    data = segments([[1, 2, 4], [3]], "stream", vocab_size)
    scored = model.log_prob(data)
    for i, position in enumerate(data.predicted_positions()):
        expected = model.next_log_probs(data.ids[:position])[data.ids[position]]
        assert scored[i] == pytest.approx(expected, rel=1e-12)


def test_token_budget_trains_on_a_prefix():
    model = resolve("add1-2").build(5)
    report = model.fit(segments([[1, 2], [3, 4], [1]], "stream", 5), Budget(tokens=4))
    assert report.train_tokens == 4 and report.ended_by == "tokens"


def test_high_orders_at_wikitext_vocabulary_size():
    """Six 16-bit ids do not fit one int64; the trie keys do not care."""
    vocab_size = 33_278
    model = resolve("add1-6").build(vocab_size)
    model.fit(segments([[1, 2, 3, 4, 5, 6, 7], [33_277, 2, 3]], "stream", vocab_size), Budget())
    logp = model.next_log_probs(np.array([0, 1, 2, 3, 4, 5], dtype=np.int32))
    assert np.exp(logp).sum() == pytest.approx(1.0, abs=1e-9)
    assert np.argmax(logp) == 6


@pytest.mark.parametrize(
    "spec, sets, message",
    [
        ("add1-0", {}, "order must be between 1 and 10"),
        ("add1-2", {"order": "3"}, "contradicts the model name"),
        ("add1-2", {"k": "0"}, "contradicts"),
        ("unigram", {"k": "0"}, "k must be > 0"),
        ("unigram", {"k": "lots"}, "expected float"),
        ("unigram", {"depth": "2"}, "unknown setting 'depth'"),
        ("kn99-2", {}, "unknown model 'kn99-2'; valid models: uniform"),
    ],
)
def test_bad_model_requests(spec, sets, message):
    with pytest.raises(UsageError, match=message):
        resolve(spec, sets)


def test_sentence_sampling_restarts_after_each_eos():
    vocab_size = 4
    model = resolve("add0.01-3").build(vocab_size)
    # every sentence is "1 2 3": after <eos> a fresh <s> context must give "1" again
    model.fit(segments([[1, 2, 3]] * 20, "sentence", vocab_size), Budget())
    drawn = model.sample(np.array([vocab_size]), 8, temperature=0)
    assert drawn.tolist() == [1, 2, 3, 0, 1, 2, 3, 0]
