"""Corpora: the named ones (`ptb`, `wikitext2`, `brown`, `wikitext103`, `wikitext103-wt2`) and
any directory of plain text.

`load_corpus` returns every split as one int32 id array with an <eos> after each line, the
vocabulary (from train, or from the spec's "vocab" file: `wikitext103-wt2` uses WikiText-2's)
and the corpus checksum that every run record carries.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError
from ..protocol import Segments, make_segments
from ..vocab import Vocab
from .encoded import (
    LARGE_SPLIT_BYTES,
    count_and_encode,
    count_words,
    count_words_here,
    encode_here,
    encode_in_blocks,
)
from .fetch import DATA_ENV, Located, digest, forget_downloads, locate
from .readers import brown_lines, empty_split
from .specs import CORPORA, CorpusSpec

SPLITS = ("train", "valid", "test")
DIRECTORY_FILES = {split: f"{split}.txt" for split in SPLITS}


@dataclass(frozen=True)
class Split:
    name: str
    ids: np.ndarray  # int32 token ids, one <eos> after every line (a large split: a `Spill`)
    eos_positions: np.ndarray  # int64 index of each line's <eos> in `ids`
    words: int  # tokens without the <eos>s
    oov_words: int  # words mapped to <unk> because the train split did not admit them

    @property
    def tokens(self) -> int:
        return int(self.ids.size)

    @property
    def lines(self) -> int:
        return int(self.eos_positions.size)


@dataclass(frozen=True)
class Corpus:
    name: str
    sha256: str  # of the per-file sha256s, in split order: identifies the exact bytes used
    vocab: Vocab
    splits: dict[str, Split]
    origin: str  # mirror / cache / URL / directory path
    vocab_settings: dict

    def segments(self, split: str, mode: str) -> Segments:
        """The split laid out for the evaluation protocol's `mode`."""
        s = self.splits[split]
        return make_segments(s.ids, s.eos_positions, mode, self.vocab.eos, self.vocab.bos)


def is_directory_corpus(name: str) -> bool:
    return name not in CORPORA and (os.sep in name or Path(name).is_dir())


def corpus_names() -> list[str]:
    return sorted(CORPORA)


def check_corpus_name(name: str) -> None:
    if name in CORPORA:
        return
    if is_directory_corpus(name):
        if not Path(name).is_dir():
            raise UsageError(f"corpus directory {name!r} does not exist")
        missing = [f for f in DIRECTORY_FILES.values() if not (Path(name) / f).exists()]
        if missing:
            raise UsageError(
                f"corpus directory {name!r} lacks {', '.join(missing)}: a directory corpus needs "
                f"train.txt, valid.txt and test.txt (UTF-8, one sentence per line)"
            )
        return
    raise UsageError(
        f"unknown corpus {name!r}; choose one of {', '.join(corpus_names())} or a directory "
        f"holding train.txt, valid.txt and test.txt"
    )


def locate_files(name: str, data_dir=None, download: bool = True) -> dict[str, Located]:
    """Verified local paths of the corpus's files, keyed as in its spec."""
    check_corpus_name(name)
    if name in CORPORA:
        located = {key: locate(f, data_dir, download) for key, f in CORPORA[name].files.items()}
        forget_downloads()  # an archive fetched once for several files is not kept in memory
        return located
    return {
        split: Located(Path(name) / fname, "directory") for split, fname in DIRECTORY_FILES.items()
    }


def corpus_sha256(files: dict[str, Located]) -> str:
    joined = "\n".join(f"{key} {digest(located.path)}" for key, located in sorted(files.items()))
    return hashlib.sha256(joined.encode()).hexdigest()


def load_corpus(
    name: str,
    data_dir=None,
    min_count: int | None = None,
    max_size: int | None = None,
    download: bool = True,
    sentence_ends: bool = True,
    test_words: int | None = None,
) -> Corpus:
    """A corpus's splits and vocabulary. Analysis variants (`text.*` settings): without
    `sentence_ends` each split is one line, so the only <eos> is the split's last (sentence
    ends get no special status, as in Bengio et al. 2003); `test_words` (Brown) cuts the word
    stream so that test has that many words, taken from the end of valid."""
    files = locate_files(name, data_dir, download)
    spec: CorpusSpec | None = CORPORA.get(name)
    if test_words is not None and (spec is None or spec.reader != "brown"):
        raise DataError(f"text.test_words applies to brown's word-stream cuts, not to {name}")
    settings = {
        "min_count": min_count if min_count is not None else (spec.min_count if spec else 1),
        "max_size": max_size,
    }
    if spec is not None and spec.reader == "brown":
        brown = brown_lines(files["archive"].path, test_words)
        vocab = Vocab.build(brown["train"], **settings)
        encoded = {}
        for split, tokens in brown.items():
            if not tokens.words:
                raise DataError(f"{name}: split {split!r} is empty")
            ids, eos_positions, oov = vocab.encode(tokens)
            encoded[split] = ids, eos_positions, len(tokens.words), oov
    else:
        encoded = _encode_files(name, files, settings, sentence_ends)
        vocab = encoded.pop("vocab")
    if not sentence_ends:  # each split one line: its only <eos> at the end
        encoded = {split: _as_one_line(*e, vocab.eos) for split, e in encoded.items()}
    if not sentence_ends or test_words is not None:
        settings |= {"sentence_ends": sentence_ends, "test_words": test_words}
    splits = {split: Split(split, *encoded[split]) for split in SPLITS}
    origin = ", ".join(sorted({located.origin for located in files.values()}))
    return Corpus(
        name=spec.name if spec else str(Path(name)),
        sha256=corpus_sha256(files),
        vocab=vocab,
        splits=splits,
        origin=origin,
        vocab_settings=settings,
    )


