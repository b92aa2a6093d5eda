"""The runs a report draws on: the latest record per config, grouped by config minus seed (a
`Group`: one config's seeds, labelled by what sets it apart from other configs of its model),
their kn5 yardsticks (measured on the same machine), and bootstrap intervals for perplexity
ratios that resample seeds as well as blocks of consecutive test sentences.

Which suites feed which section is the suites' own declaration (`Suite.feeds`): nothing here or
in the tables and figures names a suite."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..plan import CORPUS_SETTINGS
from ..records import (
    COUNT_FAMILIES,
    config_hash,
    load_records,
    machine_id,
    seedless_config,
    target_run,
)
from ..suites import SMOOTHING, SUITES, suites_feeding

# a record keeps corpus settings by load_corpus's names (min_count); labels use the --set names
SETTING_NAMES = {key.split(".", 1)[1]: key for key in CORPUS_SETTINGS}

BOOTSTRAP_SAMPLES = 2000
# The bootstrap draws blocks of consecutive test sentences: in stream mode a model's state (and
# a cache's memory) carries across sentences and articles keep a topic, so neighbouring
# sentences' losses are not independent and single-sentence resampling makes the interval too
# narrow. 100 sentences (about 2,000 PTB tokens) span the caches' tuned sizes.
BOOTSTRAP_BLOCK_SENTENCES = 100
MIN_SEEDS = 3  # a claim about a neural model rests on at least this many seeds
METHOD = "smoothing"  # the smoothing table's column: a method (kn, wb, ...), not a suite
CONFIDENCE = 0.95


@dataclass
class Runs:
    """Every run found under the report's folders (latest record of each config hash and
    machine)."""

    records: list[dict]
    _labels: dict | None = None  # seedless config -> label, over every ok run (`label`)
    _by_id: dict | None = None  # run id -> record (a mix names its parts by run id)
    _peaks: dict | None = None  # (machine, device, calibration key) -> median matmul rate

    @classmethod
    def load(cls, *paths: Path) -> Runs:
        """The latest record of each config in each results file and machine: suites may share
        a config (every suite runs kn5 first), and each keeps its own row; a run on another
        machine is a measurement of its own, not a retry."""
        latest = {
            (r["source_file"], machine_id(r), r["config_hash"]): r for r in load_records(*paths)
        }
        return cls(list(latest.values()))

    def attach_queries(self, measurements: list[dict]) -> None:
        """Give runs recorded before `query_us` existed the per-query latency `lmbench latency`
        measured for them later, on the same machine (`query_remeasured`: when)."""
        found = {(m["run_id"], (m.get("machine") or {}).get("id")): m for m in measurements}
        for record in self.records:
            m = found.get((record.get("run_id"), machine_id(record)))
            if record.get("query_us") is None and m is not None:
                record["query_us"] = m["query"]["us_per_query"]
                record["query_remeasured"] = m["measured_at"]

    def frame(self) -> pd.DataFrame:
        if not self.records:
            return pd.DataFrame()
        frame = pd.json_normalize(self.records, sep=".", max_level=1)
        frame["budget_label"] = [self.budget(r) for r in self.records]
        frame["label"] = [
            self.label(r) if r["status"] == "ok" else r["model"] for r in self.records
        ]
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

    def groups(self, section: str | None = None, runs: list[dict] | None = None) -> list[Group]:
        """The ok runs of `section` (or `runs`) grouped by results folder, machine and config
        minus seed, each labelled (`label`); in first-seen order."""
        grouped: dict[tuple, list[dict]] = {}
        for r in self.ok(section) if runs is None else runs:
            key = (r.get("source_file"), machine_id(r), self.key(r))
            grouped.setdefault(key, []).append(r)
        groups = [Group(sorted(g, key=lambda r: r.get("seed") or 0)) for g in grouped.values()]
        for group in groups:
            group.label = self.label(group.first)
            parts = self.parts(group.first)  # a mix of count models (and a cache) is one too
            group.count_mix = bool(parts) and all(p["family"] in COUNT_FAMILIES for p in parts)
            trained = [p for r in group.runs for p in (self.parts(r) or [r])]
            group.incomplete = any(never_decayed(r) for r in trained)
        return groups

    def label(self, run: dict) -> str:
        """The run's config label, one for the whole report: configs of one model are told
        apart among all the report's ok runs (`config_labels`), so a label means one config in
        every table."""
        parts = self.parts(run)
        if parts:  # a mix: its parts' labels, so mixes of two configs of a model differ too
            names = run["model"].split("+")  # and what is not a run (a cache) by its name
            return "+".join([self.label(p) for p in parts] + names[len(parts) :])
        if self._labels is None:
            firsts = {self.key(r): r for r in reversed(self.ok())}
            self._labels = dict(zip(firsts, config_labels(list(firsts.values()))))
        return self._labels.get(self.key(run), run["model"])

    def parts(self, run: dict) -> list[dict] | None:
        """A mix's two component runs (None: not a mix, or a part is not among the runs)."""
        if run.get("family") != "mix":
            return None
        if self._by_id is None:
            self._by_id = {r["run_id"]: r for r in self.records}
        ids = (run.get("model_config") or {}).get("components") or []
        parts = [self._by_id.get(i) for i in ids]
        return parts if parts and all(parts) else None

    def key(self, run: dict) -> str:
        """The run's config minus seed (`seedless_config`); a mix's is its parts' configs, so
        mixes of the same two configs are seeds of one mix, and of other configs another."""
        parts = self.parts(run)
        if not parts:
            return seedless_config(run)
        return config_hash({"mix": seedless_config(run), "parts": [self.key(p) for p in parts]})

    def budget(self, run: dict) -> str:
        """`budget_with_schedule`; a mix's names its parts' budgets."""
        parts = self.parts(run)
        if not parts:
            return budget_with_schedule(run)
        return "mix of " + "; ".join(f"{p['model']} {budget_with_schedule(p)}" for p in parts)

    def machine_peak(self, run: dict) -> float | None:
        """The median matmul rate (the run's precision's, by the same library) calibrated at the
        start of every ok run on its machine and device: one run's own calibration swings with
        what else the host does (129-231 GFLOP/s on one 2-core fingerprint), so MFU divides by
        this. None for a record without a machine fingerprint (its own calibration stands)."""
        if machine_id(run) is None:  # a v1 record: no fingerprint to pool by
            return None
        where = calibrated_on(run)
        if self._peaks is None:
            self._peaks = {}
        if where not in self._peaks:
            rates = [
                r["calibration"][where[2]]
                for r in self.ok()
                if calibrated_on(r) == where and (r.get("calibration") or {}).get(where[2])
            ]
            self._peaks[where] = float(np.median(rates)) if rates else None
        return self._peaks[where]

    def mfu(self, run: dict) -> float | None:
        """The run's MFU against `machine_peak` rather than its own calibration (None: the
        record has none)."""
        own, peak = (run.get("calibration") or {}).get(peak_key(run)), self.machine_peak(run)
        if run.get("mfu") is None or not own or not peak:
            return run.get("mfu")
        return run["mfu"] * own / peak

    def target(self, run: dict) -> dict | None:
        """The kn5 run a row is compared with (records.target_run), measured on the same machine:
        a ratio of seconds or of perplexities never crosses fingerprints (v1 records, which have
        none, are compared with each other)."""
        here = machine_id(run)
        return target_run(run, [r for r in self.ok() if machine_id(r) == here])


