"""The records layer: what a run record is, where it and its artifacts live, how it is written
and read. Nothing else defines a run id, a data scope, the yardstick or an artifact path.

Schema (documented in docs/records.md): one JSON object per line of `runs.jsonl`. v2 adds
`machine` (the fingerprint of the machine that measured the run) and the status `interrupted`;
v1 records are still read (they have no fingerprint, so resume never keeps them).

Writes cannot tear a neighbour: a record goes on a fresh line even when the file ends in a
fragment (a crash mid-write), short writes are completed, a failed write is cut back to where
it started, and every artifact is written under a temporary name and renamed before the record
that names it is appended.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import io
import json
import math
import os
import re
import shutil
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DiskFull, is_disk_full_error

SCHEMA = 2
RECORDS_FILE = "runs.jsonl"
QUERIES_FILE = "queries.jsonl"  # `lmbench latency`'s re-measurements: not run records
STATUSES = ("ok", "skipped", "failed", "interrupted")
COUNT_FAMILIES = frozenset({"baseline", "ngram"})  # deterministic: compared exactly
NEURAL_FAMILIES = ("mlp", "rnn", "lstm", "gru", "transformer")
TARGET_MODEL = "kn5"  # the yardstick: time to its valid perplexity, ratios to its test perplexity


@dataclass
class RunRecord:
    """Every field is always written; `None` (JSON null) where not applicable."""

    schema: int = SCHEMA
    run_id: str | None = None
    config_hash: str | None = None
    suite: str | None = None
    corpus: str | None = None
    corpus_sha256: str | None = None
    vocab_size: int | None = None
    mode: str | None = None
    model: str | None = None  # the spec name, e.g. "add1-2"
    family: str | None = None
    model_config: dict | None = None
    params: int | None = None
    size_bytes: int | None = None
    device: str | None = None
    device_name: str | None = None
    dtype: str | None = None
    threads: int | None = None
    seed: int | None = None
    status: str = "failed"  # one of STATUSES
    error: str | None = None
    budget: dict | None = None  # {kind, limit, ended_by}
    train_tokens: int | None = None
    train_seconds: float | None = None
    compile_seconds: float | None = None
    eval_seconds: float | None = None
    eval_tokens: int | None = None  # test tokens predicted
    train_tokens_per_s: float | None = None
    eval_tokens_per_s: float | None = None
    latency_ms_per_token: float | None = None  # rescoring a 32-token window, per token
    query_us: float | None = None  # a decoder's query: one word, state carried (extra.query)
    valid_ppl: float | None = None
    test_ppl: float | None = None
    test_bits_per_token: float | None = None
    curve: list | None = None  # [{seconds, tokens, valid_ppl}, ...]
    target_ppl: float | None = None  # the yardstick's valid perplexity (TARGET_MODEL)
    target_source: str | None = None
    time_to_target_s: float | None = None
    peak_rss_bytes: int | None = None
    peak_gpu_bytes: int | None = None
    flops_per_token: float | None = None
    train_flops: float | None = None
    mfu: float | None = None
    calibration: dict | None = None  # {matmul_gflops, sort_mkeys_per_s, ...}
    samples: list | None = None
    logprobs: dict | None = None  # {"valid": path, "test": path}, relative to the JSONL file
    sentences: str | None = None  # test NLL per sentence (.npy, committed): bootstrap intervals
    checkpoint: str | None = None
    machine: dict | None = None  # v2: measure.machine_fingerprint(), with its "id"
    env: dict | None = None
    extra: dict = field(default_factory=dict)  # model-specific facts (e.g. fallback discounts)

    def to_json(self) -> str:
        return json.dumps(_finite(dataclasses.asdict(self)), sort_keys=False, allow_nan=False)


FIELDS = tuple(f.name for f in dataclasses.fields(RunRecord))
DICT_FIELDS = ("model_config", "budget", "calibration", "logprobs", "machine", "env", "extra")


def _finite(value):
    """JSON has no inf/nan: write them as strings a reader turns back into floats."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def config_hash(config: dict) -> str:
    """Hash of the canonical JSON of what determines a run's outcome (no commit, no time)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def make_run_id(corpus: str, model: str, mode: str, config_hash: str) -> str:
    """`<corpus>.<model>.<mode>.<hash8>.<UTC time to the ms>`: unique, sortable, readable."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", Path(corpus).name).strip("_") or "corpus"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")[:-3]
    return f"{name}.{model}.{mode}.{config_hash[:8]}.{stamp}"


