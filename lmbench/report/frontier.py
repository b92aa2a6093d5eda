"""The equal-compute frontier (report section 2): test perplexity against what training cost,
count models by data fraction and neural models by token budget, and each neural family's
crossover of full-data kn5.

Points come from the suites feeding FRONTIER. A neural point is one budget's seeds (a decay
branch and a complete WSD run of a budget are one config: `seedless_config`); a count point is
one data fraction. Seconds are drawn for one machine per corpus (the one holding most points);
FLOPs do not depend on the machine.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..frontier import crossover, is_probe, is_pruned, tokens_of, train_fraction
from ..models.neural.config import TrainConfig
from ..records import COUNT_FAMILIES, machine_id
from ..suites import FRONTIER
from .cost import era_costs, era_machines
from .figures import _save
from .markdown import duration, table, with_interval
from .runs import (
    MIN_SEEDS,
    Group,
    Runs,
    contention_note,
    covers_one,
    machine_label,
    ratio_interval,
    ratio_point,
    timed_seconds,
    uncontended,
)
from .schedules import mean_sd


def family(run: dict) -> str:
    """The series a point belongs to: the model, a pruned count model named with its
    thresholds."""
    if is_pruned(run):
        return f"{run['model']} pruned ({run['model_config']['prune']})"
    return run["model"]


def points(runs: Runs) -> pd.DataFrame:
    """One row per frontier point: corpus, family, whether a count model, its x values
    (training tokens seen, training seconds, training FLOPs), test perplexity over its seeds
    (mean, sd, min, max, seeds), machine, and the point's `Group`."""
    rows = []
    for group in runs.groups(FRONTIER):
        run = group.first
        if is_probe(run):
            continue
        count = run["family"] in COUNT_FAMILIES
        values = group.values("test_ppl")
        rows.append(
            {
                "corpus": run["corpus"],
                "family": family(run),
                "count": count,  # a count model (else neural)
                "tokens": (run.get("extra") or {}).get("train_data_tokens")
                if count
                else tokens_of(run),
                "fraction": train_fraction(run) or 1.0,
                "seconds": timed_seconds(group.runs)[0],
                "flops": None if count else group.mean("train_flops"),
                "test ppl": float(values.mean()),
                "sd": float(values.std(ddof=1)) if values.size > 1 else np.nan,
                "low": float(values.min()),
                "high": float(values.max()),
                "seeds": group.seeds,
                "machine": machine_id(run),
                "group": group,
            }
        )
    return pd.DataFrame(rows)


def _machine_of(frame: pd.DataFrame) -> str | None:
    """The machine holding most of a corpus's points: the one whose seconds are drawn."""
    counts = Counter(frame["machine"])
    return counts.most_common(1)[0][0] if counts else None


def _envelope(frame: pd.DataFrame, x: str) -> pd.DataFrame:
    """The lower envelope of a family's points along `x`: the best perplexity so far."""
    ordered = frame.sort_values(x)
    return ordered.assign(best=ordered["test ppl"].cummin())


