"""WSD decay branches against complete runs, and bf16 against fp32: the schedule and
precision comparisons (mean +- sd over seeds)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..records import machine_id, seedless_config
from ..suites import BRANCHES, PRECISION
from .markdown import duration, table
from .runs import (
    MIN_SEEDS,
    Runs,
    budget_label,
    how_to_fill,
)


def _role(run: dict) -> str:
    extra = run.get("extra") or {}
    if extra.get("branch"):
        return "branch"
    return "trunk" if extra.get("branch_states") else "full"


def branch_rows(runs: Runs) -> list[dict]:
    """Each decay branch config (its seeds) beside each complete run of the same model, budget,
    folder and machine (a complete WSD run: the equivalence check; a cosine run: what the
    usual schedule gives), and its trunk: means, seed spread, and whether the difference is
    within the tolerance (2 standard deviations of the complete runs, or 1%, whichever is
    larger)."""
    # by role too: a branch and a complete WSD run of its budget are one config (seedless_config)
    ok = runs.ok(BRANCHES)
    groups = [
        group
        for role in ("branch", "full", "trunk")
        for group in runs.groups(runs=[r for r in ok if _role(r) == role])
    ]
    rows = []
    for branch in (g for g in groups if _role(g.first) == "branch"):
        first = branch.first

        def same(group, role: str, tokens: int | None, first=first) -> bool:
            limit = (group.first.get("budget") or {}).get("limit") or {}
            return (
                _role(group.first) == role
                and limit.get("tokens") == tokens
                and (group.first["model"], group.first.get("source_file"))
                == (first["model"], first.get("source_file"))
                and machine_id(group.first) == machine_id(first)
            )

        budget = first["budget"]["limit"]["tokens"]
        trunk_tokens = first["extra"]["branch"]["trunk_tokens"]
        trunk = next((g for g in groups if same(g, "trunk", trunk_tokens)), None)
        fulls = [g for g in groups if same(g, "full", budget)] or [None]
        # the WSD comparison first: it is the check; cosine after it
        fulls.sort(key=lambda g: g is not None and _schedule(g) != "wsd")
        for full in fulls:
            rows.append(_branch_row(branch, full, trunk, budget, trunk_tokens))
    return rows


def _schedule(group) -> str | None:
    return (group.first.get("model_config") or {}).get("lr_schedule")


def _branch_row(branch, full, trunk, budget: int, trunk_tokens: int) -> dict:
    row = {
        "corpus": branch.first["corpus"],
        "model": branch.first["model"],
        "budget": f"{budget / 1e6:g} M tokens",
        "decay branch (WSD)": mean_sd(branch),
        "complete run": mean_sd(full),
        "complete schedule": _schedule(full) if full else None,
        f"trunk (complete WSD, {trunk_tokens / 1e6:g} M)": mean_sd(trunk),
        "branch - complete": None,
        "tolerance": None,
        "verdict": "no complete run to compare",
        "branch train time": duration(branch.mean("train_seconds")),
        "complete train time": duration(full.mean("train_seconds")) if full else "-",
    }
    if full is not None:
        words = (
            ("equivalent", "branch better", "branch worse")
            if _schedule(full) == "wsd"
            else tuple(
                f"WSD (to 0) {word} {_schedule(full)}"
                for word in ("equivalent to", "better than", "worse than")
            )
        )
        verdict = _against(branch, full, words)
        row.update(zip(("branch - complete", "tolerance", "verdict"), verdict))
    return row


def _against(candidate, reference, words: tuple[str, str, str]) -> tuple[str, str, str]:
    """Mean test perplexity difference of two groups, the tolerance (2 standard deviations of
    the seeds, pooled over both sides, or 1% of the reference's mean, whichever is larger) and
    a verdict, one of `words` (within the tolerance, better, worse); `identical` where every
    seed's perplexity is the same on both sides; none from fewer than MIN_SEEDS seeds."""
    ours, theirs = candidate.values("test_ppl"), reference.values("test_ppl")
    spreads = [v.var(ddof=1) for v in (ours, theirs) if v.size > 1]
    sd = float(np.sqrt(np.mean(spreads))) if spreads else float("nan")
    difference = candidate.mean("test_ppl") - reference.mean("test_ppl")
    tolerance = max(2 * sd, 0.01 * reference.mean("test_ppl"))
    if min(candidate.seeds, reference.seeds) < MIN_SEEDS:
        verdict = f"fewer than {MIN_SEEDS} seeds: no verdict"
    elif ours.shape == theirs.shape and np.array_equal(ours, theirs):
        verdict = "identical, seed by seed"
    else:
        same, better, worse = words
        verdict = same if abs(difference) <= tolerance else better if difference < 0 else worse
    return f"{difference:+.2f}", f"{tolerance:.2f}", verdict


def mean_sd(group) -> str:
    if group is None:
        return "-"
    values = group.values("test_ppl")
    spread = f" ± {values.std(ddof=1):.2f}" if values.size > 1 else ""
    return f"{values.mean():.2f}{spread} ({group.seeds})"


def branches_table(runs: Runs) -> str:
    rows = branch_rows(runs)
    if not rows:
        return f"_Not run yet: {how_to_fill(BRANCHES)}._"
    return table(pd.DataFrame(rows))


def _compute_dtype(group) -> str:
    return (group.first.get("extra") or {}).get("compute_dtype") or group.first["dtype"]


def _fp32_twin(group) -> tuple:
    """What a bf16 config and its fp32 twin share: machine and config apart from precision."""
    run = group.first
    config = {k: v for k, v in (run.get("model_config") or {}).items() if k != "precision"}
    return machine_id(run), seedless_config({**run, "model_config": config})


def precision_rows(runs: Runs) -> list[dict]:
    """Each bf16-autocast config beside the fp32 runs of the same config on the same machine,
    from any folder of the report (the history suite's, usually): test perplexity mean ± sd,
    the difference against seed noise (`_against`), and the training throughputs."""
    everything = runs.groups()
    rows = []
    for low in runs.groups(PRECISION):
        if _compute_dtype(low) != "bfloat16":
            continue
        full = next(
            (
                g
                for g in everything
                if _compute_dtype(g) == "float32" and _fp32_twin(g) == _fp32_twin(low)
            ),
            None,
        )
        row = {
            "corpus": low.first["corpus"],
            "model": low.first["model"],
            "budget": budget_label(low.first),
            "bf16 autocast": mean_sd(low),
            "fp32": mean_sd(full),
            "bf16 - fp32": None,
            "tolerance": None,
            "verdict": "no fp32 run of this config on this machine",
            "bf16 tok/s": f"{low.mean('train_tokens_per_s'):,.0f}",
            "fp32 tok/s": f"{full.mean('train_tokens_per_s'):,.0f}" if full else "-",
            "bf16 / fp32 speed": None,
            "plateau lr cut (bf16; fp32)": _plateau_cuts(low, full),
            "fp32 from": full.first.get("suite") if full else None,
        }
        if full is not None:
            verdict = _against(low, full, ("within seed noise", "bf16 better", "bf16 worse"))
            row.update(zip(("bf16 - fp32", "tolerance", "verdict"), verdict))
            speed = low.mean("train_tokens_per_s") / full.mean("train_tokens_per_s")
            row["bf16 / fp32 speed"] = f"{speed:.2f}x"
        rows.append(row)
    return rows


def _plateau_cuts(*groups) -> str:
    """For a plateau schedule, in how many seeds of each group an evaluation cut the learning
    rate (one noisy evaluation can: then a difference is the schedule's, not the setting's)."""
    if any(g is None for g in groups) or any(
        (g.first.get("model_config") or {}).get("lr_schedule") != "plateau" for g in groups
    ):
        return "-"

    def cut(run: dict) -> bool:
        final = (run.get("extra") or {}).get("final_lr")
        return final is not None and final < (run.get("model_config") or {}).get("lr", final)

    return "; ".join(f"{sum(cut(r) for r in g.runs)} of {g.seeds}" for g in groups)


def precision_table(runs: Runs) -> str:
    rows = precision_rows(runs)
    if not rows:
        return f"_Not run yet: {how_to_fill(PRECISION)}._"
    return table(pd.DataFrame(rows))
