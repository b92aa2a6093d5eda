"""The report's tables, each a function of the runs (and the reference data) only."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..measure import describe_machine
from ..records import NEURAL_FAMILIES, is_full_data, machine_id, seedless_config
from ..reference.utilisation import derivations, era_utilisation
from ..suites import BRANCHES, COST, GAP, PRECISION, REPRODUCTION, THROUGHPUT, suites_feeding
from .markdown import duration, table, times
from .runs import (
    METHOD,
    MIN_SEEDS,
    Runs,
    budget_label,
    budget_with_schedule,
    how_to_fill,
    machine_label,
    pruning_rows,
    ratio_interval,
    ratio_point,
    several_machines,
    smoothing_rows,
)

MiB = 2**20

# Which of our runs answers which published row: (corpus, published model) -> (spec, mode).
# PTB's SRILM-era rows scored sentences; Zaremba et al. and later scored the stream.
PUBLISHED_TO_OURS = {
    ("ptb", "KN3"): ("kn3", "sentence"),
    ("ptb", "KN5"): ("kn5", "sentence"),
    ("ptb", "KN5 + cache"): ("kn5+cache", "sentence"),
    ("ptb", "Feedforward NNLM"): ("mlp", "stream"),
    ("ptb", "RNNLM"): ("rnn", "stream"),
    ("ptb", "RNNLM + KN5"): ("rnn+kn5", "stream"),
    ("ptb", "LSTM small (non-regularized)"): ("lstm-zaremba-small", "stream"),
    ("ptb", "LSTM medium (dropout 0.5)"): ("lstm-zaremba-medium", "stream"),
    ("ptb", "Transformer-XL"): ("transformer", "stream"),
    ("brown", "KN back-off 3-gram"): ("kn3", "stream"),
    ("brown", "KN back-off 5-gram"): ("kn5", "stream"),
    ("brown", "MLP1"): ("mlp1", "stream"),
    ("brown", "MLP9"): ("mlp9", "stream"),
    ("brown", "MLP10 (mixed with trigram)"): ("mlp9+kn3", "stream"),
}
CORPORA_WE_HAVE = ("ptb", "brown", "wikitext2")
# published rows on our corpora that no lmbench config answers, and why
NO_CONFIG = {
    "LSTM large (dropout 0.65)": "no lmbench config: a 2x1500 LSTM for 55 epochs (an entire day "
    "on a K20) is a GPU run beyond this project's GPU time so far; the medium row is the GPU "
    "run defined (`lstm-zaremba-medium`)",
    "class-based back-off 3-gram": "not implemented: class-based N-grams (word classes from "
    "clustering) are not among lmbench's count models",
    "deleted interpolation trigram": "not implemented: deleted interpolation (Jelinek-Mercer "
    "weights by count buckets) is not among lmbench's smoothing methods",
}
# where the history was decided, and why those rows have no run of ours
NOT_RUN_HERE = {
    "apnews": "not run here: the AP News corpus (about 14 M words) is licensed (LDC), not "
    "downloadable",
    "wikitext103": "not run here yet: WikiText-103 (103 M tokens) is not a corpus here yet (its "
    "N-grams need the bounded-memory path; a 257 M-parameter Transformer-XL is beyond a CPU)",
    "1bw": "not run here: One Billion Word (0.8 B tokens): an unpruned KN5 of 1.14 B n-grams "
    "needs about 40 GB in memory (24 GiB here; bounded-memory path not built yet), and the "
    "published LSTMs trained on 32 K40 GPUs",
}
PROTOCOL_NOTES = {
    "brown": "different protocol: NLTK's Brown tokenization (case kept), no paragraph marks, "
    "words seen fewer than 4 times in train merged into <unk> (the paper's rule, but its "
    "|V| = 16,383 differs from ours), <eos> predicted at each sentence end (the paper gives it "
    "no special status), test 161,192 words against the paper's 181,041; the paper's MLP10 "
    "averages 0.5/0.5 with an interpolated trigram, ours tunes the weight with kn3 by EM",
}


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
                "query_us": group.mean("query_us"),
                "query_ratio": ratio("query_us"),
                "time_to_kn5": _time_to_target(group),
                "time_to_kn5_ratio": _ratio(
                    _mean_time_to_target(group), ref and ref.get("train_seconds")
                ),
                "budget": runs.budget(run),
            }
        )
    return pd.DataFrame(rows)


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


def _with_interval(ratio, interval) -> str:
    if ratio is None or pd.isna(ratio):  # the yardstick's own row
        return "-"
    text = f"{ratio:.3f}"
    return text + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")


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
                    _with_interval(r, i) for r, i in zip(group["ppl_ratio"], group["interval"])
                ],
                "train time": group["train_seconds"].map(duration),
                "time to kn5 valid": group["time_to_kn5"],
                "/ kn5's train time": group["time_to_kn5_ratio"].map(times),
                "train tok/s": group["tokens_per_s"],
                "peak RSS MB": group["peak_rss_mb"],
                "size MB": group["size_mb"],
                "size / kn5": group["size_ratio"].map(times),
                "µs/query (decoder)": group["query_us"],
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
    what cost; none from fewer than MIN_SEEDS seeds."""
    lines = []
    for row in group.itertuples(index=False):
        if row.family not in NEURAL_FAMILIES and row.family != "mix":
            continue
        if row.ppl_ratio is None:
            continue
        if not row.claims:
            lines.append(
                f"- **{row.model}**: {row.seeds}: no claim (a finding needs >= {MIN_SEEDS} "
                "seeds: `--seeds 0,1,2`)."
            )
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


