"""Measure commits into the per-commit tracking history of this machine.

    python benchmarks/track.py REV [REV ...] [--out results/tracking]   (nox -s track -- REVS)

A REV is a commit or a range (`a..b`, every commit of main's first-parent line in it). For each
commit not yet measured on this machine's fingerprint, in a git worktree of that commit: the
quick suite (`lmbench run --suite quick`, that commit's suite and code) and the
micro-benchmarks (this tree's `benchmarks/`, pytest-benchmark JSON, against that commit's
package, as `compare_commits.py` does) into `OUT/<fingerprint>/<commit>/`. Commits are measured
in an interleaved order (first, last, middle, ...) so a drift in the machine's speed over the
hours of a backfill does not read as a trend across commits. `lmbench report --tracking OUT`
draws the trends and names the steps (`lmbench.tracking`). Every measured commit is also stored
in asv's results (`results/asv/`, `benchmarks/asv_benchmarks/tracked.py`): `asv publish` then builds asv's
per-commit graphs of the same values. Steps are lmbench's rule, not asv's: asv's step detection
fits a slow drift as one flat segment (README, "Tracking across commits").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its sibling, when imported by path
from compare_commits import microbenchmarks  # noqa: E402

from lmbench.hostlock import timed_run_lock  # noqa: E402
from lmbench.measure import machine_fingerprint  # noqa: E402
from lmbench.tracking import COMMIT_FILE, MICROBENCH_FILE  # noqa: E402

HEAD = Path(__file__).resolve().parent.parent


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=HEAD, check=True, capture_output=True, text=True
    ).stdout.strip()


def commits_of(revs: list[str]) -> list[str]:
    """Full hashes, oldest first, without repeats: `a..b` expands along first parents."""
    out: list[str] = []
    for rev in revs:
        if ".." in rev:
            listed = git("rev-list", "--first-parent", "--reverse", rev).split()
        else:
            listed = [git("rev-parse", "--verify", f"{rev}^{{commit}}")]
        out += [c for c in listed if c not in out]
    return out


def interleaved(items: list[str]) -> list[str]:
    """First, last, then the middles of the gaps left (a breadth-first bisection): neighbours in
    commit order are measured far apart in time."""
    if len(items) <= 2:
        return list(items)
    order, gaps = [0, len(items) - 1], [(0, len(items) - 1)]
    while gaps:
        lo, hi = gaps.pop(0)
        if hi - lo < 2:
            continue
        mid = (lo + hi) // 2
        order.append(mid)
        gaps += [(lo, mid), (mid, hi)]
    return [items[i] for i in order]


def measure(commit: str, folder: Path, tmp: Path) -> None:
    """The quick suite and the micro-benchmarks of one commit into `folder` (commit.json last:
    a folder without it is not a measured commit and is measured again)."""
    tree = tmp / "tree"
    git("worktree", "add", "--detach", str(tree), commit)
    try:
        # this process holds the machine's timed-run lock for the whole job: the commit's own
        # `lmbench run` takes a private one
        env = dict(os.environ, PYTHONPATH=str(tree), LMBENCH_LOCK_DIR=str(tmp))
        cli = "import sys; from lmbench.cli import main; sys.exit(main())"
        quick = [sys.executable, "-c", cli, "run", "--suite", "quick", "--out", str(folder)]
        subprocess.run(quick, cwd=tree, env=env, check=False)
        microbenchmarks(tree, folder / MICROBENCH_FILE, env=env)
    finally:
        git("worktree", "remove", "--force", str(tree))
    meta = git("show", "-s", "--format=%cI%x00%s", commit).split("\x00")
    (folder / COMMIT_FILE).write_text(
        json.dumps({"commit": commit, "time": meta[0], "subject": meta[1]}, indent=1) + "\n"
    )


def to_asv(folder: Path, machine: str) -> None:
    """Store a measured commit's values in asv's results: `asv run` over `benchmarks/asv_benchmarks`
    with the commit's hash set, in this environment (nothing timed, nothing rebuilt)."""
    commit = json.loads((folder / COMMIT_FILE).read_text())["commit"]
    env = dict(os.environ, LMBENCH_TRACKING_COMMIT=str(folder.resolve()))
    asv = [sys.executable, "-m", "asv"]
    for args in (
        ["machine", "--yes", "--machine", machine],
        ["run", "--python=same", "--machine", machine, "--set-commit-hash", commit],
    ):
        subprocess.run(asv + args, cwd=HEAD, env=env, check=True, stdout=subprocess.DEVNULL)


def export_to_asv(root: Path, asv_results: Path) -> int:
    """Every measured commit of `root` (one fingerprint) not yet in asv's results; how many."""
    machine, done = root.name, 0
    for meta in sorted(root.glob(f"*/{COMMIT_FILE}")):
        commit = json.loads(meta.read_text())["commit"]
        if not list((asv_results / machine).glob(f"{commit[:8]}-*.json")):
            to_asv(meta.parent, machine)
            done += 1
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("revs", nargs="+", help="commits or ranges (a..b)")
    parser.add_argument("--out", default=str(HEAD / "results" / "tracking"))
    parser.add_argument("--no-asv", action="store_true", help="do not store in asv's results")
    args = parser.parse_args(argv)
    machine = machine_fingerprint()["id"]
    root = Path(args.out) / machine
    commits = commits_of(args.revs)
    todo = [c for c in commits if not (root / c[:10] / COMMIT_FILE).exists()]
    print(f"{len(commits)} commits; {len(commits) - len(todo)} already measured on {machine}")
    with timed_run_lock(HEAD), tempfile.TemporaryDirectory(prefix="lmbench-track-") as tmp:
        for n, commit in enumerate(interleaved(todo), 1):
            folder = root / commit[:10]
            shutil.rmtree(folder, ignore_errors=True)  # a half-measured commit starts again
            folder.mkdir(parents=True)
            print(f"[{n}/{len(todo)}] {commit[:10]} {git('show', '-s', '--format=%s', commit)}")
            measure(commit, folder, Path(tmp))
    if not args.no_asv:
        added = export_to_asv(root, HEAD / "results" / "asv")
        print(f"asv: {added} commits stored in results/asv/{machine} (`asv publish` draws them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
