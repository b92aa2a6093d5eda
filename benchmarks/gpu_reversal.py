"""The reversal on one GPU, in stages sized for a short lease: `python benchmarks/gpu_reversal.py OUT`.

Each stage has a deadline; a stage past it is stopped as Ctrl-C stops a suite (its running run
is recorded `interrupted`, with what it measured) and the next stage starts. Records go to
WORK/runs.jsonl (results/reversal's layout; WORK is OUT/run unless `--work` names a folder
outside OUT, as it should where OUT is copied back whole: checkpoints stay behind), and after
every stage OUT/reversal.tar.gz is rewritten with everything so far (records, per-sentence
NLLs, logs; not checkpoints or per-token log-probs, which stay git-ignored anyway), so a lease
cut off mid-way still returns what it finished:

1. environment and calibration: OUT/environment.json (GPU, torch and CUDA versions, fp32/TF32
   and bf16 matmul rates);
2. kn5 on PTB (the folder's time-to-target yardstick), then the reversal suite's GPU half: the
   history suite's neural models at its token budgets, seed 0, bf16 autocast;
3. transformer-gpu to kn5's perplexity and past it;
4. Zaremba et al.'s medium LSTM for as many epochs as its seconds budget fits.

The default deadlines add up to 5 minutes. Unpack the archive into
results/reversal/<host>-<date>/ to commit the runs. Without CUDA the GPU runs are recorded as
skipped; `--device cpu --tokens 20000` runs the same stages on the CPU at tiny budgets (how this
script is tested), into a folder that is not a result.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

from lmbench import measure
from lmbench.plan import plan_seeds
from lmbench.runner import SuiteInterrupted, run_planned
from lmbench.suites import PTB_NEURAL_TOKENS, get_suite

STAGES = (  # name, which of the reversal suite's runs (seed 0)
    ("kn5 and the history models", lambda s: s.model == "kn5" or s.model in PTB_NEURAL_TOKENS),
    ("transformer-gpu", lambda s: s.model == "transformer-gpu"),
    ("Zaremba medium", lambda s: s.model == "lstm-zaremba-medium"),
)
DEADLINES = (20, 130, 80, 70)  # seconds: environment, then each stage
ARCHIVED = ("runs.jsonl", "sentences", "logs")


def environment(device: str) -> dict:
    env = measure.environment()
    if device == "cuda":
        import torch

        env |= {
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "gpu": torch.cuda.get_device_name(),
        }
    return {
        "environment": env,
        "machine": measure.this_machine(),
        "calibration": measure.calibrate(device=device),
    }


def gpu_specs(device: str, tokens: int | None) -> list:
    """The reversal suite's runs on `device`'s side (kn5 on the CPU, as always); `tokens`: every
    neural budget replaced by this many tokens (a test at tiny budgets)."""
    chosen = []
    for spec in get_suite("reversal").runs:
        if spec.model == "kn5":
            chosen.append(spec)
        elif spec.device == "cuda":
            if device != "cuda":
                spec = replace(spec, device=device)
            if tokens:
                spec = replace(spec, budget_tokens=tokens, budget_seconds=None, budget_epochs=None)
            chosen.append(spec)
    return chosen


def archive(run: Path, out: Path) -> None:
    """OUT/reversal.tar.gz with everything recorded in `run` so far, replaced whole (never
    half-written)."""
    partial = out / "reversal.tar.gz.partial"
    with tarfile.open(partial, "w:gz") as tar:
        for name in ARCHIVED:
            if (run / name).exists():
                tar.add(run / name, arcname=name)
    partial.replace(out / "reversal.tar.gz")


class Deadline:
    """SIGALRM after `seconds` raises KeyboardInterrupt: the runner stops as on Ctrl-C."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __enter__(self):
        def stop(signum, frame):
            raise KeyboardInterrupt

        self.previous = signal.signal(signal.SIGALRM, stop)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.previous)
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="output folder: the archive and environment.json")
    parser.add_argument("--work", help="the runs' folder (default OUT/run)")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--tokens", type=int, help="every neural budget, in tokens (a test)")
    parser.add_argument(
        "--deadlines",
        default=",".join(map(str, DEADLINES)),
        help="seconds for the environment and each stage (default %(default)s)",
    )
    parser.add_argument("--data-dir", default=os.environ.get("LMBENCH_DATA"))
    args = parser.parse_args(argv)
    deadlines = [float(x) for x in args.deadlines.split(",")]
    if len(deadlines) != len(STAGES) + 1:
        parser.error(f"--deadlines takes {len(STAGES) + 1} numbers, got {len(deadlines)}")
    out = Path(args.out)
    work = Path(args.work) if args.work else out / "run"
    out.mkdir(parents=True, exist_ok=True)
    if args.device == "cuda" and not measure.cuda_available():
        print("no CUDA here: the GPU runs will be recorded as skipped", file=sys.stderr)
    try:
        with Deadline(deadlines[0]):
            (out / "environment.json").write_text(json.dumps(environment(args.device), indent=1))
    except KeyboardInterrupt:
        print("environment: past its deadline, calibration left out", file=sys.stderr)
    specs = gpu_specs(args.device, args.tokens)
    for (name, chosen), seconds in zip(STAGES, deadlines[1:]):
        planned = plan_seeds([s for s in specs if chosen(s)], (0,), "reversal", args.data_dir)
        print(f"stage {name}: {len(planned)} runs, deadline {seconds:g} s", flush=True)
        try:
            with Deadline(seconds):
                run_planned(planned, work, args.data_dir, resume=True)
        except (KeyboardInterrupt, SuiteInterrupted):
            print(f"stage {name}: stopped at its deadline", file=sys.stderr)
        archive(work, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
