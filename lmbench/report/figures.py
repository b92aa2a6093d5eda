"""The report's figures (seaborn, PNG), each from the runs and reference data only.

Each function draws one figure into `path` and returns what the text needs to say about it.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ..records import (  # noqa: E402
    NEURAL_FAMILIES,
    TARGET_MODEL,
    is_full_data,
    machine_id,
    seedless_config,
)
from ..reference import parse_duration  # noqa: E402
from ..suites import PERPLEXITY_VS_TIME, SCALING, SMOOTHING  # noqa: E402
from .reproduction import published_gpu_runs  # noqa: E402
from .runs import (  # noqa: E402
    METHOD,
    Runs,
    config_labels,
    contention,
    never_decayed,
    pruning_rows,
    several_machines,
    smoothing_rows,
)

DPI = 110
DEVICES = {"cpu": "CPU", "cuda": "GPU"}


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    # a legend placed below its axes (out of the layout) still goes into the file
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    fig.savefig(path, dpi=DPI, bbox_inches="tight", bbox_extra_artists=legends)
    plt.close(fig)


def _on_machine(label: str, run: dict, several: bool) -> str:
    """`label`, with the run's machine id where a figure holds runs of several machines: their
    seconds are never drawn as one series."""
    return f"{label} [{machine_id(run) or 'v1'}]" if several else label


def _curve_points(run: dict, label: str, several_machines: bool = False) -> list[dict]:
    points = run.get("curve") or [{"seconds": run["train_seconds"], "valid_ppl": run["valid_ppl"]}]
    model = _on_machine(label, run, several_machines)
    return [
        {"model": model, "run": run["run_id"], "seconds": p["seconds"], "valid ppl": p["valid_ppl"]}
        for p in points
        if p.get("seconds") and p.get("valid_ppl") and math.isfinite(p["valid_ppl"])
    ]


def perplexity_vs_time(runs: Runs, published: pd.DataFrame, path: Path, corpus="ptb") -> dict:
    """Valid perplexity against training seconds, one curve per model, CPU and GPU panels."""
    chosen = [
        r
        for r in runs.ok(PERPLEXITY_VS_TIME)
        if r["corpus"] == corpus
        and r["mode"] == "stream"
        and is_full_data(r)
        and r["family"] != "mix"
    ]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharex=True, sharey=True)
    measured = {}
    for ax, (device, label) in zip(axes, DEVICES.items()):
        on_device = [r for r in chosen if r["device"] == device]
        measured[device] = bool(on_device)
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="training seconds",
            title=f"{corpus.upper()}, {label}",
        )
        kn5 = [r for r in on_device if r["model"] == TARGET_MODEL] or [
            r for r in chosen if r["model"] == TARGET_MODEL
        ]
        if kn5:
            ax.axhline(kn5[-1]["valid_ppl"], color="black", ls="--", lw=1)
            ax.annotate(
                f"kn5 valid {kn5[-1]['valid_ppl']:.1f}",
                (0.01, kn5[-1]["valid_ppl"]),
                xycoords=("axes fraction", "data"),
                va="bottom",
                fontsize=8,
            )
        if on_device:
            several = several_machines(on_device)
            points = pd.DataFrame(
                [
                    p
                    for group in runs.groups(runs=on_device)
                    for r in group.runs
                    for p in _curve_points(r, group.label, several)
                ]
            )
            # one line per run (each seed its own), one colour per config
            sns.lineplot(
                points,
                x="seconds",
                y="valid ppl",
                hue="model",
                units="run",
                estimator=None,
                marker="o",
                ax=ax,
            )
            reached = []
            for group in runs.groups(runs=on_device):
                times = [r["time_to_target_s"] for r in group.runs if r.get("time_to_target_s")]
                if not times or group.first["family"] not in NEURAL_FAMILIES:
                    continue
                for r in group.runs:
                    if r.get("time_to_target_s"):
                        ax.plot(r["time_to_target_s"], r["target_ppl"], "k*", ms=12)
                # how much the figure rests on: seeds, and whether its machine is known
                facts = [
                    f"{len(times)} of {group.seeds} seeds"
                    if len(times) < group.seeds
                    else f"{group.seeds} seed{'s' if group.seeds > 1 else ''}"
                ]
                if not machine_id(group.first):
                    facts.append("recorded before machine fingerprints")
                mean = sum(times) / len(times)
                reached.append(f"{group.label} {mean:.0f} s ({', '.join(facts)})")
            measured[f"{device} reached"] = reached  # said in the text: labels are long
            # below the panel, one entry per line: config labels are long
            legend = ax.legend(
                loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=7, frameon=False
            )
            legend.set_in_layout(False)  # the axes keep their size; the saved file grows
        else:
            _published_panel(ax, published, corpus)
    axes[0].set_ylabel("validation perplexity")
    # One time axis for both panels: the GPU era's hours against this CPU's seconds and minutes.
    axes[0].set_xlim(0.02, 2e5)
    axes[0].set_ylim(top=min(axes[0].get_ylim()[1], 600))  # add-one's thousands squash the rest
    _save(fig, path)
    return measured


def _published_panel(ax, published: pd.DataFrame, corpus: str) -> None:
    rows = published_gpu_runs(published, corpus)
    ax.text(
        0.5,
        0.9,
        "not measured on this machine\n(published GPU-era runs shown)",
        transform=ax.transAxes,
        ha="center",
        va="top",
        fontsize=9,
    )
    for row in rows.itertuples(index=False):
        seconds = parse_duration(row.train_time)
        if seconds is None or not isinstance(row.valid_ppl, float) or math.isnan(row.valid_ppl):
            continue
        ax.plot(seconds, row.valid_ppl, "s", color="grey")
        ax.annotate(
            f"{row.model.split(' (')[0]}, {row.hardware.replace('NVIDIA ', '')}",
            (seconds, row.valid_ppl),
            textcoords="offset points",
            xytext=(-8, 0),
            ha="right",
            va="center",
            fontsize=7,
        )


def data_tokens(run: dict) -> int:
    extra = run.get("extra") or {}
    return extra.get("train_data_tokens") or extra.get("epoch_tokens") or run["train_tokens"]


def power_law(tokens: np.ndarray, loss: np.ndarray) -> tuple[float, float]:
    """Kaplan et al.'s L(D) = (D_c / D)^alpha, fitted in log-log space: (alpha, D_c)."""
    slope, intercept = np.polyfit(np.log(tokens), np.log(loss), 1)
    alpha = -slope
    return alpha, math.exp(intercept / alpha) if alpha else math.inf


