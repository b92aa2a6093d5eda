"""The one progress helper: a live display on a terminal, a plain line on a timer elsewhere.

Shows run i of n, the phase, how much of the run's training budget is done (seconds, tokens or
epochs), training tokens/s, the last validation perplexity and the suite's ETA; ends with a
summary table.

The worker reports only at evaluations (every few hundred thousand tokens: minutes apart), so
between its events the budget done is estimated from the wall clock since the training phase
began or since the last evaluation, and from the run's measured tokens/s. The ETA
(`estimate_remaining`) adds up what is left of the current run and each later run's estimate:

* a neural run: `NEURAL_SETUP_S` (process start, torch, calibration, loading) plus its training
  time times 1 + the evaluation share (mid-training and final evaluations per training second:
  measured on the neural runs finished in this session, else `DEFAULT_EVAL_SHARE`);
* its training time: a seconds budget is that many seconds; a token or epoch budget is its
  tokens over a rate: the current run's measured tokens/s, else the rate an earlier record of
  the same corpus, model and device measured, else `DEFAULT_TOKENS_PER_S` (epochs are counted
  in the corpus's published training tokens);
* a count run: the train + eval seconds of the out folder's earlier record of the same config,
  else `DEFAULT_COUNT_SECONDS`, plus the setup the count runs finished in this session took
  beyond that (else `DEFAULT_COUNT_SETUP_S`);
* a GPU run on a machine without CUDA is skipped at once: 0 s.

On a terminal the live line is redrawn four times a second from the clock, so elapsed time, budget
done and ETA advance between events. Elsewhere (a log) a plain line is printed when a run starts,
at each mid-training evaluation and, from a timer thread, `PLAIN_INTERVAL_S` after the last line.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field, replace

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .measure import wall_time

PLAIN_INTERVAL_S = 30.0  # a log gets a line at least this often, events or not
DEFAULT_TOKENS_PER_S = 5_000.0  # a 2-core CPU's LSTM/Transformer training rate on PTB
DEFAULT_EPOCH_TOKENS = 1_000_000  # a corpus without published token counts (a directory)
NEURAL_SETUP_S = 10.0  # a neural run's process start, torch import, calibration and loading
DEFAULT_EVAL_SHARE = 0.25  # evaluation seconds per training second (history: 0.15 to 0.8)
DEFAULT_COUNT_SECONDS = 5.0  # a count model's train + eval seconds without an earlier record
DEFAULT_COUNT_SETUP_S = 5.0  # a count run's wall time beyond its train + eval seconds
AFTER_TRAINING = ("valid", "test")  # the worker's phases once training has ended


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


def _fmt_count(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.3g} M"
    if n >= 1e3:
        return f"{n / 1e3:.3g} k"
    return f"{n:.0f}"


@dataclass(frozen=True)
class RunState:
    """What the display knows of the current run: replaced, never mutated, so the refresh and
    timer threads read a consistent snapshot."""

    started: float  # clock at the run's start
    phase: str = "start"
    train_started: float | None = None  # clock at the worker's first "train" event
    train_ended: float | None = None  # clock at the first phase after training
    tokens: int | None = None  # training tokens at the last evaluation
    tokens_per_s: float | None = None  # training tokens / training seconds at that evaluation
    event_at: float | None = None  # clock at that evaluation's event
    valid_ppl: float | None = None

    def after(self, event: dict, now: float) -> RunState:
        changes = {
            k: event[k]
            for k in ("phase", "tokens", "tokens_per_s", "valid_ppl")
            if event.get(k) is not None
        }
        phase = changes.get("phase")
        if phase == "train" and self.train_started is None:
            changes["train_started"] = now
        if phase in AFTER_TRAINING and self.train_ended is None:
            changes["train_ended"] = now
        if "tokens" in changes:
            changes["event_at"] = now
        return replace(self, **changes)


@dataclass
class Measured:
    """What the estimates learn from: earlier records of the out folder and finished runs."""

    seconds: dict[str, float] = field(default_factory=dict)  # config hash -> train + eval s
    rates: dict[tuple, float] = field(default_factory=dict)  # (corpus, model, device) -> tok/s
    eval_shares: list[float] = field(default_factory=list)  # neural runs finished here
    count_setups: list[float] = field(default_factory=list)  # count runs finished here
    cuda: bool = True  # False: planned GPU runs will be skipped

    @property
    def eval_share(self) -> float:
        seen = self.eval_shares
        return sum(seen) / len(seen) if seen else DEFAULT_EVAL_SHARE

    @property
    def count_setup(self) -> float:
        seen = self.count_setups
        return sum(seen) / len(seen) if seen else DEFAULT_COUNT_SETUP_S

    def learn(self, record: dict, iterative: bool, wall: float | None = None) -> None:
        """Take an ok record's timings; `wall`: the seconds it took here (finished runs)."""
        train = record.get("train_seconds")
        if record.get("status") != "ok" or train is None:
            return
        scored = train + (record.get("eval_seconds") or 0.0)
        if record.get("config_hash"):
            self.seconds[record["config_hash"]] = scored
        if record.get("train_tokens_per_s"):
            key = (record.get("corpus"), record.get("model"), record.get("device"))
            self.rates[key] = record["train_tokens_per_s"]
        if wall is None:
            return
        if not iterative:
            self.count_setups.append(max(wall - scored, 0.0))
            return
        if record.get("train_tokens_per_s"):  # any neural model's rate beats the default
            self.rates[(record.get("corpus"), None, record.get("device"))] = record[
                "train_tokens_per_s"
            ]
        if train > 0:
            self.eval_shares.append(max(wall - NEURAL_SETUP_S - train, 0.0) / train)


