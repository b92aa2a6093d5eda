import errno
import json
import math
import os

import numpy as np
import pytest

from lmbench import records
from lmbench.errors import DiskFull
from lmbench.records import (
    FIELDS,
    RunRecord,
    append_record,
    config_hash,
    is_full_data,
    load_frame,
    machine_id,
    read_records,
    save_array,
    scan,
    target_run,
    train_scope,
)


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


def test_append_after_a_torn_line_starts_a_fresh_line(tmp_path):
    """A crash left a fragment: the next record is not glued to it, and stays readable."""
    path = tmp_path / "runs.jsonl"
    append_record(path, record())
    with open(path, "a") as f:
        f.write('{"schema": 2, "run_id": "cut')
    append_record(path, record(run_id="r2", config_hash="h2"))
    result = scan(path)
    assert [r["run_id"] for r in result.records] == ["r1", "r2"]
    assert [number for number, _ in result.bad_lines] == [2]


def test_short_writes_are_completed(tmp_path, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(records.os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))
    path = tmp_path / "runs.jsonl"
    append_record(path, record())
    save_array(tmp_path, "sentences/x.npy", np.arange(100, dtype=np.float32))
    assert read_records(path)[0] == json.loads(record().to_json())
    assert np.load(tmp_path / "sentences" / "x.npy").tolist() == list(range(100))


def _full_after(limit: int):
    """An os.write that accepts `limit` bytes in all, then fails as a full disk does."""
    real_write, written = os.write, [0]

    def write(fd, data):
        room = limit - written[0]
        if room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = real_write(fd, bytes(data[:room]))
        written[0] += n
        return n

    return write


def test_disk_full_leaves_the_records_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "runs.jsonl"
    append_record(path, record())
    before = path.read_bytes()
    monkeypatch.setattr(records.os, "write", _full_after(30))
    with pytest.raises(DiskFull) as caught:
        append_record(path, record(run_id="r2", config_hash="h2"))
    assert path.read_bytes() == before  # the 30 bytes written were taken back
    message = str(caught.value)
    assert "disk full" in message and str(path) in message and "bytes needed" in message
    assert "the 1 finished runs" in message and "intact" in message


def test_disk_full_leaves_no_partial_artifact(tmp_path, monkeypatch):
    monkeypatch.setattr(records.os, "write", _full_after(100))
    with pytest.raises(DiskFull, match="logprobs/r1.test.npy"):
        save_array(tmp_path, "logprobs/r1.test.npy", np.zeros(1000, dtype=np.float32))
    assert list((tmp_path / "logprobs").iterdir()) == []


def test_v1_records_are_read_with_the_new_fields_empty(tmp_path):
    path = tmp_path / "runs.jsonl"
    v1 = json.loads(record(schema=1).to_json())
    del v1["machine"]
    path.write_text(json.dumps(v1) + "\n")
    (read,) = read_records(path)
    assert read["schema"] == 1 and read["machine"] is None and machine_id(read) is None


def test_data_scope_and_target_have_one_definition():
    kn5 = {"model": "kn5", "status": "ok", "corpus": "ptb", "mode": "stream", "family": "ngram"}
    sliced = kn5 | {"budget": {"limit": {"tokens": 1000}}, "run_id": "slice"}
    fraction = kn5 | {"extra": {"train_fraction": 0.1}, "run_id": "fraction"}
    full = kn5 | {"run_id": "full"}
    assert [train_scope(r) for r in (sliced, fraction, full)] == ["slice", "fraction", "full"]
    neural = {"family": "lstm", "budget": {"limit": {"tokens": 1000}}, "corpus": "ptb"}
    assert is_full_data(neural)  # a neural budget limits training, not the data
    run = {"corpus": "ptb", "mode": "stream", "extra": {"train_fraction": 0.3}}
    assert target_run(run, [full, sliced, fraction])["run_id"] == "full"
    assert target_run(run | {"extra": {"eval_slice_tokens": 10}}, [full]) is None
    # another vocabulary is another yardstick, whichever run is newer
    paper = {"min_count": 3, "max_size": 16383}
    wide = kn5 | {"run_id": "wide", "extra": {"vocab": paper}}
    assert target_run(run, [full, wide])["run_id"] == "full"
    assert target_run(run | {"extra": {"vocab": dict(paper)}}, [wide, full])["run_id"] == "wide"


def test_a_library_s_failed_write_on_a_full_disk_is_disk_full(tmp_path, monkeypatch):
    """torch.save reports a full disk as a RuntimeError: with nearly no space left, it is one."""
    monkeypatch.setattr(records, "_free_bytes", lambda path: 4096)
    with pytest.raises(DiskFull, match="checkpoints/r1.pt"):
        with records.replacing(tmp_path / "checkpoints" / "r1.pt") as temp:
            temp.write_bytes(b"partial")
            raise RuntimeError("PytorchStreamWriter failed writing file data/0")
    assert list((tmp_path / "checkpoints").iterdir()) == []
    monkeypatch.setattr(records, "_free_bytes", lambda path: 10**12)  # space left: a real bug
    with pytest.raises(RuntimeError):
        with records.replacing(tmp_path / "x.pt") as temp:
            raise RuntimeError("some other failure")


def test_a_signal_mid_append_leaves_no_torn_line(tmp_path, monkeypatch):
    path = tmp_path / "runs.jsonl"
    append_record(path, record())
    before = path.read_bytes()
    real_write = os.write

    def interrupted(fd, data):
        real_write(fd, bytes(data[:10]))
        raise KeyboardInterrupt

    monkeypatch.setattr(records.os, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        append_record(path, record(run_id="r2", config_hash="h2"))
    assert path.read_bytes() == before
