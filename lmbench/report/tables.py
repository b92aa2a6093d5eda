"""The report's tables, each a function of the runs (and the reference data) only."""

from __future__ import annotations

import pandas as pd

from ..records import is_full_data
from ..suites import GAP
from .markdown import MiB, table
from .runs import (
    METHOD,
    Runs,
    pruning_rows,
    smoothing_rows,
)


def samples_table(runs: Runs) -> str:
    rows = [
        {
            "corpus": r["corpus"],
            "mode": r["mode"],
            "model": r["model"],
            "sample (30 tokens, temperature 1)": r["samples"][0],
        }
        for r in runs.ok(GAP)
        if r.get("samples") and is_full_data(r)
    ]
    return table(
        pd.DataFrame(rows).sort_values(["corpus", "mode", "model"]) if rows else pd.DataFrame()
    )


def failures(runs: Runs) -> str:
    bad = [r for r in runs.records if r["status"] != "ok"]
    if not bad:
        return "None."
    return "\n".join(
        f"- `{r.get('suite')}` `{r['corpus']}` `{r['model']}` ({r['mode']}, {r.get('device')}): "
        f"**{r['status']}**: {r.get('error')}{_last_point(r)}"
        for r in bad
    )


def _last_point(record: dict) -> str:
    """An interrupted run's partial curve: where it got to."""
    curve = record.get("curve") or []
    if record["status"] != "interrupted" or not curve:
        return ""
    last = curve[-1]
    return f" (last curve point: {last['tokens']:,} tokens, valid ppl {last['valid_ppl']:.2f})"


ALL_RUNS_COLUMNS = {
    "suite": "suite",
    "corpus": "corpus",
    "mode": "mode",
    "label": "model",
    "device": "device",
    "valid_ppl": "valid ppl",
    "test_ppl": "test ppl",
    "train_seconds": "train s",
    "train_tokens_per_s": "train tok/s",
    "peak_rss_bytes": "peak RSS MB",
    "size_bytes": "size MB",
    "params": "params",
    "budget_label": "budget",
}


def all_runs_table(runs: Runs) -> str:
    frame = runs.frame()
    ok = frame[frame["status"] == "ok"] if not frame.empty else frame
    if ok.empty:
        return "_No runs._"
    shown = ok[list(ALL_RUNS_COLUMNS)].copy()
    shown["peak_rss_bytes"] = shown["peak_rss_bytes"] / MiB
    shown["size_bytes"] = shown["size_bytes"] / MiB
    shown = shown.rename(columns=ALL_RUNS_COLUMNS)
    return table(shown.sort_values(["suite", "corpus", "mode", "test ppl"]))


def smoothing_table(runs: Runs) -> str:
    """Test perplexity by smoothing method (rows) and order (columns)."""
    rows = smoothing_rows(runs)
    if not rows:
        return ""
    pivot = pd.DataFrame(rows).pivot_table(
        index=METHOD, columns="order", values="test ppl", sort=False
    )
    pivot.columns = [f"order {c}" for c in pivot.columns]
    return table(pivot.reset_index())


def pruning_table(runs: Runs) -> str:
    return table(pd.DataFrame(pruning_rows(runs)).drop(columns="series"))


def kn5_seconds_range(runs: Runs) -> str:
    """The spread of full-data PTB kn5 training times in these records, e.g. `0.21-0.67 s`."""
    seconds = [
        r["train_seconds"]
        for r in runs.ok()
        if (r["corpus"], r["model"]) == ("ptb", "kn5")
        and is_full_data(r)
        and not (r.get("model_config") or {}).get("prune")
        and r.get("train_seconds")
    ]
    return f"{min(seconds):.2f}-{max(seconds):.2f} s" if seconds else "no run"
