"""One timed run per machine, one writer per results folder.

Two suites at once halve each other's throughput and record it as `ok`, and two suites into the
same folder duplicate every run. So `run_planned` takes two `flock` locks:

* the host lock (`LOCK_DIR/lmbench-timed.lock`, default /tmp, `$LMBENCH_LOCK_DIR` overrides)
  for its whole run loop, whatever the output folder: a second suite waits for it (or, with
  `--no-wait`, stops with `Busy`);
* the folder lock (`OUT/.lock`) for as long as it writes records there: a second writer stops
  at once with `Busy`.

The holder writes its pid, command line, output folder and start time into the lock file, so a
waiter can name it. The kernel releases a `flock` when its process dies, so a dead holder never
blocks; the info it left behind is reported as stale and overwritten. Both locks are reentrant
within a process (`cmd_run` holds the folder lock across `run_planned` and the mixes).
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import LmbenchError

LOCK_DIR_VARIABLE = "LMBENCH_LOCK_DIR"
DEFAULT_LOCK_DIR = "/tmp"
HOST_LOCK_NAME = "lmbench-timed.lock"
FOLDER_LOCK_NAME = ".lock"

Note = Callable[[str], None]


class Busy(LmbenchError):
    """Another lmbench process holds a lock this one needs (and it was told not to wait)."""


@dataclass
class Holder:
    """What a lock file says about the process holding it (all None when unreadable)."""

    pid: int | None = None
    command: str | None = None
    out_dir: str | None = None
    since: str | None = None

    def alive(self) -> bool:
        return self.pid is not None and pid_alive(self.pid)

    def describe(self) -> str:
        if self.pid is None:
            return "another process (it left no details)"
        details = [d for d in (self.command, self.out_dir and f"out {self.out_dir}") if d]
        if self.since:
            details.append(f"since {self.since}")
        text = f"pid {self.pid}" + (f" ({', '.join(details)})" if details else "")
        if not self.alive():  # its lock lives on in a process it forked
            text += " [no longer running: a process it started holds the lock]"
        return text


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def lock_dir() -> Path:
    return Path(os.environ.get(LOCK_DIR_VARIABLE) or DEFAULT_LOCK_DIR)


def host_lock_path() -> Path:
    return lock_dir() / HOST_LOCK_NAME


def command_line() -> str:
    """This process's command line, as the user typed it where it is an lmbench command."""
    argv = sys.argv or ["?"]
    if Path(argv[0]).name in ("lmbench", "cli.py", "__main__.py"):
        return shlex.join(["lmbench", *argv[1:]])
    return shlex.join(argv)


def _stderr(message: str) -> None:
    print(f"lmbench: {message}", file=sys.stderr, flush=True)


def _open(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # not inherited by child processes
    except OSError as exc:
        raise LmbenchError(
            f"cannot open the lock file {path}: {exc.strerror} "
            f"(set {LOCK_DIR_VARIABLE} to a writable folder)"
        ) from exc
    try:
        os.fchmod(fd, 0o666)  # host-wide: other users' suites must be able to take it too
    except OSError:
        pass
    return fd


def _read(fd: int) -> Holder:
    try:
        info = json.loads(os.pread(fd, 65536, 0).decode("utf-8", "replace") or "null")
    except (OSError, ValueError):
        return Holder()
    if not isinstance(info, dict) or not isinstance(info.get("pid"), int):
        return Holder()
    return Holder(info["pid"], info.get("command"), info.get("out_dir"), info.get("since"))


def _write(fd: int, holder: Holder) -> None:
    """Who holds the lock, for a waiter's message; best effort: on a full disk the lock still
    holds, a waiter just cannot name its holder (and the run says what is full)."""
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder.__dict__) + "\n").encode(), 0)
    except OSError:
        pass


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _contend(fd: int) -> Holder | None:
    """None when this process got the lock; else who holds it (a holder writes its details
    just after locking, so an empty file is read again for a moment)."""
    for _ in range(20):
        if _try_lock(fd):
            return None
        holder = _read(fd)
        if holder.pid is not None:
            return holder
        time.sleep(0.05)
    return holder


_held: dict[Path, int] = {}  # lock files this process holds: path -> depth


@contextmanager
def _locked(
    path: Path,
    out_dir: Path | str | None,
    acquire: Callable[[int, Path], None],
    note: Note,
) -> Iterator[Holder]:
    path = Path(os.path.abspath(path))
    me = Holder(
        os.getpid(),
        command_line(),
        str(out_dir) if out_dir is not None else None,
        time.strftime("%Y-%m-%d %H:%M:%S"),
    )
    if path in _held:  # reentrant: this process already holds it
        _held[path] += 1
        try:
            yield me
        finally:
            _held[path] -= 1
        return
    fd = _open(path)
    try:
        acquire(fd, path)
        previous = _read(fd)
        if previous.pid is not None and previous.pid != me.pid and not previous.alive():
            note(f"stale lock info in {path}: pid {previous.pid} died holding it; overwritten")
        _write(fd, me)
        _held[path] = 1
        try:
            yield me
        finally:
            del _held[path]
            os.ftruncate(fd, 0)  # an empty file: released cleanly
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def timed_run_lock(
    out_dir: Path | str | None = None, wait: bool = True, note: Note = _stderr
) -> Iterator[Holder]:
    """Hold the host-wide timed-run lock. Held by another process: with `wait`, say once who
    holds it and block until it is released; without, raise `Busy` naming the holder."""

    def acquire(fd: int, path: Path) -> None:
        holder = _contend(fd)
        if holder is None:
            return
        if not wait:
            raise Busy(
                f"another timed run holds {path}: {holder.describe()}; "
                "wait for it (run without --no-wait) or stop it"
            )
        note(f"waiting for the timed-run lock held by {holder.describe()}")
        fcntl.flock(fd, fcntl.LOCK_EX)  # Ctrl-C interrupts the wait

    with _locked(host_lock_path(), out_dir, acquire, note) as me:
        yield me


@contextmanager
def folder_lock(out_dir: Path | str, note: Note = _stderr) -> Iterator[Holder]:
    """Hold OUT/.lock while writing records into OUT; held by another process: raise `Busy`."""
    out_dir = Path(out_dir)

    def acquire(fd: int, path: Path) -> None:
        holder = _contend(fd)
        if holder is not None:
            pid = f"pid {holder.pid}" if holder.pid is not None else "another process"
            raise Busy(
                f"another lmbench run is writing to {out_dir} ({pid}): "
                "wait for it or use another --out"
            )

    out_dir.mkdir(parents=True, exist_ok=True)
    with _locked(out_dir / FOLDER_LOCK_NAME, out_dir, acquire, note) as me:
        yield me
