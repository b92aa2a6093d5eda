"""`lmbench compare BASE NEW`: the same configs side by side, with regression verdicts.

Thresholds (DESIGN): a count model's perplexity is deterministic, so any relative change above
1e-9 is a regression, whatever machine measured either side; a neural model's perplexity may be
0.5% worse before it is; throughput may be 15% worse after dividing by the same run's calibration
(sort rate for count models, matmul for neural). Neural perplexities (kernels differ by ISA) and
every throughput are judged only against a base record of the same machine fingerprint: the
calibration rises 1.7x from an AMD EPYC to an AMX Xeon while an LSTM's speed rises 1.1x, so
no ratio of two machines' throughputs is a verdict on lmbench.

A side may hold several records of one config (the suite run again into the same folder, or the
suspects rerun to confirm): a throughput is the median over them, divided by the median
calibration of all that side's records of the machine. A single 5-second timing on a shared VM
moves by 10% and a single calibration reading by 15% (one VM, consecutive runs), so medians are
what a verdict can rest on; `nox -s bench_quick` reruns a config whose throughput alone failed
before it fails the job.

Exit 1 means a regression and nothing else; a side that is missing, unreadable or empty, or a
record without the fields a verdict needs, is a usage error (exit 2).
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import UsageError
from .measure import describe_machine, machine_fingerprint
from .records import COUNT_FAMILIES, jsonl_files, latest_by_config, machine_id, scan

EXACT_PPL_RTOL = 1e-9
NEURAL_PPL_WORSE = 0.005
THROUGHPUT_WORSE = 0.15
# Timings shorter than this are dominated by noise (a 30 ms fit varies by 2x here): shown, not judged.
MIN_TIMED_SECONDS = 1.0
REQUIRED = ("config_hash", "status", "family", "model", "corpus", "mode")
NOT_COMPARED = ("interrupted",)  # a partial run is no evidence either way


@dataclass(frozen=True)
class Verdict:
    config_hash: str
    label: str
    base_ppl: float | None
    new_ppl: float | None
    throughput_ratio: float | None  # new / base, calibration-normalised; same machine only
    problems: tuple[str, ...]
    basis: str = "same machine"  # what could be judged
    samples: tuple[int, int] = (1, 1)  # timings behind the throughput ratio: base, new
    throughput_only: bool = False  # every problem is a throughput: a rerun may clear it


def calibration_key(record: dict) -> str:
    return "sort_mkeys_per_s" if record.get("family") in COUNT_FAMILIES else "matmul_gflops"


def side_calibration(records: Sequence[dict]) -> dict[str, float]:
    """The median of each calibration figure over `records` (one side, one machine), each
    figure from the runs it normalises: a sort rate from count runs, a matmul from neural runs
    (torch's; count runs time numpy's)."""
    values = defaultdict(list)
    for record in records:
        key = calibration_key(record)
        value = (record.get("calibration") or {}).get(key)
        if value:
            values[key].append(value)
    return {key: statistics.median(v) for key, v in values.items()}


def _normalised_throughput(
    records: Sequence[dict], calibration: dict[str, float]
) -> tuple[float | None, int]:
    """Median training rate over `records` (one config) divided by the side's calibration;
    with the number of timings that median rests on."""
    rates = [r["train_tokens_per_s"] for r in records if r.get("train_tokens_per_s")]
    scale = calibration.get(calibration_key(records[-1]))
    if not rates or not scale:
        return None, len(rates)
    return statistics.median(rates) / scale, len(rates)


def judge(
    base: dict | Sequence[dict],
    new: dict | Sequence[dict],
    same_machine: bool = True,
    calibration: tuple[dict, dict] | None = None,
) -> Verdict:
    """Verdict on `new` against `base` (one config; a record or a side's records of it, the
    latest last). Across machines only what is machine-independent is judged: a count model's
    status and exact perplexity. `calibration`: each side's medians (default: those of the
    records given)."""
    base_all = [base] if isinstance(base, dict) else list(base)
    new_all = [new] if isinstance(new, dict) else list(new)
    base, new = base_all[-1], new_all[-1]
    exact = base.get("family") in COUNT_FAMILIES
    label = f"{new.get('corpus')} {new.get('model')} {new.get('mode')}"
    problems = []
    if new["status"] != "ok" and base["status"] == "ok":  # a crash is a crash on any machine
        problems.append(f"status {new['status']}: {new.get('error')}")
    if not same_machine and not exact:
        return Verdict(
            new["config_hash"],
            label,
            base.get("test_ppl"),
            new.get("test_ppl"),
            None,
            tuple(problems),
            "status only: no base of this machine",
        )
    b, n = base.get("test_ppl"), new.get("test_ppl")
    if b is not None and n is not None:
        if exact:
            if abs(n - b) > EXACT_PPL_RTOL * abs(b):
                problems.append(f"test ppl changed {b:.6f} -> {n:.6f} (count model: exact)")
        elif n > b * (1 + NEURAL_PPL_WORSE):
            problems.append(f"test ppl worse {b:.3f} -> {n:.3f} (> {NEURAL_PPL_WORSE:.1%})")
    ratio, samples, slow = None, (1, 1), False
    if same_machine:
        base_cal, new_cal = calibration or (side_calibration(base_all), side_calibration(new_all))
        (tb, nb), (tn, nn) = (
            _normalised_throughput(base_all, base_cal),
            _normalised_throughput(new_all, new_cal),
        )
        ratio, samples = (tn / tb if tb and tn else None), (nb, nn)
        long_enough = (
            min(base.get("train_seconds") or 0, new.get("train_seconds") or 0) >= MIN_TIMED_SECONDS
        )
        slow = ratio is not None and long_enough and ratio < 1 - THROUGHPUT_WORSE
    only_throughput = slow and not problems
    if slow:
        problems.append(
            f"throughput {ratio:.2f}x of base after calibration (< {1 - THROUGHPUT_WORSE:.2f}; "
            f"median of {nn} timing{'s' * (nn > 1)} against {nb})"
        )
    basis = "same machine" if same_machine else "count model, exact on any machine"
    return Verdict(
        new["config_hash"], label, b, n, ratio, tuple(problems), basis, samples, only_throughput
    )


def read_side(path: Path, name: str) -> list[dict]:
    """Every record of one side, or a UsageError saying what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"compare: {name} {path} does not exist")
    files = jsonl_files(path)
    if not files:
        raise UsageError(f"compare: {name} {path} holds no *.jsonl records file")
    records = []
    for file in files:
        try:
            result = scan(file)
        except OSError as exc:
            raise UsageError(f"compare: cannot read {name} file {file}: {exc}") from exc
        if result.bad_lines:
            number, text = result.bad_lines[0]
            raise UsageError(
                f"compare: {file}:{number} is not a run record ({text[:40]!r}...; "
                f"{len(result.bad_lines)} such lines): see `lmbench doctor {file.parent}`"
            )
        for record in result.records:
            missing = [k for k in REQUIRED if record.get(k) is None]
            if missing:
                raise UsageError(
                    f"compare: a record in {file} lacks {', '.join(missing)}: "
                    "not a run record this version can judge"
                )
        records += result.records
    if not [r for r in records if r["status"] not in NOT_COMPARED]:
        raise UsageError(f"compare: {name} {path} holds no finished runs")
    return records