def series_labels(records: list[dict]):
    """A label per config apart from its data size (one series across the sizes), telling
    configs of one model apart as `config_labels` does."""

    def whole_data(r: dict) -> dict:
        extra = {k: v for k, v in (r.get("extra") or {}).items() if k != "train_fraction"}
        return {**r, "extra": extra}

    firsts = {}
    for r in records:
        firsts.setdefault(seedless_config(whole_data(r)), whole_data(r))
    labels = dict(zip(firsts, config_labels(list(firsts.values()))))
    return lambda r: labels[seedless_config(whole_data(r))]


MIN_FIT_POINTS = 4  # a power law from fewer data sizes is an exact fit, not evidence
FIT_RESAMPLES = 1000


def alpha_interval(tokens: np.ndarray, loss: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """A 95% bootstrap interval on a fit's exponent: the points resampled with replacement
    (resamples with fewer than two distinct sizes are dropped)."""
    rng = np.random.default_rng(seed)
    alphas = []
    for _ in range(FIT_RESAMPLES):
        pick = rng.integers(0, tokens.size, tokens.size)
        if np.unique(tokens[pick]).size >= 2:
            alphas.append(power_law(tokens[pick], loss[pick])[0])
    low, high = np.percentile(alphas, [2.5, 97.5])
    return float(low), float(high)


def scaling_runs(runs: Runs) -> tuple[list[dict], list[dict]]:
    """The scaling suite's runs that the section uses, and those it leaves out: a seconds
    budget (the suite's first, fixed-time design) gives every data size the same minutes, so
    its points measure the clock as much as the data. A count model's perplexity is its
    config's on any machine: where several machines estimated one config, one record is used,
    the timing machine's (`timing_machine`) where it has one."""
    ok = runs.ok(SCALING)
    timed = [r for r in ok if (r.get("budget") or {}).get("kind") == "seconds"]
    used = [r for r in ok if (r.get("budget") or {}).get("kind") != "seconds"]
    panel = timing_machine(used)
    counted = {}
    for r in used:
        if r.get("family") == "ngram":
            key = (r["corpus"], r["config_hash"])
            if key not in counted or machine_id(r) == panel:
                counted[key] = r
    keep = {id(r) for r in counted.values()}
    return [r for r in used if r.get("family") != "ngram" or id(r) in keep], timed


def timing_machine(records: list[dict]) -> str | None:
    """The machine whose seconds a figure draws when its records come from several (seconds of
    two machines are never one series): the known machine that trained most of the neural
    runs, then most runs; None (v1 records, no fingerprint) only when no other is known."""
    neural = Counter(machine_id(r) for r in records if r.get("family") != "ngram")
    every = Counter(machine_id(r) for r in records)
    known = [m for m in every if m is not None]
    return max(known, key=lambda m: (neural[m], every[m])) if known else None


def scaling(runs: Runs, path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test perplexity and training time by training-set size, with power-law fits where a
    config has at least MIN_FIT_POINTS data sizes, drawn over the measured sizes only:
    (fits, the measured points). A run whose cores were shared has no seconds here."""
    chosen, _ = scaling_runs(runs)
    # budgets are tokens and epochs: a config's perplexity does not depend on the machine, its
    # seconds do, and only the timing machine's are drawn
    panel = timing_machine(chosen)
    series = series_labels(chosen)
    rows = [
        {
            "corpus": r["corpus"],
            "model": series(r),
            "train tokens": data_tokens(r),
            "test ppl": r["test_ppl"],
            "train seconds": r["train_seconds"]
            if contention(r) is None and machine_id(r) == panel
            else np.nan,
            # early stopping asked for, the epoch cap came first: more compute would help
            "compute-limited": bool((r.get("model_config") or {}).get("patience"))
            and (r.get("budget") or {}).get("ended_by") == "epochs",
            "lr never lowered": never_decayed(r),
        }
        for r in chosen
    ]
    if not rows:
        return pd.DataFrame(), pd.DataFrame()
    frame = pd.DataFrame(rows)
    fits = []
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    sns.scatterplot(
        frame, x="train tokens", y="test ppl", hue="model", style="corpus", s=70, ax=axes[0]
    )
    palette = dict(zip(frame["model"].unique(), sns.color_palette()))
    for (corpus, model), group in frame.groupby(["corpus", "model"]):
        if group["train tokens"].nunique() < MIN_FIT_POINTS:
            continue
        tokens, loss = group["train tokens"].to_numpy(), np.log(group["test ppl"].to_numpy())
        alpha, critical = power_law(tokens, loss)
        fits.append(
            {
                "corpus": corpus,
                "model": model,
                "alpha": alpha,
                "alpha 95%": alpha_interval(tokens, loss),
                "D_c": critical,
                "points": len(group),
                "compute-limited": int(group["compute-limited"].sum()),
                "low": tokens.min(),
                "high": tokens.max(),
            }
        )
        xs = np.geomspace(tokens.min(), tokens.max(), 50)  # never past the measured sizes
        axes[0].plot(
            xs,
            np.exp((critical / xs) ** alpha),
            color=palette[model],
            ls="-" if corpus == "ptb" else ":",
            lw=1,
        )
    axes[0].set(
        xscale="log",
        yscale="log",
        title=f"test perplexity by training-set size (lines: fits, >= {MIN_FIT_POINTS} sizes)",
    )
    sns.lineplot(  # seed: the seeds' bootstrap band is drawn the same on every run
        frame,
        seed=0,
        x="train tokens",
        y="train seconds",
        hue="model",
        style="corpus",
        marker="o",
        ax=axes[1],
    )
    axes[1].set(xscale="log", yscale="log", title="training time by training-set size")
    _save(fig, path)
    return pd.DataFrame(fits), frame


def crossovers(fits: pd.DataFrame, reference: str = TARGET_MODEL) -> list[dict]:
    """Where each neural fit meets the reference's: the data size beyond which it wins."""
    out = []
    for corpus, group in fits.groupby("corpus") if not fits.empty else []:
        ref = group[group["model"] == reference]
        if ref.empty:
            continue
        a_ref, c_ref = ref["alpha"].iloc[0], ref["D_c"].iloc[0]
        for fit in group[group["model"] != reference].itertuples(index=False):
            # alpha (log Dc - log D) equal for both -> log D
            denominator = fit.alpha - a_ref
            if abs(denominator) < 1e-12:
                continue
            log_d = (fit.alpha * math.log(fit.D_c) - a_ref * math.log(c_ref)) / denominator
            out.append(
                {
                    "corpus": corpus,
                    "model": fit.model,
                    "crossover tokens": math.exp(log_d),
                    "wins with more data": fit.alpha > a_ref,
                    "measured range": (fit.low, fit.high),
                }
            )
    return out


def smoothing(runs: Runs, path: Path) -> bool:
    rows = smoothing_rows(runs)
    if not rows:
        return False
    frame = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(8, 5))
    sns.lineplot(frame, x="order", y="test ppl", hue=METHOD, marker="o", ax=ax, seed=0)
    for r in runs.ok(SMOOTHING):
        if r["family"] == "baseline":
            ax.axhline(r["test_ppl"], color="grey", ls=":", lw=1)
            ax.annotate("uniform", (1, r["test_ppl"]), va="bottom", fontsize=8)
    ax.set(yscale="log", title="PTB test perplexity by order and smoothing")
    _save(fig, path)
    return True


def pruning(runs: Runs, path: Path) -> bool:
    """Kneser-Ney's size against its test perplexity: orders 2-6 unpruned, kn5 pruned."""
    frame = pd.DataFrame(pruning_rows(runs))
    if frame.empty or not (frame["series"] == "kn5 pruned").any():
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sns.lineplot(
        frame, x="size MB", y="test ppl", hue="series", marker="o", sort=True, ax=ax, seed=0
    )
    for name, x, y in zip(frame["model"], frame["size MB"], frame["test ppl"]):
        ax.annotate(name, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set(
        xscale="log",
        xlabel="model size, MB (as stored: n-gram keys, links, probabilities)",
        title="PTB: Kneser-Ney size against test perplexity",
    )
    _save(fig, path)
    return True


def throughput(runs: Runs, path: Path) -> bool:
    chosen = [
        r
        for r in runs.ok(PERPLEXITY_VS_TIME)  # the same-budget runs on each device
        if r["corpus"] == "ptb" and r["mode"] == "stream" and r.get("train_tokens_per_s")
    ]
    several = several_machines(chosen)
    rows = [
        {
            "model": runs.label(r),  # a config, its seeds averaged: two configs, two bars
            "device": _on_machine(DEVICES.get(r["device"], r["device"]), r, several),
            "train tokens/s": r["train_tokens_per_s"],
            "MFU": runs.mfu(r),
        }
        for r in chosen
    ]
    if not rows:
        return False
    frame = pd.DataFrame(rows).sort_values("train tokens/s")
    fig, axes = plt.subplots(1, 2, figsize=(14, 2 + 0.3 * frame["model"].nunique()))
    # seed: the error bars' bootstrap, so the figure is the same bytes on every run
    sns.barplot(frame, y="model", x="train tokens/s", hue="device", ax=axes[0], seed=0)
    axes[0].set(xscale="log", title="training throughput (PTB)")
    neural = frame.dropna(subset=["MFU"])
    if not neural.empty:
        sns.barplot(neural, y="model", x="MFU", hue="device", ax=axes[1], seed=0)
        axes[1].set(title="model FLOP utilisation (of the measured matmul peak)")
    _save(fig, path)
    return True