# --- what a run measured on: data scope, machine, yardstick -------------------------------------


def eval_slice(record: dict) -> int | None:
    """Valid/test scored on their first N tokens only (slow peers, CI), else None."""
    return (record.get("extra") or {}).get("eval_slice_tokens")


def train_scope(record: dict) -> str:
    """The training data: "full", "fraction" (the scaling suite) or "slice" (a count model cut
    by a token budget; a neural model's budget limits training, not the data it may see)."""
    if (record.get("extra") or {}).get("train_fraction"):
        return "fraction"
    limit = (record.get("budget") or {}).get("limit") or {}
    if record.get("family") in COUNT_FAMILIES and "tokens" in limit:
        return "slice"
    return "full"


def is_full_data(record: dict) -> bool:
    """Trained on the whole train split and scored on the whole valid and test splits."""
    return train_scope(record) == "full" and eval_slice(record) is None


def seedless_config(record: dict) -> str:
    """What makes two runs one config apart from their seed (the config hash covers the seed):
    runs with equal keys are seeds of one config, grouped in tables and figures. A mix's
    components are its seeds' own runs, so only its name counts. A decay branch is the complete
    WSD run of its budget (bit-identical, tested), whatever its trunk's length: one config."""
    extra = record.get("extra") or {}
    key = {
        "corpus": record.get("corpus_sha256") or record.get("corpus"),
        "mode": record.get("mode"),
        "model": record.get("model"),
        "model_config": None if record.get("family") == "mix" else record.get("model_config"),
        "device": record.get("device"),
        "dtype": record.get("dtype"),
        "budget": (record.get("budget") or {}).get("limit"),
        "train_fraction": extra.get("train_fraction"),
        "eval_slice": extra.get("eval_slice_tokens"),
        "vocab": extra.get("vocab"),
    }
    return config_hash(key)


def machine_id(record: dict) -> str | None:
    """The fingerprint id of the machine that measured a record (None: a v1 record)."""
    return (record.get("machine") or {}).get("id")


def _vocab(record: dict) -> tuple:
    """The vocabulary overrides a run was made with (none: the corpus's own vocabulary)."""
    return tuple(sorted(((record.get("extra") or {}).get("vocab") or {}).items()))


def target_run(run: dict, records: Iterable[dict]) -> dict | None:
    """A run's yardstick: the newest ok TARGET_MODEL run (unpruned) on the same corpus, mode,
    vocabulary and scored tokens, trained on the full train split; from the run's own results
    file where it has one.
    `run` needs corpus, mode, extra (and source_file where it came from a file)."""
    key = (run.get("corpus"), run.get("mode"), eval_slice(run), _vocab(run))
    matches = [
        r
        for r in records
        if r.get("model") == TARGET_MODEL
        and r.get("status") == "ok"
        and (r.get("corpus"), r.get("mode"), eval_slice(r), _vocab(r)) == key
        and train_scope(r) == "full"
        and not (r.get("model_config") or {}).get("prune")  # a pruned kn5 is not the yardstick
    ]
    same_file = [r for r in matches if run.get("source_file") == r.get("source_file")]
    return (same_file or matches or [None])[-1]


# --- artifacts: where they live, written whole or not at all ------------------------------------


