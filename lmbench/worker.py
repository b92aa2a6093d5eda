"""Entry point of the child process that executes one run: `python -m lmbench.worker JOB RECORD`.

JOB is a JSON file naming the run spec; the child plans it again (cheap, deterministic) and checks
that it arrives at the parent's config hash. Progress events go to stdout as JSON lines for the
parent's display; the record is written to RECORD. Warnings and tracebacks go to stderr, which
the parent keeps in the run's log.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from .execute import execute
from .plan import RunSpec, plan


def main(job_path: str, record_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    run = plan(RunSpec(**job["spec"]), job["suite"], job["data_dir"])
    run = replace(run, target_ppl=job.get("target_ppl"), target_source=job.get("target_source"))
    if run.config_hash != job["config_hash"]:
        raise RuntimeError(
            f"config hash drifted between planner and worker: {job['config_hash']} "
            f"!= {run.config_hash}"
        )

    def emit(event: dict) -> None:
        print(json.dumps(event, default=float), flush=True)

    record = execute(run, job["run_id"], Path(job["out_dir"]), job["data_dir"], emit)
    Path(record_path).write_text(record.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
