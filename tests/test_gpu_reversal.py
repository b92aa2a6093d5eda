"""benchmarks/gpu_reversal.py on the CPU at tiny budgets: every stage, deadlines, the archive."""

import importlib.util
import json
import tarfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_reversal.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_reversal", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stages_run_in_order_a_late_stage_is_stopped_and_the_archive_keeps_the_rest(
    mirror, tmp_path
):
    script = load_script()
    out, work = tmp_path / "out", tmp_path / "work"
    # stage 2 (kn5 and the four history models at 3,000 tokens) completes; transformer-gpu
    # (GPT-2 small, compiled) and Zaremba medium are stopped at their 2-second deadlines
    argv = [str(out), "--work", str(work), "--device", "cpu", "--tokens", "3000"]
    assert script.main([*argv, "--deadlines", "60,300,2,2", "--data-dir", str(mirror)]) == 0
    env = json.loads((out / "environment.json").read_text())
    assert env["calibration"]["matmul_gflops"] > 0 and env["machine"]["id"]
    with tarfile.open(out / "reversal.tar.gz") as tar:
        names = tar.getnames()
        records = [json.loads(line) for line in tar.extractfile("runs.jsonl").read().splitlines()]
    assert "sentences" in names and not any("checkpoints" in n for n in names)
    status = {r["model"]: r["status"] for r in records}
    assert status == {
        "kn5": "ok",
        "mlp": "ok",
        "rnn": "ok",
        "lstm": "ok",
        "transformer": "ok",
        "transformer-gpu": "interrupted",
        "lstm-zaremba-medium": "interrupted",
    }
    assert {r["suite"] for r in records} == {"reversal"} and {r["seed"] for r in records} == {0}
    assert all(r["train_tokens"] == 3000 for r in records if r["model"] in ("mlp", "lstm"))
    assert not (out / "run").exists()  # the runs stayed in --work
