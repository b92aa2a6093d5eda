"""The report's tables, each a function of the runs (and the reference data) only."""

from __future__ import annotations

import pandas as pd

from ..records import COUNT_FAMILIES, is_full_data
from ..suites import GAP
from .markdown import MiB, table
from .runs import (
    METHOD,
    Runs,
    budget_label,
    pruning_rows,
    results_folder,
    smoothing_rows,
)


def samples_table(runs: Runs) -> str:
    """One sample per run, labelled by its config (`Runs.label`); a count model's sample is the
    same in every folder that ran it, and shown once."""
    rows = [
        {
            "corpus": r["corpus"],
            "mode": r["mode"],
            "model": runs.label(r),
            "seed": r.get("seed") if r["family"] not in COUNT_FAMILIES else "-",
            "sample (30 tokens, temperature 1)": r["samples"][0],
        }
        for r in runs.ok(GAP)
        if r.get("samples") and is_full_data(r)
    ]
    frame = pd.DataFrame(rows).drop_duplicates() if rows else pd.DataFrame()
    return table(frame.sort_values(["corpus", "mode", "model"], kind="stable") if rows else frame)


def failures(runs: Runs) -> str:
    """Each run that did not finish, with its budget and results folder, and whether a later
    run of its config did (its error text is the one recorded then)."""
    bad = [r for r in runs.records if r["status"] != "ok"]
    if not bad:
        return "None."
    finished = {r["config_hash"] for r in runs.ok()}
    return "\n".join(
        f"- `{r.get('suite')}` `{r['corpus']}` `{r['model']}` ({r['mode']}, {r.get('device')}; "
        f"{budget_label(r)}{_settings(r)}; {results_folder(r)}): **{r['status']}**: "
        f"{r.get('error')}{_last_point(r)}"
        + (
            " (superseded: a run of this config finished ok)"
            if r["config_hash"] in finished
            else ""
        )
        for r in bad
    )


def _settings(record: dict) -> str:
    """A count model's pruning, which tells two of its configs apart in the list."""
    prune = (record.get("model_config") or {}).get("prune")
    return f", prune {prune}" if prune else ""


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
