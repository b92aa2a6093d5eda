"""Neural families through the one interface and the one trainer (CPU; small sizes)."""

import json

import numpy as np
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from lmbench import latency, measure
from lmbench.cli import main
from lmbench.execute import execute, time_to_target
from lmbench.models.base import Budget
from lmbench.models.neural import model as neural_model
from lmbench.models.registry import resolve
from lmbench.plan import RunSpec, plan

from .conftest import segments

SMALL = {  # tiny nets, fast optimisers: each family learns a 200-token text in seconds
    "mlp": {"embed": 32, "hidden": 64, "order": 4},
    "rnn": {"hidden": 64, "optimizer": "adamw"},
    "lstm": {"hidden": 64, "optimizer": "adamw"},
    "gru": {"hidden": 64, "optimizer": "adamw"},
    "transformer": {"width": 64, "layers": 2, "heads": 2, "bptt": 32, "lr": 0.003},
}
FAST = {
    "batch_size": 2,
    "bptt": 16,
    "lr": 0.01,
    "dropout": 0.0,
    "lr_schedule": "constant",
    "warmup_tokens": 0,
    "weight_decay": 0.0,
    "clip": 1.0,
}


def build(spec: str, vocab_size: int, seed: int = 0, **sets):
    overrides = {**FAST, **SMALL.get(spec, {}), **sets}
    return resolve(spec, {k: str(v) for k, v in overrides.items()}).build(vocab_size, "cpu", seed)


def tiny_text(rng_seed=0, sentences=30, vocab=20):
    """About 200 tokens of sentences with structure worth learning."""
    rng = np.random.default_rng(rng_seed)
    lines = []
    for _ in range(sentences):
        start = int(rng.integers(2, vocab - 4))
        lines.append([start, start + 1, start + 2, (start * 3) % (vocab - 2) + 2, start + 3])
    return lines


@pytest.mark.parametrize("spec", ["mlp", "rnn", "lstm", "gru", "transformer"])
def test_every_family_overfits_a_tiny_corpus(spec):
    train = segments(tiny_text(), "stream", 20)
    assert train.n_predicted <= 200
    model = build(spec, 20)
    report = model.fit(train, Budget(epochs=300))
    assert report.ended_by == "epochs"
    ppl = float(np.exp(-model.log_prob(train).mean()))
    assert ppl < 2.0, f"{spec}: train perplexity {ppl:.2f}"


@pytest.mark.parametrize("spec", ["mlp", "rnn", "lstm", "gru", "transformer"])
def test_flop_formula_matches_torch_flop_counter(spec):
    model = build(spec, 50, bptt=16)
    net = model.net.eval()
    x = torch.randint(0, 50, (3, 16))
    # oneDNN off so the recurrence shows up as matrix products; the math attention backend so
    # the counter sees the attention products (it does not count the CPU flash kernel).
    with (
        torch.backends.mkldnn.flags(enabled=False),
        sdpa_kernel(SDPBackend.MATH),
        FlopCounterMode(display=False) as counter,
    ):
        net(x, net.initial_state(3, "cpu", scoring=False))
    per_token = counter.get_total_flops() / x.numel()
    assert per_token == pytest.approx(net.forward_flops_per_token(), rel=1e-9)
    assert model.flops_per_token() == 3 * net.forward_flops_per_token()


def test_lstm_training_flops_are_three_forwards_by_the_counter():
    net = build("lstm", 50).net.train()
    x = torch.randint(0, 50, (3, 16))
    with torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as counter:
        logits, _ = net(x, net.initial_state(3, "cpu", scoring=False))
        logits.sum().backward()
    assert counter.get_total_flops() / x.numel() == pytest.approx(
        3 * net.forward_flops_per_token(), rel=0.01
    )


@pytest.mark.parametrize("spec", ["lstm", "transformer"])
def test_same_seed_same_perplexity_other_seed_differs(spec):
    train = segments(tiny_text(), "stream", 20)
    scores = []
    for seed in (0, 0, 1):
        model = build(spec, 20, seed=seed, dropout=0.1)
        model.fit(train, Budget(epochs=3))
        scores.append(model.log_prob(train))
    np.testing.assert_array_equal(scores[0], scores[1])
    assert not np.array_equal(scores[0], scores[2])


@pytest.mark.parametrize("spec", ["mlp", "lstm", "transformer"])
def test_scoring_chunks_and_batches_do_not_change_a_log_prob(spec, monkeypatch):
    """Chunked stream scoring with carried state = one pass; sentence batches = one by one."""
    lines = tiny_text(sentences=12)
    model = build(spec, 20, bptt=8)
    model.fit(segments(lines, "stream", 20), Budget(epochs=2))
    stream = segments(lines, "stream", 20)
    whole = model.log_prob(stream)
    monkeypatch.setattr(neural_model, "SCORE_CHUNK", 3)
    np.testing.assert_allclose(model.log_prob(stream), whole, rtol=1e-5, atol=1e-6)
    sentences = segments(lines, "sentence", 20)
    together = model.log_prob(sentences)
    alone = np.concatenate([model.log_prob(segments([line], "sentence", 20)) for line in lines])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)
    assert together.shape == (sentences.n_predicted,)