def figure(runs: Runs, path: Path) -> dict[str, str] | None:
    """Test perplexity against training seconds (count and neural, one machine per corpus)
    and against training FLOPs (neural; full-data kn5 as a line), one column per corpus.
    Returns each corpus's drawn machine, for the caption; None without frontier runs."""
    frame = points(runs)
    if frame.empty:
        return None
    corpora = list(dict.fromkeys(frame["corpus"]))
    fig, axes = plt.subplots(2, len(corpora), figsize=(7 * len(corpora), 10), squeeze=False)
    palette = dict(zip(sorted(frame["family"].unique()), sns.color_palette("tab10")))
    drawn = {}
    for column, corpus in enumerate(corpora):
        here = frame[frame["corpus"] == corpus]
        machine = _machine_of(here)
        drawn[corpus] = machine
        neural = here[~here["count"]]
        # the yardstick of the corpus's neural points (same scoring slice), else any kn5 here
        first = (neural if not neural.empty else here)["group"].iloc[0].first
        target = runs.target(first) or {}
        for row, x in enumerate(("seconds", "flops")):
            ax = axes[row][column]
            shown = here[here["machine"] == machine] if x == "seconds" else here
            shown = shown.dropna(subset=[x])
            for name, series in shown.groupby("family"):
                color = palette[name]
                marker = "s" if series["count"].iloc[0] else "o"
                ax.errorbar(
                    series[x],
                    series["test ppl"],
                    yerr=[series["test ppl"] - series["low"], series["high"] - series["test ppl"]],
                    fmt=marker,
                    color=color,
                    ms=5,
                    capsize=2,
                    label=name,
                )
                envelope = _envelope(series, x)
                ax.plot(envelope[x], envelope["best"], color=color, lw=1)
                means = dict(zip(series["tokens"], series["test ppl"]))
                cross = crossover(means, target["test_ppl"]) if target else None
                if not series["count"].iloc[0] and cross is not None:
                    hit = series[series["tokens"] == cross]
                    ax.plot(hit[x], hit["test ppl"], "*", color="black", ms=14)
            if target:
                ax.axhline(target["test_ppl"], color="black", ls="--", lw=1)
                ax.annotate(
                    f"kn5, all data: {target['test_ppl']:.1f}",
                    (0.01, target["test_ppl"]),
                    xycoords=("axes fraction", "data"),
                    va="bottom",
                    fontsize=8,
                )
            where = f" [{machine}]" if x == "seconds" else ""
            ax.set(
                xscale="log",
                yscale="log",
                xlabel="training seconds" + where if x == "seconds" else "training FLOPs",
                ylabel="test perplexity",
                title=f"{corpus}: test perplexity by training {x}",
            )
            ax.legend(fontsize=7)
    _save(fig, path)
    return drawn


def seconds_reading(runs: Runs) -> list[str]:
    """Per corpus, on its drawn machine: full-data kn5's training seconds beside the quickest
    neural point's, and whether any neural point took no more than the slowest count point:
    what equal seconds buy, read off the measured points only."""
    frame = points(runs)
    lines = []
    for corpus, here in frame.groupby("corpus", sort=False):
        here = here[here["machine"] == _machine_of(here)]
        full = here[here["count"] & (here["family"] == "kn5") & (here["fraction"] == 1.0)]
        neural = here[~here["count"]].dropna(subset=["seconds"])
        if full.empty or neural.empty:
            continue
        kn5 = full.iloc[0]
        quickest = neural.loc[neural["seconds"].idxmin()]
        counted = here[here["count"]]["seconds"].max()
        within = neural[neural["seconds"] <= counted]
        lines.append(
            f"- {corpus}: kn5 on all the data trains in {duration(kn5['seconds'])} (test "
            f"{kn5['test ppl']:.2f}); the quickest neural point, {quickest['family']} at "
            f"{int(quickest['tokens']):,} tokens, took {duration(quickest['seconds'])} "
            f"({quickest['seconds'] / kn5['seconds']:,.0f}x) for {quickest['test ppl']:.2f}"
            + (
                f"; no neural point finished within the slowest count model's {duration(counted)}."
                if within.empty
                else "."
            )
        )
    return lines


