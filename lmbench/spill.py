"""Columns on disk: an n-gram model estimated within a memory cap (`--set memory=SIZE`), and
the ids of a split too large to hold as Python strings.

A `Spill` is a typed array in a file, read and written by row ranges with pread/pwrite, so only
the rows in hand are resident. (A memory map would do the I/O for us, but every page it touches
stays in the process's RSS until it is unmapped, and the cap is on RSS.) It answers the numpy
operations the scorer and the ARPA writer use on a column: `len`, slices, gathers by index and
`searchsorted`, each by passes over the file in chunks of `chunk_rows`.

`MemoryCap` turns the cap into chunk sizes: a stage that holds k bytes per row in flight works on
cap / k rows at a time.
"""

from __future__ import annotations

import ctypes
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str) -> int:
    """'2G' -> 2 GiB, '500M', '64K', '1048576' (bytes); as lmplz's -S without its % form."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", str(text), re.IGNORECASE)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"memory={text!r}: give a size such as 2G, 500M or 64K")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a small machine
        return 4 * 2**30


def fixed_mmap_threshold(size: int = 1 << 20) -> None:
    """glibc raises its mmap threshold after a large free (up to 32 MB), so later arrays below
    it come from the heap, which is not given back: the resident set creeps up order by order
    (measured: 180 MB over a 10 M-token estimate). A fixed threshold keeps every array above
    `size` in a mapping of its own, returned when freed. No-op off glibc."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, size)
    except (OSError, AttributeError):
        pass


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters
GLIBC_TRIM_THRESHOLD = 128 << 10  # glibc's default