def measured_from_records(records, cuda: bool = True) -> Measured:
    """A `Measured` from an out folder's earlier records (the newest of a config wins)."""
    measured = Measured(cuda=cuda)
    for record in records:
        measured.learn(record, iterative=False)  # no wall time: the kind does not matter
    return measured


def _epoch_tokens(run) -> float:
    from .corpora.specs import CORPORA

    spec = CORPORA.get(run.spec.corpus)
    tokens = (spec.published_tokens.get("train") if spec else None) or DEFAULT_EPOCH_TOKENS
    return tokens * (run.spec.train_fraction or 1.0)


def _token_limit(run) -> float | None:
    budget = run.budget
    limits = [budget.tokens, budget.epochs and budget.epochs * _epoch_tokens(run)]
    limits = [x for x in limits if x]
    return min(limits) if limits else None


def _prior_rate(run, measured: Measured) -> float:
    rates = measured.rates
    return (
        rates.get((run.spec.corpus, run.spec.model, run.device))
        or rates.get((run.spec.corpus, None, run.device))
        or DEFAULT_TOKENS_PER_S
    )


def _train_seconds(run, measured: Measured, rate: float | None = None) -> float:
    """Training seconds the run's budget allows (count models: train + eval seconds)."""
    if not run.model.model_class.iterative:
        return measured.seconds.get(run.config_hash, DEFAULT_COUNT_SECONDS)
    limits = []
    if run.budget.seconds is not None:
        limits.append(run.budget.seconds)
    tokens = _token_limit(run)
    if tokens is not None:
        limits.append(tokens / (rate or _prior_rate(run, measured)))
    return min(limits) if limits else 0.0


def _skipped(run, measured: Measured) -> bool:
    return run.device == "cuda" and not measured.cuda


def _train_done(state: RunState, now: float) -> float:
    """Training seconds of the current run so far: the last evaluation's, plus the wall clock
    since (evaluations are not training time); before one, the wall clock since training began."""
    if state.train_started is None:
        return 0.0
    now = state.train_ended if state.train_ended is not None else now
    if state.tokens is not None and state.tokens_per_s and state.event_at is not None:
        return state.tokens / state.tokens_per_s + max(now - state.event_at, 0.0)
    return max(now - state.train_started, 0.0)


def estimate_run(run, measured: Measured) -> float:
    """Seconds a run not yet started will take."""
    if _skipped(run, measured):
        return 0.0
    if not run.model.model_class.iterative:
        return _train_seconds(run, measured) + measured.count_setup
    return NEURAL_SETUP_S + _train_seconds(run, measured) * (1 + measured.eval_share)


