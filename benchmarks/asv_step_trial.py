"""asv's step detection beside lmbench's, on the synthetic series of tests/test_tracking.py.

    python benchmarks/asv_step_trial.py      (needs asv: pip install asv; about 2 s)

For each kind of series, the share of 50 noise seeds in which each rule flags a step: lmbench's
`lmbench.tracking.find_steps`, and asv's `detect_steps` then `detect_regressions` with the
threshold `asv publish` applies (its `regressions_thresholds`; 5% by default). README, "Tracking
across commits", quotes the table this prints.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/ beside lmbench

from asv.step_detect import detect_regressions, detect_steps  # noqa: E402

from lmbench.tracking import find_steps  # noqa: E402
from tests.test_tracking import _series  # noqa: E402

SEEDS = range(50)
CASES = {
    "3% slower in each of 5 commits": dict(changes=[0.97] * 5),
    "one lasting 3% change": dict(changes=[0.97]),
    "3% there and back, twice": dict(changes=[0.97, 1 / 0.97, 0.97, 1 / 0.97]),
    "one 20% step": dict(changes=[0.8]),
    "flat, 10% noise": dict(changes=[], noise=0.10, flat=12),
    "one 40% step, 10% noise": dict(changes=[0.6], noise=0.10, flat=12),
}


def asv_flags(values: list[float], threshold: float = 0.05) -> list:
    """asv's regressions of a throughput series, as `asv publish` finds them: asv tracks a
    cost (higher is worse), so it sees 1 / throughput."""
    _, _, regressions = detect_regressions(detect_steps([1.0 / v for v in values]), threshold)
    return regressions or []


def main() -> None:
    print("| series (1% noise unless stated) | lmbench flags | asv flags |")
    print("| --- | --- | --- |")
    for name, kwargs in CASES.items():
        series = [_series(seed=seed, **kwargs) for seed in SEEDS]
        ours = sum(bool(find_steps(s)) for s in series)
        theirs = sum(bool(asv_flags(s)) for s in series)
        print(f"| {name} | {ours}/{len(series)} | {theirs}/{len(series)} |")


if __name__ == "__main__":
    main()
