"""The decoder-style query path: one word at a time, state carried, equal to bulk scoring."""

import json

import numpy as np
import pytest

from lmbench.cli import main
from lmbench.latency import query_latency, read_measurements
from lmbench.models.base import Budget
from lmbench.models.registry import resolve
from lmbench.protocol import Segments

from .conftest import segments
from .test_neural import build, tiny_text

COUNT_SPECS = {
    "unigram": {},
    "add1-3": {},
    "kn3": {"discount_fallback": "true"},
    "kn5": {"discount_fallback": "true"},
    "kn5 pruned": {"discount_fallback": "true", "prune": "0 0 1"},
    "wb4": {},
    "uniform": {},
    "nltk-kn3": {},  # a peer: the default query path through its own scorer
}


def count_model(label: str, train):
    spec = label.split()[0]
    model = resolve(spec, COUNT_SPECS[label]).build(20)
    model.fit(train, Budget())
    return model


@pytest.mark.parametrize("mode", ["sentence", "stream"])
@pytest.mark.parametrize("label", list(COUNT_SPECS))
def test_count_model_queries_equal_bulk_scoring(label, mode):
    train = segments(tiny_text(0, sentences=60), mode, 20)
    test = segments(tiny_text(1, sentences=12) + [[3, 9, 17, 2]], mode, 20)  # unseen n-grams
    model = count_model(label, train)
    bulk = model.log_prob(test)
    result = query_latency(model, test, queries=test.n_predicted, repeats=1, bulk=bulk)
    assert result.queries == test.n_predicted
    if label.startswith("nltk"):  # a peer's own scorer, through the default query path
        assert result.max_abs_diff < 1e-9
    else:  # ours: the scorer's sums in the scorer's order, bit for bit
        assert result.max_abs_diff == 0.0
    assert result.us_per_query > 0


NEURAL = {
    "mlp": {},
    "lstm": {},
    "gru": {},
    "rnn": {},
    # windows of 8 new tokens over a block of 12: the KV cache is rebuilt every 8 queries
    "transformer": {"bptt": 12, "eval_stride": 8},
    "transformer rotary": {"bptt": 12, "eval_stride": 4, "positions": "rotary"},
    "transformer stride=bptt": {"bptt": 8, "eval_stride": 8},
}


@pytest.mark.parametrize("mode", ["sentence", "stream"])
@pytest.mark.parametrize("label", list(NEURAL))
def test_neural_queries_equal_bulk_scoring(label, mode):
    train = segments(tiny_text(0), mode, 20)
    test = segments(tiny_text(1, sentences=10), mode, 20)
    model = build(label.split()[0], 20, **NEURAL[label])
    model.fit(train, Budget(epochs=2))
    bulk = model.log_prob(test)
    result = query_latency(model, test, queries=test.n_predicted, repeats=1, bulk=bulk)
    assert result.queries == test.n_predicted
    assert result.max_abs_diff < 1e-4  # float32 arithmetic, different kernels and batching


@pytest.mark.parametrize("label", ["lstm", "mlp", "transformer"])
@pytest.mark.parametrize("prefix", [7, 8])  # the Transformer rebuilds its cache every 8 steps
def test_a_query_state_is_a_value_a_decoder_can_branch_from(label, prefix):
    """A decoder extends one hypothesis by several words: each branch from a shared state scores
    exactly as a fresh chain of the same words, whatever was queried from that state before."""
    train = segments(tiny_text(0), "stream", 20)
    model = build(label, 20, **NEURAL[label])
    model.fit(train, Budget(epochs=1))
    words = [5, 7, 9, 11, 4, 6, 8, 3, 12, 14][:prefix]

    def chain(tail):
        state, scores = model.query_start(2), []
        for word in words + tail:
            logp, state = model.query(state, word)
            scores.append(logp)
        return scores[len(words) :]

    with model.querying():
        fresh_a, fresh_b = chain([13, 16]), chain([15, 17])
        state = model.query_start(2)
        for word in words:
            _, state = model.query(state, word)
        a1, after_a = model.query(state, 13)
        b1, after_b = model.query(state, 15)
        a2, _ = model.query(after_a, 16)
        b2, _ = model.query(after_b, 17)
        a2_again, _ = model.query(after_a, 16)
    assert [a1, a2] == fresh_a and [b1, b2] == fresh_b and a2_again == a2