def artifact_path(kind: str, run_id: str, split: str | None = None) -> str:
    """A run's artifact, relative to its results folder (records store this form)."""
    paths = {
        "logprobs": f"logprobs/{run_id}.{split}.npy",  # per-token log-probs (local, for mixes)
        "sentences": f"sentences/{run_id}.test.npy",  # test NLL per sentence (committed)
        "checkpoint": f"checkpoints/{run_id}.pt",  # the best state (local, for sampling)
        # a trunk's whole training state where a branch of `split` tokens decays (local)
        "branch": f"branches/{run_id}.{split}.pt",
        "log": f"logs/{run_id}.log",  # the worker's stderr (local)
    }
    return paths[kind]


ARTIFACT_FOLDERS = ("logprobs", "sentences", "checkpoints", "branches")
TEMP_MARK = ".tmp-"  # `.<name>.tmp-<pid>`: an artifact not yet renamed into place


def _free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def _disk_full(path: Path, needed: int) -> DiskFull:
    free = _free_bytes(path.parent)
    space = f"{needed:,} bytes needed" + (f", {free:,} free" if free is not None else "")
    return DiskFull(f"disk full: could not write {path} ({space})", path, needed, free)


def _write_all(fd: int, data: bytes, path: Path) -> None:
    """os.write until every byte is written (a write may be short); 0 bytes written means the
    device is full."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        view = view[written:]


NEARLY_FULL = 2**20  # a write of unknown size that failed with less than this free: disk full


def _is_disk_full(exc: BaseException, path: Path, needed: int) -> bool:
    if is_disk_full_error(exc):
        return True
    free = _free_bytes(path.parent)  # numpy and torch report short writes without an errno
    return free is not None and free < needed


@contextlib.contextmanager
def replacing(path: Path, needed: int = 0) -> Iterator[Path]:
    """A temporary path beside `path` to write; renamed onto `path` when the body succeeds,
    removed when it fails (a full disk becomes DiskFull). Readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}")
    try:
        yield temp
        if temp.exists():  # the body may decide there is nothing to write
            os.replace(temp, path)
    except Exception as exc:  # torch reports a full disk as a RuntimeError
        temp.unlink(missing_ok=True)
        if _is_disk_full(exc, path, max(needed, NEARLY_FULL)):
            raise _disk_full(path, needed) from exc
        raise
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes) -> None:
    """`data` to `path`, whole (fsync'ed, renamed into place) or not at all."""
    with replacing(path, len(data)) as temp:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, data, temp)
            os.fsync(fd)
        finally:
            os.close(fd)


def save_array(folder: Path, relative: str, array) -> str:
    """An .npy artifact under `folder`, written whole; returns `relative` for the record."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    write_bytes(Path(folder) / relative, buffer.getvalue())
    return relative


def save_log_probs(out_dir: Path, run_id: str, valid: np.ndarray, test: np.ndarray) -> dict:
    """Per-token natural-log probabilities (float32 .npy, local): for mixtures."""
    return {
        split: save_array(
            out_dir, artifact_path("logprobs", run_id, split), np.asarray(lp, dtype=np.float32)
        )
        for split, lp in (("valid", valid), ("test", test))
    }


def save_sentence_nll(out_dir: Path, run_id: str, sentences: np.ndarray) -> str:
    """Small enough to commit (about 30 KB for PTB test): the bootstrap intervals' raw data."""
    return save_array(out_dir, artifact_path("sentences", run_id), sentences.astype(np.float32))


# --- the JSONL store ------------------------------------------------------------------------------


