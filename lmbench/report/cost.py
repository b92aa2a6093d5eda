"""Throughput, the era's utilisation of its hardware, and what our runs would have cost then."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..records import is_full_data
from ..reference.utilisation import EraRun, derivations, era_utilisation
from ..suites import COST, THROUGHPUT
from .markdown import duration, table
from .runs import (
    Runs,
    budget_label,
    contention_note,
    machine_label,
    several_machines,
)


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
                "matmul GFLOP/s (median on this machine)": runs.machine_peak(run)
                or (run.get("calibration") or {}).get("matmul_gflops"),
                "MFU": _mean_mfu(runs, group.runs),
                "budget": budget_label(run),
                "cores shared": contention_note(group.runs) or "-",
            }
        )
    return table(pd.DataFrame(rows).sort_values(["suite", "model"]) if rows else pd.DataFrame())


def _mean_mfu(runs: Runs, seeds: list[dict]) -> str:
    """The seeds' mean MFU against the machine's median calibration, to 2 decimals: the
    calibration's own spread leaves no third."""
    values = [m for r in seeds if (m := runs.mfu(r)) is not None]
    return f"{np.mean(values):.2f}" if values else "-"


def _flagged(seconds: str, group) -> str:
    """A measured time, with the contention its runs recorded (`runs.contention`)."""
    flag = contention_note(group.runs)
    return f"{seconds} ({flag})" if flag else seconds


def era_machines(hardware: pd.DataFrame, published: pd.DataFrame) -> list[tuple]:
    """(name, year, peak FLOP/s, its papers' runs) of each machine whose papers' runs give a
    derivable utilisation (`reference.utilisation.era_utilisation`)."""
    eras = []
    for device, paper_runs in era_utilisation(published, hardware).items():
        match = hardware[hardware["device"].str.startswith(device)]
        year, peak = int(match["year"].iloc[0]), float(match["peak_flops"].iloc[0])
        eras.append((device, year, peak, paper_runs))
    return eras


def share(low: float, high: float) -> str:
    """`0.5%-5.1%`, or `2.4%` where the range is one figure."""
    return f"{low:.1%}" if math.isclose(low, high) else f"{low:.1%}-{high:.1%}"


def width_rule(hardware: pd.DataFrame, published: pd.DataFrame) -> str:
    """Why runs are costed by hidden width, with its evidence from the machine whose paper runs
    span three widths or more (Zaremba et al.'s K20): the narrowest and widest runs' fractions,
    and where costing by FLOPs per token would put a narrow run with a large vocabulary."""
    rule = "not its FLOPs per token, which a large vocabulary's softmax inflates."
    spans = [e for e in era_machines(hardware, published) if len({r.width for r in e[3]}) >= 3]
    if not spans:
        return rule
    device, _, _, paper_runs = max(spans, key=lambda e: len(e[3]))
    narrow, middle, *_, wide = sorted(paper_runs, key=lambda r: r.width)
    low, high = middle.low / narrow.high, middle.high / narrow.low
    faster = f"{low:.2g}x" if math.isclose(low, high, rel_tol=0.05) else f"{low:.2g}-{high:.2g}x"
    return (
        f"(on the {device}, {share(narrow.low, narrow.high)} at width {narrow.width}, "
        f"{share(wide.low, wide.high)} at {wide.width}), {rule} That rule is an assumption: "
        "Zaremba et al.'s three runs grow in width and in FLOPs per token together (one "
        "vocabulary, one batch), so they cannot tell the two apart; costing by nearest FLOPs "
        f"per token instead would put a 200-wide WikiText-2 LSTM at {middle.paper}'s "
        f"{share(middle.low, middle.high)} rather than {narrow.paper}'s "
        f"{share(narrow.low, narrow.high)}, {faster} faster."
    )


def model_width(run: dict) -> int | None:
    """A neural run's hidden width (a Transformer's `width`, the others' `hidden`)."""
    config = run.get("model_config") or {}
    width = config.get("width") or config.get("hidden")
    return int(width) if width else None


