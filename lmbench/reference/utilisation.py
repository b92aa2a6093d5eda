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
    ours: str | None = None  # the lmbench spec that is this run's own config and schedule

    @property
    def width(self) -> int:
        """The hidden width: the inner dimension of its per-step matrix products."""
        return int(self.sets["hidden"])

    def train_flops(self) -> float:
        return training_flops_per_token(self.spec, self.sets, self.vocab_size) * (
            self.tokens_per_epoch * self.epochs
        )


PAPER_RUNS = (
    PaperRun("ptb", "LSTM small (non-regularized)", "lstm", {"hidden": "200"}, 10_000,
             PTB_TRAIN_TOKENS, 13, "NVIDIA Tesla K20", 1, "lstm-zaremba-small"),
    PaperRun("ptb", "LSTM medium (dropout 0.5)", "lstm", {"hidden": "650"}, 10_000,
             PTB_TRAIN_TOKENS, 39, "NVIDIA Tesla K20", 1, "lstm-zaremba-medium"),
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
                "corpus": run.corpus,
                "training FLOPs": flops,
                "FLOPs/token": flops / (run.tokens_per_epoch * run.epochs),
                "width": run.width,
                "reported time": time,
                "devices": run.devices,
                "low": flops / (span[1] * peak),
                "high": flops / (span[0] * peak),
                # "over 3 weeks": the time is a lower bound, so the fraction is an upper bound
                "upper bound": bool(re.search(r"\b(over|more than|at least)\b", time.lower())),
                "source": row["source"].iloc[0],
                "ours": run.ours,
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class EraRun:
    """A paper run's achieved fraction of its machine's peak, as the cost projections use it."""

    width: int
    low: float
    high: float
    upper_bound: bool  # its time was a lower bound ("over 3 weeks")
    devices: int
    paper: str  # "model (corpus)"
    ours: str | None  # the lmbench spec that is this paper run's own config, if any
    corpus: str = ""
    train_flops: float = 0.0

    def is_calibration_of(self, run: dict, train_flops: float) -> bool:
        """Whether `run` is this paper run itself: its config, corpus and (within 2%) its
        training FLOPs, i.e. the same schedule to the end."""
        return (
            self.ours is not None
            and run.get("model") == self.ours
            and run.get("corpus") == self.corpus
            and abs(train_flops / self.train_flops - 1) < 0.02
        )


def era_utilisation(published: pd.DataFrame, hardware: pd.DataFrame) -> dict[str, list[EraRun]]:
    """Per machine: its papers' derivable runs, narrowest first."""
    table = derivations(published, hardware)
    return {
        device: [
            EraRun(
                int(r["width"]), r["low"], r["high"], bool(r["upper bound"]), int(r["devices"]),
                r["paper run"], r["ours"], r["corpus"], r["training FLOPs"],
            )
            for _, r in group.sort_values("width").iterrows()
        ]
        for device, group in table.groupby("device", sort=False)
    }  # fmt: skip


# Why a published row with hardware and a time gives no utilisation here (what is missing)
NOT_DERIVABLE = {
    ("brown", "MLP1"): "its '10-20 epochs' is a schedule, not a time",
    ("brown", "RNNLM"): "'one CPU' names no CPU model: no peak to divide by",
    ("ptb", "AWD-LSTM (finetuned)"): "the paper gives its inputs (3 layers 1150 wide, 500 "
    "epochs), but its Quadro GP100 is not in hardware.csv: past the eras costed here",
    ("wikitext2", "AWD-LSTM (finetuned)"): "as its PTB row (750 epochs), a Quadro GP100",
    ("1bw", "LSTM-2048-512"): "its time is to a target perplexity (below 45), not a number of "
    "tokens, and its sampled softmax is not among our FLOP formulas",
    ("1bw", "BIG LSTM + CNN inputs"): "its character CNN inputs and sampled softmax are not "
    "among our FLOP formulas",
}


def not_derivable(published: pd.DataFrame) -> list[str]:
    """Published rows that give hardware and a time but no derivation, each with what is
    missing."""
    derived = {(run.corpus, run.model) for run in PAPER_RUNS}
    timed = published.dropna(subset=["hardware", "train_time"])
    return [
        f"{r.model} ({r.corpus}): "
        + NOT_DERIVABLE.get((r.corpus, r.model), "architecture, tokens or epochs not all given")
        for r in timed.itertuples(index=False)
        if (r.corpus, r.model) not in derived
    ]
