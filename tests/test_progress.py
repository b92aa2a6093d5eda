import io
import time
from types import SimpleNamespace

import pytest
from rich.console import Console

from lmbench.models.base import Budget
from lmbench.progress import (
    DEFAULT_COUNT_SECONDS,
    DEFAULT_TOKENS_PER_S,
    Measured,
    RunState,
    SuiteDisplay,
    budget_progress,
    estimate_remaining,
    measured_from_records,
)


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def fake_run(model: str, iterative: bool, corpus: str = "ptb", device: str = "cpu", **budget):
    """What the display reads of a PlannedRun."""
    return SimpleNamespace(
        spec=SimpleNamespace(corpus=corpus, model=model, mode="stream", train_fraction=None),
        model=SimpleNamespace(model_class=SimpleNamespace(iterative=iterative)),
        budget=Budget(**budget),
        device=device,
        config_hash=f"hash-{corpus}-{model}-{device}",
    )


def history_like() -> list:
    """The history suite's shape: count runs, four 540-s neural runs, two 210-s Brown MLPs."""
    return [
        *(fake_run(m, False) for m in ("kn5", "kn2", "kn3", "kn4", "wb3", "add1-3")),
        *(fake_run(m, True, seconds=540) for m in ("lstm", "rnn", "transformer", "mlp")),
        *(fake_run(m, False, corpus="brown") for m in ("kn5", "kn3")),
        *(fake_run(m, True, corpus="brown", seconds=210) for m in ("mlp1", "mlp9")),
    ]


def seconds_left(runs, index: int) -> float:
    return sum(run.budget.seconds or 0 for run in runs[index:])


def test_eta_covers_the_remaining_seconds_budgets():
    runs = history_like()
    measured = Measured()
    for index in range(len(runs)):
        assert estimate_remaining(runs, index, None, 0.0, measured) >= seconds_left(runs, index)
    # the complaint: 0m13s while 50 minutes of training remained
    assert estimate_remaining(runs, 0, None, 0.0, measured) >= 4 * 540 + 2 * 210


def test_eta_of_the_planned_history_suite(mirror):
    from lmbench.plan import plan_seeds
    from lmbench.suites import get_suite

    suite = get_suite("history")
    runs = plan_seeds(list(suite.runs), suite.seeds, "history", mirror)
    measured = Measured()
    total = estimate_remaining(runs, 0, None, 0.0, measured)
    neural_tokens = sum(run.budget.tokens or 0 for run in runs if run.model.model_class.iterative)
    assert neural_tokens >= 3 * 4 * 800_000  # three seeds of four PTB models, and Brown's MLPs
    assert total >= neural_tokens / DEFAULT_TOKENS_PER_S
    started = RunState(started=0.0).after({"phase": "calibrate"}, 0.0)
    assert estimate_remaining(runs, 1, started, 5.0, measured) >= seconds_left(runs, 1)


def test_eta_decreases_with_the_wall_clock_during_a_seconds_run():
    runs = history_like()
    index = 6  # the LSTM
    measured = Measured()
    state = RunState(started=0.0).after({"phase": "train"}, 10.0)
    etas = [estimate_remaining(runs, index, state, t, measured) for t in (10.0, 100.0, 300.0)]
    assert etas[0] > etas[1] > etas[2]
    assert etas[2] >= seconds_left(runs, index) - 290
    # an evaluation event: training seconds come from it, then the clock again
    evaluated = state.after(
        {"phase": "train", "tokens": 1_000_000, "tokens_per_s": 5000.0, "valid_ppl": 300.0},
        220.0,  # 200 s of training + a 10-s evaluation
    )
    assert estimate_remaining(runs, index, evaluated, 320.0, measured) < etas[1]
    assert budget_progress(runs[index], evaluated, 320.0, measured) == "300 s / 540 s (56%)"
    finished = evaluated.after({"phase": "valid"}, 560.0)
    assert budget_progress(runs[index], finished, 570.0, measured) is None
    later = estimate_remaining(runs, index + 1, None, 570.0, measured)
    left = estimate_remaining(runs, index, finished, 570.0, measured) - later
    assert 0 < left < 540  # the final evaluations only: 10 + 540 x 1.25 - 570 s
    assert estimate_remaining(runs, index, finished, 700.0, measured) == later


def test_token_budget_uses_the_measured_rate():
    run = fake_run("lstm", True, tokens=3_250_000)
    measured = Measured()
    fresh = estimate_remaining([run], 0, None, 0.0, measured)
    assert fresh >= 3_250_000 / DEFAULT_TOKENS_PER_S
    state = RunState(started=0.0).after({"phase": "train"}, 5.0)
    slow = state.after({"tokens": 325_000, "tokens_per_s": 1000.0, "valid_ppl": 400.0}, 400.0)
    assert estimate_remaining([run], 0, slow, 400.0, measured) > 2_925_000 / 1000.0
    assert budget_progress(run, slow, 400.0, measured) == "~325 k / 3.25 M tokens (10%)"
    # 100 s later at 1000 tok/s: about 425 k tokens
    assert budget_progress(run, slow, 500.0, measured) == "~425 k / 3.25 M tokens (13%)"


def test_epoch_budget_in_published_tokens():
    run = fake_run("lstm", True, epochs=6)
    state = RunState(started=0.0).after({"phase": "train"}, 0.0)
    state = state.after({"tokens": 929_589, "tokens_per_s": 5000.0}, 200.0)
    assert budget_progress(run, state, 200.0, Measured()) == "~1.0 / 6 epochs (17%)"


