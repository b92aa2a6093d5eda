"""benchmarks/gpu_reversal.py on the CPU at tiny budgets: stages, deadlines, the archive."""

import importlib.util
import json
import tarfile
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_reversal.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_reversal", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def archived(out: Path) -> tuple[list[str], list[dict]]:
    with tarfile.open(out / "reversal.tar.gz") as tar:
        names = tar.getnames()
        lines = tar.extractfile("runs.jsonl").read().splitlines() if "runs.jsonl" in names else []
        return names, [json.loads(line) for line in lines]


def test_the_environment_and_the_history_stage_at_tiny_budgets(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("LMBENCH_QUERIES", "300")  # the stage's children read it
    out, work = tmp_path / "out", tmp_path / "work"
    argv = [str(out), "--work", str(work), "--device", "cpu", "--tokens", "3000"]
    argv += ["--stages", "0,1", "--deadlines", "60,600,1,1", "--data-dir", str(mirror)]
    assert load_script().main(argv) == 0
    env = json.loads((out / "environment.json").read_text())
    assert env["calibration"]["matmul_gflops"] > 0 and env["machine"]["id"]
    names, records = archived(out)
    assert "sentences" in names and not any("checkpoints" in n for n in names)
    assert {r["model"]: r["status"] for r in records} == dict.fromkeys(
        ("kn5", "mlp", "rnn", "lstm", "transformer"), "ok"
    )
    assert {r["suite"] for r in records} == {"reversal"} and {r["seed"] for r in records} == {0}
    assert all(r["train_tokens"] == 3000 for r in records if r["family"] != "ngram")
    assert not (out / "run").exists()  # the runs stayed in --work


def test_a_stage_past_its_deadline_is_stopped_and_the_archive_still_written(mirror, tmp_path):
    out = tmp_path / "out"
    argv = [str(out), "--device", "cpu", "--tokens", "3000", "--stages", "3"]
    argv += ["--deadlines", "1,1,1,2", "--grace", "60", "--data-dir", str(mirror)]
    started = time.monotonic()
    assert load_script().main(argv) == 0
    assert time.monotonic() - started < 2 + 60 + 30  # the deadline, the grace, start-up
    _, records = archived(out)  # written even when the stage recorded nothing
    assert [r["status"] for r in records] in ([], ["interrupted"])
    assert not (out / "environment.json").exists()  # stage 0 was not asked for