@dataclass
class Group:
    """One config's runs, one per seed (a count model: one run; it is deterministic)."""

    runs: list[dict]
    label: str = ""
    count_mix: bool = False  # a mix whose every part is a count model: deterministic
    incomplete: bool = False  # a run (or a mix's part) whose schedule never decayed

    @property
    def first(self) -> dict:
        return self.runs[0]

    @property
    def seeds(self) -> int:
        return len(self.runs)

    @property
    def deterministic(self) -> bool:
        return self.first["family"] in COUNT_FAMILIES or self.count_mix

    @property
    def claims(self) -> bool:
        """Whether the report may state a finding about it: a count model, or >= MIN_SEEDS
        seeds whose schedules are complete."""
        return not self.no_claim()

    def no_claim(self) -> str:
        """Why the report states no finding about it ('' where it may)."""
        if self.deterministic:
            return ""
        if self.seeds < MIN_SEEDS:
            return f"a finding needs >= {MIN_SEEDS} seeds: `--seeds 0,1,2`"
        if self.incomplete:
            return (
                "a plateau schedule that never lowered its learning rate is not a complete "
                "schedule: the number understates what the budget buys"
            )
        return ""

    def values(self, key: str) -> np.ndarray:
        return np.array([np.nan if r.get(key) is None else r[key] for r in self.runs], float)

    def mean(self, key: str) -> float | None:
        values = self.values(key)
        return float(np.nanmean(values)) if np.isfinite(values).any() else None

    def median(self, key: str) -> float | None:
        """A timing's middle over the config's runs (a slow outlier moves a mean, not this)."""
        values = self.values(key)
        return float(np.nanmedian(values)) if np.isfinite(values).any() else None

    def spread(self, key: str = "test_ppl") -> str:
        """`n seeds, sd x, min-max` (or `deterministic`, `1 seed`)."""
        if self.deterministic:
            return "1 run (deterministic)"
        values = self.values(key)
        if self.seeds == 1:
            return "1 seed"
        return (
            f"{self.seeds} seeds, sd {np.std(values, ddof=1):.2f}, "
            f"{np.min(values):.2f}-{np.max(values):.2f}"
        )


