"""Run planned runs one process each, append each record as it ends, resume where a suite stopped.

A crash, NaN or out-of-memory kill in one run becomes a `failed` record and the suite goes on;
records already appended are never rewritten.
Ctrl-C or SIGTERM stops the suite after the running worker has recorded its run as
`interrupted` (training ends, the best state so far is evaluated); resume reruns it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from contextlib import nullcontext
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path

from . import distributed, measure, records
from .errors import DiskFull
from .execute import base_record, has_branch_state
from .hostlock import folder_lock, pid_alive, timed_run_lock
from .plan import PlannedRun
from .progress import SuiteDisplay
from .records import (
    RECORDS_FILE,
    RunRecord,
    append_record,
    latest_by_config,
    machine_id,
    read_records,
    restore,
)

RESULTS_ROOT = Path("results")
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
    """The newest output folder of `suite` on this host holding records of this machine, for
    `--resume` without `--out`. A folder of a look-alike host (same name, another CPU) is not
    resumed: its timings are another machine's."""
    here = measure.machine_fingerprint()["id"]
    candidates = [
        path.parent
        for path in sorted((root / suite).glob(f"{_host()}-*/{RECORDS_FILE}"))
        if any(machine_id(r) == here for r in read_records(path, quiet=True))
    ]
    return candidates[-1] if candidates else None


def make_run_id(run: PlannedRun) -> str:
    return records.make_run_id(run.spec.corpus, run.spec.model, run.spec.mode, run.config_hash)


def child_env(threads: int) -> dict:
    env = dict(os.environ)
    for name in THREAD_VARIABLES:
        env[name] = str(threads)
    env.setdefault("GLIBC_TUNABLES", MALLOC_TUNABLES)
    env["PYTHONUNBUFFERED"] = "1"  # the log keeps everything up to a kill
    return env


STOP_WAIT_SECONDS = 120.0  # an interrupted worker evaluates its best state, then records it
ABORT_WAIT_SECONDS = 10.0  # after a second Ctrl-C it only writes what it has


class SuiteInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during a run: `record` is what its worker measured, appended
    before the suite stops."""

    def __init__(self, record: RunRecord):
        super().__init__()
        self.record = record


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM to the suite stops it as Ctrl-C does: the running worker records its run."""

    def handle(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


JOB_PREFIX = "lmbench-job-"  # then the suite process's pid: a dead owner's folder is stale


def job_folder() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix=f"{JOB_PREFIX}{os.getpid()}-")


