"""The one trainer: schedules by tokens, exact reruns, seconds budgets as token horizons, decay
branches that continue a trunk exactly, and seeds that expand runs."""

import json

import numpy as np
import pytest
import torch

from lmbench.cli import main
from lmbench.models.base import Budget
from lmbench.models.neural import trainer as trainer_module
from lmbench.models.neural.config import TrainConfig
from lmbench.models.neural.schedule import Schedule, branch_point
from lmbench.plan import RunSpec, parse_seeds, plan, plan_seeds

from .conftest import segments
from .test_neural import build, tiny_text


def config(**fields) -> TrainConfig:
    return TrainConfig(**{"lr": 1.0, **fields})


@pytest.mark.parametrize(
    ("fields", "tokens", "epoch", "expected"),
    [
        ({"lr_schedule": "constant"}, 900, 3, 1.0),
        ({"lr_schedule": "constant", "warmup_tokens": 100}, 49, 0, 0.5),  # linear warm-up
        ({"lr_schedule": "cosine"}, 0, 0, 1.0),
        ({"lr_schedule": "cosine"}, 500, 0, 0.1 + 0.9 * 0.5),  # halfway: midway to lr / 10
        ({"lr_schedule": "cosine"}, 1000, 0, 0.1),
        ({"lr_schedule": "wsd"}, 799, 0, 1.0),  # stable until the last fifth
        ({"lr_schedule": "wsd"}, 900, 0, 0.5),  # then linearly to 0
        ({"lr_schedule": "wsd"}, 1000, 0, 0.0),
        ({"lr_schedule": "wsd", "decay_fraction": 0.5}, 750, 0, 0.5),
        ({"lr_schedule": "step", "lr_decay": 0.5, "decay_start_epoch": 4}, 0, 3, 1.0),
        ({"lr_schedule": "step", "lr_decay": 0.5, "decay_start_epoch": 4}, 0, 5, 0.25),
    ],
)
def test_each_schedule_is_a_function_of_tokens_and_epoch(fields, tokens, epoch, expected):
    schedule = Schedule(config(**fields), horizon_tokens=1000)
    assert schedule.lr(tokens, epoch) == pytest.approx(expected)


def test_plateau_decays_on_an_evaluation_without_gain_and_its_state_round_trips():
    schedule = Schedule(config(lr_schedule="plateau", lr_decay=0.25), None)
    schedule.after_eval(improved=True)
    assert schedule.lr(10, 0) == 1.0
    schedule.after_eval(improved=False)
    assert schedule.lr(10, 0) == 0.25
    other = Schedule(config(lr_schedule="plateau", lr_decay=0.25), None)
    other.load_state_dict(schedule.state_dict())
    assert other.lr(10, 0) == 0.25


def test_wsd_branch_point_is_where_the_decay_starts():
    assert branch_point(1_000_000, 0.2) == 800_000
    schedule = Schedule(config(lr_schedule="wsd"), horizon_tokens=1_000_000)
    longer = Schedule(config(lr_schedule="wsd"), horizon_tokens=5_000_000)
    # before the branch point a run of any longer horizon has the same rates
    assert all(schedule.lr(t, 0) == longer.lr(t, 0) for t in range(0, 800_000, 7919))
    assert schedule.lr(800_001, 0) < longer.lr(800_001, 0)


def trained(spec: str, budget: Budget, seed: int = 0, **sets):
    train = segments(tiny_text(sentences=40), "stream", 20)
    model = build(spec, 20, seed, **sets)
    report = model.fit(train, budget)
    return model, report, train


def weights(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.net.parameters()]


@pytest.mark.parametrize("spec", ["lstm", "transformer", "mlp"])
def test_a_token_budget_reruns_to_identical_weights_whatever_the_clock(spec, monkeypatch):
    sets = {"lr_schedule": "cosine", "dropout": 0.1}
    first, *_ = trained(spec, Budget(tokens=400), **sets)
    # a clock that jumps at random: nothing a token-budgeted run does may depend on it
    rng = np.random.default_rng(1)
    monkeypatch.setattr(
        trainer_module.Stopwatch, "elapsed", lambda self: float(rng.uniform(0, 1e4))
    )
    again, report, train = trained(spec, Budget(tokens=400), **sets)
    assert report.train_tokens == 400 and report.ended_by == "tokens"
    assert all(torch.equal(a, b) for a, b in zip(weights(first), weights(again)))
    assert np.array_equal(first.log_prob(train), again.log_prob(train))
    other, *_ = trained(spec, Budget(tokens=400), seed=1, **sets)
    assert not np.array_equal(first.log_prob(train), other.log_prob(train))


