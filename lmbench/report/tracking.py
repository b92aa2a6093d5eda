"""The report's tracking section: each tracked metric against commit order, and its steps."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from ..tracking import METRICS, STEP_THRESHOLD, WINDOW, load_tracking, summary, tracked_steps
from .figures import _save
from .markdown import table


def _figure(frame: pd.DataFrame, metric: str, steps, path: Path) -> None:
    """One small panel per series, one line per fingerprint, steps marked at their commit."""
    rows = frame[frame["metric"] == metric]
    grid = sns.relplot(
        data=rows,
        x="order",
        y="value",
        hue="fingerprint",
        col="series",
        col_wrap=min(6, rows["series"].nunique()),
        kind="line",
        marker="o",
        markersize=3,
        height=1.8,
        aspect=1.3,
        facet_kws={"sharey": False, "sharex": True},
    )
    grid.set_titles("{col_name}", size=7)
    sns.move_legend(grid, "upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, frameon=False)
    grid.set_axis_labels("commit (order)", metric)
    for series, ax in grid.axes_dict.items():
        for step in steps:
            if (step.metric, step.series) == (metric, series):
                ax.axvline(step.order, color="red", linestyle="--", linewidth=1)
        ax.tick_params(labelsize=6)
    _save(grid.figure, path)
    plt.close("all")


def section(root: Path, figure_dir: Path, figure) -> list[str]:
    """Markdown lines of the tracking section for the history under `root`."""
    frame = load_tracking(root)
    if frame.empty:
        return [
            f"Nothing measured under `{root}` yet: `nox -s track -- REVS` (for example "
            "`nox -s track -- <first-commit>..main`) measures commits on this machine."
        ]
    facts, steps = summary(frame), tracked_steps(frame)
    figure_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        f"{facts['commits']} commits measured on {len(facts['fingerprints'])} machine "
        f"fingerprint(s) ({', '.join(f'`{f}`' for f in facts['fingerprints'])}) from `{root}`: "
        "the quick suite's runs and the micro-benchmarks of each commit (`nox -s track -- "
        "REVS`), commits in the order they were made. A step: the medians of the "
        f"{WINDOW} commits either side of a commit differ by more than the limit (a shift), or "
        "changes in one direction over several commits add up past it (a drift, named by the "
        f"commit that began it). The limit is {STEP_THRESHOLD:.0%} or three times the metric's "
        "own noise, whichever is larger (noise: the sd of one value, from the median change "
        "between neighbouring commits; median over series: "
        + ", ".join(f"{m} {v:.1%}" for m, v in sorted(facts["median_noise"].items()))
        + ").",
        "",
    ]
    for metric in METRICS:
        if (frame["metric"] == metric).any():
            name = f"tracking_{metric.split()[0].lower()}.png"
            _figure(frame, metric, steps, figure_dir / name)
            lines += [figure(name, f"{METRICS[metric][0]} by commit; dashed: a step"), ""]
    subjects = frame.drop_duplicates("commit").set_index("commit")["subject"]
    rows = pd.DataFrame(
        [
            {
                "machine": s.fingerprint,
                "metric": s.metric,
                "series": s.series,
                "first commit": f"`{s.commit[:10]}` {subjects.get(s.commit, '')[:60]}",
                "change": f"{s.change:+.1%}",
                "verdict": s.verdict,
                "kind": f"{s.kind} over {s.commits} commit{'s' * (s.commits > 1)}",
                # the limit in the step's direction (it is symmetric in log terms)
                "limit": f"{math.expm1(math.copysign(math.log1p(s.limit), s.change)):+.1%}",
            }
            for s in steps
        ]
    )
    series = frame.groupby(["fingerprint", "metric", "series"]).ngroups
    lines += [table(rows) if steps else "No step in any tracked metric.", ""]
    if steps:
        lines += [
            f"A flag is a prompt to measure the commits around it again (`nox -s track`), not "
            f"a verdict: over {series} series a change just past three noise sds is expected "
            "about once by chance, and a step the later commits do not keep is noise.",
            "",
        ]
    return lines
