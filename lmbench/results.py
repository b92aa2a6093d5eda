"""Run records (schema v1), the append-only JSONL store, and the tidy results frame.

One JSON object per line. A record is appended in one write under an exclusive lock and then
fsync'ed, so a crash mid-suite never leaves earlier runs half-written. Reports and compare read
only what this module loads.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

SCHEMA = 1


@dataclass
class RunRecord:
    """Schema v1. Every field is always written; `None` (JSON null) where not applicable."""

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
    status: str = "failed"
    error: str | None = None
    budget: dict | None = None  # {kind, limit, ended_by}
    train_tokens: int | None = None
    train_seconds: float | None = None
    compile_seconds: float | None = None
    eval_seconds: float | None = None
    eval_tokens: int | None = None  # test tokens predicted
    train_tokens_per_s: float | None = None
    eval_tokens_per_s: float | None = None
    latency_ms_per_token: float | None = None
    valid_ppl: float | None = None
    test_ppl: float | None = None
    test_bits_per_token: float | None = None
    curve: list | None = None  # [{seconds, tokens, valid_ppl}, ...]
    target_ppl: float | None = None
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
    env: dict | None = None
    extra: dict = field(default_factory=dict)  # model-specific facts (e.g. fallback discounts)

    def to_json(self) -> str:
        return json.dumps(_finite(dataclasses.asdict(self)), sort_keys=False, allow_nan=False)


FIELDS = tuple(f.name for f in dataclasses.fields(RunRecord))


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


def append_record(path: Path, record: RunRecord) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (record.to_json() + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_records(path: Path) -> list[dict]:
    """Records of one JSONL file; a torn last line (a crash mid-write) is skipped with a warning."""
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                warnings.warn(f"{path}:{number}: unreadable record skipped", stacklevel=2)
                continue
            records.append(restore(record))
    return records


def restore(record: dict) -> dict:
    """Undo `_finite`: "inf" strings back to floats."""
    for key in ("valid_ppl", "test_ppl", "test_bits_per_token", "time_to_target_s"):
        if isinstance(record.get(key), str):
            record[key] = float(record[key])
    for point in record.get("curve") or []:
        if isinstance(point.get("valid_ppl"), str):
            point["valid_ppl"] = float(point["valid_ppl"])
    return record


def jsonl_files(path: Path) -> list[Path]:
    path = Path(path)
    if path.is_file():
        return [path]
    return sorted(path.rglob("*.jsonl"))


def load_records(*paths: Path) -> list[dict]:
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

    Nested dicts (budget, calibration, env, model_config) become dotted columns; the curve
    becomes `curve.seconds`, `curve.tokens`, `curve.valid_ppl`.
    """
    records = load_records(*paths)
    if not records:
        return pd.DataFrame(columns=[*FIELDS, "source_file"])
    frame = pd.json_normalize(records, sep=".", max_level=1)
    frame["curve"] = [r.get("curve") or [None] for r in records]
    frame = frame.explode("curve", ignore_index=True)
    points = pd.json_normalize([p or {} for p in frame["curve"]]).add_prefix("curve.")
    return pd.concat([frame.drop(columns=["curve"]), points], axis=1)
