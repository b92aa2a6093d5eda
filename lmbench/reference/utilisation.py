"""What the papers' own machines achieved: training FLOPs by our formulas over their reported
training time, as a fraction of the machine's peak (`hardware.csv`).

Each derivable `published.csv` row is listed with the inputs the paper gives (architecture,
vocabulary, training tokens and epochs, devices); its time is the row's `train_time`. A row
without those inputs is not derivable, and the report says so. The cost projections use the
range each machine's rows span.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from . import duration_range

PTB_TRAIN_TOKENS = 929_589  # per epoch, <eos> included (Mikolov's PTB; our corpus count)
# Bengio et al. 2003, section 4: AP News 1995-96, a stream of 13,994,528 training words
APNEWS_TRAIN_TOKENS = 13_994_528


@dataclass(frozen=True)
class PaperRun:
    """The inputs a published row's training run gives: our model spec and settings for its
    architecture, its vocabulary, tokens per epoch and epochs, and the machines it used."""

    corpus: str
    model: str  # the published.csv row
    spec: str
    sets: dict
    vocab_size: int
    tokens_per_epoch: int
    epochs: float
    device: str  # a hardware.csv device prefix
    devices: int

    def train_flops(self) -> float:
        return training_flops_per_token(self.spec, self.sets, self.vocab_size) * (
            self.tokens_per_epoch * self.epochs
        )


PAPER_RUNS = (
    PaperRun("ptb", "LSTM small (non-regularized)", "lstm", {"hidden": "200"}, 10_000,
             PTB_TRAIN_TOKENS, 13, "NVIDIA Tesla K20", 1),
    PaperRun("ptb", "LSTM medium (dropout 0.5)", "lstm", {"hidden": "650"}, 10_000,
             PTB_TRAIN_TOKENS, 39, "NVIDIA Tesla K20", 1),
    PaperRun("ptb", "LSTM large (dropout 0.65)", "lstm", {"hidden": "1500"}, 10_000,
             PTB_TRAIN_TOKENS, 55, "NVIDIA Tesla K20", 1),
    PaperRun("apnews", "MLP10 (mixed with trigram)", "mlp",
             {"order": "6", "hidden": "60", "embed": "100", "direct": "true"}, 17_964,
             APNEWS_TRAIN_TOKENS, 5, "AMD Athlon 1.2 GHz", 40),
)  # fmt: skip


def training_flops_per_token(spec: str, sets: dict, vocab_size: int) -> float:
    """Our FLOP count per training token of a model spec, its net built on the meta device
    (no memory: a 2x1500 LSTM costs nothing to describe)."""
    import torch

    from ..models.registry import resolve

    resolved = resolve(spec, sets)
    with torch.device("meta"):
        net = resolved.model_class.net_class(resolved.config, vocab_size)
    return 3.0 * net.forward_flops_per_token()  # forward + backward (DESIGN's rules)


def derivations(published: pd.DataFrame, hardware: pd.DataFrame) -> pd.DataFrame:
    """One row per PAPER_RUNS entry found in `published`: its training FLOPs, time, the
    machine's peak, and the achieved fraction of it (low, high: from the time's range)."""
    rows = []
    for run in PAPER_RUNS:
        row = published[(published["corpus"] == run.corpus) & (published["model"] == run.model)]
        machine = hardware[hardware["device"].str.startswith(run.device)]
        span = duration_range(row["train_time"].iloc[0]) if not row.empty else None
        if span is None or machine.empty:
            continue
        flops, peak = run.train_flops(), float(machine["peak_flops"].iloc[0]) * run.devices
        time = row["train_time"].iloc[0]
        rows.append(
            {
                "device": run.device,
                "year": int(machine["year"].iloc[0]),
                "paper run": f"{run.model} ({run.corpus})",
                "training FLOPs": flops,
                "FLOPs/token": flops / (run.tokens_per_epoch * run.epochs),
                "reported time": time,
                "devices": run.devices,
                "low": flops / (span[1] * peak),
                "high": flops / (span[0] * peak),
                # "over 3 weeks": the time is a lower bound, so the fraction is an upper bound
                "upper bound": bool(re.search(r"\b(over|more than|at least)\b", time.lower())),
                "source": row["source"].iloc[0],
            }
        )
    return pd.DataFrame(rows)


def era_utilisation(published: pd.DataFrame, hardware: pd.DataFrame) -> dict:
    """Per machine: its papers' derivable runs, smallest first, as (training FLOPs per token,
    low, high fraction of peak, whether the fraction is an upper bound, the paper run)."""
    table = derivations(published, hardware)
    return {
        device: [
            (r["FLOPs/token"], r["low"], r["high"], r["upper bound"], r["paper run"])
            for _, r in group.sort_values("FLOPs/token").iterrows()
        ]
        for device, group in table.groupby("device", sort=False)
    }


def not_derivable(published: pd.DataFrame) -> list[str]:
    """Published rows that give hardware and a time but not the inputs of a derivation."""
    derived = {(run.corpus, run.model) for run in PAPER_RUNS}
    timed = published.dropna(subset=["hardware", "train_time"])
    return [
        f"{r.model} ({r.corpus})"
        for r in timed.itertuples(index=False)
        if (r.corpus, r.model) not in derived
    ]