def test_queries_stop_at_the_requested_count_mid_segment():
    train = segments(tiny_text(0), "stream", 20)
    model = count_model("kn3", train)
    result = query_latency(model, train, queries=17, repeats=2)
    assert result.queries == 17 and result.repeats == 2 and result.max_abs_diff is None


def test_a_wrong_answer_is_reported_as_a_difference():
    train = segments(tiny_text(0), "sentence", 20)
    model = count_model("kn3", train)
    bulk = model.log_prob(train)
    bulk[3] += 0.5
    assert query_latency(model, train, repeats=1, bulk=bulk).max_abs_diff == pytest.approx(0.5)
    bulk[3] = -np.inf
    assert query_latency(model, train, repeats=1, bulk=bulk).max_abs_diff == np.inf


def test_latency_command_remeasures_recorded_runs_and_resumes(mirror, tmp_path, capsys):
    out, lat = tmp_path / "out", tmp_path / "latency"
    data = ["--data-dir", str(mirror), "--out", str(out)]
    assert (
        main(["run", "--corpus", "ptb", "--model", "kn3", "--budget-tokens", "50000", *data]) == 0
    )
    neural = ["run", "--corpus", "ptb", "--model", "mlp", "--budget-tokens", "2000"]
    assert main([*neural, "--set", "hidden=16", "--set", "embed=8", *data]) == 0
    records = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    for r in records:  # as recorded before query_us existed: what lmbench latency is for
        r["query_us"] = None
    (out / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (out / records[1]["checkpoint"]).rename(tmp_path / "moved.pt")  # one model not restorable
    command = [
        "latency",
        str(out),
        "--out",
        str(lat),
        "--queries",
        "300",
        "--data-dir",
        str(mirror),
    ]
    assert main(command) == 0
    assert "1 runs measured, 1 skipped" in capsys.readouterr().out
    (tmp_path / "moved.pt").rename(out / records[1]["checkpoint"])
    assert main(command) == 0  # the kn3 run is not measured again
    assert "1 runs measured, 0 skipped" in capsys.readouterr().out
    lines = read_measurements(lat)
    assert [line["run_id"] for line in lines] == [records[0]["run_id"], records[1]["run_id"]]
    for line in lines:
        assert line["query"]["queries"] == 300 and line["query"]["max_abs_diff_vs_bulk"] < 1e-4
        assert line["machine"]["id"] and line["env"]
    assert main(["latency", str(tmp_path / "nowhere"), "--out", str(lat)]) == 2  # usage error


def test_strided_transformer_scoring_sees_the_whole_prefix_within_a_block():
    """bptt 12, stride 3: the window keeps 9 tokens, so the first 12 predictions see every
    token before them (a window cut to its last keep - n tokens once lost half of them)."""
    import torch

    model = build("transformer", 20, bptt=12, eval_stride=3)
    ids = np.random.default_rng(0).integers(1, 20, 24).astype(np.int32)
    bulk = model.log_prob(Segments(ids, np.array([0, ids.size])))  # ids[0]: context only
    with model._scoring():
        for i in range(11):
            x = torch.from_numpy(ids[: i + 1].astype(np.int64)).unsqueeze(0)
            logits, _ = model.net(x, None)
            expected = torch.log_softmax(logits[0, -1].float(), dim=-1)[int(ids[i + 1])].item()
            assert bulk[i] == pytest.approx(expected, abs=1e-5), i