def our_match(runs: Runs, corpus: str, spec: str, mode: str):
    """Our config answering a published row (a `Group`: its seeds): the preferred suite's
    newest full-data run and the other seeds of its config. Several suites may hold a run of
    the same spec: their declaration order is the preference (the published schedule first,
    then the main job)."""
    preference = suites_feeding(REPRODUCTION)
    candidates = [
        r
        for r in runs.ok(REPRODUCTION)
        if (r["corpus"], r["model"], r["mode"]) == (corpus, spec, mode)
        and is_full_data(r)
        and not (r.get("extra") or {}).get("vocab")  # another vocabulary: another protocol
    ]
    if not candidates:
        return None
    ranked = [(preference.index(r.get("suite")), -i, r) for i, r in enumerate(candidates)]
    chosen = min(ranked, key=lambda m: m[:2])[2]
    for group in runs.groups(REPRODUCTION, candidates):
        if any(r is chosen for r in group.runs):
            return group
    return None


def reproduction_table(runs: Runs, published: pd.DataFrame) -> str:
    rows = []
    for pub in published.itertuples(index=False):
        spec, mode = PUBLISHED_TO_OURS.get((pub.corpus, pub.model), (None, None))
        ours = our_match(runs, pub.corpus, spec, mode) if spec else None
        if ours:
            params = ours.first.get("params")
            note = (
                f"{mode} mode, {budget_with_schedule(ours.first)}, trained "
                f"{duration(ours.mean('train_seconds'))}"
                + (
                    f", {params / 1e6:.1f} M parameters"
                    if params and ours.first["family"] in NEURAL_FAMILIES
                    else ""
                )
                + f"; {ours.spread()}"
            )
        elif spec:
            note = f"not run yet (`{spec}`, {mode} mode)"
        elif pub.corpus not in CORPORA_WE_HAVE:
            note = NOT_RUN_HERE.get(pub.corpus, "not run here: corpus not available")
        elif pd.isna(pub.test_ppl) and pd.isna(pub.valid_ppl):
            note = "the source gives a training time, not a perplexity"
        else:
            note = NO_CONFIG.get(pub.model, "no lmbench config of this model")
        rows.append(
            {
                "corpus": pub.corpus,
                "published": f"{pub.model} ({pub.config})",
                "valid": pub.valid_ppl,
                "test": pub.test_ppl,
                "their hardware, time": ", ".join(
                    str(x) for x in (pub.hardware, pub.train_time) if isinstance(x, str) and x
                ),
                "source": pub.source,
                "ours": spec or "-",
                "our valid": ours.mean("valid_ppl") if ours else None,
                "our test": ours.mean("test_ppl") if ours else None,
                "our run": note
                + (" (a different protocol: see below)" if pub.corpus in PROTOCOL_NOTES else ""),
            }
        )
    notes = [f"- {corpus}: {text}." for corpus, text in PROTOCOL_NOTES.items()]
    notes += [
        "- `lstm-zaremba-*`: Zaremba et al.'s SGD at lr 1 with the gradient norm clipped at 5 "
        "acts on a loss summed over the 20 unrolled steps; ours is a mean over every token, so "
        "the same updates take lr 20 and clip 0.25 (`lmbench/models/registry.py`). Why our "
        "small LSTM ends slightly below the published perplexities (one seed) is not known.",
        "- Transformer-XL (24 M parameters, trained to convergence) is not comparable with our "
        "3.3 M-parameter Transformer trained for a few epochs: the row shows the scale of what "
        "the architecture reaches, not a reproduction.",
    ]
    cache = our_match(runs, "ptb", "kn5+cache", "sentence")
    if cache:
        config = cache.first.get("model_config") or {}
        weight = (config.get("weights") or {}).get("cache")
        notes.append(
            "- `kn5+cache`: a unigram cache over the previous N predicted tokens of the test "
            "stream, never reset (PTB has no article boundaries), counting `<unk>` and `<eos>` "
            "like any token (part of its gain may be `<unk>`'s); N from 50-5,000 and its weight "
            f"by EM, both tuned on valid (here N = {config.get('cache_size')}, weight "
            f"{weight:.2f}). Mikolov's Table 4.1 gives neither his cache's size nor its weight."
        )
    notes.append(
        f"- our valid and test are means over a config's seeds; a neural row of fewer than "
        f"{MIN_SEEDS} seeds is one measurement, not a finding."
    )
    return "\n".join([table(pd.DataFrame(rows)), "", *notes])


GPU_VENDOR = "NVIDIA"  # how published.csv names every GPU it lists (K20, GP100)