def _encode_files(name: str, files: dict[str, Located], settings: dict, sentence_ends: bool):
    """Each split's (ids, <eos> positions, words, OOV words), and the vocabulary (key "vocab"),
    from train or from the spec's "vocab" file (`wikitext103-wt2` takes WikiText-2's). A split
    over LARGE_SPLIT_BYTES becomes ids on disk (`encode_in_blocks`; a large train split makes the
    vocabulary in the same read, `count_and_encode`); the rest are read in blocks into memory,
    one split at a time."""
    large = {s for s in SPLITS if _file_size(files[s].path) > LARGE_SPLIT_BYTES}
    if large and not sentence_ends:
        raise DataError(
            f"{name}: text.sentence_ends=false reads a split as one line, which splits over "
            f"{LARGE_SPLIT_BYTES >> 20} MB ({', '.join(sorted(large))}) are not read as"
        )
    encoded = {}
    if "vocab" not in files and "train" in large:  # one read makes the vocabulary and the ids
        vocab, *encoded["train"] = count_and_encode(files["train"].path, settings)
        encoded["vocab"] = vocab
    else:
        source = "vocab" if "vocab" in files else "train"
        count = count_words if source in large else count_words_here
        encoded["vocab"] = Vocab.from_counts(count(files[source].path), **settings)
    for split in SPLITS:
        if split not in encoded:
            encode = encode_in_blocks if split in large else encode_here
            encoded[split] = encode(files[split].path, encoded["vocab"])
        if not encoded[split][2]:
            raise empty_split(files[split].path)
    return encoded


def _as_one_line(ids: np.ndarray, eos_positions: np.ndarray, words: int, oov: int, eos: int):
    """A split encoded line by line, as if it were all one line."""
    keep = np.ones(ids.size, dtype=bool)
    keep[eos_positions] = False
    one = np.append(ids[keep], np.asarray(eos, dtype=ids.dtype))
    return one, np.array([one.size - 1], dtype=np.int64), words, oov


def corpus_is_large(name: str, data_dir=None) -> bool:
    """Whether a split is read in blocks (loading it to check it costs minutes)."""
    files = locate_files(name, data_dir, download=False)
    return any(_file_size(located.path) > LARGE_SPLIT_BYTES for located in files.values())


def _file_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0  # a missing file fails in its reader


def describe(corpus: Corpus) -> dict:
    """What `lmbench corpora` prints: counts per split, vocabulary, OOV rates."""
    spec = CORPORA.get(corpus.name)
    out = {
        "corpus": corpus.name,
        "title": spec.title if spec else "directory of plain text",
        "available": True,
        "verified": bool(spec),
        "origin": corpus.origin,
        "sha256": corpus.sha256,
        "vocab_size": corpus.vocab.size,
        "vocab_settings": corpus.vocab_settings,
        "splits": {},
    }
    for split in SPLITS:
        s = corpus.splits[split]
        chunks = s.ids.chunks() if hasattr(s.ids, "chunks") else [(0, s.ids)]
        unk = sum(int(np.count_nonzero(c == corpus.vocab.unk)) for _, c in chunks)
        out["splits"][split] = {
            "lines": s.lines,
            "words": s.words,
            "tokens": s.tokens,
            "oov_rate": s.oov_words / max(s.words, 1),
            "unk_rate": unk / s.tokens,
        }
    if spec:
        out["published_tokens"] = spec.published_tokens or None
        out["published_vocab"] = spec.published_vocab
        out["notes"] = spec.notes or None
        out["differs_from_published"] = differences(corpus, spec)
    return out


def differences(corpus: Corpus, spec: CorpusSpec) -> list[str] | None:
    """Where this corpus's counts differ from the published ones ([] where none does; None
    where nothing is published or other vocabulary settings make other counts by design)."""
    default = corpus.vocab_settings == {"min_count": spec.min_count, "max_size": None}
    if not default or not (spec.published_tokens or spec.published_vocab):
        return None
    found = [
        f"{split} {corpus.splits[split].tokens:,} tokens (published {count:,})"
        for split, count in spec.published_tokens.items()
        if corpus.splits[split].tokens != count
    ]
    if spec.published_vocab and corpus.vocab.size != spec.published_vocab:
        found.append(f"vocabulary {corpus.vocab.size:,} (published {spec.published_vocab:,})")
    return found


__all__ = [
    "DATA_ENV",
    "SPLITS",
    "Corpus",
    "Split",
    "check_corpus_name",
    "corpus_names",
    "corpus_sha256",
    "describe",
    "differences",
    "load_corpus",
    "locate_files",
]