def append_record(path: Path, record: RunRecord) -> None:
    """Append one record as one line, fsync'ed, under an exclusive lock. If the file ends in a
    fragment (an earlier crash), the record starts on a fresh line and the fragment stays for
    `lmbench doctor` to report. A failed write is cut back: nothing earlier is touched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (record.to_json() + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        start = os.fstat(fd).st_size
        if start and os.pread(fd, 1, start - 1) != b"\n":
            data = b"\n" + data
        try:
            _write_all(fd, data, path)
            os.fsync(fd)
        except BaseException as exc:  # a signal mid-write too: no torn line of ours
            os.ftruncate(fd, start)
            if isinstance(exc, OSError) and _is_disk_full(exc, path, len(data)):
                full = _disk_full(path, len(data))
                raise DiskFull(
                    f"{full} (the record of run {record.run_id}); {intact(path)}",
                    path,
                    full.needed,
                    full.free,
                ) from exc
            raise
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def intact(path: Path) -> str:
    """What a full disk left untouched, and what to do: the end of every DiskFull message."""
    finished = sum(r["status"] == "ok" for r in read_records(path, quiet=True))
    return (
        f"the {finished} finished runs in {path} are intact: free some space and rerun with "
        "--resume"
    )


@dataclass
class Scan:
    """What one JSONL file holds: its records, and the lines that are not records."""

    path: Path
    records: list[dict]
    bad_lines: list[tuple[int, str]]  # (line number, text) of torn or foreign lines


def scan(path: Path) -> Scan:
    records, bad = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            try:
                if not isinstance(record, dict) or not isinstance(record.get("config_hash"), str):
                    raise TypeError("not a run record")
                records.append(restore(record))
            except (TypeError, ValueError, AttributeError):  # foreign or malformed: not a record
                bad.append((number, line.rstrip("\n")))
    return Scan(Path(path), records, bad)


def read_records(path: Path, quiet: bool = False) -> list[dict]:
    """Records of one JSONL file; a torn or foreign line is skipped with a warning."""
    result = scan(path)
    for number, _ in result.bad_lines if not quiet else ():
        warnings.warn(
            f"{path}:{number}: unreadable record skipped (lmbench doctor {Path(path).parent})",
            stacklevel=2,
        )
    return result.records


def restore(record: dict) -> dict:
    """Undo `_finite` ("inf" strings back to floats); fields a v1 record lacks are None."""
    for key in ("valid_ppl", "test_ppl", "test_bits_per_token", "time_to_target_s"):
        if isinstance(record.get(key), str):
            record[key] = float(record[key])
    for point in record.get("curve") or []:
        if isinstance(point, dict) and isinstance(point.get("valid_ppl"), str):
            point["valid_ppl"] = float(point["valid_ppl"])
    for name in FIELDS:
        record.setdefault(name, None)
    record["extra"] = record["extra"] or {}
    for name in DICT_FIELDS:  # what readers index into must be what it claims to be
        if record[name] is not None and not isinstance(record[name], dict):
            raise TypeError(f"{name} is not an object")
    if record["curve"] is not None and not isinstance(record["curve"], list):
        raise TypeError("curve is not a list")
    return record


def jsonl_files(path: Path) -> list[Path]:
    path = Path(path)
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*.jsonl") if p.name != QUERIES_FILE)


def load_records(*paths: Path) -> list[dict]:
    """Every record under `paths` (files or folders), each with its `source_file`."""
    out = []
    for path in paths:
        for file in jsonl_files(path):
            for record in read_records(file):
                record["source_file"] = str(file)
                out.append(record)
    return out


def latest_by_config(records: list[dict]) -> dict[str, dict]:
    """The last record of each config hash (a resumed failure is superseded by its retry)."""
    latest: dict[str, dict] = {}
    for record in records:
        latest[record["config_hash"]] = record
    return latest


def load_frame(*paths: Path) -> pd.DataFrame:
    """Tidy long form: one row per run and validation-curve point (a run with no curve: one row).

    Nested dicts (budget, calibration, env, model_config, machine) become dotted columns; the
    curve becomes `curve.seconds`, `curve.tokens`, `curve.valid_ppl`.
    """
    records = load_records(*paths)
    if not records:
        return pd.DataFrame(columns=[*FIELDS, "source_file"])
    frame = pd.json_normalize(records, sep=".", max_level=1)
    frame["curve"] = [r.get("curve") or [None] for r in records]
    frame = frame.explode("curve", ignore_index=True)
    points = pd.json_normalize([p or {} for p in frame["curve"]]).add_prefix("curve.")
    return pd.concat([frame.drop(columns=["curve"]), points], axis=1)
