"""lmbench's LSTM beside pytorch/examples' word_language_model, measured in one run:
`python benchmarks/peer_word_language_model.py --examples PATH/word_language_model`.

lmbench does not ship pytorch/examples: point --examples at a checkout. Both train the same
model (LSTM 2x200, dropout 0.2, batch 20, BPTT 35, SGD lr 20, clip 0.25) on PTB for the same
number of batches, as fresh processes, alternating, `--repeats` times; the training loop's wall
time is compared (theirs from its ms/batch log lines, ours from the trainer's own clock; both
include the first, warm-up batches and exclude loading the corpus). Ours runs with the
environment `lmbench run` gives a run (threads, glibc malloc tunables); theirs runs plainly and
with those same tunables, so the ratio is shown both ways. On a CPU with AVX512-BF16 or AMX,
our LSTM, Transformer and MLP are also timed under bf16 autocast against fp32 (alternating,
same tokens). Medians and ratios go to results/peers/<host>-<date>/word_language_model.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from peer_results import corpus_folder, save_peer_results

from lmbench.corpora import locate_files
from lmbench.measure import calibrate, cpu_has_bf16, environment
from lmbench.models.registry import resolve
from lmbench.runner import MALLOC_TUNABLES, child_env

BATCH, BPTT, LOG_INTERVAL = 20, 35, 100
THREADS = os.cpu_count() or 1
OURS = """
import json, sys
from lmbench.corpora import load_corpus
from lmbench.measure import Stopwatch
from lmbench.models.base import Budget
from lmbench.models.registry import resolve
from lmbench.runner import MALLOC_TUNABLES, child_env
data_dir, tokens, spec, precision = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
corpus = load_corpus("ptb", data_dir)
model = resolve(spec, {"precision": precision}).build(corpus.vocab.size, "cpu", seed=1111)
watch = Stopwatch().start()
report = model.fit(corpus.segments("train", "stream"), Budget(tokens=tokens))
print(json.dumps({"tokens": report.train_tokens, "seconds": watch.stop()}))
"""
PRECISION_MODELS = ("lstm", "transformer", "mlp")  # bf16 autocast against fp32, ours only
MS_PER_BATCH = re.compile(r"ms/batch\s+([\d.]+)")


def theirs(examples: Path, data: Path, intervals: int, env: dict) -> dict:
    """Train pytorch/examples' default LSTM until `intervals` log lines, then stop it."""
    cmd = [sys.executable, "-u", "main.py", "--data", str(data), "--epochs", "1"]
    cmd += ["--log-interval", str(LOG_INTERVAL), "--save", os.devnull]
    child = subprocess.Popen(cmd, cwd=examples, stdout=subprocess.PIPE, text=True, env=env)
    ms = []
    for line in child.stdout:
        match = MS_PER_BATCH.search(line)
        if match:
            ms.append(float(match.group(1)))
            if len(ms) == intervals:
                break
    child.kill()
    child.wait()
    if len(ms) < intervals:
        raise RuntimeError(f"pytorch/examples stopped after {len(ms)} log lines: {' '.join(cmd)}")
    # The first log line covers batches 0..LOG_INTERVAL (one more than it divides by).
    batches = intervals * LOG_INTERVAL + 1
    seconds = sum(ms) * LOG_INTERVAL / 1000 * batches / (intervals * LOG_INTERVAL)
    return {"tokens": batches * BATCH * BPTT, "seconds": seconds}


def ours(data_dir: str, tokens: int, spec: str = "lstm", precision: str = "float32") -> dict:
    out = subprocess.run(
        [sys.executable, "-c", OURS, data_dir, str(tokens), spec, precision],
        capture_output=True,
        text=True,
        check=True,
        env=child_env(THREADS),  # as `lmbench run` starts a run
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bf16_speedups(data_dir: str, batches: int, repeats: int) -> dict:
    """Training tokens/s of our LSTM, Transformer and MLP under bf16 autocast and in fp32, the
    same tokens each, alternating fp32 and bf16 `repeats` times; medians and their ratio."""
    tokens = batches * BATCH * BPTT
    out = {}
    for spec in PRECISION_MODELS:
        rates = {"float32": [], "bfloat16": []}
        for _ in range(repeats):
            for precision in rates:
                run = ours(data_dir, tokens, spec, precision)
                rates[precision].append(run["tokens"] / run["seconds"])
        medians = {p: statistics.median(r) for p, r in rates.items()}
        out[spec] = {
            "tokens": tokens,
            "tokens_per_s": rates,
            "median_tokens_per_s": medians,
            "bf16 / fp32": medians["bfloat16"] / medians["float32"],
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", required=True, help="pytorch/examples' word_language_model")
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("LMBENCH_DATA"),
        help="offline corpus mirror (default: $LMBENCH_DATA, else PTB is downloaded into "
        "lmbench's cache)",
    )
    parser.add_argument("--intervals", type=int, default=4, help=f"x {LOG_INTERVAL} batches")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()
    args.data_dir = corpus_folder(args.data_dir, ("ptb",))

    files = locate_files("ptb", args.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)  # their loader wants train.txt, valid.txt, test.txt
        for split in ("train", "valid", "test"):
            (data / f"{split}.txt").symlink_to(files[split].path)
        plain = {k: v for k, v in child_env(THREADS).items() if k != "GLIBC_TUNABLES"}
        if "GLIBC_TUNABLES" in os.environ:
            plain["GLIBC_TUNABLES"] = os.environ["GLIBC_TUNABLES"]
        runs = {"pytorch_examples": [], "pytorch_examples_malloc_tuned": [], "lmbench": []}
        for _ in range(args.repeats):
            run = theirs(Path(args.examples), data, args.intervals, plain)
            runs["pytorch_examples"].append(run)
            runs["lmbench"].append(ours(args.data_dir, run["tokens"]))
            tuned = theirs(Path(args.examples), data, args.intervals, child_env(THREADS))
            runs["pytorch_examples_malloc_tuned"].append(tuned)
    summary = {
        name: {
            "tokens": r[0]["tokens"],
            "tokens_per_s": [x["tokens"] / x["seconds"] for x in r],
            "median_tokens_per_s": statistics.median(x["tokens"] / x["seconds"] for x in r),
        }
        for name, r in runs.items()
    }
    ours_rate = summary["lmbench"]["median_tokens_per_s"]
    ratio = {
        f"lmbench / {name}": ours_rate / summary[name]["median_tokens_per_s"]
        for name in ("pytorch_examples", "pytorch_examples_malloc_tuned")
    }
    flops = resolve("lstm").build(10_000).flops_per_token()  # DESIGN's counting rules
    cal = calibrate()  # torch's matmul (imported above): the peak both runs could reach
    results = {
        "env": environment(),
        "model": "LSTM 2x200, dropout 0.2, batch 20, BPTT 35, SGD lr 20, clip 0.25, PTB",
        "repeats": args.repeats,
        "batches": args.intervals * LOG_INTERVAL + 1,
        "runs": summary,
        "throughput_ratio": ratio,
        "threads": THREADS,
        "malloc_tunables": MALLOC_TUNABLES,
        "calibration": cal,
        "mfu": {
            name: s["median_tokens_per_s"] * flops / 1e9 / cal["matmul_gflops"]
            for name, s in summary.items()
        },
    }
    if cpu_has_bf16():  # AVX512-BF16 or AMX: bf16 autocast against fp32, alternating
        results["bf16_autocast"] = bf16_speedups(args.data_dir, results["batches"], args.repeats)
    save_peer_results("word_language_model", results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
