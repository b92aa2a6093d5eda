"""`lmbench corpora | models | run | sample | latency | report | compare | doctor | machine |
export-arpa`.

Usage errors (unknown corpus or model, malformed --set, missing data, unavailable device) exit
with status 2 and one line on stderr; a suite with failed runs exits 1 after recording them all;
a full disk exits 1 with one line (the runs finished so far are intact).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from .cli_parser import build_parser, fail
from .errors import DiskFull, LmbenchError, UsageError, is_disk_full_error


def cmd_corpora(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from .corpora import corpus_names, describe, load_corpus

    rows = []
    for name in corpus_names():
        try:
            rows.append(describe(load_corpus(name, args.data_dir, download=args.download)))
        except LmbenchError as exc:
            rows.append({"corpus": name, "available": False, "verified": False, "error": str(exc)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title="lmbench corpora")
    for col in (
        "corpus",
        "available",
        "verified",
        "vocab",
        "train tokens",
        "valid tokens",
        "test tokens",
        "valid OOV",
        "test OOV",
        "counts",
    ):
        table.add_column(col)
    for r in rows:
        if not r["available"]:
            table.add_row(r["corpus"], "no", "no", "-", r["error"][:80], "", "", "", "", "")
            continue
        differs = r.get("differs_from_published")
        counts = "n/a" if differs is None else "; ".join(differs) or "as published"
        s = r["splits"]
        table.add_row(
            r["corpus"],
            "yes",
            "yes" if r["verified"] else "n/a",
            f"{r['vocab_size']:,}",
            *(f"{s[k]['tokens']:,}" for k in ("train", "valid", "test")),
            *(f"{s[k]['oov_rate']:.2%}" for k in ("valid", "test")),
            counts,
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    return 0


def cmd_models(args) -> int:
    from .models.registry import REGISTRY

    width = max(len(entry.example) for entry in REGISTRY)
    for entry in REGISTRY:
        print(f"{entry.example:<{width}}  {entry.help}")
    return 0


def cmd_run(args) -> int:
    from contextlib import nullcontext

    from rich.console import Console

    from . import cluster, distributed
    from .hostlock import folder_lock, timed_run_lock
    from .mix import per_seed, run_mixes, using
    from .plan import RunSpec, parse_seeds, plan_seeds
    from .progress import SuiteDisplay, summary_table
    from .records import RECORDS_FILE
    from .runner import (
        SuiteInterrupted,
        default_out_dir,
        latest_out_dir,
        run_follower,
        run_planned,
        sigterm_as_interrupt,
    )
    from .settings import parse_sets
    from .suites import get_suite

    if args.suite and (args.corpus or args.model):
        return fail("give either --suite or --corpus with --model, not both")
    world = distributed.from_env()
    if world.parallel and (args.suite or args.seeds or args.resume or args.executor != "local"):
        return fail(
            "under torchrun, give one neural run (--corpus, --model, one --seed, no --resume): "
            "its ranks train it together; spread a suite's runs over machines with "
            "--executor ray"
        )
    if args.address and args.executor != "ray":
        return fail("--address is the Ray cluster's: give it with --executor ray")
    threads = args.threads
    if args.executor == "ray" and threads is None:  # a CPU run reserves a whole node
        threads = cluster.node_threads(cluster.connect(args.address))
    seeds = parse_seeds(args.seeds) if args.seeds else None
    if args.suite:
        suite = get_suite(args.suite)
        if args.set or args.branches or args.trunk_tokens:
            return fail(
                "--set, --branches and --trunk-tokens apply to single runs; a suite's runs "
                "carry their own"
            )
        specs, suite_name = list(suite.runs), suite.name
        if threads is not None:
            specs = [replace(s, threads=s.threads or threads) for s in specs]
        if seeds:  # --seeds: those, everywhere
            specs = [replace(s, seeds=None) for s in specs]
        seeds = seeds or suite.seeds
    else:
        if not (args.corpus and args.model):
            return fail("a run needs --corpus and --model (or --suite)")
        specs = [
            RunSpec(
                args.corpus,
                args.model,
                parse_sets(args.set),
                args.mode,
                args.device,
                args.seed,
                budget_seconds=args.budget_seconds,
                budget_tokens=args.budget_tokens,
                budget_epochs=args.budget_epochs,
                threads=threads,
                eval_tokens=args.eval_tokens,
                branches=parse_budgets(args.branches) if args.branches else (),
                trunk_tokens=args.trunk_tokens,
            )
        ]
        suite_name = "adhoc"
    planned = plan_seeds(specs, seeds, suite_name, args.data_dir)
    mixes = per_seed(suite.mixes, planned) if args.suite else ()
    if args.only:  # those runs again, and the mixes made from them
        planned = only_configs(planned, args.only)
        mixes = using(mixes, planned)
    if args.out:
        out_dir = Path(args.out)
    elif args.resume:
        out_dir = latest_out_dir(suite_name) or default_out_dir(suite_name)
    else:
        out_dir = default_out_dir(suite_name)
    if not world.leader:  # torchrun's other ranks train their share; rank 0 records the run
        # the first rank on each other host holds that host's timed-run lock (rank 0 holds its own)
        lock = timed_run_lock(out_dir, args.wait) if world.local_rank == 0 else nullcontext()
        try:
            with lock:
                record = run_follower(planned[0], out_dir, args.data_dir)
        except SuiteInterrupted:
            return fail(f"rank {world.rank}: interrupted; rank 0 records the run")
        if record.status != "ok":
            return fail(f"rank {world.rank}: {record.status}: {record.error}")
        return 0

    def execute(runs: list) -> list[dict]:
        if args.executor == "ray":  # one line per start, evaluation and end: runs overlap
            display = SuiteDisplay(len(runs), live=False)
            return cluster.run_on_cluster(
                runs, out_dir, args.data_dir, args.resume, display, args.address
            )
        display = SuiteDisplay(len(runs))
        return run_planned(runs, out_dir, args.data_dir, args.resume, display, args.wait)

    # folder lock first: a second writer into this folder stops at once
    try:
        with folder_lock(out_dir), sigterm_as_interrupt():
            records = execute(planned)
            if (
                args.suite and suite.follow_up and not args.seeds and not args.only
            ):  # --seeds: those, everywhere
                more = plan_seeds(list(suite.follow_up(records)), None, suite_name, args.data_dir)
                if more:
                    records += execute(more)
            records += run_mixes(mixes, out_dir, suite_name, args.resume, args.data_dir)
    finally:
        if args.executor == "ray":
            cluster.disconnect()
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(summary_table(records))
    console.print(f"records: {out_dir / RECORDS_FILE}", highlight=False)
    failed = [r for r in records if r["status"] in ("failed", "interrupted")]
    if failed:
        print(
            f"lmbench: {len(failed)} of {len(records)} runs failed or were interrupted "
            f"(recorded in {out_dir}); "
            f"rerun them with --resume --out {out_dir}",
            file=sys.stderr,
        )
        return 1
    return 0


def only_configs(planned: list, prefixes: str) -> list:
    """The planned runs whose config hash starts with one of the comma-separated `prefixes`."""
    wanted = [p.strip() for p in prefixes.split(",") if p.strip()]
    kept = [run for run in planned if any(run.config_hash.startswith(p) for p in wanted)]
    if not kept:
        hashes = ", ".join(f"{r.config_hash[:8]} ({r.spec.corpus} {r.spec.model})" for r in planned)
        raise UsageError(f"--only {prefixes}: no planned config matches; planned: {hashes}")
    return kept


def parse_budgets(text: str) -> tuple[int, ...]:
    try:
        budgets = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        budgets = ()
    if not budgets or min(budgets) <= 0:
        raise UsageError(f"--branches {text!r}: give token budgets > 0, e.g. 1000000,2000000")
    return budgets


def cmd_export_arpa(args) -> int:
    from .corpora import load_corpus
    from .measure import Stopwatch
    from .plan import RunSpec, plan
    from .settings import parse_sets

    run = plan(
        RunSpec(
            args.corpus,
            args.model,
            parse_sets(args.set),
            args.mode,
            "cpu",
            budget_tokens=args.budget_tokens,
        ),
        "export",
        args.data_dir,
    )
    corpus = load_corpus(args.corpus, args.data_dir, **run.vocab)
    model = run.model.build(corpus.vocab.size)
    watch = Stopwatch().start()
    model.fit(corpus.segments("train", args.mode), run.budget)
    path = model.export_arpa(Path(args.out), corpus.vocab.itos)
    print(f"{path} ({run.model.spec}, {args.mode} mode, {watch.stop():.2f} s)")
    return 0


def cmd_synthesize(args) -> int:
    from .settings import parse_sets
    from .synthesize import synthesize

    sizes = {"train": args.tokens, "valid": args.heldout_tokens, "test": args.heldout_tokens}
    manifest = synthesize(
        args.corpus,
        args.model,
        parse_sets(args.set),
        sizes,
        args.seed,
        args.streams,
        Path(args.out),
        args.data_dir,
        note=lambda line: print(line, file=sys.stderr),
    )
    print(f"{args.out}: {sum(sizes.values()):,} tokens in {manifest['seconds']:.0f} s")
    return 0


def cmd_sample(args) -> int:
    from .sampling import sample_fresh, sample_recorded

    if bool(args.run) == bool(args.corpus or args.model):
        return fail("give either --run RUN_ID, or --corpus with --model for a fresh run")
    if args.tokens <= 0 or args.temperature < 0 or args.count <= 0:
        return fail("--tokens and --count must be > 0 and --temperature >= 0")
    options = dict(
        prefix=args.prefix,
        tokens=args.tokens,
        temperature=args.temperature,
        seed=args.seed,
        count=args.count,
    )
    if args.run:
        texts = sample_recorded(args.run, Path(args.results), args.data_dir, **options)
    else:
        if not (args.corpus and args.model):
            return fail("a fresh sample needs both --corpus and --model")
        texts = sample_fresh(
            args.corpus,
            args.model,
            args.set,
            args.mode,
            args.device,
            args.budget_seconds,
            args.data_dir,
            **options,
        )
    for text in texts:
        print(text)
    return 0


def cmd_latency(args) -> int:
    from .latency import remeasure

    missing = [d for d in args.dirs if not Path(d).is_dir()]
    if missing:
        return fail(f"no such results folder: {missing[0]}")
    if args.queries <= 0:
        return fail("--queries must be > 0")
    measured, skipped = remeasure(
        [Path(d) for d in args.dirs], Path(args.out), args.data_dir, args.queries
    )
    print(f"{measured} runs measured, {skipped} skipped, into {args.out}")
    return 0


def cmd_report(args) -> int:
    from .report import write_report

    extra = [args.tracking or ".", args.latency or "."]
    missing = [d for d in [*args.dirs, *extra] if not Path(d).exists()]
    if missing:
        return fail(
            f"no such results folder: {missing[0]} (run a suite first: lmbench run --suite history)"
        )
    tracking = Path(args.tracking) if args.tracking else None
    latency = Path(args.latency) if args.latency else None
    path = write_report([Path(d) for d in args.dirs], args.out, args.reference, tracking, latency)
    print(path)
    return 0


def cmd_compare(args) -> int:
    from .compare import compare_paths, previous_and_latest, write_compare

    if args.previous:
        if args.base or args.new:
            raise UsageError("compare: give BASE and NEW, or --previous ROOT, not both")
        pair = previous_and_latest(Path(args.previous))
        if pair is None:
            print(f"compare: fewer than two run folders of this machine under {args.previous}")
            return 0
        args.base, args.new = (str(p) for p in pair)
    elif not (args.base and args.new):
        raise UsageError("compare: give BASE and NEW (folders or runs.jsonl files), or --previous")
    comparison = compare_paths(Path(args.base), Path(args.new), args.allow_missing)
    print(comparison.markdown)
    if args.out:
        for path in write_compare(Path(args.out), Path(args.base), Path(args.new), comparison):
            print(f"written: {path}")
    return 1 if comparison.failing else 0


def cmd_machine(args) -> int:
    from .measure import describe_machine, machine_fingerprint

    fingerprint = machine_fingerprint()
    if args.id:
        print(fingerprint["id"])
    elif args.json:
        print(json.dumps(fingerprint, indent=2))
    else:
        print(describe_machine(fingerprint))
    return 0


def cmd_doctor(args) -> int:
    from .doctor import doctor

    if not Path(args.dir).is_dir():
        return fail(f"no such results folder: {args.dir}")
    lines, remaining = doctor(Path(args.dir), args.fix)
    print("\n".join(lines) if lines else f"{args.dir}: no records files (runs.jsonl) found")
    return 1 if remaining else 0


COMMANDS = {
    "corpora": cmd_corpora,
    "models": cmd_models,
    "run": cmd_run,
    "report": cmd_report,
    "latency": cmd_latency,
    "compare": cmd_compare,
    "sample": cmd_sample,
    "export-arpa": cmd_export_arpa,
    "doctor": cmd_doctor,
    "synthesize": cmd_synthesize,
    "machine": cmd_machine,
}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error already printed (2)
        return exit_.code
    if getattr(args, "data_dir", None):
        args.data_dir = str(Path(args.data_dir).expanduser().resolve())
        os.environ["LMBENCH_DATA"] = args.data_dir
    try:
        return COMMANDS[args.command](args)
    except DiskFull as exc:  # the command was right; the machine ran out of space
        print(f"lmbench: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        if not is_disk_full_error(exc):
            raise
        print(f"lmbench: disk full: {exc}; records already written are kept", file=sys.stderr)
        return 1
    except LmbenchError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        print("lmbench: interrupted; records already written are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