def estimate_current(run, state: RunState, now: float, measured: Measured) -> float:
    """Seconds left of the run in progress."""
    if _skipped(run, measured) or state.phase == "done":
        return 0.0
    elapsed = max(now - state.started, 0.0)
    if not run.model.model_class.iterative:
        return max(estimate_run(run, measured) - elapsed, 0.0)
    share = measured.eval_share
    limit = run.budget.tokens  # exact (an epoch's tokens are only approximated here)
    if state.train_ended is None and limit and (state.tokens or 0) >= limit:
        state = replace(state, train_ended=state.event_at)  # the budget's last evaluation
    done = _train_done(state, now)
    if state.train_ended is not None:  # the final evaluations
        return max(NEURAL_SETUP_S + done * (1 + share) - elapsed, 0.0)
    total = _train_seconds(run, measured, state.tokens_per_s)
    left = total - done
    seconds_limit = run.budget.seconds or math.inf
    if left < 0 and state.tokens_per_s is None and total < seconds_limit:
        # past a token budget's estimate before the first evaluation: the assumed rate was
        # too high; take the run as half done (at most what its seconds budget leaves)
        left = min(done, seconds_limit - done)
    left = max(left, 0.0) * (1 + share)
    return left + (max(NEURAL_SETUP_S - elapsed, 0.0) if state.train_started is None else 0.0)


def estimate_remaining(
    runs, index: int, state: RunState | None, now: float, measured: Measured
) -> float:
    """Seconds until `runs` are done: what is left of `runs[index]` (in progress with `state`;
    None: not started) plus each later run's estimate."""
    if not runs:
        return 0.0
    later = runs[index + 1 :] if state is not None else runs[index:]
    left = estimate_current(runs[index], state, now, measured) if state is not None else 0.0
    return left + sum(estimate_run(run, measured) for run in later)


def budget_progress(run, state: RunState | None, now: float, measured: Measured) -> str | None:
    """How much of the training budget is done, e.g. "212 s / 540 s (39%)",
    "~1.2 M / 3.25 M tokens (37%)" or "~1.3 / 6 epochs (22%)" ("~": estimated since the last
    evaluation); None outside a neural run's training."""
    if (
        state is None
        or run is None
        or not run.model.model_class.iterative
        or state.train_started is None
        or state.train_ended is not None
    ):
        return None
    done_s = _train_done(state, now)
    shown = []  # (fraction, text): the limit nearest to ending training is shown
    if run.budget.seconds:
        done = min(done_s, run.budget.seconds)
        fraction = done / run.budget.seconds
        shown.append(
            (fraction, f"{done:.0f} s / {run.budget.seconds:.0f} s ({100 * fraction:.0f}%)")
        )
    limit = _token_limit(run)
    if limit:
        rate = state.tokens_per_s or _prior_rate(run, measured)
        if state.tokens is not None and state.event_at is not None:
            tokens = state.tokens + rate * max(now - state.event_at, 0.0)
        else:
            tokens = rate * done_s
        if tokens > 0.99 * limit and tokens != state.tokens:  # extrapolated: not done yet
            tokens = max(0.99 * limit, min(state.tokens or 0, limit))
        fraction = tokens / limit
        if run.budget.epochs and limit < (run.budget.tokens or math.inf):
            per_epoch = _epoch_tokens(run)
            text = f"~{tokens / per_epoch:.1f} / {run.budget.epochs:g} epochs"
        else:
            text = f"~{_fmt_count(tokens)} / {_fmt_count(limit)} tokens"
        shown.append((fraction, f"{text} ({100 * fraction:.0f}%)"))
    return max(shown)[1] if shown else None


