"""Turn verified corpus files into lines of whitespace tokens."""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from .specs import BROWN_CUTS


def read_lines(path: Path) -> list[list[str]]:
    """One list of tokens per line; blank lines kept (they still end with <eos>)."""
    if not path.exists():
        raise DataError(f"{path}: missing split file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path}:{line}: not valid UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line does not start another
    tokens = [line.split() for line in lines]
    if not any(tokens):
        raise DataError(f"{path}: empty split (no tokens); every split needs at least one word")
    return tokens


def brown_lines(zip_path: Path) -> dict[str, list[list[str]]]:
    """Bengio et al.'s split of the Brown word stream, read with NLTK's own reader."""
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
    return cut_word_stream(list(reader.sents()), BROWN_CUTS)


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