def test_a_seconds_budget_becomes_a_token_horizon_after_its_first_tenth(monkeypatch):
    ticks = iter(range(10**6))  # a fake clock: each read is one more second
    monkeypatch.setattr(trainer_module.Stopwatch, "elapsed", lambda self: float(next(ticks)))
    model, report, _ = trained("lstm", Budget(seconds=100.0), lr_schedule="cosine")
    horizon = report.notes["horizon_tokens_from_seconds"]
    assert report.ended_by == "seconds" and report.train_tokens == horizon
    assert horizon > 0 and report.notes["final_lr"] < 0.2 * 0.01  # the cosine ran its course


@pytest.mark.parametrize("spec", ["lstm", "transformer", "mlp"])
def test_a_decay_branch_continues_its_trunk_exactly(spec):
    """Trunk of 600 tokens keeps its state where a 400-token run starts to decay; the branch
    from there equals a full 400-token WSD run: same weights, to the last bit."""
    sets = {"lr_schedule": "wsd", "decay_fraction": 0.25, "dropout": 0.1}
    train = segments(tiny_text(sentences=40), "stream", 20)
    full = build(spec, 20, **sets)
    full_report = full.fit(train, Budget(tokens=400))

    saved = {}
    trunk = build(spec, 20, **sets)
    trunk.fit(
        train,
        Budget(tokens=600),
        save_at=(branch_point(400, 0.25),),
        on_save=lambda point, state: saved.update({point: state}),
    )
    state = saved[300]
    assert 300 <= state["tokens"] < 300 + 2 * 16  # the first step boundary at or past it
    torch.manual_seed(12345)  # the branch's RNG comes from the saved state, not from here
    branch = build(spec, 20, seed=7, **sets)
    report = branch.fit(train, Budget(tokens=400), resume=state)
    assert report.train_tokens == full_report.train_tokens == 400
    assert report.notes["resumed_at_tokens"] == state["tokens"]
    assert all(torch.equal(a, b) for a, b in zip(weights(full), weights(branch)))


def test_a_branch_past_its_budget_is_refused():
    sets = {"lr_schedule": "wsd"}
    saved = {}
    trained_model = build("lstm", 20, **sets)
    train = segments(tiny_text(sentences=40), "stream", 20)
    trained_model.fit(
        train, Budget(tokens=300), save_at=(250,), on_save=lambda p, s: saved.update({p: s})
    )
    with pytest.raises(ValueError, match="at or past this run's budget"):
        build("lstm", 20, **sets).fit(train, Budget(tokens=200), resume=saved[250])


def run_cli(tiny_corpus, out, *args) -> int:
    sets = ["--set", "hidden=8", "--set", "batch_size=2", "--set", "bptt=4"]
    sets += ["--set", "lr_schedule=wsd", "--set", "warmup_tokens=0", "--set", "optimizer=adamw"]
    sets += ["--set", "lr=0.01", "--set", "eval_every_tokens=40"]
    return main(
        ["run", "--corpus", str(tiny_corpus), "--model", "lstm", *sets, "--out", str(out)]
        + ["--device", "cpu", *args]
    )


def test_trunk_and_branch_through_lmbench_run(tiny_corpus, tmp_path):
    out = tmp_path / "out"
    assert run_cli(tiny_corpus, out, "--budget-tokens", "160") == 0  # the full run
    assert run_cli(tiny_corpus, out, "--budget-tokens", "200", "--branches", "160") == 0
    assert run_cli(tiny_corpus, out, "--budget-tokens", "160", "--trunk-tokens", "200") == 0
    full, trunk, branch = [json.loads(x) for x in (out / "runs.jsonl").read_text().splitlines()]
    assert (out / trunk["extra"]["branch_states"]["160"]).is_file()
    link = branch["extra"]["branch"]
    assert link["trunk_run_id"] == trunk["run_id"] and link["trunk_tokens"] == 200
    assert branch["train_tokens"] == 160 and branch["budget"]["limit"] == {"tokens": 160}
    assert branch["train_seconds"] > link["trunk_seconds"] > 0  # trunk's share + the decay
    assert branch["test_ppl"] == full["test_ppl"]  # a branch is the full run, exactly
    assert branch["config_hash"] not in (full["config_hash"], trunk["config_hash"])


