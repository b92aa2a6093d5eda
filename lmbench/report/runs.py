"""The runs a report draws on: the latest record per config, their kn5 yardsticks, and
sentence-level bootstrap intervals for perplexity ratios."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..results import load_records

REFERENCE_MODEL = "kn5"
BOOTSTRAP_SAMPLES = 2000
CONFIDENCE = 0.95


@dataclass
class Runs:
    """Every run found under the report's folders (latest record of each config hash)."""

    records: list[dict]

    @classmethod
    def load(cls, *paths: Path) -> Runs:
        """The latest record of each config in each results file: suites may share a config
        (every suite runs kn5 first), and each keeps its own row."""
        latest = {(r["source_file"], r["config_hash"]): r for r in load_records(*paths)}
        return cls(list(latest.values()))

    def frame(self) -> pd.DataFrame:
        if not self.records:
            return pd.DataFrame()
        frame = pd.json_normalize(self.records, sep=".", max_level=1)
        frame["budget_label"] = [budget_label(r) for r in self.records]
        return frame

    def ok(self, suites: tuple[str, ...] | None = None) -> list[dict]:
        return [
            r
            for r in self.records
            if r["status"] == "ok" and (suites is None or r.get("suite") in suites)
        ]

    def reference(self, run: dict) -> dict | None:
        """The kn5 run a row is compared with: same corpus, mode and test tokens, full data,
        from the same results file where it has one."""
        matches = [
            r
            for r in self.ok()
            if r["model"] == REFERENCE_MODEL
            and (r["corpus"], r["mode"], r["eval_tokens"])
            == (run["corpus"], run["mode"], run["eval_tokens"])
            and is_full_data(r)
        ]
        same_file = [r for r in matches if r.get("source_file") == run.get("source_file")]
        return (same_file or matches or [None])[-1]


def is_full_data(record: dict) -> bool:
    extra = record.get("extra") or {}
    limit = (record.get("budget") or {}).get("limit") or {}
    count_slice = record.get("family") in ("ngram", "baseline") and "tokens" in limit
    return not (extra.get("train_fraction") or extra.get("eval_slice_tokens") or count_slice)


def budget_label(record: dict) -> str:
    if record.get("family") == "mix":
        return "mix of two runs (weight tuned on valid)"
    limit = (record.get("budget") or {}).get("limit") or {}
    parts = []
    if "seconds" in limit:
        parts.append(f"{limit['seconds'] / 60:g} min")
    if "tokens" in limit:
        parts.append(f"{limit['tokens'] / 1e6:g} M tokens")
    if "epochs" in limit:
        parts.append(f"{limit['epochs']:g} epochs")
    fraction = (record.get("extra") or {}).get("train_fraction")
    if fraction:
        parts.append(f"{fraction:.0%} of train")
    return ", ".join(parts) or "full data"


def sentence_nll(record: dict) -> np.ndarray | None:
    """[n_sentences, 2] (NLL nats, tokens) saved beside the run, or None if it is not there."""
    if not record.get("sentences") or not record.get("source_file"):
        return None
    path = Path(record["source_file"]).parent / record["sentences"]
    return np.load(path).astype(np.float64) if path.is_file() else None


def ratio_interval(
    run: dict, reference: dict, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> tuple[float, float] | None:
    """95% interval of test ppl(run) / ppl(reference), resampling test sentences (paired)."""
    a, b = sentence_nll(run), sentence_nll(reference)
    if a is None or b is None or a.shape != b.shape or not np.array_equal(a[:, 1], b[:, 1]):
        return None
    rng = np.random.default_rng(seed)
    index = rng.integers(0, a.shape[0], size=(samples, a.shape[0]))
    tokens = a[index, 1].sum(axis=1)
    log_ratio = (a[index, 0].sum(axis=1) - b[index, 0].sum(axis=1)) / tokens
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(log_ratio, [tail, 1 - tail])
    return math.exp(low), math.exp(high)


def smoothing_rows(runs: Runs) -> list[dict]:
    """The smoothing suite's n-gram runs as (smoothing family, order, test ppl): `kn3` -> kn, 3."""
    return [
        {
            "smoothing": re.sub(r"-?\d+$", "", r["model"]),
            "order": (r.get("model_config") or {}).get("order"),
            "test ppl": r["test_ppl"],
        }
        for r in runs.ok(("smoothing",))
        if r["family"] == "ngram"
    ]