def compare_records(base: list[dict], new: list[dict]) -> list[Verdict]:
    """One verdict per config of NEW that BASE has: against BASE's record of the same machine
    where there is one, else against its latest record of any machine."""
    base, new = ([r for r in side if r["status"] not in NOT_COMPARED] for side in (base, new))
    grouped = {name: defaultdict(list) for name in ("base", "new")}
    for name, side in (("base", base), ("new", new)):
        for r in side:  # the ok records of one config on one machine, in file order
            if r["status"] == "ok":
                grouped[name][(machine_id(r), r["config_hash"])].append(r)
    base_any = latest_by_config(base)
    verdicts = []
    calibrations: dict = {}
    for config, record in latest_by_config(new).items():
        if config not in base_any:
            continue
        here = machine_id(record)
        same = grouped["base"].get((here, config)) if here is not None else None
        if not same:
            verdicts.append(judge(base_any[config], record, same_machine=False))
            continue
        mine = grouped["new"].get((here, config), [])
        mine = [r for r in mine if r is not record] + [record]  # the latest decides status
        if here not in calibrations:  # each side's medians on this machine, once
            calibrations[here] = tuple(
                side_calibration([r for r in side if machine_id(r) == here]) for side in (base, new)
            )
        verdicts.append(judge(same, mine, True, calibrations[here]))
    return verdicts


@dataclass(frozen=True)
class Comparison:
    markdown: str
    verdicts: list[Verdict]
    failing: list[Verdict]  # regressions, and base configs missing from NEW unless allowed
    name: str  # `<suite>-<machine>-<commit>--vs--<suite>-<machine>-<commit>`


