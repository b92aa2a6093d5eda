"""What `lmbench` accepts on its command line: one subparser per command, and the one-line usage
error (status 2) every command shares."""

from __future__ import annotations

import argparse
import sys

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        raise SystemExit(fail(f"{message} (see `{self.prog} --help`)"))


def fail(message: str) -> int:
    print(f"lmbench: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        help="offline corpus mirror laid out like shared/corpora "
        "(default: $LMBENCH_DATA, else download into the XDG cache)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lmbench", description="Language-model families under one evaluation protocol."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser(
        "corpora", help="list corpora: availability, checksums, token counts, OOV rates"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--download", action="store_true", help="download corpora that are missing")
    _add_data_dir(p)

    sub.add_parser("models", help="list model spec names")

    p = sub.add_parser("run", help="run one model on one corpus, or a named suite")
    what = p.add_argument_group("what to run (a single run, or --suite)")
    what.add_argument(
        "--corpus", help="ptb, wikitext2, brown, or a directory with train/valid/test.txt"
    )
    what.add_argument("--model", help="a model spec name, e.g. add1-2 (see `lmbench models`)")
    what.add_argument("--suite", help="a named suite (quick, history)")
    how = p.add_argument_group("how (single runs)")
    how.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        default=[],
        help="override a model or vocab setting, e.g. --set k=0.5 --set vocab.min_count=2",
    )
    how.add_argument("--mode", default="stream", help="stream (default) or sentence")
    how.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    how.add_argument("--budget-seconds", type=float, help="training wall-clock limit")
    how.add_argument(
        "--budget-tokens", type=int, help="training-token limit (a count model: train slice)"
    )
    how.add_argument(
        "--budget-epochs", type=float, help="passes over the training split (neural models)"
    )
    how.add_argument("--seed", type=int, default=0)
    how.add_argument(
        "--seeds",
        help="one neural run per seed, e.g. 0,1,2 or 0-4 (count models: one run); with --suite "
        "it replaces the suite's seeds",
    )
    how.add_argument(
        "--branches",
        help="a WSD trunk (--set lr_schedule=wsd): keep its training state for decay branches of "
        "these token budgets, e.g. 1000000,2000000",
    )
    how.add_argument(
        "--trunk-tokens",
        type=int,
        help="a decay branch: start from the state of the trunk of this many tokens (same "
        "settings, same --out) and decay over this run's --budget-tokens",
    )
    how.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    how.add_argument(
        "--only",
        metavar="HASH[,HASH]",
        help="run only the planned configs whose hash starts with one of these (e.g. to time a "
        "suite's suspects again), and the suite's mixes that use them; no follow-ups",
    )
    how.add_argument(
        "--eval-tokens",
        type=int,
        help="score only the first N tokens of valid and test: a slice, not the full protocol "
        "(for peers too slow to score a whole split)",
    )
    out = p.add_argument_group("output")
    out.add_argument("--out", help="output folder (default results/<suite>/<host>-<date>)")
    out.add_argument(
        "--resume",
        action="store_true",
        help="keep ok/skipped runs already in --out, rerun failed ones",
    )
    where = p.add_argument_group("where")
    where.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local (default): one run at a time on this machine; ray: each run a Ray task on "
        "a node of its own (pip install -e '.[ray]')",
    )
    where.add_argument(
        "--address",
        help="with --executor ray: the cluster's address, e.g. 10.0.0.1:6379 (default: "
        "$RAY_ADDRESS, else a Ray instance on this machine)",
    )
    out.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="while another timed run holds this machine, wait for it (default); "
        "--no-wait: exit 2 naming it",
    )
    _add_data_dir(p)

    p = sub.add_parser("export-arpa", help="train a backoff n-gram model and write it as ARPA text")
    p.add_argument("--corpus", required=True)
    p.add_argument("--model", required=True, help="kn{N}, wb{N} or abs{N}")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[])
    p.add_argument(
        "--mode", default="sentence", help="sentence (default: <s> ... </s>, as KenLM) or stream"
    )
    p.add_argument("--budget-tokens", type=int, help="train on the first N tokens")
    p.add_argument("--out", required=True, help="ARPA file to write")
    _add_data_dir(p)

    p = sub.add_parser(
        "synthesize",
        help="a corpus of any size sampled from a count model (kn5 on WikiText-2 by default), "
        "to measure n-gram estimation at scale",
    )
    p.add_argument("--corpus", default="wikitext2", help="the source corpus (wikitext2)")
    p.add_argument("--model", default="kn5", help="a backoff n-gram model, stream mode (kn5)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[])
    p.add_argument("--tokens", required=True, type=_count, help="train tokens, e.g. 10M or 100M")
    p.add_argument(
        "--heldout-tokens", type=_count, default=250_000, help="valid and test tokens (250K)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--streams", type=int, default=20_000, help="documents drawn at once (20000)")
    p.add_argument("--out", required=True, help="the corpus folder to write")
    _add_data_dir(p)

    p = sub.add_parser(
        "sample",
        help="generate text from a recorded run (--run) or from a fresh short run (--corpus, --model)",
    )
    p.add_argument("--run", help="a run_id from a runs.jsonl under --results")
    p.add_argument("--results", default="results", help="where to look for --run (default results)")
    p.add_argument("--corpus")
    p.add_argument("--model")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[])
    p.add_argument("--mode", default="stream", help="stream (default) or sentence")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument(
        "--budget-seconds", type=float, default=60.0, help="a fresh run's training time (60)"
    )
    p.add_argument("--prefix", default="", help="words to continue (default: a sentence start)")
    p.add_argument("--tokens", type=int, default=50, help="tokens to draw (50)")
    p.add_argument("--temperature", type=float, default=1.0, help="0: greedy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--count", type=int, default=1, help="samples to draw (seeds seed, seed+1...)")
    _add_data_dir(p)

    p = sub.add_parser(
        "latency",
        help="a decoder's per-query latency of recorded runs (their checkpoints, or refits)",
    )
    p.add_argument("dirs", nargs="+", metavar="DIR", help="results folders holding runs.jsonl")
    p.add_argument(
        "--out",
        required=True,
        help="folder for queries.jsonl (e.g. results/latency/<host>-<date>); runs already "
        "measured there on this machine are skipped",
    )
    p.add_argument("--queries", type=int, default=10_000, help="queries per pass (10000)")
    _add_data_dir(p)

    p = sub.add_parser(
        "report", help="Markdown + PNG report of every *.jsonl under the folders given"
    )
    p.add_argument("dirs", nargs="+", metavar="DIR")
    p.add_argument(
        "--out", help="report file (default: the first DIR/report.md); figures beside it"
    )
    p.add_argument(
        "--reference",
        help="folder with published.csv and hardware.csv (default: LMBENCH_REFERENCE, or the "
        "copies shipped with lmbench)",
    )
    p.add_argument(
        "--latency",
        metavar="DIR",
        help="per-query latencies measured by lmbench latency under DIR (results/latency) for "
        "runs recorded without one",
    )
    p.add_argument(
        "--tracking",
        metavar="DIR",
        help="also draw the per-commit history under DIR (results/tracking, written by "
        "nox -s track): trends and steps",
    )

    p = sub.add_parser("compare", help="compare two result sets; exit 1 on a regression")
    p.add_argument("base", nargs="?")
    p.add_argument("new", nargs="?")
    p.add_argument(
        "--previous",
        metavar="ROOT",
        help="instead of BASE and NEW: the newest run folder under ROOT (e.g. results/history) "
        "holding this machine's records against the one before it",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="also write the report as Markdown and JSON into DIR, named by the two sides "
        "(e.g. results/compare)",
    )
    p.add_argument(
        "--allow-missing",
        action="store_true",
        help="a BASE config absent from NEW is not a failure (when regenerating a baseline)",
    )

    p = sub.add_parser(
        "machine", help="this machine's fingerprint (what resume and compare key on)"
    )
    p.add_argument("--id", action="store_true", help="print only the fingerprint id")
    p.add_argument("--json", action="store_true", help="the fingerprint as JSON")

    p = sub.add_parser("doctor", help="check a results folder: torn lines, orphans, duplicates")
    p.add_argument("dir", metavar="DIR")
    p.add_argument(
        "--fix",
        action="store_true",
        help="move bad lines to runs.jsonl.rejected and orphan files to rejected/ (no deletes)",
    )
    return parser


def _count(text: str) -> int:
    """'100M' -> 100,000,000 tokens (K, M, G: powers of 1,000)."""
    scale = {"K": 10**3, "M": 10**6, "G": 10**9}.get(text[-1:].upper(), 1)
    try:
        value = float(text[:-1] if scale > 1 else text) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a count such as 250K or 100M") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive count")
    return int(value)