def test_a_branch_without_its_trunk_fails_with_the_command_to_run(tiny_corpus, tmp_path):
    out = tmp_path / "out"
    assert run_cli(tiny_corpus, out, "--budget-tokens", "160", "--trunk-tokens", "200") == 1
    record = json.loads((out / "runs.jsonl").read_text())
    assert record["status"] == "failed" and "--branches 160" in record["error"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget-tokens", "100", "--branches", "100"], "below its trunk"),
        (["--budget-seconds", "5", "--branches", "50"], "token budget alone"),
        (["--budget-tokens", "100", "--branches", "x"], "--branches 'x'"),
        (["--budget-tokens", "100", "--seeds", "1,1"], "distinct seeds"),
    ],
)
def test_bad_branching_and_seeds_are_usage_errors(tiny_corpus, tmp_path, capsys, args, message):
    assert run_cli(tiny_corpus, tmp_path / "out", *args) == 2
    assert message in capsys.readouterr().err


def test_branches_need_the_wsd_schedule(tiny_corpus, capsys):
    spec = RunSpec(
        str(tiny_corpus), "lstm", {"lr_schedule": "cosine"}, budget_tokens=100, branches=(50,)
    )
    with pytest.raises(Exception, match="lr_schedule=wsd"):
        plan(spec)


def test_seeds_expand_neural_runs_only(tiny_corpus):
    specs = [RunSpec(str(tiny_corpus), "kn3"), RunSpec(str(tiny_corpus), "lstm", budget_tokens=50)]
    runs = plan_seeds(specs, (0, 1, 2))
    assert [(r.spec.model, r.spec.seed) for r in runs] == [
        ("kn3", 0),
        ("lstm", 0),
        ("lstm", 1),
        ("lstm", 2),
    ]
    assert len({r.config_hash for r in runs}) == 4
    assert parse_seeds("0-2") == (0, 1, 2) and parse_seeds("3,5") == (3, 5)


def test_a_new_setting_at_its_default_keeps_earlier_config_hashes(tiny_corpus):
    """decay_fraction came after runs were recorded: at its default it is not in the hash."""
    base = RunSpec(str(tiny_corpus), "lstm", budget_tokens=50)
    same = RunSpec(str(tiny_corpus), "lstm", {"decay_fraction": "0.2"}, budget_tokens=50)
    other = RunSpec(str(tiny_corpus), "lstm", {"decay_fraction": "0.3"}, budget_tokens=50)
    assert "decay_fraction" not in plan(base).config["model_config"]
    assert plan(base).config_hash == plan(same).config_hash != plan(other).config_hash


def test_the_final_evaluation_is_not_repeated_when_it_scored_the_best_state(
    tiny_corpus, tmp_path, monkeypatch
):
    from lmbench import execute as execute_module

    calls = []
    real = execute_module.evaluate

    def counted(model, data):
        calls.append(data.n_predicted)
        return real(model, data)

    monkeypatch.setattr(execute_module, "evaluate", counted)
    sets = {"hidden": "8", "batch_size": "2", "bptt": "4", "optimizer": "adamw", "lr": "0.01"}
    sets["eval_every_tokens"] = "1000"  # one evaluation: at the end of training
    run = plan(RunSpec(str(tiny_corpus), "lstm", sets, device="cpu", budget_tokens=60))
    record = execute_module.execute(run, "once", tmp_path)
    assert record.status == "ok" and record.extra["best_valid_at_tokens"] == 60
    assert len(calls) == 2  # valid once (the end of training, the best state), test once
    assert record.valid_ppl == record.curve[-1]["valid_ppl"]


def test_resume_trains_a_trunk_again_when_its_branch_state_is_not_on_disk(tiny_corpus, tmp_path):
    """Branch states are never committed: in a fresh clone a pending branch needs its trunk anew."""
    from lmbench.runner import run_planned

    sets = {"hidden": "8", "batch_size": "2", "bptt": "4", "lr_schedule": "wsd"}
    sets |= {"warmup_tokens": "0", "optimizer": "adamw", "lr": "0.01"}
    common = dict(device="cpu", seed=0)
    trunk = plan(
        RunSpec(str(tiny_corpus), "lstm", sets, budget_tokens=200, branches=(160,), **common)
    )
    branch = plan(
        RunSpec(str(tiny_corpus), "lstm", sets, budget_tokens=160, trunk_tokens=200, **common)
    )
    out = tmp_path / "out"
    (first,) = run_planned([trunk], out)
    (out / first["extra"]["branch_states"]["160"]).unlink()  # as a fresh clone has it
    again, branched = run_planned([trunk, branch], out, resume=True)
    assert again["run_id"] != first["run_id"] and again["test_ppl"] == first["test_ppl"]
    assert branched["status"] == "ok"
    assert branched["extra"]["branch"]["trunk_run_id"] == again["run_id"]
    kept, _ = run_planned([trunk, branch], out, resume=True)  # nothing missing now: kept
    assert kept["run_id"] == again["run_id"]