class SuiteDisplay:
    """`plain_interval`: seconds between timer lines off a terminal; `clock`: for tests."""

    def __init__(
        self,
        total: int,
        console: Console | None = None,
        live: bool | None = None,
        plain_interval: float = PLAIN_INTERVAL_S,
        clock=wall_time,
    ):
        self.console = console or Console(stderr=True)
        self.total = total
        self.live_enabled = self.console.is_terminal if live is None else live
        self.plain_interval = plain_interval
        self.clock = clock
        self.started = clock()
        self.finished_seconds: list[float] = []
        self.runs: list = []  # the planned runs, from `set_plan`
        self.measured = Measured()
        self.index = 0
        self.label = ""
        self.state: RunState | None = None
        self.last_plain = -math.inf
        self._live: Live | None = None
        self._lock = threading.Lock()  # plain printing: the caller's thread and the timer's
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None

    def set_plan(self, runs, records=()) -> None:
        """The runs about to execute, in order, and the out folder's earlier records."""
        self.runs, self.total = list(runs), len(runs)
        cuda = True
        if any(run.device == "cuda" for run in self.runs):
            from .measure import cuda_available

            cuda = cuda_available()
        self.measured = measured_from_records(records, cuda)

    def __enter__(self) -> SuiteDisplay:
        if self.live_enabled:
            self._live = Live(
                console=self.console,
                refresh_per_second=4,
                transient=True,
                get_renderable=self._render,
            )
            self._live.__enter__()
        else:
            self._stop.clear()
            self._timer = threading.Thread(target=self._tick, name="lmbench-progress", daemon=True)
            self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._timer is not None:
            self._stop.set()
            self._timer.join()
            self._timer = None
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def _tick(self) -> None:
        while not self._stop.wait(self._until_due()):
            self._plain()

    def _until_due(self) -> float:
        return min(max(self.last_plain + self.plain_interval - self.clock(), 0.01), 1.0)

    def eta(self) -> float | None:
        if self.runs:
            return estimate_remaining(
                self.runs, self.index, self.state, self.clock(), self.measured
            )
        left = self.total - len(self.finished_seconds)  # no plan given: the mean finished run
        if not self.finished_seconds:
            return None
        return left * sum(self.finished_seconds) / len(self.finished_seconds)

    def _current(self):
        return self.runs[self.index] if self.index < len(self.runs) else None

    def line(self) -> str:
        s, now = self.state, self.clock()
        fields = [f"[run {self.index + 1}/{self.total}] {self.label}", f"{_phase(s):<9}"]
        progress = budget_progress(self._current(), s, now, self.measured)
        if progress:
            fields.append(progress)
        fields += [
            f"{_fmt(s and s.tokens_per_s, ',.0f')} tok/s",
            f"valid ppl {_fmt(s and s.valid_ppl, '.2f')}",
            f"run {_fmt_seconds(now - s.started if s else 0)}",
            f"ETA {_fmt_seconds(self.eta())}",
        ]
        return " | ".join(fields)

    def _render(self) -> Text:
        return Text(self.line())

    def _plain(self, force: bool = False) -> None:
        """Print the plain line when forced or due (off a terminal)."""
        if self._live is not None:
            return
        with self._lock:
            if force or self.clock() - self.last_plain >= self.plain_interval:
                self.console.print(self.line(), highlight=False, markup=False, soft_wrap=True)
                self.last_plain = self.clock()

    def start_run(self, index: int, label: str) -> None:
        with self._lock:  # the timer thread reads index, label and state together
            self.index, self.label = index, label
            self.state = RunState(started=self.clock())
        self._plain(force=True)

    def event(self, event: dict) -> None:
        state = self.state or RunState(started=self.clock())
        self.state = state.after(event, self.clock())
        if event.get("phase") == "train" and event.get("valid_ppl") is not None:
            self._plain(force=True)  # a mid-training evaluation: worth a log line

    def end_run(self, record: dict) -> None:
        wall = self.clock() - (self.state.started if self.state else self.started)
        self.finished_seconds.append(wall)
        run = self._current()
        if run is not None:
            self.measured.learn(record, run.model.model_class.iterative, wall)
        if self.state is not None:
            self.state = replace(self.state, phase="done")
        self.note(done_line(len(self.finished_seconds), self.total, self.label, record, wall))

    def note(self, message: str) -> None:
        if self._live is not None:  # the Live's console keeps the line below the message
            self._live.console.print(message, highlight=False, markup=False, soft_wrap=True)
            return
        with self._lock:
            self.console.print(message, highlight=False, markup=False, soft_wrap=True)


def done_line(done: int, total: int, label: str, record: dict, wall: float) -> str:
    """The line a finished run gets: status, perplexities, wall time and any error."""
    message = (
        f"[done {done}/{total}] {label} | {record['status']} | "
        f"valid ppl {_fmt(record.get('valid_ppl'), '.2f')} | "
        f"test ppl {_fmt(record.get('test_ppl'), '.2f')} | took {_fmt_seconds(wall)}"
    )
    if record.get("error"):
        message += f" | {record['error'][:160]}"
    return message


def _phase(state: RunState | None) -> str:
    return state.phase if state else "start"


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
