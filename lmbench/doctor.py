"""`lmbench doctor DIR [--fix]`: what is wrong with a results folder, and a repair that deletes
nothing.

Lists, per records file: torn or foreign lines, configs with more than one `ok` record of one
machine (two suites at once), the machine fingerprints present, and artifact files that no record
names (a run killed before its record was written) or that were never renamed into place. `--fix`
moves the bad lines to `runs.jsonl.rejected` beside the file and the orphan files to
`rejected/`; the records file is rewritten whole (temporary file, then rename).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .hostlock import folder_lock
from .measure import describe_machine
from .records import ARTIFACT_FOLDERS, TEMP_MARK, jsonl_files, machine_id, scan, write_bytes

REJECTED_SUFFIX = ".rejected"
REJECTED_FOLDER = "rejected"


@dataclass
class Findings:
    file: Path
    bad_lines: list[tuple[int, str]]
    duplicates: dict[str, int]  # config hash -> ok records of one machine
    machines: dict[str | None, tuple[dict | None, int]]  # id -> (fingerprint, records)
    orphans: list[Path] = field(default_factory=list)

    @property
    def problems(self) -> int:
        return len(self.bad_lines) + len(self.duplicates) + len(self.orphans)


def _referenced(records: list[dict]) -> set[str]:
    names = set()
    for r in records:
        names.update((r.get("logprobs") or {}).values())
        names.update(p for p in (r.get("sentences"), r.get("checkpoint")) if p)
        names.update(((r.get("extra") or {}).get("branch_states") or {}).values())
    return names


def examine(file: Path) -> Findings:
    result = scan(file)
    ok = Counter(
        (machine_id(r), r["config_hash"]) for r in result.records if r.get("status") == "ok"
    )
    duplicates = {config: n for (_, config), n in ok.items() if n > 1}
    machines: dict = {}
    for r in result.records:
        fingerprint, count = machines.get(machine_id(r), (r.get("machine"), 0))
        machines[machine_id(r)] = (fingerprint, count + 1)
    referenced = _referenced(result.records)
    folder = file.parent
    orphans = sorted(
        path
        for name in ARTIFACT_FOLDERS
        for path in (folder / name).glob("*")
        if path.is_file()
        and (TEMP_MARK in path.name or str(path.relative_to(folder)) not in referenced)
    )
    return Findings(file, result.bad_lines, duplicates, machines, orphans)


def fix(findings: Findings) -> None:
    """Bad lines to `<file>.rejected` (appended), orphans to `<folder>/rejected/`."""
    file = findings.file
    if findings.bad_lines:
        bad = {number for number, _ in findings.bad_lines}
        lines = file.read_bytes().splitlines(keepends=True)
        keep = [line for n, line in enumerate(lines, 1) if n not in bad and line.strip()]
        rejected = [line.rstrip(b"\n") + b"\n" for n, line in enumerate(lines, 1) if n in bad]
        with open(file.with_name(file.name + REJECTED_SUFFIX), "ab") as f:
            f.writelines(rejected)
            f.flush()
            os.fsync(f.fileno())
        write_bytes(file, b"".join(line.rstrip(b"\n") + b"\n" for line in keep))
    for path in findings.orphans:
        target = file.parent / REJECTED_FOLDER / path.relative_to(file.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)


def render(findings: Findings) -> list[str]:
    lines = [f"{findings.file}:"]
    for fingerprint, count in findings.machines.values():
        lines.append(f"  {count} records from {describe_machine(fingerprint)}")
    for number, text in findings.bad_lines:
        lines.append(f"  line {number}: not a record ({len(text)} chars: {text[:50]!r})")
    for config, n in findings.duplicates.items():
        lines.append(f"  config {config}: {n} ok records of one machine (two suites at once?)")
    for path in findings.orphans:
        lines.append(f"  orphan artifact: {path.relative_to(findings.file.parent)}")
    if not findings.problems:
        lines.append("  no problems")
    return lines


def doctor(folder: Path, apply_fix: bool = False) -> tuple[list[str], int]:
    """The report's lines, and how many problems remain."""
    lines, remaining = [], 0
    for file in jsonl_files(folder):
        findings = examine(file)
        lines += render(findings)
        if apply_fix and (findings.bad_lines or findings.orphans):
            with folder_lock(file.parent):  # no suite appends or saves here while lines move
                fix(examine(file))
            lines.append(
                f"  fixed: {len(findings.bad_lines)} lines to {file.name}{REJECTED_SUFFIX}, "
                f"{len(findings.orphans)} files to {REJECTED_FOLDER}/ (nothing deleted)"
            )
            remaining += len(findings.duplicates)
        else:
            remaining += findings.problems
    return lines, remaining