def nearest_run(width: int | None, paper_runs: list[EraRun]) -> EraRun:
    """The paper run closest in hidden width (on a log scale): how much of a machine a run
    uses follows the shape of its matrix products (`width_rule`), not its FLOPs per token,
    which a large vocabulary's softmax inflates."""
    if not width:
        return paper_runs[0]
    return min(paper_runs, key=lambda paper: abs(math.log(width / paper.width)))


def bound_mark(paper: EraRun) -> str:
    """How a cost from this paper run's fraction reads. On the one machine that ran it, an
    exact time gives the fraction itself, and a time given as a lower bound ("over 3 weeks")
    an upper-bound fraction, so a lower-bound cost (≥). Spread over several machines the
    fraction is a per-device rate that one device alone (no communication) may beat: an exact
    time then gives an upper-bound cost (≤), a lower-bound time no bound at all (~)."""
    if paper.devices == 1:
        return "≥ " if paper.upper_bound else ""
    return "~ " if paper.upper_bound else "≤ "


def span(flops: float, peak: float, paper: EraRun) -> str:
    """How long `flops` take at the fractions of `peak` that `paper` reached: a range, or its
    fast end with its bound where the fraction is an upper bound."""
    fast = duration(flops / (peak * paper.high))
    slow = duration(flops / (peak * paper.low))
    if paper.upper_bound or fast == slow:
        return f"{bound_mark(paper)}{fast}"
    return f"{bound_mark(paper)}{fast} - {slow}"


def era_cost(train_flops: float, peak: float, paper: EraRun, calibration: bool) -> str:
    """How long `train_flops` take at the fraction of `peak` that `paper` reached."""
    per = f" per device of {paper.devices}" if paper.devices > 1 else ""
    name = paper.paper.rsplit(" (", 1)[0]
    fraction = share(paper.low, paper.high)
    if calibration:
        return f"{span(train_flops, peak, paper)} ({fraction}: the reference run, {name} itself)"
    # the corpus says which paper run: AP News' MLP10, not Brown's of the same name
    return f"{span(train_flops, peak, paper)} ({fraction}{per}, as {name} on {paper.corpus})"


def era_costs(train_flops: float, run: dict, eras: list) -> dict[str, str]:
    """How long `train_flops` take on each era's machine at the fraction of peak its papers'
    run of the nearest width reached."""
    costs = {}
    for name, year, peak, paper_runs in eras:
        paper = nearest_run(model_width(run), paper_runs)
        calibration = paper.is_calibration_of(run, train_flops)
        costs[f"{year} {name}"] = era_cost(train_flops, peak, paper, calibration)
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
            "width": rows["width"].astype(str),
            "FLOPs/token": rows["FLOPs/token"].map(lambda f: f"{f:.3g}"),
            "of peak": [
                ("≤ " if bound else "") + share(lo, hi) + (" per device" if devices > 1 else "")
                for lo, hi, bound, devices in zip(
                    rows["low"], rows["high"], rows["upper bound"], rows["devices"]
                )
            ],
        }
    ).drop(columns=["low", "high", "upper bound", "ours", "corpus"])
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
            "training FLOPs (counted)": f"{train_flops:.3g}",
            **({"machine": machine_label(run)} if several_machines(chosen) else {}),
            "here (measured)": _flagged(duration(group.mean("train_seconds")), group),
        }
        epoch_tokens = (run.get("extra") or {}).get("epoch_tokens")
        row.update(era_costs(train_flops, run, eras))
        for _, year, peak, paper_runs in eras:
            row[f"{year} at peak"] = duration(train_flops / peak)
            if epoch_tokens and year < 2010:
                paper = nearest_run(model_width(run), paper_runs)
                epoch_flops = run["flops_per_token"] * epoch_tokens
                row[f"one epoch, {year}"] = span(epoch_flops, peak, paper)
        rows.append(row)
    return table(pd.DataFrame(rows))
