"""Stage 5: ARPA text out (log10, as SRILM and KenLM read it), and a reader for tests.

lmbench works in natural logs; the conversion happens here, at the edge. Writing is vectorised:
numbers become fixed 7-decimal text through a digit matrix and each line is its pieces (numbers,
words by id, separators) gathered end to end, so a model is written without a Python loop per
n-gram.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ...spill import reused_heap
from .interpolated import BackoffTables

LOG10_E = 1.0 / math.log(10.0)
DECIMALS = 7  # lmplz prints about 7 significant digits
# "0000".."9999" as bytes: a number's 8 digits are two lookups, not 8 divisions
_DIGITS4 = np.array([f"{i:04d}".encode() for i in range(10_000)]).view(np.uint8).reshape(-1, 4)


def arpa_words(itos: tuple[str, ...]) -> list[str]:
    """Our token names in ARPA's spelling: <eos> is </s>; id |V| is <s>."""
    return [("</s>" if w == "<eos>" else w) for w in itos] + ["<s>"]


def format_log10(values: np.ndarray, before: bytes = b"", after: bytes = b"") -> np.ndarray:
    """`before` + '-dd.ddddddd' + `after` per value as rows of a uint8 matrix, for log10 values
    <= 0. A number with one integer digit is shifted right by one and starts with a NUL, which
    the writer skips, so -0.5 reads "-0.5000000". -inf (<s>, never predicted) is written 0, as
    lmplz does."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64), neginf=0.0), -99.9999999, 0.0)
    q = np.rint(-v * 10**DECIMALS).astype(np.int64)  # < 10**9
    high, low = np.divmod(q, 10**4)  # high: 2 integer digits and 3 decimals
    b, a = len(before), len(after)
    chars = np.empty((v.size, b + 11 + a), dtype=np.uint8)
    tens, rest = np.divmod(high, 1000)
    lead = np.concatenate([np.frombuffer(before + b"-", dtype=np.uint8), [0]])
    chars[:, : b + 2] = lead  # a second integer digit goes in the last column, else:
    short = tens < 10
    chars[short, 1 : b + 2] = lead[: b + 1]
    chars[short, 0] = 0
    chars[~short, b + 1] = ord("0") + tens[~short] // 10
    chars[:, b + 2] = ord("0") + tens % 10
    chars[:, b + 3] = ord(".")
    chars[:, b + 4 : b + 7] = _DIGITS4[rest, 1:]
    chars[:, b + 7 : b + 11] = _DIGITS4[low]
    chars[:, b + 11 :] = np.frombuffer(after, dtype=np.uint8)
    return chars


# Lines per work item: a few MB of temporaries, which `reused_heap` keeps from one chunk to the
# next (as fresh mappings their page faults cost more than the work); large enough that numpy
# releases the GIL for most of a chunk's work, so the threads run side by side.
CHUNK = 1 << 14
NUMBER_BYTES = 13  # the widest `format_log10` row written: tab, 11 characters, newline


class _Pieces:
    """Byte strings laid end to end in one buffer, each addressed by (start, length)."""

    def __init__(self, parts: list[bytes]):
        lengths = np.array([len(p) for p in parts], dtype=np.int64)
        self.buffer = np.frombuffer(b"".join(parts), dtype=np.uint8)
        self.start, self.length = np.cumsum(lengths) - lengths, lengths


def _joined(buffer: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """buffer[start[i] : start[i] + length[i]] for every i, end to end: one gather whose index
    is each piece's offset repeated over its bytes plus a running count (int32: a chunk and its
    buffer are far below 2 GB, and half the index's memory traffic is most of the cost)."""
    length = length.astype(np.int32)
    ends = np.cumsum(length, dtype=np.int32)
    index = np.repeat((start - (ends - length)).astype(np.int32), length)
    index += np.arange(index.size, dtype=np.int32)
    return np.take(buffer, index)


