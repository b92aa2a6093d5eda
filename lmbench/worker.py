"""Entry point of the child process that executes one run: `python -m lmbench.worker JOB RECORD`.

JOB is a JSON file naming the run spec; the child plans it again (cheap, deterministic) and checks
that it arrives at the parent's config hash. Progress events go to stdout as JSON lines for the
parent's display; the record is written to RECORD. Progress lines, warnings and tracebacks go
to stderr, which the parent keeps in the run's log.

SIGTERM or SIGINT stops training at the next step; the run is still evaluated and recorded as
`interrupted` (see `interrupt`). The worker runs in its own session, so a terminal's Ctrl-C
reaches only the parent, which forwards one signal; if the parent dies, the worker is killed.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

from . import interrupt
from .execute import execute
from .plan import RunSpec, plan
from .records import write_bytes

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int | None) -> None:
    """Linux: SIGKILL this worker when the suite process dies (a kill of its process group
    misses a worker in its own session): no orphan trains on beside a resumed suite."""
    try:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the worker runs on to its budget
        return
    if parent is not None and os.getppid() != parent:  # it died before prctl
        os.kill(os.getpid(), signal.SIGKILL)


def log(message: str) -> None:
    """One line in the run's log: a killed worker's log shows how far it got."""
    try:  # best effort: a full disk under logs/ must not fail the run it describes
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
    except OSError:
        pass


def write_record(record_path: str, text: str) -> None:
    """Whole or not at all: a late signal cannot leave half a record for the parent."""
    for signum in interrupt.SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    write_bytes(Path(record_path), text.encode())


def main(job_path: str, record_path: str) -> int:
    interrupt.install()
    job = json.loads(Path(job_path).read_text())
    die_with_parent(job.get("parent_pid"))
    log(f"worker {os.getpid()}: run {job['run_id']}")
    run = plan(RunSpec(**job["spec"]), job["suite"], job["data_dir"])
    run = replace(run, target_ppl=job.get("target_ppl"), target_source=job.get("target_source"))
    if run.config_hash != job["config_hash"]:
        raise RuntimeError(
            f"config hash drifted between planner and worker: {job['config_hash']} "
            f"!= {run.config_hash}"
        )

    def emit(event: dict) -> None:
        print(json.dumps(event, default=float), flush=True)
        log(
            " ".join(
                f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in event.items()
            )
        )

    record = execute(run, job["run_id"], Path(job["out_dir"]), job["data_dir"], emit)
    write_record(record_path, record.to_json())
    log(f"recorded: {record.status}" + (f": {record.error}" if record.error else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
