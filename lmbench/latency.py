"""Decoder-style query latency: one call per word, the model's state carried between calls.

A first-pass decoder extends each hypothesis by one word and asks the language model for
log p(word | that hypothesis's context): one query per extension, never a batch of text. This
times exactly that through the one interface (`querying`, `query_start`, `query`) over the
first test segments, and checks the answers against the same tokens' bulk `log_prob`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import measure
from .errors import DataError, SkipRun
from .hostlock import timed_run_lock
from .protocol import Segments
from .records import QUERIES_FILE, RECORDS_FILE, machine_id, read_records
from .restore import restore

# queries per measurement; LMBENCH_QUERIES lowers it where time is short (tests, a GPU lease)
QUERIES = int(os.environ.get("LMBENCH_QUERIES", "10000"))
MAX_SECONDS = 60.0  # a model slower than 6 ms a query stops here (the count says how many)


@dataclass(frozen=True)
class QueryLatency:
    us_per_query: float  # median over repeats of (seconds / queries)
    queries: int  # per repeat
    repeats: int
    max_abs_diff: float | None  # vs the bulk log-probs of the same tokens (None: not given)

    def as_record(self) -> dict:
        return {
            "us_per_query": self.us_per_query,
            "queries": self.queries,
            "repeats": self.repeats,
            "max_abs_diff_vs_bulk": self.max_abs_diff,
        }


def first_segments(data: Segments, queries: int) -> list[list[int]]:
    """The first segments of `data`, as Python ints, holding >= `queries` predicted tokens
    (the last one cut so the total is exactly `queries`, or all of `data` if it holds fewer)."""
    rows, total = [], 0
    for index in range(data.n_segments):
        take = min(int(data.starts[index + 1] - data.starts[index]), queries - total + 1)
        rows.append(data.ids[data.starts[index] : data.starts[index] + take].tolist())
        total += take - 1
        if total >= queries:
            break
    return rows


CHECK_EVERY = 256  # queries between looks at the clock and the stop flag


def query_pass(model, rows: list[list[int]], deadline=float("inf"), stop=None) -> list[float]:
    """Every predicted token of `rows` queried in order, a fresh state per row; ends early (what
    ran is returned) once `deadline` (a `time.perf_counter` value) passes or `stop()` is true."""
    out = []
    query = model.query
    with model.querying():
        for row in rows:
            state = model.query_start(row[0])
            for word in row[1:]:
                logp, state = query(state, word)
                out.append(logp)
                if len(out) % CHECK_EVERY == 0 and (
                    time.perf_counter() > deadline or (stop and stop())
                ):
                    return out
    return out


def query_latency(
    model,
    data: Segments,
    queries: int = QUERIES,
    repeats: int = 3,
    bulk: np.ndarray | None = None,
    max_seconds: float = MAX_SECONDS,
    stop=None,
) -> QueryLatency:
    """Microseconds per query over the first `queries` predicted tokens of `data`: the median of
    up to `repeats` timed passes after a warm-up pass (which builds lazy lookups and warms
    caches), all within `max_seconds`; a model too slow for that is timed on what its first pass
    reached. `bulk`: `model.log_prob(data)`, to check the answers; `stop()`: end early."""
    rows = first_segments(data, queries)
    wanted = sum(len(r) - 1 for r in rows)
    start = time.perf_counter()
    deadline = start + max_seconds
    first = query_pass(model, rows, deadline, stop)  # warm-up, and the answers to check
    warm_up = time.perf_counter() - start
    if len(first) < wanted:  # too slow (or stopped): time what ran
        return QueryLatency(1e6 * warm_up / max(len(first), 1), len(first), 1, diff(first, bulk))
    timings = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        done = query_pass(model, rows, deadline, stop)
        if len(done) < wanted:  # out of time: a partial pass is not a pass
            break
        timings.append((time.perf_counter() - t0) / len(done))
    if not timings:  # only the warm-up fitted: it is the figure
        timings = [warm_up / wanted]
    return QueryLatency(1e6 * float(np.median(timings)), wanted, len(timings), diff(first, bulk))


# the largest difference from bulk scoring a correct query path shows, by the arithmetic
TOLERANCE = {"float64": 1e-9, "float32": 1e-3, "bfloat16": 5e-2}


def diff(answers: list[float], bulk: np.ndarray | None) -> float | None:
    """Largest |answer - bulk| over the answered tokens: inf where one side is not finite and
    the other differs from it (NaN never matches)."""
    if bulk is None:
        return None
    answers = np.asarray(answers, dtype=np.float64)
    expected = np.asarray(bulk[: answers.size], dtype=np.float64)
    finite = np.isfinite(answers) & np.isfinite(expected)
    if not np.array_equal(answers[~finite], expected[~finite]):  # NaN != NaN: a mismatch
        return float("inf")
    return float(np.max(np.abs(answers[finite] - expected[finite]), initial=0.0))


# -- re-measuring recorded runs (their checkpoints, or exact refits) ----------------------------
def read_measurements(folder: Path) -> list[dict]:
    """Every query-latency measurement under `folder` (written by `remeasure`)."""
    found = []
    for path in sorted(Path(folder).rglob(QUERIES_FILE)):
        for line in path.read_text().splitlines():
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:  # a line torn by a kill: that run is measured again
                continue
    return found


def remeasure(dirs: list[Path], out: Path, data_dir=None, queries: int = QUERIES, note=print):
    """Query latency of every `ok` record under `dirs` whose model can be restored here, appended
    to `out`/queries.jsonl one line per run as it is measured; runs already measured there on
    this machine are skipped (so an interrupted job resumes)."""
    out.mkdir(parents=True, exist_ok=True)
    machine = measure.this_machine()
    done = {r["run_id"] for r in read_measurements(out) if (r.get("machine") or {}) == machine}
    measured = skipped = 0
    with timed_run_lock(out):
        for path in sorted(p for d in dirs for p in Path(d).rglob(RECORDS_FILE)):
            for record in read_records(path, quiet=True):
                if record.get("status") != "ok" or record.get("run_id") in done:
                    continue
                # the report uses a re-measurement only for a run recorded without one, and
                # only from the machine that made the run
                if record.get("query_us") is not None or machine_id(record) != machine["id"]:
                    continue
                if record.get("family") == "mix":  # a mix is two models' scores, no query path
                    continue
                try:
                    model, corpus = restore(record, path.parent, data_dir)
                except (DataError, SkipRun) as exc:
                    note(f"skipped {record['run_id']}: {exc}")
                    skipped += 1
                    continue
                if model.query_unavailable():
                    note(f"skipped {record['run_id']}: {model.query_unavailable()}")
                    skipped += 1
                    continue
                test = corpus.segments("test", record["mode"]).head(queries)
                result = query_latency(model, test, queries, bulk=model.log_prob(test))
                line = {
                    "run_id": record["run_id"],
                    "config_hash": record["config_hash"],
                    "source": str(path),
                    "corpus": record["corpus"],
                    "mode": record["mode"],
                    "model": record["model"],
                    "query": result.as_record(),
                    "device": model.device,
                    "machine": machine,
                    "env": measure.environment(),
                    "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                }
                with open(out / QUERIES_FILE, "a") as f:
                    f.write(json.dumps(line) + "\n")
                done.add(record["run_id"])
                measured += 1
                note(
                    f"{record['run_id']}: {result.us_per_query:.1f} us/query "
                    f"(max |diff| vs bulk {result.max_abs_diff:.2g})"
                )
    return measured, skipped