def compare_paths(base: Path, new: Path, allow_missing: bool = False) -> Comparison:
    """The Markdown table and the verdicts; those that fail are regressions, and base configs
    missing from NEW unless `allow_missing` (when a baseline is being regenerated)."""
    base_records, new_records = read_side(base, "BASE"), read_side(new, "NEW")
    verdicts = compare_records(base_records, new_records)
    report_name = f"{_side_name(base_records)}--vs--{_side_name(new_records)}"
    interrupted = {  # ignored: neither a regression nor missing
        h for h, r in latest_by_config(new_records).items() if r["status"] in NOT_COMPARED
    }
    base_records = [r for r in base_records if r["status"] not in NOT_COMPARED]
    new_records = [r for r in new_records if r["status"] not in NOT_COMPARED]
    only_base = sorted(
        set(latest_by_config(base_records)) - set(latest_by_config(new_records)) - interrupted
    )
    only_new = set(latest_by_config(new_records)) - set(latest_by_config(base_records))
    new_machines = {machine_id(r): r.get("machine") for r in new_records}
    base_machines = {machine_id(r): r.get("machine") for r in base_records}

    def fmt(x, spec):
        return "-" if x is None else format(x, spec)

    lines = [f"# lmbench compare: {base} -> {new}", ""]
    for name, machines in (("base", base_machines), ("new", new_machines)):
        lines += [f"- {name}: {describe_machine(m)}" for m in machines.values()]
    lines += [
        "",
        "| config | run | base test ppl | new test ppl | throughput new/base | timings "
        "base/new | judged | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for v in verdicts:
        verdict = "REGRESSION: " + "; ".join(v.problems) if v.problems else "ok"
        timings = f"{v.samples[0]}/{v.samples[1]}" if v.throughput_ratio is not None else "-"
        lines.append(
            f"| `{v.config_hash}` | {v.label} | {fmt(v.base_ppl, '.4f')} | "
            f"{fmt(v.new_ppl, '.4f')} | {fmt(v.throughput_ratio, '.2f')} | {timings} | "
            f"{v.basis} | {verdict} |"
        )
    unjudged = [v for v in verdicts if v.basis.startswith("status only")]
    lines += [
        "",
        f"{len(verdicts)} configs compared; {len(only_base)} only in base, "
        f"{len(only_new)} only in new; {len(interrupted)} interrupted in new (ignored).",
    ]
    if unjudged:
        lines.append(
            f"{len(unjudged)} configs judged on status only: BASE has no record of this machine "
            f"({', '.join(describe_machine(m) for m in new_machines.values())}); count models "
            "were compared exactly. Record this machine's baseline to commit with "
            "`nox -s bench_quick -- --record-baseline`."
        )
    failing = [v for v in verdicts if v.problems]
    if only_base and not allow_missing:
        labels = {r["config_hash"]: r for r in base_records}
        for config in only_base:
            r = labels[config]
            failing.append(
                Verdict(
                    config,
                    f"{r.get('corpus')} {r.get('model')} {r.get('mode')}",
                    r.get("test_ppl"),
                    None,
                    None,
                    ("missing from NEW (--allow-missing when regenerating a baseline)",),
                )
            )
            lines.append(f"MISSING from new: `{config}` {failing[-1].label}")
    lines.append(f"{len(failing)} regressions." if failing else "No regressions.")
    return Comparison("\n".join(lines) + "\n", verdicts, failing, report_name)


def _side_name(records: list[dict]) -> str:
    """`<suite>-<machine>-<commit>` of one side (the latest record's where they are mixed)."""
    latest = records[-1]
    commit = ((latest.get("env") or {}).get("git_commit") or "nocommit")[:10]
    return f"{latest.get('suite') or 'runs'}-{machine_id(latest) or 'nomachine'}-{commit}"


def write_compare(
    out_dir: Path, base: Path, new: Path, comparison: Comparison
) -> tuple[Path, Path]:
    """The compare report as Markdown and JSON in `out_dir`, named by its two sides: what CI
    and nox keep."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / f"{comparison.name}.md", out_dir / f"{comparison.name}.json"
    md.write_text(comparison.markdown)
    failing = comparison.failing
    payload = {
        "base": str(base),
        "new": str(new),
        "verdicts": [asdict(v) for v in comparison.verdicts],
        "failing": [asdict(v) for v in failing],
        "regressions": len(failing),
        "throughput_only": bool(failing) and all(v.throughput_only for v in failing),
    }
    js.write_text(json.dumps(payload, indent=1) + "\n")
    return md, js


def previous_and_latest(root: Path) -> tuple[Path, Path] | None:
    """The two newest run folders under `root` (by their newest record of this machine), each
    holding ok records of this machine; None where there are fewer than two."""
    here = machine_fingerprint()["id"]
    newest = []
    for file in jsonl_files(Path(root)):
        mine = [r for r in scan(file).records if machine_id(r) == here and r["status"] == "ok"]
        times = [(r.get("env") or {}).get("time_utc") or "" for r in mine]
        if mine:
            newest.append((max(times), file.parent))
    folders = [folder for _, folder in sorted(newest)]
    return (folders[-2], folders[-1]) if len(folders) >= 2 else None
