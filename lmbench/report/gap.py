"""The gap table: each full-data config against kn5 of the same folder and machine, with its
bootstrap interval, costs and the verdict each row supports."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..measure import describe_machine
from ..records import NEURAL_FAMILIES, is_full_data, machine_id
from ..suites import GAP, suites_feeding
from .markdown import MiB, duration, table, times, with_interval
from .runs import (
    Runs,
    how_to_fill,
    ratio_interval,
    ratio_point,
)


def _ratio(a, b) -> float | None:
    return a / b if a and b and math.isfinite(a) and math.isfinite(b) else None


def gap_rows(runs: Runs) -> pd.DataFrame:
    """One row per full-data config (its seeds together) of the gap section's suites, with its
    ratios to the kn5 of the same results folder and machine."""
    rows = []
    for group in runs.groups(GAP, [r for r in runs.ok(GAP) if is_full_data(r)]):
        run = group.first
        ref = runs.target(run)
        compared = ref is not None and ref is not run

        def ratio(key: str, group=group, ref=ref) -> float | None:
            return _ratio(group.mean(key), ref and ref.get(key))

        rows.append(
            {
                "corpus": run["corpus"],
                "mode": run["mode"],
                "device": run["device"],
                # results/<suite>/<host>-<date>, and the machine's fingerprint (v1: none): rows
                # from different machines never share a table
                "folder": f"{Path(run['source_file']).parent.name}, {run.get('device_name')}",
                "machine_id": machine_id(run) or "",
                "fingerprint": run.get("machine"),
                "model": group.label,
                "family": run["family"],
                "claims": group.claims,
                "no_claim": group.no_claim(),
                "incomplete": group.incomplete,
                "seeds": group.spread(),
                "test_ppl": group.mean("test_ppl"),
                "ppl_ratio": ratio_point(group.runs, ref) if compared else None,
                "interval": ratio_interval(group.runs, ref) if compared else None,
                "train_seconds": group.mean("train_seconds"),
                "time_ratio": ratio("train_seconds"),
                "tokens_per_s": group.mean("train_tokens_per_s"),
                "peak_rss_mb": (group.mean("peak_rss_bytes") or 0) / MiB or None,
                "size_mb": (group.mean("size_bytes") or 0) / MiB or None,
                "size_ratio": ratio("size_bytes"),
                # a timing: the median over the config's runs, and its range
                "query_us": group.median("query_us"),
                "query_range": _range(group.values("query_us")),
                "query_ratio": _ratio(group.median("query_us"), ref and ref.get("query_us")),
                "time_to_kn5": _time_to_target(group),
                "time_to_kn5_ratio": _ratio(
                    _mean_time_to_target(group), ref and ref.get("train_seconds")
                ),
                "budget": runs.budget(run),
            }
        )
    return pd.DataFrame(rows)


def _range(values) -> str:
    """`min-max` of a config's timings, 2 significant figures ("-" for one or none)."""
    values = values[np.isfinite(values)]
    return f"{_two_figures(values.min())}-{_two_figures(values.max())}" if values.size > 1 else "-"


def _two_figures(value: float) -> str:
    """2 significant figures without an exponent: 1,400, 2.1."""
    rounded = float(f"{value:.2g}")
    return f"{rounded:,.0f}" if rounded >= 10 else f"{rounded:g}"


def _reached(group) -> list[float]:
    """The training seconds to the kn5 valid perplexity of each seed that reached it."""
    return [r["time_to_target_s"] for r in group.runs if r.get("time_to_target_s")]


def _mean_time_to_target(group) -> float | None:
    """Mean training seconds to the kn5 valid perplexity, where every seed reached it."""
    reached = _reached(group)
    return sum(reached) / len(reached) if reached and len(reached) == group.seeds else None


def _time_to_target(group) -> str:
    """Mean training time to the kn5 valid perplexity over the seeds that reached it."""
    reached = _reached(group)
    if group.first["family"] not in NEURAL_FAMILIES:
        return "-"
    if not reached:
        return "not reached"
    text = duration(sum(reached) / len(reached))
    return text if len(reached) == group.seeds else f"{text} ({len(reached)} of {group.seeds})"


def gap_table(runs: Runs) -> str:
    rows = gap_rows(runs)
    if rows.empty:
        return f"_No {' or '.join(suites_feeding(GAP))} runs: {how_to_fill(GAP)}._"
    parts = []
    machines_in = rows.groupby("folder")["machine_id"].nunique()
    keys = ["corpus", "mode", "device", "folder", "machine_id"]
    for (corpus, mode, device, folder, machine), group in rows.groupby(keys, sort=False):
        group = group.sort_values("test_ppl")
        shown = pd.DataFrame(
            {
                "model": group["model"],
                "test ppl": group["test_ppl"],
                "seeds": group["seeds"],
                "ppl / kn5 [95% CI]": [
                    with_interval(r, i) for r, i in zip(group["ppl_ratio"], group["interval"])
                ],
                "train time": group["train_seconds"].map(duration),
                "time to kn5 valid": group["time_to_kn5"],
                "/ kn5's train time": group["time_to_kn5_ratio"].map(times),
                "train tok/s": group["tokens_per_s"],
                "peak RSS MB": group["peak_rss_mb"],
                "size MB": group["size_mb"],
                "size / kn5": group["size_ratio"].map(times),
                "µs/query (batch 1, median)": group["query_us"],
                "range": group["query_range"],
                "query / kn5": group["query_ratio"].map(times),
                "budget": group["budget"],
            }
        )
        parts += [f"### {corpus}, {mode} mode, {device} ({folder})", ""]
        if machine or machines_in[folder] > 1:  # v1 records alone: no fingerprint to name
            parts += [f"Measured on {describe_machine(group['fingerprint'].iloc[0])}.", ""]
        parts += [table(shown), ""]
        parts += _verdicts(group)
    return "\n".join(parts)


def _verdicts(group: pd.DataFrame) -> list[str]:
    """The deployment reading of each neural row: better, worse or no different at 95%, at
    what cost; none from fewer than MIN_SEEDS seeds or an incomplete schedule."""
    lines = []
    for row in group.itertuples(index=False):
        if row.family not in NEURAL_FAMILIES and row.family != "mix":
            continue
        if row.ppl_ratio is None:
            continue
        if not row.claims:
            lines.append(f"- **{row.model}**: {row.seeds}: no claim ({row.no_claim}).")
            continue
        low, high = row.interval or (None, None)
        if low is not None and low <= 1 <= high:
            reading = "no different from kn5 at 95% (its interval holds 1)"
        else:
            word = "better" if row.ppl_ratio < 1 else "worse"
            reading = f"{abs(1 - row.ppl_ratio):.1%} {word} perplexity than kn5"
        costs = [
            f"{times(ratio)} the {what}"
            for ratio, what in (
                (row.time_ratio, "training time"),
                (row.size_ratio, "size"),
                (row.query_ratio, "time per decoder query"),
            )
            if ratio is not None and not pd.isna(ratio)
        ]
        lines.append(
            f"- **{row.model}** ({row.seeds}; {row.budget}): {reading}, at "
            f"{', '.join(costs[:-1])} and {costs[-1]}; at this budget only."
        )
    return [*lines, ""] if lines else []
