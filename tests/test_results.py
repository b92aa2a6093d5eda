import json
import math

import pytest

from lmbench.results import FIELDS, RunRecord, append_record, config_hash, load_frame, read_records


def record(**overrides) -> RunRecord:
    base = dict(
        run_id="r1",
        config_hash="h1",
        corpus="ptb",
        model="add1-2",
        family="ngram",
        status="ok",
        valid_ppl=210.5,
        test_ppl=200.25,
        budget={"kind": "none", "limit": None, "ended_by": "data"},
        calibration={"matmul_gflops": 100.0, "sort_mkeys_per_s": 50.0},
        curve=[
            {"seconds": 1.0, "tokens": 10, "valid_ppl": 300.0},
            {"seconds": 2.0, "tokens": 20, "valid_ppl": 210.5},
        ],
    )
    base.update(overrides)
    return RunRecord(**base)


def test_round_trip_keeps_every_field(tmp_path):
    path = tmp_path / "runs.jsonl"
    append_record(path, record())
    append_record(
        path,
        record(
            run_id="r2",
            config_hash="h2",
            status="failed",
            error="boom",
            test_ppl=math.inf,
            curve=None,
        ),
    )
    first, second = read_records(path)
    assert set(first) == set(FIELDS)  # all schema fields present, null where not applicable
    assert first == json.loads(record().to_json())
    assert first["test_ppl"] == 200.25 and first["peak_gpu_bytes"] is None
    assert second["test_ppl"] == math.inf and second["error"] == "boom"


def test_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "runs.jsonl"
    append_record(path, record())
    with open(path, "a") as f:
        f.write('{"schema": 1, "run_id": "cut')
    with pytest.warns(UserWarning, match="unreadable record"):
        assert [r["run_id"] for r in read_records(path)] == ["r1"]


def test_frame_is_long_form_with_curve_exploded(tmp_path):
    append_record(tmp_path / "a" / "runs.jsonl", record())
    append_record(tmp_path / "b" / "runs.jsonl", record(run_id="r2", config_hash="h2", curve=[]))
    frame = load_frame(tmp_path)
    assert len(frame) == 3  # two curve points of r1, one row for r2
    assert frame.loc[frame.run_id == "r1", "curve.valid_ppl"].tolist() == [300.0, 210.5]
    assert frame.loc[0, "calibration.sort_mkeys_per_s"] == 50.0
    assert frame.loc[0, "budget.ended_by"] == "data"


def test_config_hash_is_canonical_and_sensitive():
    a = {"corpus_sha256": "x", "mode": "stream", "model_config": {"k": 1.0, "order": 2}}
    b = {"model_config": {"order": 2, "k": 1.0}, "mode": "stream", "corpus_sha256": "x"}
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash({**a, "mode": "sentence"})