def default_config(model: str) -> dict | None:
    """The config a model spec name gets with no --set (None: not resolvable here)."""
    from dataclasses import asdict

    from ..models.registry import resolve

    try:
        return asdict(resolve(model, {}).config)
    except Exception:  # a model this version no longer knows: no default to compare with
        return None


def config_labels(firsts: list[dict]) -> list[str]:
    """A label per group (given by its first run) that tells configs of one model apart: the
    settings whose values differ among that model's configs, shown where they differ from the
    model's default (`transformer (dropout 0.2)`; the default config keeps the bare name), and
    the budget where it differs too (`mlp9 (patience 2, 20 epochs)`) or alone."""

    def place(r: dict) -> tuple:  # a table's rows share corpus and mode
        return (r["model"], r["corpus"], r["mode"])

    keys = {id(r): seedless_config(r) for r in firsts}  # hashed once: firsts may be hundreds
    budgets_of = {id(r): budget_label(r) for r in firsts}
    by_place: dict[tuple, list[dict]] = {}
    for r in firsts:
        by_place.setdefault(place(r), []).append(r)
    labels = []
    for run in firsts:
        same_model = by_place[place(run)]
        if len({keys[id(r)] for r in same_model}) < 2 or run["family"] == "mix":
            labels.append(run["model"])
            continue
        default = default_config(run["model"]) or {}
        configs = [r.get("model_config") or {} for r in same_model]
        varying = sorted(
            {k for c in configs for k in c if len({str(x.get(k)) for x in configs}) > 1}
        )
        config = run.get("model_config") or {}
        differs = [
            f"{k} {config.get(k):g}" if isinstance(config.get(k), float) else f"{k} {config.get(k)}"
            for k in varying
            if config.get(k) != default.get(k)
        ]
        twins = [r for r in same_model if (r.get("model_config") or {}) == config]
        # the budget where only it (or the data) differs, and where it differs beside a
        # setting: a setting that never acted (an early stop that never fired) may not be
        # what made the difference
        budgets = {budgets_of[id(r)] for r in same_model}
        if len({keys[id(r)] for r in twins}) > 1 or (differs and len(budgets) > 1):
            differs.append(budgets_of[id(run)])
        labels.append(f"{run['model']} ({', '.join(differs)})" if differs else run["model"])
    return labels


def several_machines(records: list[dict]) -> bool:
    """Whether `records` were measured on more than one machine (v1 records count as one)."""
    return len({machine_id(r) for r in records}) > 1


def machine_label(record: dict) -> str:
    """A short name of the machine that measured a record, for a table column."""
    fingerprint = record.get("machine")
    if not fingerprint:
        return "unknown (a v1 record)"
    return f"{fingerprint.get('cpu')}, {fingerprint.get('cores')} cores [{fingerprint.get('id')}]"


CONTENDED_LOAD = 0.5  # load average above what the run used by this much: cores were shared
SHORTEST_JUDGED_S = 60.0  # a shorter run's load averages describe the minute before it


def contention(record: dict) -> float | None:
    """The highest load average recorded during a run, where it exceeds the cores the run
    could use (its threads, at most the machine's cores) by more than CONTENDED_LOAD: other
    work shared the cores, and its seconds may be inflated (its perplexity is not affected).
    What counts: the 1-minute peak sampled during training and the 1-minute value at its end,
    the 5-minute value at its end only for runs of 5 minutes or more; never the start (the
    minutes before the run). None otherwise: a run under a minute, or one with no load
    average recorded, cannot be judged."""
    loads = (record.get("extra") or {}).get("load_average") or {}
    seconds = record.get("train_seconds") or 0.0
    if seconds < SHORTEST_JUDGED_S:
        return None
    end = loads.get("end") or []
    seen = end[:2] if seconds >= 300 else end[:1]
    if loads.get("peak_1min") is not None:
        seen = [*seen, loads["peak_1min"]]
    cores = (record.get("machine") or {}).get("cores")
    used = min(record.get("threads") or 1, cores) if cores else record.get("threads") or 1
    highest = max(seen, default=None)
    return highest if highest is not None and highest > used + CONTENDED_LOAD else None


