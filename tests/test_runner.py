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
