"""The reversal on one GPU, staged for a short lease: `python benchmarks/gpu_reversal.py OUT`.

Each stage has a deadline; a stage past it is stopped as Ctrl-C stops a suite (its running run
is recorded `interrupted`, with what it measured) and the next stage starts. Records go to
WORK/runs.jsonl (results/reversal's layout; WORK is OUT/run unless `--work` names a folder
outside OUT, as it should where OUT is copied back whole: checkpoints stay behind), and after
every stage OUT/reversal.tar.gz is rewritten with everything so far (records, per-sentence
NLLs, logs; not checkpoints or per-token log-probs, which stay git-ignored anyway), so a lease
cut off mid-way still returns what it finished:

0. environment and calibration: OUT/environment.json (GPU, torch and CUDA versions, fp32/TF32
   and bf16 matmul rates);
1. kn5 on PTB (the folder's time-to-target yardstick), then the reversal suite's GPU half: the
   history suite's neural models at its token budgets, seed 0, bf16 autocast;
2. transformer-gpu to kn5's perplexity and past it;
3. Zaremba et al.'s medium LSTM for as many epochs as its seconds budget fits.

The default deadlines add up to 5 minutes; a stage stopped at its deadline lets its running
run evaluate what it trained for up to `--grace` seconds more. Each stage is a child process,
stopped as Ctrl-C stops a suite. Unpack the archive into results/reversal/<host>-<date>/
to commit the runs. Without CUDA the GPU runs are recorded as
skipped; `--device cpu --tokens 20000` runs the same stages on the CPU at tiny budgets (how this
script is tested), into a folder that is not a result.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

from lmbench import measure
from lmbench.plan import plan_seeds
from lmbench.runner import run_planned
from lmbench.suites import PTB_NEURAL_TOKENS, get_suite

STAGES = (  # name, which of the reversal suite's runs (seed 0)
    ("kn5 and the history models", lambda s: s.model == "kn5" or s.model in PTB_NEURAL_TOKENS),
    ("transformer-gpu", lambda s: s.model == "transformer-gpu"),
    ("Zaremba medium", lambda s: s.model == "lstm-zaremba-medium"),
)
DEADLINES = (20, 130, 80, 70)  # seconds: environment, then each stage
GRACE = 30.0  # a stopped run evaluates its best state (seconds on a GPU), then is killed
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


def run_stage(index: int, args) -> None:
    """One stage, in this process (a child of `main`, which stops it at its deadline)."""
    work = Path(args.work)
    if index == 0:
        (Path(args.out) / "environment.json").write_text(
            json.dumps(environment(args.device), indent=1)
        )
        return
    _, chosen = STAGES[index - 1]
    specs = [s for s in gpu_specs(args.device, args.tokens) if chosen(s)]
    try:
        run_planned(plan_seeds(specs, (0,), "reversal", args.data_dir), work, args.data_dir, True)
    except KeyboardInterrupt:  # SuiteInterrupted too: the stopped run's record is written
        pass


def stop(child: subprocess.Popen, grace: float) -> None:
    """Ctrl-C semantics: SIGINT, then the stopped run's evaluation gets `grace` seconds."""
    child.send_signal(signal.SIGINT)
    try:
        child.wait(grace)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


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
    parser.add_argument(
        "--stages",
        default=",".join(str(i) for i in range(len(STAGES) + 1)),
        help="which to run: 0 is the environment, 1-3 the stages (default: all)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=GRACE,
        help="seconds a stopped run may take to evaluate what it trained (default %(default)s)",
    )
    parser.add_argument("--data-dir", default=os.environ.get("LMBENCH_DATA"))
    parser.add_argument("--run-stage", type=int, help=argparse.SUPPRESS)  # the child's side
    args = parser.parse_args(argv)
    args.work = args.work or str(Path(args.out) / "run")
    if args.run_stage is not None:
        # its deadline is a SIGINT: started from a background shell (`cmd &`), a process
        # inherits SIGINT ignored, and the stage would then run on past its deadline
        signal.signal(signal.SIGINT, signal.default_int_handler)
        run_stage(args.run_stage, args)
        return 0
    deadlines = [float(x) for x in args.deadlines.split(",")]
    if len(deadlines) != len(STAGES) + 1 or min(deadlines) <= 0:
        parser.error(f"--deadlines takes {len(STAGES) + 1} numbers > 0, got {args.deadlines!r}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.device == "cuda" and not measure.cuda_available():
        print("no CUDA here: the GPU runs will be recorded as skipped", file=sys.stderr)
    names = ["environment", *(name for name, _ in STAGES)]
    for index in (int(i) for i in args.stages.split(",")):
        print(f"stage {index} ({names[index]}): deadline {deadlines[index]:g} s", flush=True)
        command = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:])]
        child = subprocess.Popen([*command, "--run-stage", str(index)])
        try:
            child.wait(deadlines[index])
        except subprocess.TimeoutExpired:
            print(f"stage {index} ({names[index]}): stopped at its deadline", file=sys.stderr)
            stop(child, args.grace)
        archive(Path(args.work), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