def test_count_runs_use_earlier_records_and_skipped_gpu_runs_cost_nothing():
    kn5 = fake_run("kn5", False)
    gpu = fake_run("lstm", True, device="cuda", seconds=540)
    earlier = [
        {"config_hash": kn5.config_hash, "status": "ok", "train_seconds": 40.0, "eval_seconds": 2},
        {"config_hash": "other", "status": "failed", "train_seconds": None},
    ]
    measured = measured_from_records(earlier, cuda=False)
    assert measured.seconds == {kn5.config_hash: 42.0}
    assert estimate_remaining([kn5, gpu], 0, None, 0.0, measured) == pytest.approx(
        42.0 + measured.count_setup
    )
    assert estimate_remaining([fake_run("kn3", False)], 0, None, 0.0, Measured()) >= (
        DEFAULT_COUNT_SECONDS
    )


def planned_display(runs):
    """A plain display over `runs`, on a fake clock at 0 s."""
    clock = FakeClock(0.0)
    display = SuiteDisplay(len(runs), Console(file=io.StringIO()), live=False, clock=clock)
    display.set_plan(runs)
    return clock, display


def test_finished_runs_teach_the_evaluation_share():
    runs = [fake_run("lstm", True, seconds=100), fake_run("rnn", True, seconds=100)]
    clock, display = planned_display(runs)
    display.start_run(0, "ptb lstm stream")
    clock.now = 210.0  # 10 s setup, 100 s training, 100 s of evaluations
    display.end_run({"status": "ok", "train_seconds": 100.0, "eval_seconds": 5.0})
    assert display.measured.eval_share == pytest.approx(1.0)
    assert display.eta() == pytest.approx(210.0)


def test_plain_display_prints_on_its_timer_without_events():
    out = io.StringIO()
    runs = [fake_run("lstm", True, seconds=540)]
    display = SuiteDisplay(1, Console(file=out, width=200), live=False, plain_interval=0.05)
    display.set_plan(runs)
    with display:
        display.start_run(0, "ptb lstm stream")
        display.event({"phase": "train"})
        deadline = time.monotonic() + 30
        while out.getvalue().count("[run 1/1]") < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    lines = [line for line in out.getvalue().splitlines() if line.startswith("[run 1/1]")]
    assert len(lines) >= 3  # the start line, then timer lines with no event between
    assert "s / 540 s (" in lines[-1] and "ETA " in lines[-1]
    assert display._timer is None  # stopped on exit


def test_live_display_renders_from_the_clock():
    clock = FakeClock(0.0)
    console = Console(file=io.StringIO(), force_terminal=True, width=200)
    display = SuiteDisplay(1, console, clock=clock)
    display.set_plan([fake_run("lstm", True, seconds=540)])
    with display:
        display.start_run(0, "ptb lstm stream")
        display.event({"phase": "train"})
        clock.now = 54.0
        first = display._live.get_renderable().plain
        clock.now = 108.0
        second = display._live.get_renderable().plain
    assert "54 s / 540 s (10%)" in first and "108 s / 540 s (20%)" in second


def test_a_token_run_past_its_estimate_before_any_evaluation_is_not_done():
    run = fake_run("lstm", True, tokens=20_000)
    measured = Measured()
    estimate = 20_000 / DEFAULT_TOKENS_PER_S  # 4 s of training at the default rate
    state = RunState(started=0.0).after({"phase": "train"}, 10.0)
    assert budget_progress(run, state, 10.0 + 30, measured) == "~19.8 k / 20 k tokens (99%)"
    # 30 s of training, no evaluation yet: assumed half done, not finished
    left = estimate_remaining([run], 0, state, 40.0, measured)
    assert left == pytest.approx(30.0 * (1 + measured.eval_share))
    assert left > estimate
    evaluated = state.after({"tokens": 20_000, "tokens_per_s": 500.0, "valid_ppl": 900.0}, 50.0)
    assert budget_progress(run, evaluated, 55.0, measured) == "~20 k / 20 k tokens (100%)"


def test_a_finished_neural_run_lends_its_rate_to_the_next_model():
    runs = [fake_run("mlp", True, tokens=20_000), fake_run("lstm", True, tokens=20_000)]
    clock, display = planned_display(runs)
    display.start_run(0, "ptb mlp stream")
    clock.now = 60.0
    display.end_run(
        {"status": "ok", "corpus": "ptb", "model": "mlp", "device": "cpu", "train_seconds": 20.0}
        | {"eval_seconds": 5.0, "train_tokens_per_s": 1000.0}
    )
    assert display.eta() == pytest.approx(10.0 + 20.0 * (1 + display.measured.eval_share))


def test_the_token_budgets_last_evaluation_ends_training():
    run = fake_run("lstm", True, tokens=20_000)
    measured = Measured()
    state = RunState(started=0.0).after({"phase": "train"}, 10.0)
    state = state.after({"tokens": 20_000, "tokens_per_s": 1000.0, "valid_ppl": 900.0}, 35.0)
    # 20 s of training: the final evaluations are what is left
    left = estimate_remaining([run], 0, state, 35.0, measured)
    assert left == pytest.approx(10.0 + 20.0 * (1 + measured.eval_share) - 35.0)
