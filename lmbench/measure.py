"""The only place a clock is read. Also memory, calibration and the environment of a run.

On a GPU every clock read follows a synchronisation: pass `sync=torch.cuda.synchronize`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np


class Stopwatch:
    def __init__(self, sync: Callable[[], None] | None = None):
        self.sync = sync
        self._start: float | None = None

    def _now(self) -> float:
        if self.sync is not None:
            self.sync()
        return time.perf_counter()

    def start(self) -> Stopwatch:
        self._start = self._now()
        return self

    def elapsed(self) -> float:
        return self._now() - self._start

    def stop(self) -> float:
        elapsed = self.elapsed()
        self._start = None
        return elapsed


def device_sync(device: str) -> Callable[[], None] | None:
    """What a clock read on `device` must wait for first (None on the CPU)."""
    if device != "cuda":
        return None
    import torch

    return torch.cuda.synchronize


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def reset_peak_gpu(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_gpu_bytes(device: str) -> int | None:
    if device != "cuda":
        return None
    import torch

    return int(torch.cuda.max_memory_allocated())


def device_name(device: str) -> str:
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name()
    return cpu_model()


def wall_time() -> float:
    """Seconds since an arbitrary origin, for progress displays and ETAs (not for results)."""
    return time.monotonic()


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def reset_peak_rss() -> bool:
    """Start the peak-RSS high-water mark afresh (Linux: clear_refs 5), so buffers freed before
    this point (calibration) do not count against the run. False where the OS cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """Peak resident set size of this process since the last reset (one run per process)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def median_seconds(
    fn: Callable[[], object],
    repeats: int,
    warmup: int = 1,
    sync=None,
    max_seconds: float | None = None,
) -> float:
    """Median of `repeats` timed calls; stops early (after at least 3) once `max_seconds` is spent."""
    watch = Stopwatch(sync)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        watch.start()
        fn()
        times.append(watch.stop())
        if max_seconds is not None and len(times) >= 3 and sum(times) > max_seconds:
            break
    return statistics.median(times)


def best_seconds(fn: Callable[[], object], repeats: int, sync=None) -> float:
    watch = Stopwatch(sync)
    times = []
    for _ in range(repeats):
        watch.start()
        fn()
        times.append(watch.stop())
    return min(times)


BF16_ISA = ("avx512_bf16", "amx_tile")  # CPU flags with native bf16 matmuls


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX): where bf16 autocast
    can be faster than fp32, and its matmul peak is worth measuring."""
    return any(flag in machine_fingerprint().get("isa", ()) for flag in BF16_ISA)