@contextmanager
def reused_heap(size: int = 64 << 20) -> Iterator[None]:
    """For a stage that allocates the same arrays chunk after chunk (ARPA writing): arrays up
    to `size` come from the heap and stay there for the next chunk. A fresh mapping, or a heap
    top trimmed after each free, page-faults on every page again (measured on a 10 M-token kn5
    ARPA at memory=2G, with 16 K-line chunks: 0.5 M faults where 4 K-line chunks without this
    took 2.2 M; the whole run 19.8-21.2 s against 22.3-23.2 s). Afterwards the fixed 1 MB threshold
    and glibc's trim return memory as before. No-op off glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, size)
        libc.mallopt(M_TRIM_THRESHOLD, 4 * size)
    except (OSError, AttributeError):
        libc = None
    try:
        yield
    finally:
        if libc is not None:
            libc.mallopt(M_TRIM_THRESHOLD, GLIBC_TRIM_THRESHOLD)
            fixed_mmap_threshold()


class MemoryCap:
    """Chunk sizes from a byte cap. `rows(k)`: rows of a stage that holds k bytes per row."""

    MIN_ROWS = 1 << 10  # below this, per-chunk overhead dominates; the cap is then overshot

    def __init__(self, cap_bytes: int):
        self.bytes = int(cap_bytes)
        # the process before the estimate (interpreter, libraries, the corpus): the fixed
        # overhead beside the cap
        self.baseline = resident_bytes()

    def rows(self, bytes_per_row: int) -> int:
        """Rows that fit in the cap beside what the estimate already holds (its earlier
        stages' arrays, the allocator's retained pages), down to a quarter of the cap."""
        held = max(0, resident_bytes() - self.baseline)
        room = max(self.bytes // 4, self.bytes - held)
        return max(self.MIN_ROWS, room // max(1, bytes_per_row))


def resident_bytes() -> int:
    """This process's resident set now (0 where /proc is not there)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class Spill:
    """A column of `dtype` rows (each of `row_shape`) in a file of `folder`."""

    def __init__(self, folder: Path, name: str, dtype, row_shape=(), chunk_rows: int = 1 << 20):
        self.path = Path(folder) / name
        self.dtype = np.dtype(dtype)
        self.row_shape = tuple(row_shape)
        self.row_bytes = self.dtype.itemsize * int(np.prod(self.row_shape, dtype=np.int64))
        self.chunk_rows = max(1, int(chunk_rows))
        self.size = 0
        self.keep = None  # an object the file's folder lives as long as (its TemporaryDirectory)
        self._owner = None  # set on a `head` view, which shares the file and never closes it
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)

    @classmethod
    def of(cls, folder: Path, name: str, values: np.ndarray, chunk_rows: int) -> Spill:
        spill = cls(folder, name, values.dtype, values.shape[1:], chunk_rows)
        spill.append(values)
        return spill

    # numpy's view of a column
    def __len__(self) -> int:
        return self.size

    @property
    def shape(self) -> tuple:
        return (self.size, *self.row_shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.row_bytes

    def __repr__(self) -> str:
        return f"Spill({self.path.name}, {self.dtype}, {self.shape})"

    def sibling(self, name: str, dtype=None) -> Spill:
        """A new empty column in the same folder, kept alive by the same owner."""
        spill = Spill(self.path.parent, f"{self.path.name}.{name}", dtype or self.dtype,
                      self.row_shape, self.chunk_rows)  # fmt: skip
        spill.keep = self.keep
        return spill

    def head(self, rows: int) -> Spill:
        """The first `rows` rows, sharing this file (read-only use: `Segments.head`)."""
        view = object.__new__(Spill)
        view.__dict__.update(self.__dict__)
        view.size, view._owner = min(rows, self.size), self
        return view

    def __array__(self, dtype=None, copy=None):
        """All rows in memory: for a consumer that needs them there (a neural model's data)."""
        values = self.read(0, self.size)
        return values if dtype is None else values.astype(dtype)

    def close(self) -> None:
        if self._owner is not None:
            return
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self.path.unlink(missing_ok=True)

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the folder's cleanup removes the file
            pass

    def resize(self, rows: int) -> None:
        """Set the length (new rows read as zeros): writers on several threads then never race
        on it."""
        os.ftruncate(self._fd, rows * self.row_bytes)
        self.size = rows

    # I/O by row ranges
    def append(self, values: np.ndarray) -> None:
        self.write(self.size, values)

    def write(self, start: int, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=self.dtype)
        if values.shape[1:] != self.row_shape:
            raise ValueError(f"{self}: rows of shape {values.shape[1:]} written")
        view, offset = memoryview(values).cast("B"), start * self.row_bytes
        while view.nbytes:
            done = os.pwrite(self._fd, view, offset)
            view, offset = view[done:], offset + done
        self.size = max(self.size, start + len(values))

    def read(self, start: int, stop: int) -> np.ndarray:
        start, stop = max(0, start), min(self.size, stop)
        out = np.empty((max(0, stop - start), *self.row_shape), dtype=self.dtype)
        view, offset = memoryview(out).cast("B"), start * self.row_bytes
        while view.nbytes:
            got = os.preadv(self._fd, [view], offset)
            if got <= 0:
                raise OSError(f"{self.path}: short read at byte {offset}")
            view, offset = view[got:], offset + got
        return out

    def chunks(self, rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        rows = rows or self.chunk_rows
        for start in range(0, self.size, rows):
            yield start, self.read(start, start + rows)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            index = int(key) + (self.size if key < 0 else 0)
            if not 0 <= index < self.size:
                raise IndexError(f"{self}: row {key} is out of range")
            return self.read(index, index + 1)[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(self.size)
            if step != 1:
                raise IndexError(f"{self}: strided reads are not supported")
            return self.read(start, stop)
        return self.take(np.asarray(key))

    def __setitem__(self, key, values) -> None:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise IndexError(f"{self}: only contiguous slices can be written")
        start, stop, _ = key.indices(max(self.size, key.stop or 0))
        values = np.asarray(values)
        if len(values) != stop - start:
            raise ValueError(f"{self}: {len(values)} rows for a slice of {stop - start}")
        self.write(start, values)

    def take(self, ids: np.ndarray) -> np.ndarray:
        """self[ids] for any in-range ids: each chunk of the file holding some is read once."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        out = np.empty((ids.size, *self.row_shape), dtype=self.dtype)
        if ids.size == 0:
            return out
        if ids.min() < 0 or ids.max() >= self.size:
            raise IndexError(f"{self}: ids outside [0, {self.size})")
        order = np.argsort(ids, kind="stable")
        wanted = ids[order]
        rows = self.chunk_rows
        bounds = np.searchsorted(wanted, np.arange(0, self.size + rows, rows))
        for c in np.flatnonzero(np.diff(bounds)):
            lo, hi = bounds[c], bounds[c + 1]
            first, last = wanted[lo], wanted[hi - 1]  # read only the rows asked for
            block = self.read(first, last + 1)
            out[order[lo:hi]] = block[wanted[lo:hi] - first]
        return out

    def searchsorted(self, values: np.ndarray) -> np.ndarray:
        """np.searchsorted(self, values) (side 'left') for a sorted column."""
        values = np.asarray(values)
        out = np.zeros(values.shape, dtype=np.int64)
        if self.size == 0:
            return out
        rows = self.chunk_rows
        starts = np.arange(0, self.size, rows)
        heads = self.take(starts)
        # the chunk whose first element is the last one below the value holds its position
        which = np.searchsorted(heads, values, side="left") - 1
        for c in np.unique(which[which >= 0]):
            mask = which == c
            block = self.read(starts[c], starts[c] + rows)
            out[mask] = starts[c] + np.searchsorted(block, values[mask], side="left")
        return out


def gather(table, ids: Spill, out: Spill, cap: MemoryCap) -> Spill:
    """out[i] = table[ids[i]] for a column of unsorted ids (-1: -1) with bounded memory: the table
    is loaded in partitions of what the cap allows, and each partition is one pass over `ids`."""
    part = cap.rows(3 * table.row_bytes if isinstance(table, Spill) else 24)
    size = len(table)
    for p0 in range(0, max(size, 1), part):
        values = table[p0 : p0 + part]
        for start, chunk in ids.chunks():
            filled = (
                out.read(start, start + len(chunk)) if p0 else np.full(len(chunk), -1, out.dtype)
            )
            inside = (chunk >= p0) & (chunk < p0 + len(values))
            filled[inside] = values[chunk[inside] - p0]
            out.write(start, filled)
    return out


def count_ids(ids: Spill, length: int, cap: MemoryCap) -> Spill:
    """np.bincount(ids, minlength=length) for unsorted ids, as int64, one partition of the id
    range per pass over `ids`; the counts come back as a Spill beside `ids`."""
    part = cap.rows(32)  # the running counts and each pass's np.bincount: 16 bytes per id
    counts = Spill(ids.path.parent, ids.path.name + ".counts", np.int64, chunk_rows=ids.chunk_rows)
    for p0 in range(0, length, part):
        width = min(part, length - p0)
        total = np.zeros(width, dtype=np.int64)
        for _, chunk in ids.chunks():
            inside = chunk[(chunk >= p0) & (chunk < p0 + width)]
            total += np.bincount(inside - p0, minlength=width)
        counts.append(total)
    return counts