def crossover_rows(runs: Runs, hardware: pd.DataFrame, published: pd.DataFrame) -> list[dict]:
    """Per corpus and neural family: the first budget whose seed mean is below full-data kn5,
    with its ratio and interval, tokens, FLOPs, seconds here and on the eras' machines; where
    none is, the family's best point."""
    frame = points(runs)
    if frame.empty:
        return []
    eras = era_machines(hardware, published)
    rows = []
    for (corpus, name), series in frame[~frame["count"]].groupby(["corpus", "family"], sort=False):
        target = runs.target(series["group"].iloc[0].first)
        if target is None:
            continue
        means = dict(zip(series["tokens"], series["test ppl"]))
        cross = crossover(means, target["test_ppl"])
        # the same reading on valid: a crossing that holds on test only is said to
        valid = {t: g.mean("valid_ppl") for t, g in zip(series["tokens"], series["group"])}
        valid_cross = crossover(valid, target["valid_ppl"]) if target.get("valid_ppl") else None
        before = max((t for t in means if cross and t < cross), default=None)
        point = series[series["tokens"] == cross].iloc[0] if cross else None
        best = series.loc[series["test ppl"].idxmin()]
        chosen = point if point is not None else best
        group: Group = chosen["group"]
        epoch = (group.first.get("extra") or {}).get("epoch_tokens")
        interval = ratio_interval(group.runs, target)
        mean_only = bool(cross) and covers_one(interval)
        crossing = _crossing(cross, before, means)
        row = {
            "corpus": corpus,
            "family": name,
            "kn5 (all data)": f"{target['test_ppl']:.2f}",
            # below on the mean with an interval covering 1 is no crossing: said in the cell
            "crosses at": f"not established: {crossing} on the mean only"
            if mean_only
            else crossing,
            "on valid": _crossing(valid_cross, None, valid),
            "epochs": f"{chosen['tokens'] / epoch:.2g}" if epoch else "-",
            "test ppl (seeds)": mean_sd(group),
            "/ kn5 [95% CI]": _ratio(group, target, interval),
            "training FLOPs (counted)": f"{chosen['flops']:.3g}" if chosen["flops"] else "-",
            "schedule": schedule_name(group.first),
            "here": _here(chosen["seconds"], group),
            **era_costs(chosen["flops"], group.first, eras),
            "finding": _finding(point, best, cross, series, target["test_ppl"], interval),
            "valid agrees": valid_cross == cross,
            "mean only": mean_only,
            "first below": crossing,  # the summary's reading says "on the mean only" itself
        }
        rows.append(row)
    return rows


def _crossing(cross: int | None, before: int | None, means: dict) -> str:
    """`3,200,000 tokens (above kn5 at 1,600,000)`, or where no budget is below kn5."""
    if cross is None:
        return f"not within {max(means):,} tokens"
    return f"{cross:,} tokens" + (f" (above kn5 at {before:,})" if before else "")


def _ratio(group: Group, target: dict, interval: tuple[float, float] | None) -> str:
    """The seeds' ratio to `target` with its bootstrap `interval` (`ratio_interval`)."""
    return with_interval(ratio_point(group.runs, target), interval)


def schedule_name(run: dict) -> str:
    """The learning-rate schedule a point's budget completed, e.g. `WSD (linear decay over the
    last 20%)`."""
    config = run.get("model_config") or {}
    name = config.get("lr_schedule") or "-"
    if name == "wsd":  # the hash leaves decay_fraction out at its default (TrainConfig)
        fraction = config.get("decay_fraction", TrainConfig.decay_fraction)
        return f"WSD (linear decay over the last {fraction:.0%})"
    return name


def _here(seconds: float, group: Group) -> str:
    """Training seconds on the machine that ran them (`timed_seconds`: contended seeds left
    out where others were not), flagged where its cores were shared."""
    flag = contention_note(timed_seconds(group.runs)[1])
    return f"{duration(seconds)} ({machine_label(group.first)}{'; ' + flag if flag else ''})"


def _finding(point, best, cross, series: pd.DataFrame, kn5: float, interval) -> str:
    """What the row may claim: only from >= MIN_SEEDS seeds at the crossing budget and the
    budget before it (or at the best point where none crosses), and no crossing where the
    ratio's `interval` at the crossing budget covers 1."""
    if cross is None:
        gap = f"{best['test ppl'] / kn5 - 1:.1%} above kn5"
        if best["seeds"] < MIN_SEEDS:
            seeds = f"{best['seeds']} seed(s)"
            return f"best point {best['tokens']:,} tokens, {gap}, has {seeds}: no claim"
        return f"does not reach kn5 within the measured budgets (best at {best['tokens']:,}, {gap})"
    before = series[series["tokens"] < cross]
    below = before.loc[before["tokens"].idxmax()] if not before.empty else None
    seeds = min(point["seeds"], below["seeds"] if below is not None else point["seeds"])
    if seeds < MIN_SEEDS:
        return f"bracketing budgets have {seeds} seed(s): no claim"
    if below is None:
        return f"below kn5 already at the smallest budget ({cross:,} tokens)"
    if covers_one(interval):  # below on the mean only
        return (
            f"below kn5 on the mean at {cross:,} tokens, but its interval covers 1: no "
            "different from kn5 there"
        )
    return f"crosses between {below['tokens']:,} and {cross:,} tokens"


