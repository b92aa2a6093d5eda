import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lmbench.errors import UsageError
from lmbench.models.base import Budget
from lmbench.models.ngram.arpa import format_log10
from lmbench.models.ngram.unique import unique_inverse_counts
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


@pytest.mark.parametrize(
    "size, bound",
    [
        (0, 10),
        (1, 10),
        (7, 1),
        (5_000, 7),  # few distinct keys, many repeats
        (100_000, 2**40),  # key and position fit in 64 bits: one packed sort
        (300_000, 2**60),  # they do not: split by the top 15 key bits first
        (1 << 20, 2**63 - 1),  # a 19-bit split: np.unique itself
    ],
)
def test_unique_inverse_counts_is_numpys_unique(size, bound):
    rng = np.random.default_rng(size)
    keys = rng.integers(0, bound, size) if bound > 1 else np.zeros(size, dtype=np.int64)
    keys[: size // 3] = keys[size // 3 : 2 * (size // 3)]  # repeats across the array
    expected = np.unique(keys, return_inverse=True, return_counts=True)
    for ours, theirs in zip(unique_inverse_counts(keys, bound), expected):
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)


def test_arpa_numbers_read_as_seven_decimals():
    values = np.array([-0.5, -1e-9, -3.25, -12.125, -99.9999999, -150.0, 0.0])
    rows = format_log10(values, before=b"\t", after=b"\n")
    text = [bytes(row[row != 0]).decode() for row in rows]
    expected = ["-0.5000000", "-0.0000000", "-3.2500000", "-12.1250000", "-99.9999999"]
    assert text == [f"\t{v}\n" for v in expected + ["-99.9999999", "-0.0000000"]]
