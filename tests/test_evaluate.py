import math

import numpy as np
import pytest

from lmbench.errors import ProtocolError
from lmbench.evaluate import evaluate
from lmbench.models.base import Budget
from lmbench.models.registry import resolve
from lmbench.protocol import make_segments

from .conftest import segments

V = 3  # 0 <eos>, 1 a, 2 b
TRAIN = [[1, 2], [1]]  # "a b" / "a"
TEST = [[2, 1], [1]]  # "b a" / "a"


def fitted(spec: str, mode: str, vocab_size: int = V):
    model = resolve(spec).build(vocab_size)
    model.fit(segments(TRAIN, mode, vocab_size), Budget())
    return model


@pytest.mark.parametrize("mode", ["stream", "sentence"])
def test_uniform_perplexity_is_exactly_vocab_size(mode):
    data = segments([[5, 6, 7], [8], [1, 2, 3, 4]], mode, 10)
    result = evaluate(fitted("uniform", mode, 10), data)
    assert result.tokens == 11  # 8 words + 3 <eos>, each predicted once
    assert result.perplexity == pytest.approx(10, rel=1e-12)
    assert result.bits_per_token == pytest.approx(math.log2(10), rel=1e-12)


@pytest.mark.parametrize("mode", ["stream", "sentence"])
def test_laplace_bigram_matches_hand_computation(mode):
    # Train bigrams (history -> word), stream [<eos> a b <eos> a <eos>] or sentence
    # [<s> a b <eos>] [<s> a <eos>]: start->a 2, a->b 1, b-><eos> 1, a-><eos> 1;
    # history counts start 2, a 2, b 1. Laplace: (c(h w) + 1) / (c(h) + 3).
    # Test: b|start 1/5, a|b 1/4, <eos>|a 2/5, a|start (after the first line) 3/5, <eos>|a 2/5.
    expected = [1 / 5, 1 / 4, 2 / 5, 3 / 5, 2 / 5]
    result = evaluate(fitted("add1-2", mode), segments(TEST, mode, V))
    np.testing.assert_allclose(np.exp(result.log_probs), expected, rtol=1e-12)
    assert result.perplexity == pytest.approx(math.prod(expected) ** (-1 / 5), rel=1e-12)


def test_sentence_mode_does_not_condition_across_sentences():
    # Trigram: in stream mode "a" after "b <eos>" has history (b, <eos>); in sentence mode the
    # history is (pad, <s>) - the two modes must differ here.
    stream = evaluate(fitted("add1-3", "stream"), segments(TEST, "stream", V))
    sentence = evaluate(fitted("add1-3", "sentence"), segments(TEST, "sentence", V))
    assert stream.tokens == sentence.tokens == 5
    assert stream.perplexity != pytest.approx(sentence.perplexity)


class WrongCount:
    def log_prob(self, data):
        return np.zeros(data.n_predicted + 1)


class PositiveLogProb:
    def log_prob(self, data):
        return np.full(data.n_predicted, 0.5)


@pytest.mark.parametrize("model", [WrongCount(), PositiveLogProb()])
def test_evaluator_enforces_the_protocol(model):
    with pytest.raises(ProtocolError):
        evaluate(model, segments(TEST, "stream", V))


def test_segments_layout_in_both_modes():
    ids = np.array([1, 2, 0, 1, 0], dtype=np.int32)
    eos = np.array([2, 4])
    stream = make_segments(ids, eos, "stream", eos=0, bos=3)
    assert stream.ids.tolist() == [0, 1, 2, 0, 1, 0] and stream.starts.tolist() == [0, 6]
    sentence = make_segments(ids, eos, "sentence", eos=0, bos=3)
    assert sentence.ids.tolist() == [3, 1, 2, 0, 3, 1, 0]
    assert sentence.starts.tolist() == [0, 4, 7]
    assert stream.n_predicted == sentence.n_predicted == 5
    head = sentence.head(4)
    assert head.ids.tolist() == [3, 1, 2, 0, 3, 1] and head.n_predicted == 4