def contention_note(records: list[dict]) -> str:
    """`contended (load 3.0 on 2 threads)` for the most contended of `records`, or ''."""
    flagged = [(load, r) for r in records if (load := contention(r)) is not None]
    if not flagged:
        return ""
    load, record = max(flagged, key=lambda pair: pair[0])
    return f"contended (load {load:.1f} on {record.get('threads') or 1} threads)"


def uncontended(runs: list[dict]) -> list[dict]:
    """The runs whose cores were not shared (`contention`): their timings are the model's."""
    return [r for r in runs if contention(r) is None]


def timed_seconds(runs: list[dict]) -> tuple[float, list[dict]]:
    """Training seconds of a config's seeds as this machine gives them: the median of the runs
    whose cores were not shared, or, where every run's were, the mean of all; and the runs
    that figure rests on (to flag where they are contended)."""
    clean = uncontended(runs)
    used = clean or runs
    seconds = [r["train_seconds"] for r in used if r.get("train_seconds") is not None]
    if not seconds:
        return float("nan"), used
    return float(np.median(seconds) if clean else np.mean(seconds)), used


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
        config = record.get("model_config") or {}
        if "cache_size" in config:
            return (
                f"unigram cache of the previous {config['cache_size']} test tokens, never reset; "
                "size and weight tuned on valid"
            )
        return "mix of two runs (weight tuned on valid)"
    limit = (record.get("budget") or {}).get("limit") or {}
    parts = []
    if "seconds" in limit:
        parts.append(f"{limit['seconds'] / 60:g} min wall-clock")
    if "tokens" in limit:
        parts.append(f"{limit['tokens'] / 1e6:g} M tokens")
    if "epochs" in limit:
        parts.append(f"{limit['epochs']:g} epochs")
    fraction = (record.get("extra") or {}).get("train_fraction")
    if fraction:
        parts.append(f"{fraction:.0%} of train")
    parts = parts or ["full data"]
    vocab = (record.get("extra") or {}).get("vocab")
    if vocab:  # another vocabulary is another model: its label says so
        settings = ", ".join(
            f"{SETTING_NAMES.get(k, k)}={str(v).lower() if isinstance(v, bool) else v}"
            for k, v in sorted(vocab.items())
        )
        size = record.get("vocab_size")
        parts.append(f"|V| = {size:,} ({settings})" if size else settings)
    return ", ".join(parts)


def results_folder(record: dict) -> str:
    """The results folder a record was read from (`-`: a record not read from one)."""
    source = record.get("source_file")
    return str(Path(source).parent) if source else "-"


def calibrated_on(record: dict) -> tuple:
    """What makes two runs' calibrations one pool: machine, device, the matmul measured (fp32
    or bf16) and its library (a count run times numpy's matmul, a neural run torch's)."""
    backend = ((record.get("calibration") or {}).get("matmul_backend") or "").split(" ")[0]
    return (machine_id(record), record.get("device"), peak_key(record), backend)


def peak_key(record: dict) -> str:
    """The calibration a run's MFU divides by: bf16 matmuls for a bf16 run, where measured."""
    calibration = record.get("calibration") or {}
    bf16 = (record.get("extra") or {}).get("compute_dtype") == "bfloat16"
    return "matmul_bf16_gflops" if bf16 and "matmul_bf16_gflops" in calibration else "matmul_gflops"


def never_decayed(record: dict) -> bool:
    """A plateau schedule that ended at its starting learning rate: not a complete schedule."""
    extra, config = record.get("extra") or {}, record.get("model_config") or {}
    return config.get("lr_schedule") == "plateau" and extra.get("final_lr") == config.get("lr")


def schedule_note(record: dict) -> str:
    """How much of the training split a neural run saw, a plateau schedule that never decayed
    (the learning rate still at its start: not a complete schedule), a decay branch's trunk."""
    extra = record.get("extra") or {}
    notes = []
    if extra.get("epochs") is not None:
        notes.append(f"{extra['epochs']:.2g} epochs")
    if never_decayed(record):
        notes.append("plateau lr never decayed")
    trunk = (extra.get("branch") or {}).get("trunk_tokens")
    if trunk:  # the same model as a complete WSD run of its budget; how this one was made
        notes.append(f"decay branch of a {trunk / 1e6:g} M-token trunk")
    return ", ".join(notes)


