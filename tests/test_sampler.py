"""The many-stream backoff sampler draws from the model's own distributions."""

import numpy as np
import pytest

from lmbench.models.base import Budget
from lmbench.models.ngram.sampler import BackoffSampler
from lmbench.models.registry import resolve
from lmbench.protocol import Segments

VOCAB = 40


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    ids = (np.minimum(rng.zipf(1.3, size=30_000), VOCAB) - 1).astype(np.int32)
    ids[::13] = 0  # <eos> now and then, as a stream-mode corpus has
    kn = resolve("kn3", {"discount_fallback": "true"}).build(VOCAB)  # a 40-word toy
    kn.fit(Segments(ids, np.array([0, ids.size])), Budget())
    return kn


def context_row(model, history) -> np.ndarray:
    """The sampler's context for `history` (oldest first), from the model's own query state."""
    state = model.query_start(history[0])
    for word in history[1:]:
        _, state = model.query(state, word)
    row = np.full(model.config.order, -1, dtype=np.int64)
    row[0] = 0
    row[1 : 1 + len(state)] = state
    return row


@pytest.mark.parametrize("history", [[0, 1], [3, 7], [VOCAB - 1, VOCAB - 2], [5, 0]])
def test_one_step_follows_the_models_distribution(model, history):
    draws = 400_000
    sampler = BackoffSampler(model.tables)
    context = np.repeat(context_row(model, history)[None], draws, axis=0)
    words = sampler.draw(context, np.random.default_rng(1))
    seen = np.bincount(words, minlength=VOCAB + 1)[:VOCAB] / draws
    expected = np.exp(model.next_log_probs(np.array(history)))
    assert expected.sum() == pytest.approx(1.0, abs=1e-9)
    sigma = np.sqrt(expected * (1 - expected) / draws)
    assert np.all(np.abs(seen - expected) < 5 * sigma + 1e-5), np.abs(seen - expected).max()


def test_streams_are_documents_from_the_start_token_and_a_seed_repeats_them(model):
    sampler = BackoffSampler(model.tables)
    first = sampler.sample(streams=64, tokens=50, start=0, seed=7)
    assert first.shape == (64, 50) and first.min() >= 0 and first.max() < VOCAB
    np.testing.assert_array_equal(first, sampler.sample(streams=64, tokens=50, start=0, seed=7))
    assert not np.array_equal(first, sampler.sample(streams=64, tokens=50, start=0, seed=8))
    # the first word of every stream follows <eos>: its distribution, not the unigram's
    words = sampler.sample(streams=100_000, tokens=1, start=0, seed=3)[:, 0]
    expected = np.exp(model.next_log_probs(np.array([0])))
    seen = np.bincount(words, minlength=VOCAB) / words.size
    assert np.abs(seen - expected).max() < 0.01


def test_synthesize_writes_a_corpus_of_the_asked_size_the_same_for_a_seed(tmp_path, mirror):
    from lmbench.cli import main
    from lmbench.corpora import load_corpus

    def make(out, seed):
        args = ["synthesize", "--corpus", "ptb", "--model", "kn3", "--tokens", "30K"]
        args += ["--heldout-tokens", "2.5K", "--streams", "7", "--seed", str(seed)]
        assert main([*args, "--out", str(out), "--data-dir", str(mirror)]) == 0

    make(tmp_path / "a", 0)
    make(tmp_path / "b", 0)
    make(tmp_path / "c", 1)
    train = (tmp_path / "a" / "train.txt").read_bytes()
    assert train == (tmp_path / "b" / "train.txt").read_bytes()
    assert train != (tmp_path / "c" / "train.txt").read_bytes()
    corpus = load_corpus(str(tmp_path / "a"))
    documents = {"train": 30, "valid": 3, "test": 3}  # of 1,000 tokens; each ends a line
    for split, tokens in (("train", 30_000), ("valid", 2_500), ("test", 2_500)):
        got = corpus.splits[split].tokens
        assert tokens <= got <= tokens + documents[split]
    assert corpus.vocab.size > 3_000  # PTB's words, Zipf-distributed: not a toy vocabulary
