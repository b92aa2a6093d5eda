"""The runs a report draws on: the latest record per config, their kn5 yardsticks (measured on
the same machine), and sentence-level bootstrap intervals for perplexity ratios.

Which suites feed which section is the suites' own declaration (`Suite.feeds`): nothing here or
in the tables and figures names a suite."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..records import load_records, machine_id, target_run
from ..suites import SMOOTHING, SUITES, suites_feeding

BOOTSTRAP_SAMPLES = 2000
METHOD = "smoothing"  # the smoothing table's column: a method (kn, wb, ...), not a suite
CONFIDENCE = 0.95


@dataclass
class Runs:
    """Every run found under the report's folders (latest record of each config hash and
    machine)."""

    records: list[dict]

    @classmethod
    def load(cls, *paths: Path) -> Runs:
        """The latest record of each config in each results file and machine: suites may share
        a config (every suite runs kn5 first), and each keeps its own row; a run on another
        machine is a measurement of its own, not a retry."""
        latest = {
            (r["source_file"], machine_id(r), r["config_hash"]): r for r in load_records(*paths)
        }
        return cls(list(latest.values()))

    def frame(self) -> pd.DataFrame:
        if not self.records:
            return pd.DataFrame()
        frame = pd.json_normalize(self.records, sep=".", max_level=1)
        frame["budget_label"] = [budget_label(r) for r in self.records]
        return frame

    def ok(self, section: str | None = None) -> list[dict]:
        """The ok runs (an interrupted, failed or skipped run is never in a table or figure),
        of the suites feeding `section` where one is given."""
        suites = None if section is None else suites_feeding(section)
        return [
            r
            for r in self.records
            if r["status"] == "ok" and (suites is None or r.get("suite") in suites)
        ]

    def target(self, run: dict) -> dict | None:
        """The kn5 run a row is compared with (records.target_run), measured on the same machine:
        a ratio of seconds or of perplexities never crosses fingerprints (v1 records, which have
        none, are compared with each other)."""
        here = machine_id(run)
        return target_run(run, [r for r in self.ok() if machine_id(r) == here])


def several_machines(records: list[dict]) -> bool:
    """Whether `records` were measured on more than one machine (v1 records count as one)."""
    return len({machine_id(r) for r in records}) > 1


def machine_label(record: dict) -> str:
    """A short name of the machine that measured a record, for a table column."""
    fingerprint = record.get("machine")
    if not fingerprint:
        return "unknown (a v1 record)"
    return f"{fingerprint.get('cpu')}, {fingerprint.get('cores')} cores [{fingerprint.get('id')}]"


def how_to_fill(section: str, device: str | None = None) -> str:
    """The command(s) that fill an empty section: its suites (those with a `device` run only,
    where given)."""
    names = [
        name
        for name in suites_feeding(section)
        if device is None or any(spec.device == device for spec in SUITES[name].runs)
    ]
    return " or ".join(f"`lmbench run --suite {name}`" for name in names)


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
    """The smoothing section's n-gram runs as (smoothing family, order, test ppl): `kn3` -> kn, 3."""
    return [
        {
            METHOD: re.sub(r"-?\d+$", "", r["model"]),
            "order": (r.get("model_config") or {}).get("order"),
            "test ppl": r["test_ppl"],
        }
        for r in runs.ok(SMOOTHING)
        if r["family"] == "ngram"
    ]
