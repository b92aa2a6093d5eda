"""Published figures and historical hardware, as data the report reads (never code).

`published.csv`: the papers' perplexities with their protocol, hardware, training time and source.
`hardware.csv`: peak FLOP/s of the machines those papers used, with sources. Both are copies of
the team's verified reference files; `--reference DIR` or LMBENCH_REFERENCE points elsewhere.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from ..errors import UsageError

PACKAGED = Path(__file__).parent


def reference_dir(override: str | Path | None = None) -> Path:
    folder = Path(override or os.environ.get("LMBENCH_REFERENCE") or PACKAGED)
    for name in ("published.csv", "hardware.csv"):
        if not (folder / name).is_file():
            raise UsageError(
                f"{folder / name} not found: --reference (or LMBENCH_REFERENCE) must name a "
                "folder holding published.csv and hardware.csv"
            )
    return folder


def published(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "published.csv", dtype={"config": str, "train_time": str})


def hardware(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "hardware.csv")


_SPANS = {"hour": 3600, "day": 86400, "week": 7 * 86400}


def duration_range(text) -> tuple[float, float] | None:
    """(low, high) seconds from a paper's training-time phrase ("2-3 hours", "about half a
    day", "an entire day", "over 3 weeks": its stated figure); None when it gives none."""
    if not isinstance(text, str):
        return None
    text = text.lower()
    if "half a day" in text:
        return 43200.0, 43200.0
    if "entire day" in text or re.search(r"\ba day\b", text):
        return 86400.0, 86400.0
    match = re.search(r"(\d+(?:\.\d+)?)(?:\s*-\s*(\d+(?:\.\d+)?))?\s*(hour|day|week)s?", text)
    if not match:
        return None
    low = float(match[1])
    high = float(match[2]) if match[2] else low
    return low * _SPANS[match[3]], high * _SPANS[match[3]]


def parse_duration(text) -> float | None:
    """Seconds from a paper's training-time phrase: the middle of its range (`duration_range`)."""
    span = duration_range(text)
    return None if span is None else (span[0] + span[1]) / 2
