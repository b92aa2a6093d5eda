"""Markdown rendering helpers: tables from frames, numbers and durations people can read."""

from __future__ import annotations

import math
import numbers

import pandas as pd

DURATIONS = (
    (365.25 * 86400, "years"),
    (7 * 86400, "weeks"),
    (86400, "days"),
    (3600, "h"),
    (60, "min"),
    (1, "s"),
)


def duration(seconds: float | None) -> str:
    """12 s, 3.4 min, 2.1 h, 4.5 days, 3.2 weeks, 1.4 years."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    for size, unit in DURATIONS:
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds * 1e3:.3g} ms"


def cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value):
            return "-"
        if math.isinf(value):
            return "inf"
        if 0 < abs(value) < 1:
            return f"{value:.3g}"
        return f"{value:,.2f}" if abs(value) < 1e5 else f"{value:,.0f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_No runs._"
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def times(value: float | None, digits: int = 2) -> str:
    """A ratio as `3.4x`, `510x`, `1,100x`: `digits` significant figures at any size (a
    timing ratio carries no more)."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}g}x" if value < 100 else f"{float(f'{value:.{digits}g}'):,.0f}x"


MiB = 2**20


def with_interval(ratio: float | None, interval: tuple[float, float] | None) -> str:
    """`0.775 [0.769, 0.780]`: a ratio with its 95% interval where there is one; `-` for none."""
    if ratio is None or pd.isna(ratio):  # the yardstick's own row
        return "-"
    return f"{ratio:.3f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")
