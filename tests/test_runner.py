"""A suite whose second run crashes still records the first and third; --resume reruns only it."""

from lmbench.plan import RunSpec, plan
from lmbench.progress import SuiteDisplay
from lmbench.records import read_records
from lmbench.runner import run_planned

from .conftest import write_corpus


def test_crash_is_recorded_and_resume_reruns_only_it(tmp_path):
    corpora = [write_corpus(tmp_path / n, f"a b {n}\nb a\n", "a b\n", "b a\n") for n in "xyz"]
    runs = [plan(RunSpec(str(c), "add1-2"), suite="t") for c in corpora]
    # Corrupt the second corpus after planning: its worker process dies on the bad byte.
    good = (corpora[1] / "train.txt").read_bytes()
    (corpora[1] / "train.txt").write_bytes(b"a \xff\n")
    out = tmp_path / "out"
    records = run_planned(runs, out, display=SuiteDisplay(3, live=False))
    assert [r["status"] for r in records] == ["ok", "failed", "ok"]
    assert "UTF-8" in records[1]["error"]
    assert len(read_records(out / "runs.jsonl")) == 3

    (corpora[1] / "train.txt").write_bytes(good)
    resumed = run_planned(runs, out, resume=True, display=SuiteDisplay(3, live=False))
    assert [r["status"] for r in resumed] == ["ok", "ok", "ok"]
    on_disk = read_records(out / "runs.jsonl")
    assert len(on_disk) == 4  # only the failed run ran again; nothing was rewritten
    assert on_disk[3]["config_hash"] == runs[1].config_hash
    assert [r["run_id"] for r in resumed][::2] == [r["run_id"] for r in on_disk[:3:2]]


def test_resume_measures_afresh_on_another_machine(tmp_path, monkeypatch, capsys):
    """Records made by another machine (a doctored fingerprint: a look-alike host with the same
    name) are not resumed: the run is measured again, and the display says why."""
    import json

    from lmbench import runner

    corpus = write_corpus(tmp_path / "c", "a b\nb a\n", "a b\n", "b a\n")
    runs = [plan(RunSpec(str(corpus), "add1-2"), suite="t")]
    root = tmp_path / "results"
    out = runner.default_out_dir("t", root)
    run_planned(runs, out, display=SuiteDisplay(1, live=False))
    assert runner.latest_out_dir("t", root) == out
    jsonl = out / "runs.jsonl"
    (record,) = [json.loads(line) for line in jsonl.read_text().splitlines()]
    record["machine"] = {**record["machine"], "cpu": "Intel(R) Xeon(R) Processor", "id": "other"}
    jsonl.write_text(json.dumps(record) + "\n")
    assert runner.latest_out_dir("t", root) is None  # no folder of this machine to resume

    capsys.readouterr()
    resumed = run_planned(runs, out, resume=True, display=SuiteDisplay(1, live=False))
    assert "not resumed: records of Intel(R) Xeon(R) Processor" in capsys.readouterr().err
    on_disk = read_records(jsonl)
    assert len(on_disk) == 2 and resumed[0]["run_id"] == on_disk[1]["run_id"]
    assert on_disk[1]["machine"]["id"] != "other"
    again = run_planned(runs, out, resume=True, display=SuiteDisplay(1, live=False))
    assert again[0]["run_id"] == on_disk[1]["run_id"] and len(read_records(jsonl)) == 2
