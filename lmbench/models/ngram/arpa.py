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
    """`before` + '-d.ddddddd' + `after` as fixed-width bytes, for log10 values <= 0.

    -inf (<s>) is written 0 as lmplz does; the rare |value| >= 10 is formatted one by one.
    """
    v = np.minimum(np.nan_to_num(np.asarray(values, dtype=np.float64), neginf=0.0), 0.0)
    q = np.rint(-v * 10**DECIMALS).astype(np.int64)
    wide = q >= 10 ** (DECIMALS + 1)
    high, low = np.divmod(np.where(wide, 0, q), 10**4)
    b, a = len(before), len(after)
    chars = np.empty((v.size, b + 10 + a), dtype=np.uint8)
    chars[:, :b] = np.frombuffer(before, dtype=np.uint8)
    chars[:, b] = ord("-")
    chars[:, b + 1] = _DIGITS4[high, 0]
    chars[:, b + 2] = ord(".")
    chars[:, b + 3 : b + 6] = _DIGITS4[high, 1:]
    chars[:, b + 6 : b + 10] = _DIGITS4[low]
    chars[:, b + 10 :] = np.frombuffer(after, dtype=np.uint8)
    text = chars.view(f"S{chars.shape[1]}").ravel()
    if wide.any():  # below 1e-10: rare enough to format one by one
        text = text.astype(f"S{chars.shape[1] + 8}")
        text[wide] = [before + f"{x:.{DECIMALS}f}".encode() + after for x in v[wide]]
    return text


CHUNK = 1 << 17  # lines per work item: bounds the padded temporaries, feeds both threads


def _lines(prob: np.ndarray, text: np.ndarray, tail: np.ndarray | bytes) -> np.ndarray:
    """The bytes of `prob` + `text` + `tail` per line, NUL padding removed."""
    line = np.strings.add(np.strings.add(prob, text), tail)
    raw = line.view(np.uint8)
    return raw[raw != 0]


def write_arpa(tables: BackoffTables, itos: tuple[str, ...], path: Path) -> Path:
    """Lines are built as fixed-width byte strings (numpy string ufuncs, which release the GIL,
    in chunks over a thread pool) whose NUL padding is then dropped: no Python loop per n-gram.
    An n-gram's text is its prefix's text plus one word, reused from the order below."""
    counts = tables.counts
    names = np.array([w.encode() for w in arpa_words(itos)])
    spaced = np.strings.add(b" ", names)
    top = counts.order
    with open(path, "wb") as out, ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        header = "\n\\data\\\n" + "".join(f"ngram {n}={len(o)}\n" for n, o in enumerate(counts.orders, 1))
        out.write(header.encode())
        text = None
        for n in range(1, top + 1):
            o = counts.orders[n - 1]
            if n == 1:
                text = names[o.keys]
            else:
                text = np.strings.add(text[o.prefix], spaced[o.keys % counts.radix])
            prob = format_log10(tables.log_prob[n - 1] * LOG10_E, after=b"\t")
            if n < top:
                tail = format_log10(tables.log_backoff[n - 1] * LOG10_E, before=b"\t", after=b"\n")
            else:
                tail = np.full(len(o), b"\n", dtype="S1")
            out.write(f"\n\\{n}-grams:\n".encode())
            bounds = range(0, len(o), CHUNK)
            for chunk in pool.map(lambda a: _lines(prob[a : a + CHUNK], text[a : a + CHUNK], tail[a : a + CHUNK]), bounds):
                chunk.tofile(out)
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
