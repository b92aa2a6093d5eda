"""Stage 5: ARPA text out (log10, as SRILM and KenLM read it), and a reader for tests.

lmbench works in natural logs; the conversion happens here, at the edge.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .interpolated import BackoffTables

LOG10_E = 1.0 / math.log(10.0)


def arpa_words(itos: tuple[str, ...]) -> list[str]:
    """Our token names in ARPA's spelling: <eos> is </s>; id |V| is <s>."""
    return [("</s>" if w == "<eos>" else w) for w in itos] + ["<s>"]


def write_arpa(tables: BackoffTables, itos: tuple[str, ...], path: Path) -> Path:
    counts = tables.counts
    names = np.array(arpa_words(itos), dtype=object)
    top = counts.order
    with open(path, "w", encoding="utf-8") as out:
        out.write("\n\\data\\\n")
        for n in range(1, top + 1):
            out.write(f"ngram {n}={len(counts.orders[n - 1])}\n")
        for n in range(1, top + 1):
            out.write(f"\n\\{n}-grams:\n")
            words = counts.words(n)
            text = names[words[:, 0]]
            for k in range(1, n):
                text = text + " " + names[words[:, k]]
            logp = tables.log_prob[n - 1] * LOG10_E
            logp[~np.isfinite(logp)] = 0.0  # <s>: never predicted; lmplz writes 0
            if n < top:
                bo = tables.log_backoff[n - 1] * LOG10_E
                lines = [
                    f"{p:.7g}\t{t}\t{b:.7g}\n" for p, t, b in zip(logp.tolist(), text, bo.tolist())
                ]
            else:
                lines = [f"{p:.7g}\t{t}\n" for p, t in zip(logp.tolist(), text)]
            out.writelines(lines)
        out.write("\n\\end\\\n")
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
