"""The one progress helper: a live display on a terminal, a plain line every few seconds elsewhere.

Shows run i of n, the phase, training tokens/s, the last validation perplexity and the suite's
ETA (mean time of finished runs x runs left); ends with a summary table.
"""

from __future__ import annotations

import math

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .measure import wall_time

PLAIN_INTERVAL_S = 5.0


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m{seconds % 60:02d}s"
    )


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


class SuiteDisplay:
    def __init__(self, total: int, console: Console | None = None, live: bool | None = None):
        self.console = console or Console(stderr=True)
        self.total = total
        self.live_enabled = self.console.is_terminal if live is None else live
        self.started = wall_time()
        self.run_started = self.started
        self.finished_seconds: list[float] = []
        self.index = 0
        self.label = ""
        self.state: dict = {}
        self.last_plain = -math.inf
        self._live: Live | None = None

    def __enter__(self) -> SuiteDisplay:
        if self.live_enabled:
            self._live = Live(
                self._render(), console=self.console, refresh_per_second=4, transient=True
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def eta(self) -> float | None:
        left = self.total - len(self.finished_seconds)
        if not self.finished_seconds:
            return None
        return left * sum(self.finished_seconds) / len(self.finished_seconds)

    def line(self) -> str:
        s = self.state
        return (
            f"[run {self.index + 1}/{self.total}] {self.label} | {s.get('phase', 'start'):<9} | "
            f"{_fmt(s.get('tokens_per_s'), ',.0f')} tok/s | valid ppl {_fmt(s.get('valid_ppl'), '.2f')} | "
            f"run {_fmt_seconds(wall_time() - self.run_started)} | ETA {_fmt_seconds(self.eta())}"
        )

    def _render(self) -> Text:
        return Text(self.line())

    def _update(self, force: bool = False) -> None:
        if self._live is not None:
            self._live.update(self._render())
        elif force or wall_time() - self.last_plain >= PLAIN_INTERVAL_S:
            self.console.print(self.line(), highlight=False, markup=False, soft_wrap=True)
            self.last_plain = wall_time()

    def start_run(self, index: int, label: str) -> None:
        self.index, self.label, self.state = index, label, {}
        self.run_started = wall_time()
        self._update(force=True)

    def event(self, event: dict) -> None:
        self.state.update({k: v for k, v in event.items() if v is not None})
        self._update()

    def end_run(self, record: dict) -> None:
        self.finished_seconds.append(wall_time() - self.run_started)
        message = (
            f"[done {len(self.finished_seconds)}/{self.total}] {self.label} | {record['status']} | "
            f"valid ppl {_fmt(record.get('valid_ppl'), '.2f')} | test ppl {_fmt(record.get('test_ppl'), '.2f')}"
        )
        if record.get("error"):
            message += f" | {record['error'][:160]}"
        self.note(message)

    def note(self, message: str) -> None:
        (self._live.console if self._live else self.console).print(
            message, highlight=False, markup=False, soft_wrap=True
        )


def summary_table(records: list[dict]) -> Table:
    table = Table(title="lmbench runs", show_lines=False)
    for name in (
        "corpus",
        "mode",
        "model",
        "status",
        "valid ppl",
        "test ppl",
        "train s",
        "train tok/s",
        "eval tok/s",
        "peak RSS MB",
        "size MB",
    ):
        table.add_column(name, justify="right" if name[0].islower() and " " in name else "left")
    for r in records:
        table.add_row(
            str(r.get("corpus")),
            str(r.get("mode")),
            str(r.get("model")),
            str(r.get("status")),
            _fmt(r.get("valid_ppl"), ".2f"),
            _fmt(r.get("test_ppl"), ".2f"),
            _fmt(r.get("train_seconds"), ".2f"),
            _fmt(r.get("train_tokens_per_s"), ",.0f"),
            _fmt(r.get("eval_tokens_per_s"), ",.0f"),
            _fmt(r["peak_rss_bytes"] / 2**20 if r.get("peak_rss_bytes") else None, ".0f"),
            _fmt(r["size_bytes"] / 2**20 if r.get("size_bytes") is not None else None, ".2f"),
        )
    return table
