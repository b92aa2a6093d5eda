"""Stage 5: ARPA text out (log10, as SRILM and KenLM read it), and a reader for tests.

lmbench works in natural logs; the conversion happens here, at the edge. Writing is vectorised:
numbers become fixed 7-decimal text through a digit matrix and lines are joined with numpy's
string ufuncs, so a PTB 5-gram model is written without a Python loop per n-gram.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

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
    <= 0. A leading zero digit is written as NUL, which the writer drops with the padding, so
    -0.5 reads "-0.5000000". -inf (<s>, never predicted) is written 0, as lmplz does."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64), neginf=0.0), -99.9999999, 0.0)
    q = np.rint(-v * 10**DECIMALS).astype(np.int64)  # < 10**9
    high, low = np.divmod(q, 10**4)  # high: 2 integer digits and 3 decimals
    b, a = len(before), len(after)
    chars = np.empty((v.size, b + 11 + a), dtype=np.uint8)
    chars[:, :b] = np.frombuffer(before, dtype=np.uint8)
    chars[:, b] = ord("-")
    tens, rest = np.divmod(high, 1000)
    chars[:, b + 1] = np.where(tens >= 10, ord("0") + tens // 10, 0)
    chars[:, b + 2] = ord("0") + tens % 10
    chars[:, b + 3] = ord(".")
    chars[:, b + 4 : b + 7] = _DIGITS4[rest, 1:]
    chars[:, b + 7 : b + 11] = _DIGITS4[low]
    chars[:, b + 11 :] = np.frombuffer(after, dtype=np.uint8)
    return chars


CHUNK = 1 << 16  # lines per work item: bounds the padded temporaries, feeds every core


def _as_rows(strings: np.ndarray) -> np.ndarray:
    """A fixed-width bytes array as a (n, width) uint8 matrix (NUL-padded)."""
    return strings.view(np.uint8).reshape(strings.size, -1)


def _drop_padding(*parts: np.ndarray) -> np.ndarray:
    rows = np.concatenate(parts, axis=1).ravel()
    return rows[rows != 0]


def write_arpa(tables: BackoffTables, itos: tuple[str, ...], path: Path) -> Path:
    """Every line is a row of a NUL-padded uint8 matrix: number, words, backoff side by side;
    dropping the NULs leaves the ARPA text. An n-gram's words are its prefix's words plus one,
    reused from the order below (a column on disk when the model is: `tables.spill`). Chunks run
    on a thread pool (numpy releases the GIL here), a few at a time so memory stays bounded."""
    counts = tables.counts
    names = np.array([w.encode() for w in arpa_words(itos)])
    first = _as_rows(names)
    spaced = _as_rows(np.strings.add(b" ", names))
    top = counts.order
    workers = os.cpu_count() or 1
    with open(path, "wb") as out, ThreadPoolExecutor(max_workers=workers) as pool:
        header = "\n\\data\\\n" + "".join(
            f"ngram {n}={len(o)}\n" for n, o in enumerate(counts.orders, 1)
        )
        out.write(header.encode())
        words = first[:0]
        for n in range(1, top + 1):
            o = counts.orders[n - 1]
            below = words
            width = first.shape[1] + (n - 1) * spaced.shape[1]
            if tables.spill is None or n == top:  # the top order's words are never reused
                words = np.empty((len(o) if n < top else 0, width), dtype=np.uint8)
            else:
                words = tables.spill.new(f"words{n}", np.uint8, (width,))
                words.resize(len(o))  # before the threads write their rows into it
            log_prob, log_backoff = (
                tables.log_prob[n - 1],
                tables.log_backoff[n - 1] if n < top else None,
            )

            def chunk(
                a: int,
                n=n,
                o=o,
                below=below,
                words=words,
                log_prob=log_prob,
                log_backoff=log_backoff,
            ):
                z = slice(a, a + CHUNK)
                if n == 1:
                    rows = first[o.keys[z]]
                else:
                    rows = np.concatenate(
                        [below[o.prefix[z]], spaced[o.keys[z] % counts.radix]], axis=1
                    )
                if n < top:
                    words[a : a + len(rows)] = rows
                prob = format_log10(log_prob[z] * LOG10_E, after=b"\t")
                if log_backoff is None:
                    tail = np.full((prob.shape[0], 1), ord("\n"), dtype=np.uint8)
                else:
                    tail = format_log10(log_backoff[z] * LOG10_E, before=b"\t", after=b"\n")
                return _drop_padding(prob, rows, tail)

            out.write(f"\n\\{n}-grams:\n".encode())
            starts = range(0, len(o), CHUNK)
            for window in range(0, len(starts), 2 * workers):
                for text in pool.map(chunk, starts[window : window + 2 * workers]):
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
