"""The report's first page: what the measurements support, with their numbers, and what they
do not measure. Every line is computed from the runs and the reference data; a claim about a
neural model needs MIN_SEEDS seeds, and each says its budget (nothing beyond it is stated)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..records import NEURAL_FAMILIES
from ..suites import REPRODUCTION, suites_feeding
from .frontier import crossover_rows
from .gap import gap_rows
from .markdown import duration, times, with_interval
from .reproduction import (
    CORPORA_WE_HAVE,
    NOT_RUN_HERE,
    PROTOCOL_NOTES,
    PUBLISHED_TO_OURS,
    our_match,
)
from .runs import MIN_SEEDS, Runs, budget_label, ratio_interval, results_folder


def _gap_claims(rows: pd.DataFrame) -> list[str]:
    """One line per corpus and machine: kn5's perplexity, then each model that may claim
    something, better or worse than kn5 with its 95% interval, at its budget."""
    if rows.empty:
        return []
    lines = []
    rows = rows[(rows["device"] == "cpu") & (rows["mode"] == "stream")]
    for (corpus, folder), group in rows.groupby(["corpus", "folder"], sort=False):
        kn5 = group[group["ppl_ratio"].isna() & (group["family"] == "ngram")]  # the yardstick
        compared = group[
            group["family"].isin([*NEURAL_FAMILIES, "mix"]) & group["ppl_ratio"].notna()
        ]
        claims = compared[compared["claims"]].sort_values("ppl_ratio")
        if kn5.empty or claims.empty:
            continue
        said = []
        for row in claims.itertuples(index=False):
            low, high = row.interval or (float("nan"), float("nan"))
            if low <= 1 <= high:
                verdict = "no different from kn5"
            else:
                verdict = (
                    f"{abs(1 - row.ppl_ratio):.1%} {'better' if row.ppl_ratio < 1 else 'worse'}"
                )
            said.append(
                f"{row.model} {row.test_ppl:.2f} ({verdict}: {row.ppl_ratio:.3f} "
                f"[{low:.3f}, {high:.3f}]; {row.seeds}; {row.budget})"
            )
        lines.append(
            f"- **{corpus}** ({folder}): kn5 {kn5['test_ppl'].iloc[0]:.2f}; "
            + "; ".join(said)
            + ". Each holds at its budget and schedule only."
            + _budgets_compared(compared)
            + _not_stated(compared)
        )
    return lines


def _budgets_compared(rows: pd.DataFrame) -> str:
    """What the neural rows' budgets make of their order: equal tokens, or unequal tokens at
    about equal training time (then the order is not an architecture ranking)."""
    trained = rows[rows["family"].isin(NEURAL_FAMILIES)]
    if trained["budget"].nunique() < 2:
        return ""
    low, high = trained["train_seconds"].min(), trained["train_seconds"].max()
    return (
        f" The neural budgets differ in tokens, sized to about equal training time on this "
        f"machine ({duration(low)} to {duration(high)}): the order is one at that time, not an "
        "architecture ranking at equal tokens (section 2 compares equal tokens)."
    )


def _not_stated(rows: pd.DataFrame) -> str:
    """The compared rows held back by an incomplete schedule, and why (rows with too few
    seeds are counted under 'Not measured here')."""
    held = rows[~rows["claims"] & rows["incomplete"]]
    said = [f"{r.model} {r.test_ppl:.2f} ({r.no_claim})" for r in held.itertuples(index=False)]
    return f" No finding from: {'; '.join(said)}." if said else ""


def _query_costs(rows: pd.DataFrame) -> list[str]:
    """A decoder's query (one word, state carried) per family beside kn5's, on one machine:
    a timing, measured where the gap rows have it (no seed claim: speed does not vary by seed)."""
    if rows.empty:
        return []
    rows = rows[(rows["device"] == "cpu") & rows["query_us"].notna()]
    lines = []
    for (corpus, mode, folder), group in rows.groupby(["corpus", "mode", "folder"], sort=False):
        kn5 = group[group["ppl_ratio"].isna() & (group["family"] == "ngram")]
        others = group[group["family"].isin(NEURAL_FAMILIES)].sort_values("query_us")
        if kn5.empty or others.empty:
            continue
        base = kn5["query_us"].iloc[0]
        said = [
            f"{r.model} {r.query_us:,.0f} µs ({times(r.query_us / base)}"
            + (f"; its runs {r.query_range} µs" if r.query_range != "-" else "")
            + ")"
            for r in others.itertuples()
        ]
        lines.append(
            f"- **{corpus}**, {mode} mode ({folder}): kn5 {base:.1f} µs per query; "
            + "; ".join(said)
            + "."
        )
    return lines


def _a_check(ours) -> str:
    """'' where the group may claim a finding, else why it is a check only."""
    if ours.claims:
        return ""
    why = f"< {MIN_SEEDS} seeds" if ours.seeds < MIN_SEEDS else ours.no_claim()
    return f"; a check, not a finding: {why}"


def _published_matches(runs: Runs, published: pd.DataFrame):
    """Each published row that one of our configs answers: (row, our spec, mode, our `Group`)."""
    for pub in published.itertuples(index=False):
        spec, mode = PUBLISHED_TO_OURS.get((pub.corpus, pub.model), (None, None))
        ours = our_match(runs, pub.corpus, spec, mode) if spec else None
        if ours:
            yield pub, spec, mode, ours


def _published_schedule(ours) -> bool:
    """Whether our config ran in the reproduction section's preferred suite, which runs the
    papers' own schedules."""
    return ours.first.get("suite") == suites_feeding(REPRODUCTION)[0]