def test_transformer_scores_each_token_with_its_window():
    """Stride scoring: token t sees the tokens of its window, the same as a direct forward."""
    lines = tiny_text(sentences=10)
    model = build("transformer", 20, bptt=8, eval_stride=4)
    stream = segments(lines, "stream", 20)
    scored = model.log_prob(stream)
    ids = torch.from_numpy(stream.ids.astype(np.int64))
    net = model.net.eval()
    t = 13  # predicted token index t is ids[t + 1]; its window is the 4..7 tokens before
    window_start = (t // 4) * 4 - 4
    with torch.no_grad():
        logits, _ = net(ids[None, window_start : t + 1], None)
    direct = torch.log_softmax(logits[0, -1], -1)[ids[t + 1]].item()
    assert scored[t] == pytest.approx(direct, abs=1e-5)


def test_budgets_end_training_and_are_recorded():
    train = segments(tiny_text(sentences=40), "stream", 20)
    model = build("lstm", 20)
    report = model.fit(train, Budget(tokens=101))
    assert (report.ended_by, report.train_tokens) == ("tokens", 101)
    report = build("lstm", 20).fit(train, Budget(epochs=2.5))
    assert report.ended_by == "epochs"
    assert report.notes["epochs"] == pytest.approx(2.5, abs=0.05)
    report = build("lstm", 20).fit(train, Budget(seconds=0.2, epochs=1000))
    assert report.ended_by == "seconds"


def test_curve_best_state_and_early_stop():
    train = segments(tiny_text(sentences=40), "stream", 20)
    model = build("lstm", 20, eval_every_tokens=50, patience=2, lr=0.5)  # too high: a plateau
    curve = {}

    def on_eval(tokens):
        curve[tokens] = float(np.exp(-model.log_prob(train).mean()))
        return curve[tokens]

    report = model.fit(train, Budget(epochs=50), on_eval)
    tokens = list(curve)
    buckets = [t // 50 for t in tokens]  # one evaluation per 50 training tokens crossed
    assert buckets == sorted(set(buckets))
    assert report.ended_by == "plateau" and report.train_tokens < 50 * train.n_predicted
    best = min(curve, key=curve.get)
    assert report.notes["best_valid_at_tokens"] == best
    restored = float(np.exp(-model.log_prob(train).mean()))  # the best state came back
    assert restored == pytest.approx(curve[best], rel=1e-6)


def test_time_to_target_is_the_first_evaluation_that_reaches_it():
    curve = [{"seconds": 1, "valid_ppl": 200}, {"seconds": 2, "valid_ppl": 150}]
    curve.append({"seconds": 3, "valid_ppl": 140})
    assert time_to_target(curve, 150) == 2
    assert time_to_target(curve, 100) is None
    assert time_to_target(curve, None) is None


def test_nan_loss_is_a_failed_record_with_its_step(tiny_corpus, tmp_path, monkeypatch):
    real, calls = torch.nn.functional.cross_entropy, []

    def loss_goes_nan_at_step_3(*args, **kwargs):
        calls.append(1)
        loss = real(*args, **kwargs)
        return loss * float("nan") if len(calls) >= 3 else loss

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", loss_goes_nan_at_step_3)
    sets = {"hidden": "8", "batch_size": "2", "bptt": "2"}
    run = plan(RunSpec(str(tiny_corpus), "lstm", sets, device="cpu", budget_epochs=5))
    record = execute(run, "nan-run", tmp_path)
    assert record.status == "failed"
    assert "TrainingDiverged" in record.error and "at step 3 " in record.error
    assert record.calibration is not None  # what was measured before stays


def test_neural_run_records_every_measurement_and_samples_from_its_checkpoint(
    mirror, tmp_path, capsys
):
    out = tmp_path / "out"
    argv = ["run", "--corpus", "ptb", "--model", "mlp", "--budget-tokens", "20000"]
    argv += ["--set", "eval_every_tokens=10000", "--out", str(out), "--data-dir", str(mirror)]
    assert main(argv) == 0
    record = json.loads((out / "runs.jsonl").read_text().splitlines()[-1])
    assert record["status"] == "ok" and record["family"] == "mlp"
    assert record["train_tokens"] == 20000 and record["budget"]["ended_by"] == "tokens"
    steps = [p["tokens"] for p in record["curve"]]  # evaluations at the step crossing 10,000
    assert len(steps) == 2 and 10000 <= steps[0] < 10000 + 32 * 24 and steps[1] == 20000
    assert record["flops_per_token"] > 0 and 0 < record["mfu"] < 2
    assert record["train_flops"] == record["flops_per_token"] * 20000
    assert record["params"] > 0 and record["size_bytes"] == 4 * record["params"]
    assert record["eval_tokens"] == 82430 and record["latency_ms_per_token"] > 0
    query = record["extra"]["query"]  # a decoder's queries: timed and checked against bulk
    assert record["query_us"] == query["us_per_query"] > 0 and query["queries"] == latency.QUERIES
    assert query["max_abs_diff_vs_bulk"] < 1e-4
    assert (out / record["checkpoint"]).is_file() and record["samples"]
    capsys.readouterr()
    sample = ["sample", "--run", record["run_id"], "--results", str(out), "--tokens", "7"]
    assert main([*sample, "--data-dir", str(mirror), "--prefix", "the company"]) == 0
    text = capsys.readouterr().out.split()
    assert text[:2] == ["the", "company"] and len(text) == 9


def test_sample_refits_a_count_run_and_samples_fresh(mirror, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["run", "--corpus", "ptb", "--model", "kn3", "--budget-tokens", "50000"]
    assert main([*argv, "--out", str(out), "--data-dir", str(mirror)]) == 0
    record = json.loads((out / "runs.jsonl").read_text().splitlines()[-1])
    assert record["extra"]["query"]["max_abs_diff_vs_bulk"] == 0.0  # the query path is exact
    capsys.readouterr()
    sample = ["sample", "--run", record["run_id"], "--results", str(out), "--tokens", "30"]
    assert main([*sample, "--data-dir", str(mirror)]) == 0
    assert capsys.readouterr().out.strip() == record["samples"][0]  # same seed, same model
    fresh = ["sample", "--corpus", "ptb", "--model", "lstm", "--budget-seconds", "1"]
    fresh += ["--set", "hidden=16", "--data-dir", str(mirror), "--count", "2", "--tokens", "5"]
    assert main(fresh) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "lstm", "--set", "hidden=-3", "--budget-epochs", "1"], "hidden must be > 0"),
        (["--model", "transformer", "--set", "heads=5", "--budget-epochs", "1"], "divisible"),
        (["--model", "lstm"], "trains until a budget ends"),
        (["--model", "lstm", "--budget-epochs", "1", "--device", "tpu"], "unknown device"),
        (["--model", "mlp1", "--set", "hidden=7", "--budget-epochs", "1"], "contradicts"),
        (["--model", "lstm", "--budget-epochs", "-1"], "--budget-epochs must be > 0"),
        (["--model", "lstm", "--set", "lr=nan", "--budget-epochs", "1"], "finite number"),
    ],
)
def test_bad_neural_configs_are_usage_errors(argv, message, mirror, capsys, tmp_path):
    assert main(["run", "--corpus", "ptb", *argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_without_cuda_is_a_usage_error(mirror, capsys, tmp_path):
    argv = ["run", "--corpus", "ptb", "--model", "lstm", "--budget-epochs", "1"]
    assert main([*argv, "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


@pytest.mark.parametrize("spec", ["mlp", "transformer"])
def test_bf16_autocast_path_trains_and_scores(spec):
    """The CUDA default precision, exercised on the CPU (autocast to bfloat16)."""
    train = segments(tiny_text(), "stream", 20)
    model = build(spec, 20, precision="bfloat16")
    report = model.fit(train, Budget(epochs=3))
    assert report.notes["compute_dtype"] == "bfloat16" and model.compute_dtype == "bfloat16"
    assert np.isfinite(model.log_prob(train)).all()
    assert build(spec, 20).compute_dtype == "float32"  # auto on the CPU


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA path")
def test_a_suites_gpu_run_is_skipped_without_cuda(tiny_corpus, tmp_path):
    spec = RunSpec(str(tiny_corpus), "lstm", {"hidden": "8"}, device="cuda", budget_epochs=1)
    run = plan(spec, suite="reproduce")
    assert run.device == "cuda"
    record = execute(run, "gpu-run", tmp_path)
    assert record.status == "skipped" and "CUDA is not available" in record.error


def test_bf16_on_a_cpu_without_native_bf16_is_skipped_with_the_reason(
    tiny_corpus, tmp_path, monkeypatch
):
    monkeypatch.setattr(measure, "cpu_has_bf16", lambda: False)
    spec = RunSpec(str(tiny_corpus), "lstm", {"precision": "bfloat16"}, budget_epochs=1)
    record = execute(plan(spec, suite="bf16"), "bf16-run", tmp_path)
    assert record.status == "skipped" and "without native bf16" in record.error


class _Payload:
    """Any pickled object beyond tensors and plain containers: weights_only refuses it."""

    def __reduce__(self):
        return (print, ("a checkpoint ran code",))


def test_checkpoints_load_weights_only(tmp_path):
    """A checkpoint round-trips, and one carrying a pickled callable is refused rather than run
    (torch.load(weights_only=True)): `lmbench sample --run` may read a shared results folder."""
    model = build("lstm", 20, hidden=8)
    assert model.save(tmp_path / "good.pt")
    other = build("lstm", 20, seed=1, hidden=8)
    assert other.load(tmp_path / "good.pt")
    for name, tensor in model.net.state_dict().items():
        assert torch.equal(tensor, other.net.state_dict()[name])
    torch.save({"config": {}, "state_dict": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(Exception, match="[Ww]eights only"):
        other.load(tmp_path / "evil.pt")
