"""One timed run per machine: a second suite waits (or, with --no-wait, exits 2 naming the
first); a dead holder never blocks; a second writer into the same folder exits 2 at once."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from lmbench.cli import main
from lmbench.hostlock import Busy, folder_lock, host_lock_path, timed_run_lock
from lmbench.records import read_records

from .conftest import REPO

HOLD = """
import sys
from lmbench.hostlock import folder_lock, timed_run_lock
lock = timed_run_lock if sys.argv[1] == "host" else folder_lock
with lock(sys.argv[2]):
    print("locked", flush=True)
    sys.stdin.readline()
"""


@pytest.fixture(autouse=True)
def private_lock_dir(tmp_path, monkeypatch):
    """Never contend with a real suite on this machine (children inherit the variable)."""
    monkeypatch.setenv("LMBENCH_LOCK_DIR", str(tmp_path))


@pytest.fixture
def holder():
    """Start another process holding a lock; each is released (or killed) at the end."""
    started = []

    def start(kind: str, out) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, kind, str(out)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        started.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def release(proc: subprocess.Popen) -> None:
    proc.stdin.write("\n")
    proc.stdin.flush()


def test_second_without_wait_is_busy_naming_the_first(holder, tmp_path):
    first = holder("host", tmp_path / "suite-a")
    with pytest.raises(Busy) as busy:
        with timed_run_lock(tmp_path / "suite-b", wait=False):
            pass
    assert f"pid {first.pid} (" in str(busy.value)
    assert f"out {tmp_path / 'suite-a'}" in str(busy.value) and "since " in str(busy.value)
    release(first)
    first.wait(10)
    with timed_run_lock(tmp_path / "suite-b", wait=False) as me:
        assert f'"pid": {os.getpid()}' in host_lock_path().read_text()
    assert me.pid == os.getpid()
    assert host_lock_path().read_text() == ""  # released cleanly: no details left behind


def test_second_waits_saying_once_for_whom_then_acquires(holder, tmp_path):
    first = holder("host", tmp_path / "suite-a")
    threading.Timer(0.5, release, [first]).start()
    notes = []
    started = time.monotonic()
    with timed_run_lock(tmp_path / "suite-b", note=notes.append):
        waited = time.monotonic() - started
        assert f'"pid": {os.getpid()}' in host_lock_path().read_text()
    assert waited >= 0.4
    assert len(notes) == 1 and notes[0].startswith(
        f"waiting for the timed-run lock held by pid {first.pid} ("
    )


def test_a_killed_holder_does_not_block_and_its_info_is_called_stale(holder, tmp_path):
    first = holder("host", tmp_path / "suite-a")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    notes = []
    with timed_run_lock(tmp_path / "suite-b", wait=False, note=notes.append):
        pass
    assert len(notes) == 1 and f"pid {first.pid} died holding it" in notes[0]


def test_locks_are_reentrant_within_a_process(tmp_path):
    with folder_lock(tmp_path / "out"), folder_lock(tmp_path / "out"):
        with timed_run_lock(wait=False), timed_run_lock(wait=False):
            pass
        assert '"pid"' in (tmp_path / "out" / ".lock").read_text()  # the outer one still holds
    assert (tmp_path / "out" / ".lock").read_text() == ""


def test_cli_second_writer_into_the_same_folder_exits_2(holder, capsys, tiny_corpus, tmp_path):
    out = tmp_path / "out"
    first = holder("folder", out)
    argv = ["run", "--corpus", str(tiny_corpus), "--model", "add1-2", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"lmbench: error: another lmbench run is writing to {out} (pid {first.pid}): "
        "wait for it or use another --out"
    )
    assert not (out / "runs.jsonl").exists()


def test_cli_no_wait_exits_2_naming_the_holder(holder, capsys, tiny_corpus, tmp_path):
    first = holder("host", tmp_path / "suite-a")
    out = tmp_path / "out"
    argv = ["run", "--corpus", str(tiny_corpus), "--model", "add1-2", "--out", str(out)]
    assert main([*argv, "--no-wait"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"pid {first.pid} (" in err and "without --no-wait" in err
    assert not (out / "runs.jsonl").exists()


def test_a_record_keeps_the_load_average_around_its_training(tiny_corpus, tmp_path):
    out = tmp_path / "out"
    assert main(["run", "--corpus", str(tiny_corpus), "--model", "add1-2", "--out", str(out)]) == 0
    [record] = read_records(out / "runs.jsonl")
    load = record["extra"]["load_average"]
    assert set(load) == {"start", "end", "peak_1min"}
    assert all(len(load[k]) == 3 and min(load[k]) >= 0 for k in ("start", "end"))
    assert load["peak_1min"] >= 0


def test_the_load_watch_keeps_the_highest_load_sampled_during_a_run(monkeypatch):
    """A contended stretch in the middle of a long run shows in its record, not only at its
    start and end."""
    import threading
    import time

    from lmbench import hostload

    def load_average():  # the spike only where the watcher thread samples
        busy = threading.current_thread() is not threading.main_thread()
        return [3.5 if busy else 0.5, 1.0, 0.6]

    monkeypatch.setattr(hostload, "load_average", load_average)
    with hostload.LoadWatch(every=0.01) as watch:
        time.sleep(0.2)
    assert watch.peak == 3.5


def test_a_full_disk_does_not_stop_the_lock(holder, tmp_path, monkeypatch):
    """The holder's details are best effort: with no space for them the lock still holds, and
    a second writer is refused (it cannot name the holder, and says so)."""
    import errno

    from lmbench import hostlock

    real = hostlock.os.pwrite

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(hostlock.os, "pwrite", full)
    with folder_lock(tmp_path / "out"):
        monkeypatch.setattr(hostlock.os, "pwrite", real)
        code = subprocess.run(
            [sys.executable, "-c", HOLD, "folder", str(tmp_path / "out")],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        assert code.returncode != 0 and "Busy" in code.stderr
        assert "another process" in code.stderr
