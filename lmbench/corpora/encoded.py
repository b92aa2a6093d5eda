"""Splits read in blocks of lines and encoded to ids: only a block's words are ever Python strs.

A word as a Python str costs about 60 bytes: 120 MB for WikiText-2's train split, about 6 GB
for WikiText-103's 103 M words, more than the memory cap a count model may be given (`--set
memory=SIZE`). Every split is read twice in blocks: once to count its words (when the
vocabulary comes from it), once to encode it. A split that fits in memory is encoded into one
array here (`encode_here`); one above `LARGE_SPLIT_BYTES` into a `Spill` on disk, both passes in
a child process, so that nothing the allocator keeps from its strings stays in this one (measured
before the vocabulary copied its words: 430 MB resident after reading 10 M tokens). The ids are
the ones `Vocab.encode` gives for the whole file (tested), and a model that needs a column's in
memory reads them with `np.asarray`.
"""

from __future__ import annotations

import multiprocessing
import tempfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat
from pathlib import Path

import numpy as np

from ..spill import Spill
from ..vocab import UNK, Vocab, with_line_ends
from . import readers
from .readers import line_blocks, line_spans, tokens_of

LARGE_SPLIT_BYTES = 32 << 20  # WikiText-2's train is 11 MB; WikiText-103's 540 MB