def calibrate(
    matmul_n: int = 2048, sort_n: int = 10_000_000, repeats: int = 3, device: str = "cpu"
) -> dict:
    """Achieved fp32 matmul GFLOP/s and uint64 sort rate, at this process's thread count.

    Compare normalises throughput by these, so a slower CI machine does not read as a
    regression. MFU divides by the matmul figure, never by a vendor peak. The matmul uses torch
    when the run already imported it (neural runs), else numpy, so count runs never load torch.
    On a GPU: fp32 (TF32 allowed, as training) and bf16 matmuls at 8192^3 on the device.
    """
    rng = np.random.default_rng(0)
    extra = {}
    if device == "cuda":
        import torch

        for name, dtype in (
            ("matmul_gflops", torch.float32),
            ("matmul_bf16_gflops", torch.bfloat16),
        ):
            a = torch.randn(8192, 8192, device="cuda", dtype=dtype)
            b = torch.randn(8192, 8192, device="cuda", dtype=dtype)
            torch.mm(a, b)
            seconds = best_seconds(lambda a=a, b=b: torch.mm(a, b), 5, sync=torch.cuda.synchronize)
            extra[name] = 2 * 8192**3 / seconds / 1e9
            del a, b
        extra["matmul_device"] = torch.cuda.get_device_name()
    if "torch" in sys.modules:
        import torch

        a = torch.randn(matmul_n, matmul_n)
        b = torch.randn(matmul_n, matmul_n)
        backend = f"torch {torch.__version__}"
        torch.mm(a, b)  # warm-up: thread pool start
        seconds = best_seconds(lambda: torch.mm(a, b), repeats)
        if device == "cpu" and cpu_has_bf16():  # a bf16 run's MFU divides by this peak
            a16, b16 = a.bfloat16(), b.bfloat16()
            torch.mm(a16, b16)
            bf16_seconds = best_seconds(lambda: torch.mm(a16, b16), repeats)
            extra["matmul_bf16_gflops"] = 2 * matmul_n**3 / bf16_seconds / 1e9
    else:
        a = rng.standard_normal((matmul_n, matmul_n), dtype=np.float32)
        b = rng.standard_normal((matmul_n, matmul_n), dtype=np.float32)
        a @ b  # warm-up: thread pool start
        backend = f"numpy {np.__version__}"
        seconds = best_seconds(lambda: a @ b, repeats)
    keys = rng.integers(0, np.iinfo(np.uint64).max, size=sort_n, dtype=np.uint64)
    sort_seconds = best_seconds(lambda: np.sort(keys), max(1, repeats - 1))
    return {
        "matmul_gflops": 2 * matmul_n**3 / seconds / 1e9,
        "matmul_backend": backend,
        "matmul_n": matmul_n,
        "sort_mkeys_per_s": sort_n / sort_seconds / 1e6,
        "sort_n": sort_n,
        **extra,  # on a GPU its figures replace the host's matmul_gflops
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


FINGERPRINT_ISA = ("avx2", "avx512f", "avx512_bf16", "amx_tile")  # what changes kernel speeds


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _memory_gib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20)
    except OSError:
        pass
    return None


def _gpu_model() -> str | None:
    """The first GPU's name, without importing torch (count runs never load it)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    names = out.stdout.strip().splitlines() if out.returncode == 0 else []
    return names[0].strip() if names else None


@functools.lru_cache(maxsize=1)
def machine_fingerprint() -> dict:
    """What makes two machines time alike: CPU model and the ISA flags that pick kernels,
    cores, memory, GPU. Masked CPU names ("AMD EPYC") cannot tell generations apart; the flags
    can. Library versions live in the record's env, not here. `id` hashes the rest."""
    flags = _cpu_flags()
    fingerprint = {
        "cpu": cpu_model(),
        "isa": [f for f in FINGERPRINT_ISA if f in flags],
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "gpu": _gpu_model(),
    }
    canonical = json.dumps(fingerprint, sort_keys=True)
    return {**fingerprint, "id": hashlib.sha256(canonical.encode()).hexdigest()[:12]}


def this_machine() -> dict:
    """A copy of this machine's fingerprint (the cached one stays untouched)."""
    return dict(machine_fingerprint())


def describe_machine(fingerprint: dict | None) -> str:
    """One line for people: `AMD EPYC (avx2 avx512f avx512_bf16), 2 cores, 23 GiB [3f2a...]`."""
    if not fingerprint:
        return "unknown machine (a v1 record, measured before fingerprints)"
    isa = " ".join(fingerprint.get("isa") or []) or "no AVX2"
    gpu = f", {fingerprint['gpu']}" if fingerprint.get("gpu") else ""
    return (
        f"{fingerprint.get('cpu')} ({isa}), {fingerprint.get('cores')} cores, "
        f"{fingerprint.get('memory_gib')} GiB{gpu} [{fingerprint.get('id')}]"
    )


def git_commit() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(
        # results/ is what runs write: it does not make the code that ran dirty
        [
            "git",
            "-C",
            str(root),
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            ":!results",
        ],
        capture_output=True,
        text=True,
        timeout=5,
    ).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict:
    env = {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "git_commit": git_commit(),
        "lmbench": _version("lmbench"),
        "numpy": np.__version__,
        "nltk": _version("nltk"),
        "torch": None,
        "cuda": None,
        "time_utc": utc_now(),
    }
    if "torch" in sys.modules:  # only report torch for runs that used it
        import torch

        env["torch"] = torch.__version__
        env["cuda"] = torch.version.cuda
    return env
