"""A stop signal keeps what was measured: training ends at the next step, the best state is
evaluated, the record says `interrupted`; Ctrl-C on a suite appends it and exits 130."""

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from lmbench import interrupt, runner
from lmbench.execute import execute
from lmbench.models.base import Budget
from lmbench.plan import RunSpec, plan
from lmbench.report import tables
from lmbench.report.runs import Runs
from lmbench.runner import JOB_PREFIX, remove_stale_jobs

from .conftest import REPO, segments, write_corpus
from .test_neural import build, tiny_text


@pytest.fixture
def stop_handlers():
    """The worker's handlers in this process, restored afterwards."""
    saved = {signum: signal.getsignal(signum) for signum in interrupt.SIGNALS}
    interrupt.install()
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)
    interrupt.clear()


def signal_self(signum: int) -> None:
    os.kill(os.getpid(), signum)
    for _ in range(100):  # the handler runs at the next bytecode; this only bounds the wait
        time.sleep(0.001)


def test_a_stop_signal_ends_training_at_the_next_step(stop_handlers):
    train = segments(tiny_text(sentences=60), "stream", 20)
    model = build("rnn", 20, eval_every_tokens=1)  # an evaluation after every step
    seen = []

    def on_eval(tokens: int) -> float:
        seen.append(tokens)
        if len(seen) == 2:
            signal_self(signal.SIGTERM)  # mid-evaluation: only sets the flag
        return 10.0 - len(seen)

    report = model.fit(train, Budget(epochs=1000), on_eval)
    assert report.ended_by == "interrupted"
    assert report.notes["steps"] == len(seen) == 3  # one more step, evaluated, then the end
    assert report.notes["best_valid_at_tokens"] == seen[-1]


def test_outside_a_polling_loop_or_at_a_second_signal_it_raises(stop_handlers):
    with interrupt.polling():
        signal_self(signal.SIGTERM)
        assert interrupt.requested()
        with pytest.raises(interrupt.Interrupted):  # the second: abort at once
            signal_self(signal.SIGTERM)
    interrupt.clear()
    with pytest.raises(interrupt.Interrupted, match="SIGINT"):
        signal_self(signal.SIGINT)


def test_a_count_model_interrupted_mid_fit_records_what_it_has(
    stop_handlers, tiny_corpus, tmp_path, monkeypatch
):
    monkeypatch.setattr("lmbench.measure.calibrate", lambda device: {"matmul_gflops": 1.0})

    def emit(event: dict) -> None:
        if event["phase"] == "train":
            signal_self(signal.SIGTERM)

    run = plan(RunSpec(str(tiny_corpus), "kn3"), "t")
    record = execute(run, "r", tmp_path, emit=emit)
    assert record.status == "interrupted"
    assert record.error == "interrupted by SIGTERM during train"
    assert record.budget["ended_by"] == "interrupted"
    assert record.vocab_size and record.test_ppl is None


def test_the_report_lists_interrupted_runs_with_their_last_curve_point():
    stopped = {"config_hash": "h", "status": "interrupted", "test_ppl": 300.0, "family": "lstm"}
    curve = [{"tokens": 1000, "valid_ppl": 400.0}, {"tokens": 2000, "valid_ppl": 312.5}]
    record = {
        **stopped,
        **{"suite": "s", "corpus": "ptb", "model": "lstm", "mode": "stream"},
        **{"error": "interrupted by SIGTERM: training stopped early", "curve": curve},
    }
    text = tables.failures(Runs([record]))
    assert "**interrupted**: interrupted by SIGTERM" in text
    assert "(last curve point: 2,000 tokens, valid ppl 312.50)" in text