def _published_claims(runs: Runs, published: pd.DataFrame) -> list[str]:
    """Our number beside the published one, where ours is a reproduction: the same protocol, and
    a count model (or count mix) or a run of the published schedule (the reproduce suite); the
    other pairings differ in budget or protocol and are in section 3 with how they differ."""
    lines = []
    for pub, _spec, mode, ours in _published_matches(runs, published):
        if pd.isna(pub.test_ppl) or pub.corpus in PROTOCOL_NOTES:
            continue
        if not (ours.deterministic or _published_schedule(ours)):
            continue
        ratio = ours.mean("test_ppl") / pub.test_ppl
        lines.append(
            f"- {pub.corpus} {pub.model} ({pub.source}): published {pub.test_ppl:g}, ours "
            f"{ours.mean('test_ppl'):.2f} ({ratio - 1:+.1%}; {ours.spread()}, {mode} mode"
            + _a_check(ours)
            + ")."
        )
    return lines


def _other_protocol_checks(runs: Runs, published: pd.DataFrame) -> list[str]:
    """Neural runs of a published schedule (the reproduce suite) on a corpus whose protocol
    differs from the paper's: beside our kn5 only (absolute numbers do not compare across the
    protocols), with their seeds; under MIN_SEEDS seeds, a check."""
    lines = []
    for pub, spec, mode, ours in _published_matches(runs, published):
        if ours.deterministic or pub.corpus not in PROTOCOL_NOTES:
            continue
        if not _published_schedule(ours):
            continue
        kn5 = our_match(runs, pub.corpus, "kn5", mode)
        if not kn5:
            continue
        ratio = ours.mean("test_ppl") / kn5.mean("test_ppl")
        interval = ratio_interval(ours.runs, kn5.first) if ours.claims else None
        ratio_text = with_interval(ratio, interval)
        lines.append(
            f"- {pub.corpus} {pub.model} ({pub.source}), our {spec} toward the paper's schedule "
            f"({budget_label(ours.first)}): {ours.mean('test_ppl'):.2f}, {ratio_text} of our kn5 "
            f"({kn5.mean('test_ppl'):.2f}); {ours.spread()}, {mode} mode" + _a_check(ours) + "."
        )
    return lines


def _crossings(runs: Runs, hardware: pd.DataFrame, published: pd.DataFrame) -> list[str]:
    """Each neural family's first budget below full-data kn5 on the frontier, said as a finding
    only where the budgets around it have MIN_SEEDS seeds (`finding`)."""
    lines = []
    for row in crossover_rows(runs, hardware, published):
        where = row["first below"]
        if not where.startswith("not"):  # an interval covering 1 is no crossing: said first
            where = f"{'below it on the mean only' if row['mean only'] else 'first below it'} at {where}"
        if not row["valid agrees"]:  # chosen on test alone, a crossing is not a reading to trust
            where += f"; on valid, {row['on valid'].replace('not within', 'not below kn5 within')}"
        measured = (
            f"{where} ({row['epochs']} epochs, {row['schedule']}): test {row['test ppl (seeds)']}, "
            f"/ kn5 {row['/ kn5 [95% CI]']}, {row['here']}"
        )
        claim = "no claim" not in row["finding"]
        lines.append(
            f"- {row['corpus']} {row['family']} against kn5 {row['kn5 (all data)']}: {measured}; "
            + (row["finding"] if claim else f"{row['finding']} yet")
            + "."
        )
    return lines


