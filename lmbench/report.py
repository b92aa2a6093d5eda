"""`lmbench report DIR`: a Markdown summary of every run under DIR, from the results frame only.

This first version lists every run (latest record per config) with its quality and cost, and
every failed or skipped run with its reason. The figures and the historical tables build on it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .results import load_frame

COLUMNS = {
    "corpus": "corpus",
    "mode": "mode",
    "model": "model",
    "status": "status",
    "valid_ppl": "valid ppl",
    "test_ppl": "test ppl",
    "test_bits_per_token": "bits/token",
    "train_seconds": "train s",
    "train_tokens_per_s": "train tok/s",
    "eval_tokens_per_s": "eval tok/s",
    "latency_ms_per_token": "latency ms/tok",
    "peak_rss_bytes": "peak RSS MB",
    "size_bytes": "size MB",
    "params": "params",
}


def _note(run: pd.Series) -> str:
    """What makes a row not directly comparable with its neighbours, from the record itself."""
    notes = []
    if isinstance(run.get("extra.protocol"), str):
        notes.append(run["extra.protocol"])
    if pd.notna(run.get("extra.eval_slice_tokens")):
        notes.append(f"scored on the first {int(run['extra.eval_slice_tokens']):,} tokens only")
    budget = run.get("budget.limit")
    if isinstance(budget, dict) and budget.get("tokens"):
        notes.append(f"trained on {int(budget['tokens']):,} tokens")
    if isinstance(run.get("model_config.prune"), str) and run["model_config.prune"]:
        notes.append(f"pruned {run['model_config.prune']}")
    if (
        isinstance(run.get("extra.discount_fallback_orders"), list)
        and run["extra.discount_fallback_orders"]
    ):
        notes.append(f"fallback discounts at orders {run['extra.discount_fallback_orders']}")
    return "; ".join(notes)


def runs_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per config hash (its latest record), in a readable order."""
    runs = frame.drop_duplicates("run_id").drop_duplicates("config_hash", keep="last")
    table = runs[list(COLUMNS)].copy()
    table["peak_rss_bytes"] = table["peak_rss_bytes"] / 2**20
    table["size_bytes"] = table["size_bytes"] / 2**20
    table["note"] = runs.apply(_note, axis=1)
    return table.rename(columns=COLUMNS).sort_values(
        ["corpus", "mode", "test ppl"], na_position="last"
    )


def _markdown(table: pd.DataFrame) -> str:
    def cell(value) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return "-"
        if isinstance(value, float):
            if 0 < abs(value) < 1:
                return f"{value:.3g}"  # latencies in ms are often well below 1
            return f"{value:,.2f}" if abs(value) < 1e5 else f"{value:,.0f}"
        return str(value)

    header = "| " + " | ".join(table.columns) + " |"
    rule = "| " + " | ".join("---" for _ in table.columns) + " |"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def render(frame: pd.DataFrame, title: str) -> str:
    if frame.empty:
        return f"# {title}\n\nNo runs found.\n"
    runs = frame.drop_duplicates("run_id").drop_duplicates("config_hash", keep="last")
    lines = [
        f"# {title}",
        "",
        f"{len(runs)} runs. Perplexities are per token, every token (incl. "
        "`<eos>`) predicted once; see the evaluation protocol in README.md.",
        "",
        _markdown(runs_table(frame)),
        "",
    ]
    bad = runs[runs["status"] != "ok"]
    lines += ["## Failed and skipped runs", ""]
    if bad.empty:
        lines.append("None.")
    for r in bad.itertuples(index=False):
        lines.append(f"- `{r.corpus}` `{r.model}` ({r.mode}): **{r.status}**: {r.error}")
    return "\n".join(lines) + "\n"


def write_report(folder: Path, out: Path | None = None) -> Path:
    out = out or folder / "report.md"
    out.write_text(render(load_frame(folder), f"lmbench report: {folder}"))
    return out