def crossover_table(runs: Runs, hardware: pd.DataFrame, published: pd.DataFrame) -> str:
    rows = crossover_rows(runs, hardware, published)
    if not rows:
        return "_No neural frontier points yet._"
    return table(pd.DataFrame(rows).drop(columns=["valid agrees", "mean only", "first below"]))


def softmax_rows(runs: Runs) -> pd.DataFrame:
    """Training tokens/s by vocabulary size: every complete full-data run of the frontier's
    suites (a neural family's trunks and complete runs, a seed's decay branch left out, and
    the probes; kn5's estimation), one row per corpus vocabulary, family and machine."""
    rows = []
    for group in runs.groups(FRONTIER):
        run = group.first
        if train_fraction(run) or is_pruned(run) or not run.get("train_tokens_per_s"):
            continue  # shares of data and pruning aside
        if run["family"] in COUNT_FAMILIES and run["model"] != "kn5":
            continue
        # a branch's speed is its trunk's: the complete runs among a config's seeds count
        complete = [r for r in group.runs if not (r.get("extra") or {}).get("branch")]
        rows += [  # shared cores: a run's speed is not the model's
            {
                "corpus": run["corpus"],
                "vocabulary": run["vocab_size"],
                "family": run["model"],
                "machine": machine_id(run),
                "tokens/s": r["train_tokens_per_s"],
            }
            for r in uncontended(complete)
        ]
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    # one figure per machine and family and vocabulary: the median over its complete runs
    keys = ["machine", "family", "corpus", "vocabulary"]
    return frame.groupby(keys, sort=False, as_index=False)["tokens/s"].median()


def _slowdown(rows: pd.DataFrame) -> str | None:
    """A family's speed at each vocabulary, and the ratio of its smallest to its largest."""
    rows = rows.sort_values("vocabulary")
    if len(rows) < 2:
        return None
    small, large = rows.iloc[0], rows.iloc[-1]
    speeds = [
        f"{row['tokens/s']:,.0f} at {row['vocabulary']:,} ({row['corpus']})"
        for _, row in rows.iloc[1:].iterrows()
    ]
    first = (
        f"{small['tokens/s']:,.0f} tokens/s at |V| = {small['vocabulary']:,} ({small['corpus']})"
    )
    return (
        f"{small['family']} {', '.join([first, *speeds])}: "
        f"{small['tokens/s'] / large['tokens/s']:.2g}x the time per token at the largest"
    )


def softmax_reading(frame: pd.DataFrame) -> list[str]:
    """One line per machine: each family's speed at its largest vocabulary against its
    smallest, kn5's among them."""
    lines = []
    for machine, here in frame.groupby("machine", sort=False):
        parts = [
            text
            for _, rows in here.groupby("family", sort=False)
            if (text := _slowdown(rows)) is not None
        ]
        if parts:
            lines.append(f"- on [{machine}]: " + "; ".join(parts) + ".")
    return lines


def softmax_figure(frame: pd.DataFrame, path: Path) -> bool:
    if frame.empty:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sns.lineplot(
        frame, x="vocabulary", y="tokens/s", hue="family", style="machine", marker="o", ax=ax
    )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="vocabulary size",
        ylabel="training tokens/s (kn5: estimation)",
        title="the softmax's cost: training speed by vocabulary",
    )
    _save(fig, path)
    return True
