"""Thin sessions over `lmbench` and `pytest`; extra arguments after `--` pass through.

torch: a CPU build by default (PyTorch's CPU wheel index; a few hundred MB instead of PyPI's
multi-GB CUDA build). GPU users: LMBENCH_TORCH=cuda nox -s bench
"""

import glob
import json
import os
import shutil

import nox
import nox.command

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_venv = "yes"  # the torch wheel is large: install once, reuse

TORCH_VERSION = "2.13.0"
PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
LINT_PATHS = ["lmbench", "tests", "benchmarks", "noxfile.py"]


def install(session: nox.Session, extra: str | None = None) -> None:
    flavour = os.environ.get("LMBENCH_TORCH", "cpu")
    if flavour == "cpu":
        # One try at the CPU index: offline mirrors of PyPI that carry the CPU wheel still work.
        session.install(
            "--retries", "0", "--extra-index-url", PYTORCH_CPU_INDEX, f"torch=={TORCH_VERSION}"
        )
    elif flavour == "cuda":
        session.install(f"torch=={TORCH_VERSION}")  # PyPI's Linux wheel bundles CUDA
    else:
        session.error(f"LMBENCH_TORCH={flavour!r}: use cpu (default) or cuda")
    session.install("-e", f".[{extra}]" if extra else ".")


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and integration tests (pytest); needs the corpora (LMBENCH_DATA or a download)."""
    install(session, "test")
    try:  # the kenlm module compiles from source: its tests skip where it cannot
        session.install("-e", ".[peers]")
    except nox.command.CommandFailed:
        session.warn("kenlm did not build: the ARPA-in-KenLM tests will be skipped")
    try:  # no Ray wheel for every Python: its cluster tests skip where it is missing
        session.install("-e", ".[ray]")
    except nox.command.CommandFailed:
        session.warn("ray did not install: the --executor ray tests will be skipped")
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", *LINT_PATHS)
    session.run("ruff", "format", "--check", *LINT_PATHS)


@nox.session
def bench(session: nox.Session) -> None:
    """The main job: the history suite (resumable, about 70 minutes on 2 cores), then
    results/report.md from it and the other suites' committed folders.

    Where KenLM's lmplz is on PATH, the kenlm module is installed too and the KenLM peer rows
    are measured; elsewhere they are recorded as skipped, with the reason."""
    install(session, "peers" if shutil.which("lmplz") else None)
    session.run("lmbench", "run", "--suite", "history", "--resume", *session.posargs)
    session.run(*report_args())
    # what changed since this machine's previous history run (a report, not a gate)
    session.run(
        "lmbench",
        "compare",
        "--previous",
        "results/history",
        "--allow-missing",
        "--out",
        COMPARE_REPORTS,
        success_codes=[0, 1],
    )


BASELINE = "results/baseline/quick"  # one folder per machine fingerprint: <id>/runs.jsonl
BASELINE_REPEATS = 3  # the quick suite this many times into a new baseline
CONFIRM_RUNS = 2  # more timings of a config whose throughput alone failed, before failing
COMPARE_REPORTS = "results/compare"  # compare reports as Markdown and JSON, named by their sides
TRACKING = "results/tracking"  # nox -s track: per machine fingerprint, per commit
LATENCY = "results/latency"  # lmbench latency: per-query timings of runs recorded without one


@nox.session
def bench_quick(session: nox.Session) -> None:
    """The quick suite into a scratch folder, compared with the baselines in
    results/baseline/quick/ (count models exactly against any machine's; neural perplexities and
    throughputs only against this machine's), the compare report kept in results/compare/.

    A config that fails on throughput alone is timed CONFIRM_RUNS more times and judged on the
    median: one 5-second timing on a shared VM moves by 10%, and the job fails only on what
    the reruns confirm. `-- --record-baseline` writes this machine's baseline instead (the suite
    BASELINE_REPEATS times, so its medians rest on as many timings), to commit."""
    install(session)
    record = "--record-baseline" in session.posargs
    extra = [a for a in session.posargs if a != "--record-baseline"]
    quick = ["lmbench", "run", "--suite", "quick"]
    if record:
        machine = session.run("lmbench", "machine", "--id", silent=True).strip()
        out = os.path.join(BASELINE, machine)
        shutil.rmtree(out, ignore_errors=True)  # a baseline is replaced whole, never mixed
        for _ in range(BASELINE_REPEATS):  # appended to one runs.jsonl: medians per config
            session.run(*quick, "--out", out, *extra)
        session.log(f"this machine's baseline: {out} (commit it)")
        return
    out = os.path.join(session.create_tmp(), "quick")
    shutil.rmtree(out, ignore_errors=True)
    session.run(*quick, "--out", out, *extra)
    first = os.path.join(session.create_tmp(), "compare-first")
    shutil.rmtree(first, ignore_errors=True)
    session.run("lmbench", "compare", BASELINE, out, "--out", first, success_codes=[0, 1])
    with open(glob.glob(os.path.join(first, "*.json"))[0]) as f:
        result = json.load(f)
    if not result["throughput_only"]:  # the verdict stands: keep it, fail on a regression
        os.makedirs(COMPARE_REPORTS, exist_ok=True)
        for report in glob.glob(os.path.join(first, "*")):
            shutil.copy(report, COMPARE_REPORTS)
        if result["regressions"]:
            session.error(f"{result['regressions']} regressions: {COMPARE_REPORTS}")
        return
    suspects = ",".join(v["config_hash"] for v in result["failing"])
    session.log(f"throughput alone failed ({suspects}): {CONFIRM_RUNS} more timings each")
    for _ in range(CONFIRM_RUNS):
        session.run(*quick, "--only", suspects, "--out", out, *extra)
    session.run("lmbench", "compare", BASELINE, out, "--out", COMPARE_REPORTS)


# The committed report combines every suite's folder (runs from several sessions).
REPORT_FOLDERS = [
    "history",
    "frontier",
    "reversal",
    "reproduce",
    "branches",
    "bf16",
    "scaling",
    "smoothing",
    "neural",
]


def report_args() -> list[str]:
    folders = [f"results/{name}" for name in REPORT_FOLDERS if os.path.isdir(f"results/{name}")]
    tracking = ["--tracking", TRACKING] if os.path.isdir(TRACKING) else []
    latency = ["--latency", LATENCY] if os.path.isdir(LATENCY) else []
    return ["lmbench", "report", *folders, *tracking, *latency, "--out", "results/report.md"]


@nox.session
def report(session: nox.Session) -> None:
    """results/report.md (+ results/figures/) from every committed suite folder; or the
    folders given: nox -s report -- results/history --out my-report.md"""
    install(session)
    session.run(*(["lmbench", "report", *session.posargs] if session.posargs else report_args()))


@nox.session
def track(session: nox.Session) -> None:
    """The quick suite and the micro-benchmarks of each commit given, into results/tracking/
    (commits already measured on this machine are skipped): nox -s track -- 865315e..main"""
    install(session, "test")
    session.install("asv==0.6.6")  # the same values, stored in asv's results too
    session.run("python", "benchmarks/track.py", *(session.posargs or ["HEAD"]))


@nox.session
def microbench(session: nox.Session) -> None:
    """pytest-benchmark micro-benchmarks of the hot paths (benchmarks/)."""
    install(session, "test")
    session.run("pytest", "benchmarks", *(session.posargs or ["-q"]))


@nox.session
def microbench_compare(session: nox.Session) -> None:
    """The micro-benchmarks on a base commit and on this tree, alternately; fails on a median
    slowdown beyond 20%: nox -s microbench_compare -- --base origin/main"""
    install(session, "test")
    session.run(
        "python", "benchmarks/compare_commits.py", *(session.posargs or ["--base", "HEAD~1"])
    )
