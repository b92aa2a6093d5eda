"""`lmbench compare BASE NEW`: the same configs side by side, with regression verdicts.

Thresholds (DESIGN): a count model's perplexity is deterministic, so any relative change above
1e-9 is a regression; a neural model's perplexity may be 0.5% worse before it is; throughput may
be 15% worse after dividing by the same run's calibration (sort rate for count models, matmul
for neural), so a slower machine does not read as a slower lmbench.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .results import latest_by_config, load_records

EXACT_FAMILIES = {"baseline", "ngram"}  # deterministic count models
EXACT_PPL_RTOL = 1e-9
NEURAL_PPL_WORSE = 0.005
THROUGHPUT_WORSE = 0.15
# Timings shorter than this are dominated by noise (a 30 ms fit varies by 2x here): shown, not judged.
MIN_TIMED_SECONDS = 1.0


@dataclass(frozen=True)
class Verdict:
    config_hash: str
    label: str
    base_ppl: float | None
    new_ppl: float | None
    throughput_ratio: float | None  # new / base, calibration-normalised
    problems: tuple[str, ...]


def _normalised_throughput(record: dict) -> float | None:
    rate = record.get("train_tokens_per_s")
    calibration = record.get("calibration") or {}
    key = "sort_mkeys_per_s" if record.get("family") in EXACT_FAMILIES else "matmul_gflops"
    if not rate or not calibration.get(key):
        return None
    return rate / calibration[key]


def judge(base: dict, new: dict) -> Verdict:
    problems = []
    if new["status"] != "ok" and base["status"] == "ok":
        problems.append(f"status {new['status']}: {new.get('error')}")
    b, n = base.get("test_ppl"), new.get("test_ppl")
    if b is not None and n is not None:
        if base.get("family") in EXACT_FAMILIES:
            if abs(n - b) > EXACT_PPL_RTOL * abs(b):
                problems.append(f"test ppl changed {b:.6f} -> {n:.6f} (count model: exact)")
        elif n > b * (1 + NEURAL_PPL_WORSE):
            problems.append(f"test ppl worse {b:.3f} -> {n:.3f} (> {NEURAL_PPL_WORSE:.1%})")
    tb, tn = _normalised_throughput(base), _normalised_throughput(new)
    ratio = tn / tb if tb and tn else None
    long_enough = (
        min(base.get("train_seconds") or 0, new.get("train_seconds") or 0) >= MIN_TIMED_SECONDS
    )
    if ratio is not None and long_enough and ratio < 1 - THROUGHPUT_WORSE:
        problems.append(
            f"throughput {ratio:.2f}x of base after calibration (< {1 - THROUGHPUT_WORSE:.2f})"
        )
    label = f"{new.get('corpus')} {new.get('model')} {new.get('mode')}"
    return Verdict(new["config_hash"], label, b, n, ratio, tuple(problems))


def compare_records(base: list[dict], new: list[dict]) -> list[Verdict]:
    base_by, new_by = latest_by_config(base), latest_by_config(new)
    return [judge(base_by[h], new_by[h]) for h in new_by if h in base_by]


def compare_paths(base: Path, new: Path) -> tuple[str, list[Verdict]]:
    base_records, new_records = load_records(base), load_records(new)
    verdicts = compare_records(base_records, new_records)
    only_base = set(latest_by_config(base_records)) - set(latest_by_config(new_records))
    only_new = set(latest_by_config(new_records)) - set(latest_by_config(base_records))

    def fmt(x, spec):
        return "-" if x is None else format(x, spec)

    lines = [
        f"# lmbench compare: {base} -> {new}",
        "",
        "| config | run | base test ppl | new test ppl | throughput new/base | verdict |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for v in verdicts:
        verdict = "REGRESSION: " + "; ".join(v.problems) if v.problems else "ok"
        lines.append(
            f"| `{v.config_hash}` | {v.label} | {fmt(v.base_ppl, '.4f')} | "
            f"{fmt(v.new_ppl, '.4f')} | {fmt(v.throughput_ratio, '.2f')} | {verdict} |"
        )
    lines += [
        "",
        f"{len(verdicts)} configs compared; {len(only_base)} only in base, "
        f"{len(only_new)} only in new.",
    ]
    regressions = [v for v in verdicts if v.problems]
    lines.append(f"{len(regressions)} regressions." if regressions else "No regressions.")
    return "\n".join(lines) + "\n", regressions