def _not_measured(runs: Runs, published: pd.DataFrame) -> list[str]:
    lines = []
    if not any(r.get("device") == "cuda" for r in runs.ok()):
        lines.append(
            "- No GPU run: the GPU side of the history is the published runs only (section 4)."
        )
    for corpus in sorted(set(published["corpus"]) - set(CORPORA_WE_HAVE)):
        reason = NOT_RUN_HERE.get(corpus, "not run here")
        lines.append(f"- {corpus}: {reason} (its published rows are in section 3).")
    done = {r["config_hash"] for r in runs.ok()}
    skipped: dict[str, tuple[set, set]] = {}
    for r in runs.records:  # configs skipped, with no ok run anywhere in these results
        if r["status"] == "skipped" and r["config_hash"] not in done:
            reason = (r.get("error") or r["status"]).split(":")[0]
            models, folders = skipped.setdefault(reason, (set(), set()))
            budget = budget_label(r)
            models.add(r["model"] if budget == "full data" else f"{r['model']} ({budget})")
            folders.add(results_folder(r))
    for reason, (models, folders) in sorted(skipped.items()):
        lines.append(
            f"- {', '.join(sorted(models))}: {reason}, in the runs of "
            f"{', '.join(sorted(folders))} (see 'Failed and skipped runs')."
        )
    few = {
        g.label
        for g in runs.groups()
        if g.first["family"] in NEURAL_FAMILIES and g.seeds < MIN_SEEDS
    }
    if few:
        lines.append(
            f"- {len(few)} neural configs have fewer than {MIN_SEEDS} seeds (the wall-clock runs "
            "of the first sessions, the published schedules, probes): shown in their sections, "
            "no finding stated from them."
        )
    return lines


def newest_kenlm_queries(peers: Path | None) -> dict | None:
    """The newest decoder-query comparison under `peers` (its `queries` figures and `env`):
    `benchmarks/peer_kenlm.py --only queries` writes kenlm-queries.json, a whole run kenlm.json;
    None where none was measured."""
    found = []
    for name in ("kenlm-queries.json", "kenlm.json"):
        for path in sorted(Path(peers).glob(f"*/{name}")) if peers else []:
            data = json.loads(path.read_text())
            if "queries" in data:  # the earliest whole runs measured no queries
                found.append((data["env"]["time_utc"], {**data["queries"], "env": data["env"]}))
    return max(found, key=lambda item: item[0])[1] if found else None


def _beside_kenlm(kenlm: dict | None) -> str:
    if kenlm is None:
        return "not measured beside KenLM here (`benchmarks/peer_kenlm.py --only queries`)"
    return (
        f"{kenlm['ratio_ours_to_kenlm']:.1f}x KenLM's BaseScore on the same model (PTB kn5, "
        f"sentence mode: {kenlm['ours_us_per_query']:.2f} vs {kenlm['kenlm_base_score_us_per_query']:.2f} "
        f"µs, {kenlm['env']['cpu']}, {kenlm['env']['time_utc'][:10]}, commit "
        f"{(kenlm['env'].get('git_commit') or 'unknown')[:7]}; section 1's kn5 figures were "
        "measured apart from it; results/peers/, "
        "`benchmarks/peer_kenlm.py --only queries`)"
    )


def summary(
    runs: Runs, published: pd.DataFrame, hardware: pd.DataFrame, kenlm: dict | None = None
) -> list[str]:
    """The report's opening page, as Markdown lines."""
    lines = ["## Summary: what these runs support", ""]
    rows = gap_rows(runs)  # bootstrap intervals: computed once for both lists
    gap = _gap_claims(rows)
    lines += (
        [
            "Perplexity against kn5 on the same machine and data (test, mean over seeds; ratio to "
            "kn5 with its 95% interval over seeds and blocks of test sentences):",
            "",
            *gap,
            "",
        ]
        if gap
        else [f"_No gap runs yet ({', '.join(suites_feeding('gap'))})._", ""]
    )
    queries = _query_costs(rows)
    if queries:
        lines += [
            "One query as a first-pass decoder would ask it, at batch 1 (one word, context "
            "in, log-probability out, the model's state carried, the neural models' full "
            "softmax; section 1's \"µs/query\", the median over a config's runs). These time "
            f"this implementation: our kn5 query is pure Python, {_beside_kenlm(kenlm)}; the "
            "neural ones are PyTorch eager on this CPU. Era systems batched or rescored "
            "instead, and a mix costs its parts together:",
            "",
            *queries,
            "",
        ]
    crossing = _crossings(runs, hardware, published)
    if crossing:
        lines += [
            "The equal-compute frontier as far as it has run (section 2): the first budget "
            "below full-data kn5 bounds the crossing from above, the budget before it from below:",
            "",
            *crossing,
            "",
        ]
    beside = _published_claims(runs, published)
    if beside:
        lines += [
            "Our reproductions of published numbers (same protocol; the other published rows "
            "differ in budget or protocol and are in section 3 with how):",
            "",
            *beside,
            "",
        ]
    other = _other_protocol_checks(runs, published)
    if other:
        lines += [
            "Published schedules on a protocol of our own (section 3 says how it differs from "
            "the paper's; a ratio to our kn5, as the paper's numbers are not comparable, with "
            f"its 95% interval over seeds and blocks of test sentences from {MIN_SEEDS} seeds):",
            "",
            *other,
            "",
        ]
    lines += ["Not measured here:", "", *_not_measured(runs, published), ""]
    return lines
