"""A large split read in blocks and encoded into a column on disk, never held as Python strings.

`read_tokens` makes a Python str per word (about 60 bytes each): fine for PTB and WikiText-2,
about 6 GB for WikiText-103's 103 M words, more than the memory cap a count model may be given
(`--set memory=SIZE`). A split file above `LARGE_SPLIT_BYTES` is read twice in blocks of lines:
once to count its words (when it is the train split the vocabulary comes from), once to write
its ids into a `Spill`. The ids are the ones the whole-file path gives (tested), and a model that
needs them in memory reads them with `np.asarray`. Both passes run in a child process: the
vocabulary's strings, first seen all through the text, would otherwise pin the allocator's
arenas of every block's freed strings (measured: 430 MB resident after reading 10 M tokens).
"""

from __future__ import annotations

import multiprocessing
import tempfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ..spill import Spill
from ..vocab import Vocab
from . import readers
from .readers import line_blocks, tokens_of

LARGE_SPLIT_BYTES = 32 << 20  # WikiText-2's train is 11 MB; WikiText-103's 540 MB


def _in_a_child(fn, *args):
    """fn(*args) in a fresh process (spawned: the caller may hold threads), its memory freed."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(fn, *args).result()


def count_words(path: Path) -> tuple[Counter, int]:
    """Word counts of a text file and its number of words, a block at a time."""
    return _in_a_child(_count_words, path, readers.BLOCK_BYTES)


def _count_words(path: Path, block_bytes: int) -> tuple[Counter, int]:
    counts, words = Counter(), 0
    for _, text in line_blocks(path, block_bytes):
        block = text.split()
        counts.update(block)
        words += len(block)
    return counts, words


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


def _encode(path: Path, vocab: Vocab, out: Path, block_bytes: int):
    eos, words, oov, size = [], 0, 0, 0
    with open(out, "r+b") as f:
        for raw, text in line_blocks(path, block_bytes):
            tokens = tokens_of(raw, text)
            block, ends, block_oov = vocab.encode(tokens)
            eos.append(ends + size)
            f.write(block.astype(np.int32).tobytes())
            size += block.size
            words += len(tokens.words)
            oov += block_oov
    return np.concatenate(eos) if eos else np.zeros(0, dtype=np.int64), words, oov