def budget_with_schedule(record: dict) -> str:
    """`budget_label` and, for a neural run, its `schedule_note`."""
    note = schedule_note(record)
    return f"{budget_label(record)} ({note})" if note else budget_label(record)


def sentence_nll(record: dict) -> np.ndarray | None:
    """[n_sentences, 2] (NLL nats, tokens) saved beside the run, or None if it is not there."""
    if not record.get("sentences") or not record.get("source_file"):
        return None
    path = Path(record["source_file"]).parent / record["sentences"]
    return np.load(path).astype(np.float64) if path.is_file() else None


def ratio_point(runs: list[dict], reference: dict) -> float | None:
    """Test ppl of `runs` (a config's seeds) over the reference's: the geometric mean over
    seeds of each seed's ratio."""
    ppls = [r.get("test_ppl") for r in runs]
    ref = reference.get("test_ppl")
    if not ref or not all(p and math.isfinite(p) for p in ppls):
        return None
    return math.exp(float(np.mean([math.log(p / ref) for p in ppls])))


def block_resamples(
    rng: np.random.Generator, n: int, samples: int, block: int = BOOTSTRAP_BLOCK_SENTENCES
) -> np.ndarray:
    """[samples, n] sentence indices of a circular block bootstrap: each resample is n sentences
    made of runs of `block` consecutive ones (wrapping at the end) from random starts."""
    block = max(1, min(block, n))
    starts = rng.integers(0, n, size=(samples, -(-n // block)))
    index = (starts[:, :, None] + np.arange(block)) % n
    return index.reshape(samples, -1)[:, :n]


def covers_one(interval: tuple[float, float] | None) -> bool:
    """Whether a ratio's `interval` holds 1: no different from the yardstick."""
    return bool(interval) and interval[0] <= 1 <= interval[1]


def ratio_interval(
    runs: dict | list[dict],
    reference: dict,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
    block: int = BOOTSTRAP_BLOCK_SENTENCES,
) -> tuple[float, float] | None:
    """95% interval of the test perplexity ratio of `runs` (one run, or a config's seeds) to
    `reference`: a paired bootstrap that resamples blocks of consecutive test sentences
    (`block_resamples`) and, where there are several, seeds (each resample draws as many seeds
    as there are, with replacement, and averages their log-likelihoods)."""
    runs = [runs] if isinstance(runs, dict) else runs
    b = sentence_nll(reference)
    nll = [sentence_nll(r) for r in runs]
    if b is None or any(
        a is None or a.shape != b.shape or not np.array_equal(a[:, 1], b[:, 1]) for a in nll
    ):
        return None
    rng = np.random.default_rng(seed)
    index = block_resamples(rng, b.shape[0], samples, block)
    tokens = b[index, 1].sum(axis=1)
    per_seed = np.stack([a[index, 0].sum(axis=1) for a in nll])  # [seeds, samples]
    if len(nll) > 1:
        drawn = rng.integers(0, len(nll), size=(len(nll), samples))
        per_seed = np.take_along_axis(per_seed, drawn, axis=0)
    log_ratio = (per_seed.mean(axis=0) - b[index, 0].sum(axis=1)) / tokens
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
        if r["family"] == "ngram" and not (r.get("model_config") or {}).get("prune")
    ]


def pruning_rows(runs: Runs) -> list[dict]:
    """The smoothing section's Kneser-Ney runs by size: each order unpruned, and kn5 pruned."""
    rows = []
    for r in runs.ok(SMOOTHING):
        config = r.get("model_config") or {}
        if not r["model"].startswith("kn") or r["family"] != "ngram":
            continue
        extra = r.get("extra") or {}
        rows.append(
            {
                "model": r["model"] + (f" pruned {config['prune']}" if config.get("prune") else ""),
                "series": "kn5 pruned" if config.get("prune") else "kn, order 2-6",
                "n-grams": sum(extra.get("ngrams") or []) or None,
                "size MB": r["size_bytes"] / 2**20 if r.get("size_bytes") else None,
                "as scored MB": extra["scoring_bytes"] / 2**20
                if extra.get("scoring_bytes")
                else None,
                "test ppl": r["test_ppl"],
            }
        )
    unique: dict[str, dict] = {}
    for row in rows:  # one row per model: a newer folder's record (with as-scored bytes) wins
        if row["model"] not in unique or row["as scored MB"] is not None:
            unique[row["model"]] = row
    return sorted(unique.values(), key=lambda row: (row["series"], -(row["size MB"] or 0)))
