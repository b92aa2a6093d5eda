"""The host's load while a run is timed: other work sharing the cores inflates its seconds.

A record keeps the load averages at the start and end of training and the highest 1-minute
load sampled during it, so a contended stretch in the middle of a long run shows too (the
report flags such runs: `report.runs.contention`).
"""

from __future__ import annotations

import os
import threading

SAMPLE_SECONDS = 30.0  # the 1-minute load average moves slowly: sampling more often adds nothing


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (None where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


class LoadWatch:
    """Samples the 1-minute load average on a daemon thread until stopped; `peak` is the
    highest seen (None where the OS has no load average)."""

    def __init__(self, every: float = SAMPLE_SECONDS):
        self.every, self.peak = every, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="load-watch", daemon=True)

    def _sample(self) -> None:
        load = load_average()
        if load is not None:
            self.peak = load[0] if self.peak is None else max(self.peak, load[0])

    def _watch(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def __enter__(self) -> LoadWatch:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
