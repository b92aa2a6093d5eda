"""Run planned runs one process each, append each record as it ends, resume where a suite stopped.

A crash, NaN or out-of-memory kill in one run becomes a `failed` record and the suite goes on;
records already appended are never rewritten.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

from .execute import base_record
from .plan import PlannedRun
from .progress import SuiteDisplay
from .results import RunRecord, append_record, latest_by_config, read_records, restore

RESULTS_ROOT = Path("results")
RECORDS_FILE = "runs.jsonl"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# glibc's malloc returns big blocks to the OS and maps them afresh, so every training step's
# logits (28 MB for the pytorch/examples LSTM) page-fault in again: about 15% of a CPU step.
# Keeping freed memory (PyTorch's CPU tuning guide suggests jemalloc or tcmalloc for the same
# reason) removes that. A user's own GLIBC_TUNABLES wins.
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296"


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname().split(".")[0]) or "host"


def default_out_dir(suite: str, root: Path = RESULTS_ROOT) -> Path:
    return root / suite / f"{_host()}-{datetime.now().strftime('%Y-%m-%d')}"


def latest_out_dir(suite: str, root: Path = RESULTS_ROOT) -> Path | None:
    """The newest output folder of `suite` on this host, for `--resume` without `--out`."""
    candidates = sorted((root / suite).glob(f"{_host()}-*/{RECORDS_FILE}"))
    return candidates[-1].parent if candidates else None


def make_run_id(run: PlannedRun) -> str:
    corpus = re.sub(r"[^A-Za-z0-9]+", "_", Path(run.spec.corpus).name).strip("_") or "corpus"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")[:-3]
    return f"{corpus}.{run.spec.model}.{run.spec.mode}.{run.config_hash[:8]}.{stamp}"


def child_env(threads: int) -> dict:
    env = dict(os.environ)
    for name in THREAD_VARIABLES:
        env[name] = str(threads)
    env.setdefault("GLIBC_TUNABLES", MALLOC_TUNABLES)
    return env


def run_in_child(run: PlannedRun, run_id: str, out_dir: Path, data_dir, on_event) -> RunRecord:
    logs = out_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{run_id}.log"
    with tempfile.TemporaryDirectory(prefix="lmbench-") as tmp:
        job_path, record_path = Path(tmp) / "job.json", Path(tmp) / "record.json"
        job_path.write_text(
            json.dumps(
                {
                    "spec": asdict(run.spec),
                    "suite": run.suite,
                    "run_id": run_id,
                    "out_dir": str(out_dir),
                    "data_dir": str(data_dir) if data_dir else None,
                    "config_hash": run.config_hash,
                    "target_ppl": run.target_ppl,
                    "target_source": run.target_source,
                }
            )
        )
        with open(log_path, "w") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "lmbench.worker", str(job_path), str(record_path)],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=child_env(run.threads),
            )
            try:
                for line in child.stdout:
                    try:
                        on_event(json.loads(line))
                    except json.JSONDecodeError:
                        log.write(line)
                returncode = child.wait()
            except BaseException:  # Ctrl-C: stop the child too; appended records stay
                child.kill()
                child.wait()
                raise
        if record_path.exists():
            return RunRecord(**json.loads(record_path.read_text()))
    record = base_record(run, run_id)
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    if returncode < 0:
        # SIGKILL is what the kernel's out-of-memory killer sends; others came from outside
        hint = " (out of memory?)" if -returncode == 9 else ""
        reason = f"killed by signal {-returncode}{hint}"
    else:
        reason = f"exited with status {returncode}"
    last = lines[-1].strip() if lines else "no output"
    record.error = f"worker {reason}: {last} (log: {log_path})"
    return record


TARGET_MODEL = "kn5"


def with_target(run: PlannedRun, records: list[dict]) -> PlannedRun:
    """`run` with the time-to-target yardstick: the valid perplexity of the newest ok `kn5` run
    on the same corpus and mode among `records` (a suite lists kn5 first)."""
    matches = [
        r
        for r in records
        if r["model"] == TARGET_MODEL
        and r["status"] == "ok"
        and (r["corpus"], r["mode"]) == (run.spec.corpus, run.spec.mode)
        and not (r.get("extra") or {}).get("eval_slice_tokens")
        and not (r.get("budget") or {}).get("limit")
    ]
    if not matches:
        return run
    best = matches[-1]
    return replace(
        run,
        target_ppl=best["valid_ppl"],
        target_source=f"{TARGET_MODEL} valid perplexity, run {best['run_id']}",
    )


def run_planned(
    runs: list[PlannedRun],
    out_dir: Path,
    data_dir=None,
    resume: bool = False,
    display: SuiteDisplay | None = None,
) -> list[dict]:
    """Execute `runs` in order; with `resume`, keep earlier ok/skipped records of the same config."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jsonl = out_dir / RECORDS_FILE
    existing = read_records(jsonl) if jsonl.exists() else []
    previous = latest_by_config(existing) if resume else {}
    kept = {h: r for h, r in previous.items() if r["status"] in ("ok", "skipped")}
    todo = [run for run in runs if run.config_hash not in kept]
    display = display or SuiteDisplay(len(todo))
    display.total = len(todo)
    results: dict[str, dict] = {}
    with display:
        if kept:
            display.note(f"resuming {jsonl}: {len(runs) - len(todo)} runs kept, {len(todo)} to run")
        for index, run in enumerate(todo):
            run = with_target(run, [*existing, *results.values()])
            display.start_run(index, f"{run.spec.corpus} {run.spec.model} {run.spec.mode}")
            record = run_in_child(run, make_run_id(run), out_dir, data_dir, display.event)
            append_record(jsonl, record)
            results[run.config_hash] = restore(json.loads(record.to_json()))
            display.end_run(results[run.config_hash])
    return [kept.get(run.config_hash) or results[run.config_hash] for run in runs]
