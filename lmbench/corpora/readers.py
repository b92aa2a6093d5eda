"""Turn verified corpus files into whitespace tokens, line by line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..vocab import Tokens
from .specs import BROWN_CUTS

# What str.split() treats as whitespace: ASCII 9-13 and 28-32, and these UTF-8 sequences. A file
# without the latter gets its per-line token counts from a byte scan in numpy.
_ASCII_SPACE = np.zeros(256, dtype=bool)
_ASCII_SPACE[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True
_UNICODE_SPACE = re.compile(
    rb"\xc2[\x85\xa0]|\xe1\x9a\x80|\xe2\x80[\x80-\x8a\xa8\xa9\xaf]|\xe2\x81\x9f|\xe3\x80\x80"
)


def _decode(path: Path) -> tuple[bytes, str]:
    if not path.exists():
        raise DataError(f"{path}: missing split file")
    raw = path.read_bytes()
    try:
        return raw, raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path}:{line}: not valid UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None


def empty_split(path: Path) -> DataError:
    return DataError(f"{path}: empty split (no tokens); every split needs at least one word")


def _split_lines(text: str) -> list[list[str]]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line does not start another
    return [line.split() for line in lines]


def read_lines(path: Path) -> list[list[str]]:
    """One list of tokens per line; blank lines kept (they still end with <eos>)."""
    tokens = _split_lines(_decode(path)[1])
    if not any(tokens):
        raise empty_split(path)
    return tokens


def read_tokens(path: Path) -> Tokens:
    """`read_lines` as one flat word list and per-line counts: no Python list per line."""
    raw, text = _decode(path)
    tokens = tokens_of(raw, text)
    if not tokens.words:
        raise empty_split(path)
    return tokens


def tokens_of(raw: bytes, text: str) -> Tokens:
    """The words of `text` (decoded from `raw`) and the count on each line."""
    words = text.split()
    if _UNICODE_SPACE.search(raw):  # rare: let str.split find the lines' words
        return Tokens.from_lines(_split_lines(text))
    data = np.frombuffer(raw, dtype=np.uint8)
    space = _ASCII_SPACE[data]
    starts = np.flatnonzero(~space & np.concatenate([[True], space[:-1]]))  # first byte of a word
    newlines = np.flatnonzero(data == ord("\n"))
    n_lines = newlines.size + (0 if raw.endswith(b"\n") or not raw else 1)
    lengths = np.bincount(np.searchsorted(newlines, starts), minlength=n_lines)[:n_lines]
    return Tokens(words, lengths.astype(np.int64))


BLOCK_BYTES = 4 << 20  # a block's words as Python strings take ~15x its bytes


def line_blocks(path: Path, size: int | None = None, span: tuple[int, int] | None = None):
    """(raw, text) blocks of `path` of about `size` bytes, each ending at a line's end; with
    `span`, of its bytes start..end only (both at lines' starts: `line_spans`)."""
    size = size or BLOCK_BYTES
    if not path.exists():
        raise DataError(f"{path}: missing split file")
    start, end = span or (0, path.stat().st_size)
    offset, lines, tail = start, 0, b""
    with open(path, "rb") as f:
        f.seek(start)
        while True:
            chunk = f.read(max(0, min(size, end - f.tell())))
            raw = tail + chunk
            if chunk:
                cut = raw.rfind(b"\n") + 1
                raw, tail = (raw[:cut], raw[cut:]) if cut else (b"", raw)
            else:
                tail = b""
            if raw:
                try:
                    yield raw, raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    line = _lines_before(path, start) + lines + raw.count(b"\n", 0, exc.start) + 1
                    raise DataError(
                        f"{path}:{line}: not valid UTF-8 ({exc.reason} at byte "
                        f"{offset + exc.start})"
                    ) from None
                offset += len(raw)
                lines += raw.count(b"\n")
            if not chunk:
                return


def _lines_before(path: Path, start: int) -> int:
    """Line ends in the first `start` bytes (an error's line number, found only on error)."""
    if not start:
        return 0
    with open(path, "rb") as f:
        return sum(
            block.count(b"\n")
            for block in iter(lambda: f.read(min(1 << 24, start - f.tell())), b"")
        )


def line_spans(path: Path, parts: int) -> list[tuple[int, int]]:
    """`path`'s bytes in up to `parts` (start, end) spans of about equal size, each starting
    at a line's start (a span boundary moves to the next line end)."""
    size = path.stat().st_size
    cuts = [0]
    with open(path, "rb") as f:
        for k in range(1, parts):
            f.seek(max(cuts[-1], size * k // parts))
            f.readline()  # to the end of the line the cut fell in
            cuts.append(min(f.tell(), size))
    cuts.append(size)
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def brown_lines(zip_path: Path, test_words: int | None = None) -> dict[str, Tokens]:
    """Bengio et al.'s split of the Brown word stream, read with NLTK's own reader; with
    `test_words`, valid ends where a test of that many words begins."""
    import nltk.data
    from nltk.corpus.reader import CategorizedTaggedCorpusReader
    from nltk.data import ZipFilePathPointer

    # NLTK only opens files under its data path; this zip's sha256 has just been verified.
    folder = str(zip_path.parent.resolve())
    if folder not in nltk.data.path:
        nltk.data.path.append(folder)
    reader = CategorizedTaggedCorpusReader(
        ZipFilePathPointer(str(zip_path), "brown/"),
        r"c[a-z]\d\d",
        cat_file="cats.txt",
        tagset="brown",
        encoding="ascii",
    )
    sentences = list(reader.sents())
    cuts = BROWN_CUTS
    if test_words is not None:
        total = sum(map(len, sentences))
        if not 0 < test_words < total - cuts[0]:
            raise DataError(
                f"text.test_words={test_words}: brown has {total:,} words and train takes the "
                f"first {cuts[0]:,}; choose 1 to {total - cuts[0] - 1:,}"
            )
        cuts = (cuts[0], total - test_words)
    splits = cut_word_stream(sentences, cuts)
    return {split: Tokens.from_lines(lines) for split, lines in splits.items()}


def cut_word_stream(
    sentences: list[list[str]], cuts: tuple[int, int]
) -> dict[str, list[list[str]]]:
    """Cut the concatenated words at word counts `cuts`; a sentence across a cut becomes two lines."""
    splits: dict[str, list[list[str]]] = {"train": [], "valid": [], "test": []}
    names = list(splits)
    boundaries = list(cuts)
    seen = 0
    part = 0
    for sentence in sentences:
        rest = list(sentence)
        while rest:
            room = boundaries[part] - seen if part < len(boundaries) else len(rest)
            take = rest[:room]
            splits[names[part]].append(take)
            seen += len(take)
            rest = rest[room:]
            if part < len(boundaries) and seen == boundaries[part]:
                part += 1
    return splits