def _numbers(chars: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, length) of each row of `format_log10`'s matrix laid flat at `base`, past its
    leading NUL if it has one."""
    width = chars.shape[1]
    skip = (chars[:, 0] == 0).astype(np.int64)
    return base + np.arange(len(chars), dtype=np.int64) * width + skip, width - skip


def write_arpa(tables: BackoffTables, itos: tuple[str, ...], path: Path) -> Path:
    """Each line is pieces joined end to end: its log10 probability and a tab, its first word,
    each further word with a space before it, then a tab and its log10 backoff, or just a
    newline. Words are looked up by id, so no line is padded to the longest word; an n-gram's
    word ids are its prefix's ids plus one, reused from the order below (a column on disk when
    the model is: `tables.spill`). Chunks run on a thread pool (numpy releases the GIL here), a
    few at a time so memory stays bounded."""
    counts = tables.counts
    names = arpa_words(itos)
    # each word twice: bare (an n-gram's first word) and after a space (the others)
    words = _Pieces([w.encode() for w in names] + [b" " + w.encode() for w in names])
    spaced = len(names)
    newline = words.buffer.size
    numbers_at = newline + 1

    class Buffer(threading.local):
        """Per thread: the words, a newline, then room for a chunk's numbers, allocated once."""

        def __init__(self):
            self.bytes = np.empty(numbers_at + 2 * CHUNK * NUMBER_BYTES, dtype=np.uint8)
            self.bytes[:newline] = words.buffer
            self.bytes[newline] = ord("\n")

    buffer = Buffer()
    top = counts.order
    workers = os.cpu_count() or 1
    with (
        reused_heap(),
        open(path, "wb") as out,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        header = "\n\\data\\\n" + "".join(
            f"ngram {n}={len(o)}\n" for n, o in enumerate(counts.orders, 1)
        )
        out.write(header.encode())
        ids = np.zeros((1, 0), dtype=np.int32)
        for n in range(1, top + 1):
            o = counts.orders[n - 1]
            below = ids
            if tables.spill is None or n == top:  # the top order's ids are never reused
                ids = np.empty((len(o) if n < top else 0, n), dtype=np.int32)
            else:
                ids = tables.spill.new(f"word_ids{n}", np.int32, (n,))
                ids.resize(len(o))  # before the threads write their rows into it
            log_prob, log_backoff = (
                tables.log_prob[n - 1],
                tables.log_backoff[n - 1] if n < top else None,
            )

            def chunk(
                a: int,
                n=n,
                o=o,
                below=below,
                ids=ids,
                log_prob=log_prob,
                log_backoff=log_backoff,
            ):
                z = slice(a, a + CHUNK)
                last = (o.keys[z] % counts.radix).astype(np.int32)
                rows = (
                    last[:, None]
                    if n == 1
                    else np.concatenate([below[o.prefix[z]], last[:, None]], axis=1)
                )
                if n < top:
                    ids[a : a + len(rows)] = rows
                prob = format_log10(log_prob[z] * LOG10_E, after=b"\t")
                source = buffer.bytes
                source[numbers_at : numbers_at + prob.size] = prob.ravel()
                pieces = [_numbers(prob, numbers_at)]
                for k in range(n):
                    word = rows[:, k] + (spaced if k else 0)
                    pieces.append((words.start[word], words.length[word]))
                if log_backoff is None:
                    pieces.append((np.full(len(rows), newline), np.ones(len(rows), np.int64)))
                else:
                    backoff = format_log10(log_backoff[z] * LOG10_E, before=b"\t", after=b"\n")
                    at = numbers_at + prob.size
                    source[at : at + backoff.size] = backoff.ravel()
                    pieces.append(_numbers(backoff, at))
                start = np.stack([p[0] for p in pieces], axis=1).ravel()
                length = np.stack([p[1] for p in pieces], axis=1).ravel()
                return _joined(source, start, length)

            out.write(f"\n\\{n}-grams:\n".encode())
            starts = range(0, len(o), CHUNK)
            for window in range(0, len(starts), 16 * workers):
                for text in pool.map(chunk, starts[window : window + 16 * workers]):
                    text.tofile(out)
        out.write(b"\n\\end\\\n")
    return path


def read_arpa(path: Path) -> dict[tuple[str, ...], tuple[float, float]]:
    """{n-gram words: (log10 prob, log10 backoff)} of an ARPA file."""
    entries: dict[tuple[str, ...], tuple[float, float]] = {}
    order = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("\\") and line.endswith("-grams:"):
                order = int(line[1:].split("-")[0])
                continue
            if not order or not line or line.startswith("\\"):
                continue
            fields = line.split("\t")
            words = tuple(fields[1].split(" "))
            if len(words) != order:
                raise ValueError(f"{path}: {line!r} is not a {order}-gram")
            entries[words] = (float(fields[0]), float(fields[2]) if len(fields) > 2 else 0.0)
    return entries
