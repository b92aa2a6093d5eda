import json

import numpy as np
import pytest

from lmbench.cache import CACHE_SIZES, cache_log_probs, tune, with_cache
from lmbench.cli import main
from lmbench.mix import MixSpec, best_weight, run_mixes

from .conftest import write_corpus


@pytest.mark.parametrize("size", [1, 3, 10, 1000])
def test_cache_counts_each_token_among_the_previous_ones(size):
    """Vectorised counts equal a loop's: c(w_i) among the `size` tokens before i, over
    min(i, size); NaN for the empty cache at the first token."""
    targets = np.random.default_rng(0).integers(0, 7, 400)
    got = cache_log_probs(targets, size)
    assert np.isnan(got[0])
    with np.errstate(divide="ignore"):
        expected = [
            np.log(np.sum(targets[max(0, i - size) : i] == targets[i]) / min(i, size))
            for i in range(1, targets.size)
        ]
    np.testing.assert_allclose(got[1:], expected)


def test_the_cache_is_a_distribution_so_the_mixture_is_one():
    """At every position the cache's probabilities over the vocabulary sum to 1: the counts of
    each word in the window over its length."""
    history = np.array([3, 1, 3, 2, 3, 1])
    totals = []
    for word in range(5):
        logs = cache_log_probs(np.append(history, word), size=4)
        totals.append(np.exp(logs[-1]))
    assert sum(totals) == pytest.approx(1.0)
    model = np.log(np.full(6, 0.2))
    mixed = with_cache(model, cache_log_probs(history, 4), 0.3)
    assert mixed[0] == model[0]  # the empty cache leaves the model alone


def test_tuning_picks_the_size_that_fits_a_bursty_stream():
    """A stream whose words repeat within about 20 tokens: a small cache gets a large weight and
    beats the flat model; the chosen size is the best on valid."""
    rng = np.random.default_rng(1)
    topics = [rng.integers(0, 1000, 5) for _ in range(200)]
    targets = np.concatenate([rng.choice(t, 20) for t in topics])
    model = np.full(targets.size, np.log(1 / 1000))
    size, weight, mixed = tune(model, targets, fit=best_weight)
    assert size == min(CACHE_SIZES) and weight > 0.5
    assert mixed.sum() > model.sum()
    for other in CACHE_SIZES:
        cache = cache_log_probs(targets, other)
        w = best_weight(cache[1:], model[1:])
        assert with_cache(model, cache, w).sum() <= mixed.sum() + 1e-9


def test_a_cache_mix_is_recorded_with_what_was_tuned(tmp_path):
    """`MixSpec(corpus, model, "cache")`: the run's log-probabilities with a unigram cache of
    its evaluation stream, size and weight tuned on valid: never worse than the run on valid."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(60)]

    def text(lines):  # Zipf-like draws, so words repeat
        return "".join(" ".join(rng.choice(words, 8, p=zipf)) + "\n" for _ in range(lines))

    zipf = 1 / np.arange(1, 61)
    zipf /= zipf.sum()
    corpus = write_corpus(tmp_path / "c", text(400), text(40), text(40))
    out = tmp_path / "out"
    assert main(["run", "--corpus", str(corpus), "--model", "wb3", "--out", str(out)]) == 0
    seeds = tuple(MixSpec(str(corpus), "wb3", "cache", seed=seed) for seed in (0, 1, 2))
    (mix,) = run_mixes(seeds, out, "adhoc")  # no neural part: one mix, whatever the seed
    wb3 = json.loads((out / "runs.jsonl").read_text().splitlines()[0])
    assert mix["status"] == "ok" and mix["model"] == "wb3+cache", mix.get("error")
    config = mix["model_config"]
    assert config["cache_size"] in CACHE_SIZES and sum(config["weights"].values()) == pytest.approx(
        1
    )
    assert config["components"] == [wb3["run_id"]]
    assert mix["valid_ppl"] <= wb3["valid_ppl"] * (1 + 1e-5)
    assert mix["train_seconds"] == wb3["train_seconds"]
    assert mix["seed"] == 0 and mix["env"]["git_commit"]  # which code mixed it
