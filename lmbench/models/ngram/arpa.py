"""Stage 5: ARPA text out (log10, as SRILM and KenLM read it), and a reader for tests.

lmbench works in natural logs; the conversion happens here, at the edge. Writing is vectorised:
numbers become fixed 7-decimal text through a digit matrix and lines are joined with numpy's
string ufuncs, so a PTB 5-gram model is written without a Python loop per n-gram.
"""

from __future__ import annotations

import math
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


def format_log10(values: np.ndarray) -> np.ndarray:
    """'-d.ddddddd' bytes of log10 values <= 0 (-inf, for <s>, is written 0 as lmplz does)."""
    v = np.minimum(np.nan_to_num(np.asarray(values, dtype=np.float64), neginf=0.0), 0.0)
    q = np.rint(-v * 10**DECIMALS).astype(np.int64)
    wide = q >= 10 ** (DECIMALS + 1)
    high, low = np.divmod(np.where(wide, 0, q), 10**4)
    chars = np.empty((v.size, 10), dtype=np.uint8)
    chars[:, 0] = ord("-")
    chars[:, 1] = _DIGITS4[high, 0]
    chars[:, 2] = ord(".")
    chars[:, 3:6] = _DIGITS4[high, 1:]
    chars[:, 6:] = _DIGITS4[low]
    text = chars.view("S10").ravel()
    if wide.any():  # below 1e-10: rare enough to format one by one
        text = text.astype("S16")
        text[wide] = [f"{x:.{DECIMALS}f}".encode() for x in v[wide]]
    return text


def write_arpa(tables: BackoffTables, itos: tuple[str, ...], path: Path) -> Path:
    """Each order's lines are built as fixed-width byte strings (numpy string ufuncs) whose NUL
    padding is then dropped: no Python loop per n-gram. Context text is reused from the order
    below (an n-gram is its prefix plus one word)."""
    counts = tables.counts
    names = np.array([w.encode() for w in arpa_words(itos)])
    top = counts.order
    with open(path, "wb") as out:
        header = "\n\\data\\\n" + "".join(
            f"ngram {n}={len(o)}\n" for n, o in enumerate(counts.orders, 1)
        )
        out.write(header.encode())
        text = None
        for n in range(1, top + 1):
            o = counts.orders[n - 1]
            word = names[o.keys % counts.radix] if n > 1 else names[o.keys]
            text = word if n == 1 else np.strings.add(np.strings.add(text[o.prefix], b" "), word)
            line = np.strings.add(
                np.strings.add(format_log10(tables.log_prob[n - 1] * LOG10_E), b"\t"), text
            )
            if n < top:
                backoff = format_log10(tables.log_backoff[n - 1] * LOG10_E)
                line = np.strings.add(np.strings.add(line, b"\t"), backoff)
            line = np.strings.add(line, b"\n")
            raw = line.view(np.uint8)
            out.write(f"\n\\{n}-grams:\n".encode())
            raw[raw != 0].tofile(out)
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