def _in_a_child(fn, *args):
    """fn(*args) in a fresh process (spawned: the caller may hold threads), its memory freed."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(fn, *args).result()


def count_words(path: Path) -> Counter:
    """Word counts of a text file, a block at a time, in a child process."""
    return _in_a_child(_count_words, path, readers.BLOCK_BYTES)


def _count_words(path: Path, block_bytes: int) -> Counter:
    counts = Counter()
    for _, text in line_blocks(path, block_bytes):
        counts.update(text.split())
    return counts


class EncodedSplit:
    """Where encoded splits live: one temporary folder per process, removed when it ends."""

    _folder: tempfile.TemporaryDirectory | None = None

    @classmethod
    def folder(cls) -> Path:
        if cls._folder is None:
            cls._folder = tempfile.TemporaryDirectory(prefix="lmbench-corpus-")
        return Path(cls._folder.name)


def encode_in_blocks(path: Path, vocab: Vocab) -> tuple[Spill, np.ndarray, int, int]:
    """(ids with an <eos> after each line, each <eos>'s position, words, OOV words) of a split,
    as `Vocab.encode` gives them for the whole file, the ids in a column on disk."""
    folder = EncodedSplit.folder()
    ids = Spill(folder, f"{len(list(folder.iterdir())):03d}-{path.name}.ids", np.int32)
    ids.keep = EncodedSplit._folder  # the folder outlives every column in it
    eos, words, oov = _in_a_child(_encode, path, vocab, ids.path, readers.BLOCK_BYTES)
    ids.size = ids.path.stat().st_size // ids.row_bytes
    return ids, eos, words, oov


PARTS = 2  # children reading a large train split side by side, a range of its lines each


def count_and_encode(path: Path, settings: dict) -> tuple[Vocab, Spill, np.ndarray, int, int]:
    """The vocabulary a large split's words make (`Vocab.from_counts` with `settings`) and the
    split encoded by it, in one read of the text: children each read a range of its lines and
    number its words as they first see them (0: a line's end), and the numbers are then mapped
    to the vocabulary's ids. Ids, <eos> positions and counts are `encode_in_blocks`' (tested)."""
    folder = EncodedSplit.folder()
    name = f"{len(list(folder.iterdir())):03d}-{path.name}"
    spans = line_spans(path, PARTS)
    parts = [folder / f"{name}.part{k}" for k in range(len(spans))]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(spans), mp_context=context) as pool:
        numbered = list(
            pool.map(
                _number_words, [path] * len(spans), spans, parts, [readers.BLOCK_BYTES] * len(spans)
            )
        )
    counts = Counter()
    for words, word_counts, _ in numbered:
        counts.update(dict(zip(words, word_counts[1:].tolist())))
    vocab = Vocab.from_counts(counts, **settings)
    del counts
    stoi = vocab.index()
    ids = Spill(folder, f"{name}.ids", np.int32)
    ids.keep = EncodedSplit._folder  # the folder outlives every column in it
    eos, words, oov = [], 0, 0
    for (seen, word_counts, ends), part in zip(numbered, parts):
        to_id = np.fromiter(map(stoi.get, seen, repeat(vocab.unk)), np.int32, count=len(seen))
        literal_unk = np.fromiter((w == UNK for w in seen), bool, count=len(seen))
        oov += int(word_counts[1:][(to_id == vocab.unk) & ~literal_unk].sum())
        words += int(word_counts[1:].sum())
        to_id = np.concatenate([[vocab.eos], to_id]).astype(np.int32)
        eos.append(ends + ids.size)
        numbers = np.memmap(part, dtype=np.int32, mode="r")
        for start in range(0, numbers.size, 1 << 22):
            ids.append(to_id[numbers[start : start + (1 << 22)]])
        del numbers
        part.unlink()
    return vocab, ids, np.concatenate(eos), words, oov


def _number_words(path: Path, span: tuple[int, int], out: Path, block_bytes: int):
    """A range of lines as numbers in `out` (int32; words numbered from 1 as first seen, 0 after
    each line): (the words in number order, how often each number occurs, each 0's position)."""
    number: dict[str, int] = {}
    counts = np.zeros(1, dtype=np.int64)
    eos, size = [], 0
    with open(out, "wb") as f:
        for raw, text in line_blocks(path, block_bytes, span):
            tokens = tokens_of(raw, text)
            for word in dict.fromkeys(tokens.words):
                if word not in number:
                    number[word] = len(number) + 1
            block = np.fromiter(map(number.__getitem__, tokens.words), np.int32, len(tokens.words))
            block, ends = with_line_ends(block, tokens.lengths, 0)
            del raw, text, tokens  # before the next block is read: one block's strs at a time
            eos.append(ends + size)
            f.write(block.tobytes())
            size += block.size
            seen = np.bincount(block, minlength=len(number) + 1)
            seen[: counts.size] += counts
            counts = seen
    return list(number), counts, np.concatenate(eos) if eos else np.zeros(0, dtype=np.int64)


def _encode(path: Path, vocab: Vocab, out: Path, block_bytes: int):
    eos, words, oov = [], 0, 0
    with open(out, "r+b") as f:
        for block, ends, block_words, block_oov in encoded_blocks(path, vocab, block_bytes):
            f.write(block.tobytes())
            eos.append(ends)
            words += block_words
            oov += block_oov
    return np.concatenate(eos) if eos else np.zeros(0, dtype=np.int64), words, oov


def encoded_blocks(path: Path, vocab: Vocab, block_bytes: int | None = None):
    """Per block of lines: (int32 ids with an <eos> after each line, each <eos>'s position in
    the whole split, words, OOV words), as `Vocab.encode` gives them for the whole file."""
    size = 0
    for raw, text in line_blocks(path, block_bytes):
        tokens = tokens_of(raw, text)
        block, ends, block_oov = vocab.encode(tokens)
        words = len(tokens.words)
        del raw, text, tokens  # before the next block is read: one block's strs at a time
        yield block.astype(np.int32, copy=False), ends + size, words, block_oov
        size += block.size


def count_words_here(path: Path) -> Counter:
    """A split's word counts, a block at a time, in this process (a split that fits memory)."""
    return _count_words(path, readers.BLOCK_BYTES)


def encode_here(path: Path, vocab: Vocab) -> tuple[np.ndarray, np.ndarray, int, int]:
    """`encode_in_blocks` into memory, in this process: only a block's words are ever Python
    strs (a whole split's cost ~60 bytes a word: 120 MB for WikiText-2's train)."""
    blocks = list(encoded_blocks(path, vocab))
    if not blocks:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64), 0, 0
    ids, eos, words, oov = zip(*blocks)
    return np.concatenate(ids), np.concatenate(eos), sum(words), sum(oov)