def test_stale_job_folders_go_and_live_ones_stay(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = _dead_pid()
    (tmp_path / f"{JOB_PREFIX}{dead}-abc").mkdir()
    (tmp_path / f"{JOB_PREFIX}{os.getpid()}-def").mkdir()
    remove_stale_jobs()
    assert [p.name for p in tmp_path.iterdir()] == [f"{JOB_PREFIX}{os.getpid()}-def"]


def test_a_worker_that_does_not_stop_is_killed_after_the_wait(monkeypatch):
    monkeypatch.setattr(runner, "STOP_WAIT_SECONDS", 0.5)
    deaf = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print(1, flush=True)"
    child = subprocess.Popen(
        [sys.executable, "-c", deaf + "; time.sleep(60)"], stdout=subprocess.PIPE
    )
    child.stdout.readline()  # its handler is in place
    started = time.monotonic()
    assert runner.stop_child(child, lambda event: None) == -signal.SIGKILL
    assert time.monotonic() - started < 10


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


# -- end to end: `lmbench run` in a subprocess, its worker signalled mid-training ----------


def long_corpus(folder: Path) -> Path:
    """A few hundred lines: a tiny RNN trains on it for its whole budget."""
    rng = random.Random(0)
    words = "the cat dog sat ran on a mat big small red fox bird sang over under".split()

    def text(lines: int) -> str:
        return "".join(" ".join(rng.choices(words, k=8)) + "\n" for _ in range(lines))

    return write_corpus(folder, text(600), text(30), text(30))


def start_suite(tmp_path: Path) -> subprocess.Popen:
    argv = ["run", "--corpus", str(long_corpus(tmp_path / "c")), "--model", "rnn"]
    argv += ["--budget-seconds", "60", "--out", str(tmp_path / "out")]
    for setting in ("hidden=16", "batch_size=4", "optimizer=adamw", "eval_every_tokens=500"):
        argv += ["--set", setting]
    (tmp_path / "tmp").mkdir()
    # job folders (checked after) and the host lock: private to the test
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "LMBENCH_LOCK_DIR": str(tmp_path / "tmp")}
    return subprocess.Popen(
        [sys.executable, "-m", "lmbench.cli", *argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # A background job of a non-interactive shell (how CI may start us) inherits SIGINT
        # ignored, and Python then leaves it ignored: give the suite a terminal's Ctrl-C.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_training(out: Path, suite: subprocess.Popen) -> None:
    """Until the worker's log shows two evaluations (a curve to keep)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and suite.poll() is None:
        logs = list((out / "logs").glob("*.log"))
        if logs and logs[0].read_text().count("valid_ppl=") >= 2:
            return
        time.sleep(0.2)
    suite.kill()
    pytest.fail(f"training did not start: {suite.communicate()[1][-2000:]}")


def worker_pid(parent: int) -> int:
    children = [
        int(pid)
        for task in Path(f"/proc/{parent}/task").iterdir()
        for pid in (task / "children").read_text().split()
    ]
    workers = [p for p in children if b"lmbench.worker" in Path(f"/proc/{p}/cmdline").read_bytes()]
    assert len(workers) == 1, children
    return workers[0]


def check_interrupted_record(tmp_path: Path, reason: str) -> dict:
    lines = (tmp_path / "out" / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["status"] == "interrupted"
    assert record["error"].startswith(reason)
    assert record["budget"]["ended_by"] == "interrupted"
    assert len(record["curve"]) >= 2 and record["train_tokens"] > 0
    assert record["valid_ppl"] and record["test_ppl"]  # the best state, evaluated
    log = next((tmp_path / "out" / "logs").glob("*.log")).read_text()
    assert "phase=test" in log and "recorded: interrupted" in log
    assert list((tmp_path / "tmp").glob(f"{JOB_PREFIX}*")) == []  # none outlives its run
    return record


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
def test_sigterm_to_the_worker_records_an_interrupted_run(tmp_path):
    suite = start_suite(tmp_path)
    wait_for_training(tmp_path / "out", suite)
    assert len(list((tmp_path / "tmp").glob(f"{JOB_PREFIX}{suite.pid}-*"))) == 1
    os.kill(worker_pid(suite.pid), signal.SIGTERM)
    _, err = suite.communicate(timeout=60)
    assert suite.returncode == 1, err  # the suite went on, and says a run did not finish
    check_interrupted_record(tmp_path, "interrupted by SIGTERM")


def test_ctrl_c_on_the_suite_appends_the_interrupted_run_and_exits_130(tmp_path):
    suite = start_suite(tmp_path)
    wait_for_training(tmp_path / "out", suite)
    suite.send_signal(signal.SIGINT)  # the parent forwards it to the worker
    _, err = suite.communicate(timeout=60)
    assert suite.returncode == 130, err
    assert "interrupted; records already written are kept" in err
    check_interrupted_record(tmp_path, "interrupted by SIGINT")
