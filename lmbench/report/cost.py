"""Throughput, the era's utilisation of its hardware, and what our runs would have cost then."""

from __future__ import annotations

import math

import pandas as pd

from ..records import is_full_data
from ..reference.utilisation import derivations, era_utilisation
from ..suites import COST, THROUGHPUT
from .markdown import duration, table
from .runs import (
    Runs,
    budget_label,
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
                "matmul peak GFLOP/s (measured)": (run.get("calibration") or {}).get(
                    "matmul_gflops"
                ),
                "MFU": group.mean("mfu"),
                "budget": budget_label(run),
            }
        )
    return table(pd.DataFrame(rows).sort_values(["suite", "model"]) if rows else pd.DataFrame())


def era_machines(hardware: pd.DataFrame, published: pd.DataFrame) -> list[tuple]:
    """(name, year, peak FLOP/s, its papers' runs by size) of each machine whose papers' runs
    give a derivable utilisation (`reference.utilisation.era_utilisation`)."""
    eras = []
    for device, sizes in era_utilisation(published, hardware).items():
        match = hardware[hardware["device"].str.startswith(device)]
        eras.append((device, int(match["year"].iloc[0]), float(match["peak_flops"].iloc[0]), sizes))
    return eras


def share(low: float, high: float) -> str:
    """`0.5%-5.1%`, or `2.4%` where the range is one figure."""
    return f"{low:.1%}" if math.isclose(low, high) else f"{low:.1%}-{high:.1%}"


def nearest_size(flops_per_token: float, sizes: list) -> tuple:
    """The paper run closest in training FLOPs per token (on a log scale): utilisation grows
    with the size of the matrices (on a K20, 0.5-0.8% for a 200-unit LSTM, 5.1% for 1500), so
    a run is costed at the fraction its own size class reached."""
    return min(sizes, key=lambda size: abs(math.log(flops_per_token / size[0])))


def era_costs(train_flops: float, flops_per_token: float, eras: list) -> dict[str, str]:
    """How long `train_flops` take on each era's machine at the fraction of peak its papers' run
    of the nearest size reached ("≥": that run's time was a lower bound)."""
    costs = {}
    for name, year, peak, sizes in eras:
        _, low, high, bound, paper = nearest_size(flops_per_token, sizes)
        fast, slow = duration(train_flops / (peak * high)), duration(train_flops / (peak * low))
        # an upper-bound fraction gives a lower-bound time: its fast end
        span = f"≥ {fast}" if bound else fast if fast == slow else f"{fast} - {slow}"
        paper = paper.rsplit(" (", 1)[0]
        costs[f"{year} {name}"] = f"{span} ({share(low, high)}, as {paper})"
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
            "FLOPs/token": rows["FLOPs/token"].map(lambda f: f"{f:.3g}"),
            "of peak": [
                ("≤ " if bound else "") + share(lo, hi)
                for lo, hi, bound in zip(rows["low"], rows["high"], rows["upper bound"])
            ],
        }
    ).drop(columns=["low", "high", "upper bound"])
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
        row.update(era_costs(train_flops, run["flops_per_token"], eras))
        for _, year, peak, sizes in eras:
            row[f"{year} at peak"] = duration(train_flops / peak)
            if epoch_tokens and year < 2010:
                high = nearest_size(run["flops_per_token"], sizes)[2]
                per_epoch = run["flops_per_token"] * epoch_tokens / (peak * high)
                row[f"one epoch, {year}"] = f"≥ {duration(per_epoch)}"
        rows.append(row)
    return table(pd.DataFrame(rows))
