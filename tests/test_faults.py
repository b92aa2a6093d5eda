"""Fault injection: a small suite SIGKILLed (its whole process group) at points drawn from a
seeded RNG, resumed until done, must end with exactly one ok record per config, every line a
record, count-model perplexities equal to an uninterrupted run's, and no job folder left."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from lmbench.records import read_records, scan

from .conftest import write_corpus

SUITE_SCRIPT = """
import sys
from lmbench.plan import RunSpec, plan
from lmbench.progress import SuiteDisplay
from lmbench.runner import run_planned

corpus, out = sys.argv[1], sys.argv[2]
specs = [RunSpec(corpus, m) for m in ("add1-2", "kn3", "wb3")]
specs.append(RunSpec(corpus, "rnn", {"hidden": "8", "embed": "8", "batch_size": "4",
                                     "bptt": "8"}, budget_tokens=400))
runs = [plan(spec, suite="faults") for spec in specs]
run_planned(runs, out, resume=True, display=SuiteDisplay(len(runs), live=False))
"""
KILLS = 3
SEED = 20261129


def _corpus(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    zipf = 1 / np.arange(1, len(words) + 1)  # rare words too: Kneser-Ney's discounts exist

    def text(lines):
        return "".join(
            " ".join(rng.choice(words, size=8, p=zipf / zipf.sum())) + "\n" for _ in range(lines)
        )

    return write_corpus(tmp_path / "corpus", text(300), text(40), text(40))


def _start(script: Path, corpus: Path, out: Path) -> subprocess.Popen:
    log = open(script.parent / "suite.log", "a")  # noqa: SIM115 - the child writes it
    return subprocess.Popen(
        [sys.executable, str(script), str(corpus), str(out)],
        stdout=log,
        stderr=subprocess.STDOUT,
        # Its own process group, killed whole; a worker (in a session of its own, so that a
        # terminal's Ctrl-C reaches it once, through the suite) dies with its parent.
        start_new_session=True,
        env={**os.environ, "TMPDIR": str(script.parent / "tmp")},  # job folders: ours only
    )


def _finish(child: subprocess.Popen, script: Path) -> None:
    code = child.wait(timeout=120)
    assert code == 0, (script.parent / "suite.log").read_text()[-3000:]


def _job_folders(root: Path) -> list[str]:
    return [p.name for p in root.glob("lmbench-*") if p.is_dir()]


def test_sigkill_at_random_points_then_resume(tmp_path):
    script = tmp_path / "suite.py"
    script.write_text(SUITE_SCRIPT)
    corpus = _corpus(tmp_path)
    (tmp_path / "tmp").mkdir()
    reference = _start(script, corpus, tmp_path / "reference")
    _finish(reference, script)

    out = tmp_path / "killed"
    rng = np.random.default_rng(SEED)
    for delay in rng.uniform(0.5, 5.0, size=KILLS):
        child = _start(script, corpus, out)
        time.sleep(delay)
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    final = _start(script, corpus, out)
    _finish(final, script)

    result = scan(out / "runs.jsonl")
    assert result.bad_lines == []  # every line parses
    lines = (out / "runs.jsonl").read_text().splitlines()
    assert all(isinstance(json.loads(line), dict) for line in lines)
    ok = [r for r in result.records if r["status"] == "ok"]
    assert sorted(r["model"] for r in ok) == sorted(set(r["model"] for r in ok))
    expected = {r["model"]: r for r in read_records(tmp_path / "reference" / "runs.jsonl")}
    assert all(r["status"] == "ok" for r in expected.values())
    assert {r["model"] for r in ok} == set(expected)  # one ok record per config
    for r in ok:
        if r["family"] != "rnn":
            assert r["test_ppl"] == expected[r["model"]]["test_ppl"], r["model"]
    assert _job_folders(tmp_path / "tmp") == []  # a killed run's is cleaned at the next start
