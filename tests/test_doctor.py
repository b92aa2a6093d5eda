"""`lmbench doctor`: torn lines, orphans, duplicates and fingerprints; --fix deletes nothing."""

import json

from lmbench.cli import main
from lmbench.records import RunRecord, append_record, read_records

AMD = {"cpu": "AMD EPYC", "isa": ["avx2"], "cores": 2, "memory_gib": 24, "gpu": None, "id": "a"}
XEON = {**AMD, "cpu": "Intel(R) Xeon(R) Processor", "isa": ["avx2", "amx_tile"], "id": "x"}


def _record(run_id, config, machine=AMD, **fields):
    fields.setdefault("sentences", f"sentences/{run_id}.test.npy")
    return RunRecord(run_id=run_id, config_hash=config, status="ok", machine=machine, **fields)


def _folder(tmp_path):
    folder = tmp_path / "out"
    jsonl = folder / "runs.jsonl"
    (folder / "sentences").mkdir(parents=True)
    for run_id, config, machine in (("r1", "h1", AMD), ("r2", "h1", AMD), ("r3", "h1", XEON)):
        append_record(jsonl, _record(run_id, config, machine))
        (folder / "sentences" / f"{run_id}.test.npy").write_bytes(b"x")
    with open(jsonl, "a") as f:
        f.write('{"schema": 2, "run_id": "torn')  # a crash mid-write
    append_record(jsonl, _record("r4", "h2"))  # lands on its own line
    (folder / "sentences" / "dead.test.npy").write_bytes(b"orphan")  # killed before its record
    (folder / "sentences" / ".r9.test.npy.tmp-123").write_bytes(b"half")  # never renamed
    return folder


def test_doctor_lists_every_problem(tmp_path, capsys):
    folder = _folder(tmp_path)
    assert main(["doctor", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "line 4: not a record" in out
    assert "config h1: 2 ok records of one machine" in out  # the Xeon's is its own
    assert "3 records from AMD EPYC" in out and "1 records from Intel(R) Xeon(R)" in out
    assert "orphan artifact: sentences/dead.test.npy" in out
    assert "orphan artifact: sentences/.r9.test.npy.tmp-123" in out
    assert "sentences/r1.test.npy" not in out


def test_fix_moves_bad_lines_and_orphans_aside(tmp_path, capsys):
    folder = _folder(tmp_path)
    before = (folder / "runs.jsonl").read_text().splitlines()
    assert main(["doctor", str(folder), "--fix"]) == 1  # the duplicate stays for a person
    after = (folder / "runs.jsonl").read_text().splitlines()
    rejected = (folder / "runs.jsonl.rejected").read_text().splitlines()
    assert sorted(after + rejected) == sorted(before)  # nothing deleted
    assert rejected == ['{"schema": 2, "run_id": "torn']
    assert [r["run_id"] for r in read_records(folder / "runs.jsonl")] == ["r1", "r2", "r3", "r4"]
    assert (folder / "rejected" / "sentences" / "dead.test.npy").read_bytes() == b"orphan"
    assert not (folder / "sentences" / "dead.test.npy").exists()
    capsys.readouterr()
    main(["doctor", str(folder)])
    out = capsys.readouterr().out
    assert "not a record" not in out and "orphan" not in out
    assert all(json.loads(line) for line in after)


def test_clean_folder_exits_0(tmp_path, capsys):
    append_record(tmp_path / "runs.jsonl", _record("r1", "h1", sentences=None))
    assert main(["doctor", str(tmp_path)]) == 0
    assert "no problems" in capsys.readouterr().out
    assert main(["doctor", str(tmp_path / "nope")]) == 2
