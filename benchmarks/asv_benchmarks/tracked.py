"""asv's view of lmbench's per-commit tracking: one `track_*` benchmark per tracked metric,
parameterised by series (a quick-suite config, or a micro-benchmark).

Nothing is timed here. `benchmarks/track.py` measures a commit into
`results/tracking/<fingerprint>/<commit>/` (the quick suite under its own timing, calibration
and host lock; the micro-benchmarks under pytest-benchmark), then runs
`asv run --python=same --set-commit-hash COMMIT` with LMBENCH_TRACKING_COMMIT naming that folder:
these functions return its values, and asv stores them in its results (`results/asv/`), from
which `asv publish` builds its per-commit graphs.
"""

import math
import os
from pathlib import Path

from lmbench.tracking import commit_rows

_FOLDER = os.environ.get("LMBENCH_TRACKING_COMMIT")
_ROWS = commit_rows(Path(_FOLDER)) if _FOLDER else []


def _tracked(metric: str, unit: str, inverse: bool = False):
    """A track_* benchmark of `metric`; `inverse` for a higher-is-better metric: asv reads
    every value as lower-is-better (its regressions are increases)."""
    values = {
        row["series"]: 1.0 / row["value"] if inverse else row["value"]
        for row in _ROWS
        if row["metric"] == metric
    }

    def track(series: str) -> float:
        return values.get(series, math.nan)

    track.__name__ = "track_" + ("inverse_" if inverse else "") + metric.replace(" ", "_").lower()
    track.params = sorted(values) or ["none"]
    track.param_names = ["series"]
    track.unit = unit
    return track


# throughput (training tokens/s per unit of calibration) as its inverse, so asv's regressions
# are slowdowns
track_inverse_throughput = _tracked("throughput", "1 / (tokens/s per calibration unit)", True)
track_test_ppl = _tracked("test ppl", "perplexity")
track_peak_rss_mb = _tracked("peak RSS MB", "MB")
track_microbench_ms = _tracked("microbench ms", "ms")
