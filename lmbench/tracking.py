"""Metrics tracked across commits, and the steps in them.

`nox -s track -- REVS` (`benchmarks/track.py`) measures commits on one machine into
`results/tracking/<fingerprint>/<commit>/`: `commit.json` (what was measured, when it was
committed), the quick suite's records (`runs.jsonl`, the results store every suite writes) and
the micro-benchmarks' pytest-benchmark JSON (`microbench.json`, its own storage format). This
module reads them back as one tidy frame and finds where a metric stepped.

A step is either a shift between the medians of the `window` commits before and after a commit,
or a run of same-direction changes from commit to commit whose total passes the limit: a 3%
slowdown in each of 5 commits passes every per-commit gate (compare's 15%, the micro-benchmarks'
20%) and adds up to 14%. The limit is `STEP_THRESHOLD` or three times the metric's own noise,
whichever is larger, so a metric that moves 10% between identical commits (a 5-second timing on a
shared VM) does not flag its noise.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .compare import calibration_key, side_calibration
from .records import read_records

COMMIT_FILE = "commit.json"
RUNS_FILE = "runs.jsonl"
MICROBENCH_FILE = "microbench.json"
STEP_THRESHOLD = 0.10  # below compare's 15%: a step over several commits has more points behind it
WINDOW = 3  # commits on each side of a median shift
NOISE_MULTIPLE = 3.0  # a step must pass this many of the metric's noise sd (on log values)

# metric: (what it is, higher is better)
METRICS = {
    "throughput": ("training tokens/s per unit of the side's calibration", True),
    "test ppl": ("test perplexity", False),
    "peak RSS MB": ("peak resident memory, MB", False),
    "microbench ms": ("micro-benchmark median, ms", False),
}


@dataclass(frozen=True)
class Step:
    fingerprint: str
    metric: str
    series: str
    commit: str  # the first commit after the step (the commit that made it)
    order: int
    change: float  # relative: after / before - 1
    kind: str  # "shift" (window medians) or "drift" (same-direction changes)
    commits: int  # how many commits the step spans
    limit: float  # the relative change it had to pass

    @property
    def verdict(self) -> str:
        better = (self.change > 0) == METRICS[self.metric][1]
        return "better" if better else "worse"


def commit_rows(folder: Path) -> list[dict]:
    """The tracked values of one measured commit (a `results/tracking/<fp>/<commit>/` folder)."""
    meta = json.loads((folder / COMMIT_FILE).read_text())
    base = {
        "fingerprint": folder.parent.name,
        "commit": meta["commit"],
        "time": meta["time"],
        "subject": meta.get("subject", ""),
    }
    rows = []
    runs = folder / RUNS_FILE
    records = [r for r in read_records(runs) if r.get("status") == "ok"] if runs.exists() else []
    calibration = side_calibration(records)
    for r in records:
        series = f"{r['corpus']} {r['model']} {r['mode']}"
        key = calibration_key(r)
        values = {
            "test ppl": r.get("test_ppl"),
            "peak RSS MB": (r.get("peak_rss_bytes") or 0) / 2**20 or None,
        }
        if r.get("train_tokens_per_s") and calibration.get(key):
            values["throughput"] = r["train_tokens_per_s"] / calibration[key]
        rows += [
            {**base, "metric": m, "series": series, "value": v}
            for m, v in values.items()
            if v is not None
        ]
    micro = folder / MICROBENCH_FILE
    if micro.exists():
        for b in json.loads(micro.read_text()).get("benchmarks", []):
            name = b["fullname"].split("::", 1)[-1]
            rows.append(
                {
                    **base,
                    "metric": "microbench ms",
                    "series": name,
                    "value": b["stats"]["median"] * 1e3,
                }
            )
    return rows


def load_tracking(root: Path) -> pd.DataFrame:
    """One row per fingerprint, commit, metric and series, with the commit's `order` (by commit
    time within its fingerprint). Empty frame when nothing was measured."""
    rows = []
    for meta in sorted(Path(root).glob(f"*/*/{COMMIT_FILE}")):
        rows += commit_rows(meta.parent)
    columns = ["fingerprint", "commit", "time", "subject", "metric", "series", "value", "order"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows)
    commits = frame[["fingerprint", "commit", "time"]].drop_duplicates().sort_values("time")
    commits["order"] = commits.groupby("fingerprint").cumcount()
    return frame.merge(commits, on=["fingerprint", "commit", "time"])[columns]


def noise_sd(values: np.ndarray) -> float:
    """The sd of one value's noise, from the median absolute change between neighbours (robust to
    the steps themselves): log values, so a relative figure."""
    logs = np.log(values)
    if logs.size < 3:
        return 0.0
    diffs = np.abs(np.diff(logs))
    return 1.4826 * float(np.median(diffs)) / math.sqrt(2)


def find_steps(
    values: list[float],
    threshold: float = STEP_THRESHOLD,
    window: int = WINDOW,
) -> list[tuple[int, float, str, int, float]]:
    """(index of the first commit after the step, relative change, kind, commits spanned, limit)
    for each step in `values` (one metric of one series, in commit order)."""
    v = np.asarray(values, dtype=float)
    if v.size < 2 or (v <= 0).any():
        return []
    logs = np.log(v)
    sd = noise_sd(v)
    # the sd of a difference of two window medians is about sd * sqrt(pi / (2 * window)) * sqrt 2
    shift_sd = sd * math.sqrt(math.pi / window)
    limit = max(math.log1p(threshold), NOISE_MULTIPLE * shift_sd)
    # drifts first: runs of changes in one direction (a change the other way within twice the
    # noise does not end one), trimmed of the changes at either end that are within twice the
    # noise, so the step is named by the commit that began it; the total compares the window
    # medians either side. A run whose largest change is most of its total is a shift.
    drifts = []
    diffs = np.diff(logs)
    noise = 2 * sd

    def within_noise(d: float, direction: float) -> bool:
        return np.sign(d) != direction or abs(d) < max(noise, 1e-12)

    k = 0
    while k < diffs.size:
        direction = np.sign(diffs[k])
        if within_noise(diffs[k], direction):
            k += 1
            continue
        end = k + 1
        while end < diffs.size and (np.sign(diffs[end]) == direction or abs(diffs[end]) < noise):
            end += 1
        while within_noise(diffs[end - 1], direction):
            end -= 1
        changes = diffs[k:end]  # made by commits k + 1 ... end
        before = np.median(logs[max(0, k - window + 1) : k + 1])
        total = float(np.median(logs[end : end + window]) - before)
        if end - k >= 2 and abs(total) > limit and np.sign(total) == direction:
            if np.abs(changes).max() < 0.75 * abs(changes.sum()):
                drifts.append((k + 1, math.expm1(total), "drift", end - k, math.expm1(limit)))
        k = end
    # median shifts: the largest in each stretch of commits past the limit, unless in a drift
    steps = list(drifts)
    shifts = [
        (i, float(np.median(logs[i : i + window]) - np.median(logs[i - window : i])))
        for i in range(window, v.size - window + 1)
    ]
    stretch: list[tuple[int, float]] = []
    for i, shift in [*shifts, (None, 0.0)]:
        if i is not None and abs(shift) > limit and (not stretch or stretch[-1][0] == i - 1):
            stretch.append((i, shift))
            continue
        if stretch:
            at, best = max(stretch, key=lambda s: abs(s[1]))
            if not any(d[0] <= at < d[0] + d[3] for d in drifts):
                steps.append((at, math.expm1(best), "shift", 1, math.expm1(limit)))
        stretch = [(i, shift)] if i is not None and abs(shift) > limit else []
    return sorted(steps)


def tracked_steps(frame: pd.DataFrame, threshold: float = STEP_THRESHOLD) -> list[Step]:
    """Every step of every tracked series, per fingerprint."""
    steps = []
    for (fingerprint, metric, series), rows in frame.groupby(["fingerprint", "metric", "series"]):
        rows = rows.sort_values("order")
        commits, orders = rows["commit"].tolist(), rows["order"].tolist()
        for index, change, kind, span, limit in find_steps(rows["value"].tolist(), threshold):
            steps.append(
                Step(
                    fingerprint,
                    metric,
                    series,
                    commits[index],
                    orders[index],
                    change,
                    kind,
                    span,
                    limit,
                )
            )
    return steps


def summary(frame: pd.DataFrame) -> dict:
    """Counts for the report's text: commits and fingerprints measured."""
    return {
        "commits": int(frame[["fingerprint", "commit"]].drop_duplicates().shape[0]),
        "fingerprints": sorted(frame["fingerprint"].unique()),
        "median_noise": {
            metric: statistics.median(
                noise_sd(rows.sort_values("order")["value"].to_numpy())
                for _, rows in group.groupby(["fingerprint", "series"])
            )
            for metric, group in frame.groupby("metric")
        },
    }