def remove_stale_jobs() -> None:
    """Job folders whose suite process died without cleaning up (SIGKILL)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{JOB_PREFIX}*"):
        pid = folder.name[len(JOB_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def stop_child(child: subprocess.Popen, on_event) -> int:
    """Forward the interrupt and wait (bounded) while the worker evaluates and records its run;
    a second Ctrl-C asks it to abort; past the waits, kill it."""
    on_event({"phase": "stopping"})
    for wait in (STOP_WAIT_SECONDS, ABORT_WAIT_SECONDS):
        try:
            child.send_signal(signal.SIGINT)
            child.communicate(timeout=wait)
            return child.returncode
        except KeyboardInterrupt:
            continue
        except subprocess.TimeoutExpired:
            break
    child.kill()
    child.wait()
    return child.returncode


def run_in_child(run: PlannedRun, run_id: str, out_dir: Path, data_dir, on_event) -> RunRecord:
    """The run's record from its worker process. Ctrl-C: the worker stops training, records
    what it measured, and `SuiteInterrupted` carries that record."""
    log_path = out_dir / records.artifact_path("log", run_id)
    rank = distributed.from_env().rank
    if rank:  # under torchrun, each rank's worker keeps its own log
        log_path = log_path.with_name(f"{run_id}.rank{rank}.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    stopped = False
    with job_folder() as tmp:
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
                    "parent_pid": os.getpid(),  # the worker dies with it
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
                start_new_session=True,  # a terminal's Ctrl-C reaches it once, through us
            )
            try:
                for line in child.stdout:
                    try:
                        on_event(json.loads(line))
                    except json.JSONDecodeError:
                        log.write(line)
                returncode = child.wait()
            except KeyboardInterrupt:
                returncode, stopped = stop_child(child, on_event), True
            except BaseException:
                child.kill()
                child.wait()
                raise
        if record_path.exists():
            record = RunRecord(**json.loads(record_path.read_text()))
        else:
            record = lost_record(run, run_id, returncode, log_path, stopped)
    if stopped:
        raise SuiteInterrupted(record)
    return record


def lost_record(
    run: PlannedRun, run_id: str, returncode: int, log_path: Path, stopped: bool = False
) -> RunRecord:
    """A `failed` record for a worker that died before writing one, with its last log line;
    `interrupted` when we stopped it (killed past the wait, or before it could record)."""
    record = base_record(run, run_id)
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    if stopped:
        record.status = "interrupted"
        reason = f"stopped by Ctrl-C or SIGTERM, exit {returncode}"
    elif returncode < 0:
        # SIGKILL is what the kernel's out-of-memory killer sends; others came from outside
        hint = " (out of memory?)" if -returncode == 9 else ""
        reason = f"killed by signal {-returncode}{hint}"
    else:
        reason = f"exited with status {returncode}"
    last = lines[-1].strip() if lines else "no output"
    record.error = f"worker {reason}: {last} (log: {log_path})"
    return record


def run_follower(run: PlannedRun, out_dir: Path, data_dir=None) -> RunRecord:
    """A torchrun rank other than 0: its worker trains its share of the run and the leader
    records it; the follower writes nothing but its log."""
    return run_in_child(run, make_run_id(run), Path(out_dir), data_dir, lambda event: None)


def with_target(run: PlannedRun, earlier: list[dict]) -> PlannedRun:
    """`run` with its time-to-target yardstick (records.target_run) among `earlier` records."""
    target = records.target_run(dataclasses.asdict(base_record(run, "")), earlier)
    if target is None:
        return run
    return replace(
        run,
        target_ppl=target["valid_ppl"],
        target_source=f"{records.TARGET_MODEL} valid perplexity, run {target['run_id']}",
    )


def resumable(
    existing: list[dict], machines: set[str], display: SuiteDisplay, where: str | None = None
) -> dict[str, dict]:
    """The ok or skipped records measured on one of `machines` (fingerprint ids), latest per
    config: what resume keeps. Those of another fingerprint (or none: v1) are measured afresh,
    and the display says so; `where` names the machines (default: this one's description)."""
    where = where or f"this machine is {measure.describe_machine(measure.machine_fingerprint())}"
    kept = ("ok", "skipped")
    others = {
        machine_id(r): r.get("machine")
        for r in existing
        if machine_id(r) not in machines and r["status"] in kept
    }
    for fingerprint in others.values():
        display.note(
            f"not resumed: records of {measure.describe_machine(fingerprint)}; {where}, "
            "its runs are measured afresh"
        )
    latest = latest_by_config([r for r in existing if machine_id(r) in machines])
    return {h: r for h, r in latest.items() if r["status"] in kept}


def with_branch_states(
    kept: dict[str, dict], runs: list[PlannedRun], out_dir: Path, display: SuiteDisplay
) -> dict[str, dict]:
    """`kept` less each trunk whose saved state for a branch still to run is not in `out_dir`:
    branch states are never committed, so in a fresh clone the trunk is trained again first."""
    kept = dict(kept)
    for run in runs:
        trunk = kept.get(run.config.get("trunk_config_hash"))
        if trunk is None or run.config_hash in kept:
            continue
        if not has_branch_state(trunk, run.spec.budget_tokens, out_dir):
            display.note(
                f"not resumed: trunk {trunk['run_id']}, whose state for the "
                f"{run.spec.budget_tokens:,}-token branch is not in {out_dir} "
                "(branch states are never committed): it is trained again first"
            )
            del kept[trunk["config_hash"]]
    return kept


def run_planned(
    runs: list[PlannedRun],
    out_dir: Path,
    data_dir=None,
    resume: bool = False,
    display: SuiteDisplay | None = None,
    wait: bool = True,
) -> list[dict]:
    """Execute `runs` in order; with `resume`, keep earlier ok/skipped records of the same config.
    Holds OUT/.lock (another writer there: `Busy`) and, around the run loop, the host-wide
    timed-run lock (held elsewhere: wait for it, or `Busy` without `wait`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jsonl = out_dir / RECORDS_FILE
    remove_stale_jobs()
    existing = read_records(jsonl) if jsonl.exists() else []
    display = display or SuiteDisplay(len(runs))
    here = measure.machine_fingerprint()["id"]
    mine = [r for r in existing if machine_id(r) == here]
    kept = resumable(existing, {here}, display) if resume else {}
    kept = with_branch_states(kept, runs, out_dir, display)
    todo = [run for run in runs if run.config_hash not in kept]
    display.set_plan(todo, mine)  # the ETA: planned budgets, this machine's timings
    results: dict[str, dict] = {}
    host_lock = timed_run_lock(out_dir, wait) if todo else nullcontext()
    with folder_lock(out_dir), host_lock, display:
        if kept:
            display.note(f"resuming {jsonl}: {len(runs) - len(todo)} runs kept, {len(todo)} to run")
        for index, run in enumerate(todo):
            run = with_target(run, [*existing, *results.values()])
            display.start_run(index, f"{run.spec.corpus} {run.spec.model} {run.spec.mode}")
            try:
                record = run_in_child(run, make_run_id(run), out_dir, data_dir, display.event)
            except SuiteInterrupted as stop:  # keep what the worker measured, then stop
                append_record(jsonl, stop.record)
                raise
            append_record(jsonl, record)
            if record.extra.get("disk_full"):  # the next run would fail the same way
                raise DiskFull(f"{record.error}; {records.intact(jsonl)}")
            results[run.config_hash] = restore(json.loads(record.to_json()))
            display.end_run(results[run.config_hash])
    return [kept.get(run.config_hash) or results[run.config_hash] for run in runs]