def published_gpu_runs(published: pd.DataFrame, corpus: str = "ptb") -> pd.DataFrame:
    """The published runs made on a GPU: what the report shows where no GPU run of ours exists."""
    on_gpu = published["hardware"].fillna("").str.contains(GPU_VENDOR)
    return published[(published["corpus"] == corpus) & on_gpu]


def gpu_era_table(published: pd.DataFrame, corpus: str = "ptb") -> str:
    rows = published_gpu_runs(published, corpus)
    shown = rows[["model", "config", "valid_ppl", "test_ppl", "hardware", "train_time", "source"]]
    return table(shown.rename(columns={"valid_ppl": "valid", "test_ppl": "test"}))


def throughput_table(runs: Runs) -> str:
    chosen = [run for run in runs.ok(THROUGHPUT) if run.get("flops_per_token")]
    rows = []
    for group in runs.groups(THROUGHPUT, chosen):
        run = group.first
        flops, seconds = group.values("train_flops"), group.values("train_seconds")
        rows.append(
            {
                "suite": run["suite"],
                "corpus": run["corpus"],
                "model": group.label,
                "seeds": group.seeds,
                "device": run.get("device_name") or run["device"],
                **({"machine": machine_label(run)} if several_machines(chosen) else {}),
                "compute dtype": (run.get("extra") or {}).get("compute_dtype", run["dtype"]),
                "train tok/s": group.mean("train_tokens_per_s"),
                "eval tok/s": group.mean("eval_tokens_per_s"),
                "GFLOPs/token (train)": run["flops_per_token"] / 1e9,
                "achieved GFLOP/s": float((flops / seconds).mean()) / 1e9,
                "matmul peak GFLOP/s (measured)": (run.get("calibration") or {}).get(
                    "matmul_gflops"
                ),
                "MFU": group.mean("mfu"),
                "budget": budget_label(run),
            }
        )
    return table(pd.DataFrame(rows).sort_values(["suite", "model"]) if rows else pd.DataFrame())


def era_machines(
    hardware: pd.DataFrame, published: pd.DataFrame
) -> list[tuple[str, int, float, float, float]]:
    """(name, year, peak FLOP/s, low and high utilisation) of each machine whose papers'
    runs give a derivable utilisation (`reference.utilisation`)."""
    eras = []
    for device, (low, high) in era_utilisation(published, hardware).items():
        match = hardware[hardware["device"].str.startswith(device)]
        eras.append(
            (device, int(match["year"].iloc[0]), float(match["peak_flops"].iloc[0]), low, high)
        )
    return eras


def share(low: float, high: float) -> str:
    """`0.5%-5.1%`, or `2.4%` where the range is one figure."""
    return f"{low:.1%}" if math.isclose(low, high) else f"{low:.1%}-{high:.1%}"


def era_costs(train_flops: float, eras: list) -> dict[str, str]:
    """How long `train_flops` take on each era's machine at its papers' utilisation range."""
    costs = {}
    for name, year, peak, low, high in eras:
        fast, slow = duration(train_flops / (peak * high)), duration(train_flops / (peak * low))
        costs[f"{year} {name} at {share(low, high)}"] = fast if fast == slow else f"{fast} - {slow}"
    return costs


def utilisation_table(published: pd.DataFrame, hardware: pd.DataFrame) -> str:
    """Each derivable paper run: its training FLOPs (our formulas), reported time, devices,
    and the fraction of peak it achieved."""
    rows = derivations(published, hardware)
    if rows.empty:
        return "_No published row gives the inputs of a derivation._"
    shown = rows.assign(
        **{
            "year": rows["year"].astype(str),  # not a quantity: no thousands separator
            "training FLOPs": rows["training FLOPs"].map(lambda f: f"{f:.3g}"),
            "of peak": [share(lo, hi) for lo, hi in zip(rows["low"], rows["high"])],
        }
    ).drop(columns=["low", "high"])
    return table(shown)


def cost_table(runs: Runs, hardware: pd.DataFrame, published: pd.DataFrame) -> str:
    """Each neural config's measured training FLOPs (mean over its seeds) on the machines of
    2001 and 2012."""
    eras = era_machines(hardware, published)
    chosen = [r for r in runs.ok(COST) if r.get("train_flops") and is_full_data(r)]
    rows = []
    for group in runs.groups(COST, chosen):
        run, train_flops = group.first, group.mean("train_flops")
        row = {
            "corpus": run["corpus"],
            "model": group.label,
            "budget": budget_label(run),
            "training FLOPs": f"{train_flops:.3g}",
            **({"machine": machine_label(run)} if several_machines(chosen) else {}),
            "here (measured)": duration(group.mean("train_seconds")),
        }
        epoch_tokens = (run.get("extra") or {}).get("epoch_tokens")
        row.update(era_costs(train_flops, eras))
        for _, year, peak, _, high in eras:
            row[f"{year} at peak"] = duration(train_flops / peak)
            if epoch_tokens and year < 2010:
                per_epoch = run["flops_per_token"] * epoch_tokens / (peak * high)
                row[f"one epoch, {year}"] = f">= {duration(per_epoch)}"
        rows.append(row)
    return table(pd.DataFrame(rows))


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
