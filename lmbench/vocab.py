"""The vocabulary: built from the train split only; everything else maps unknown words to <unk>.

Ids: 0 is <eos>, 1 is <unk>, then train words by falling frequency (ties alphabetical), so the
ids are stable for a given train file. <s> (sentence mode's start context) gets id `size`: it is
context only, never predicted, and is not part of the vocabulary a model distributes over.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import chain, repeat

import numpy as np

EOS, UNK, BOS = "<eos>", "<unk>", "<s>"


@dataclass(frozen=True)
class Tokens:
    """Whitespace tokens of a text as one flat list plus the number of tokens on each line."""

    words: list[str]
    lengths: np.ndarray  # int64, one entry per line (blank lines: 0)

    @classmethod
    def from_lines(cls, lines: list[list[str]]) -> Tokens:
        lengths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
        return cls(list(chain.from_iterable(lines)), lengths)


def _tokens(text: Tokens | list[list[str]]) -> Tokens:
    return text if isinstance(text, Tokens) else Tokens.from_lines(text)


@dataclass(frozen=True)
class Vocab:
    itos: tuple[str, ...]

    @classmethod
    def build(
        cls, train: Tokens | list[list[str]], min_count: int = 1, max_size: int | None = None
    ) -> Vocab:
        return cls.from_counts(Counter(_tokens(train).words), min_count, max_size)

    @classmethod
    def from_counts(cls, counts: Counter, min_count: int = 1, max_size: int | None = None) -> Vocab:
        """The vocabulary from train's word counts (a large train split is counted in blocks)."""
        if min_count < 1:
            raise ValueError(f"vocab.min_count must be >= 1, got {min_count}")
        counts = Counter(counts)
        counts.pop(EOS, None)
        counts.pop(UNK, None)
        words = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        if max_size is not None:
            if max_size < 3:
                raise ValueError(
                    f"vocab.max_size must be >= 3 (<eos>, <unk> and a word), got {max_size}"
                )
            words = words[: max_size - 2]
        # copies, made while the text's words are all alive, so they land together: the
        # counted keys are the text's own strs, one in each of its allocator pools, and kept
        # they would keep all of its memory (WikiText-2: 140 MB resident after loading)
        return cls((EOS, UNK, *(w.encode().decode() for w in words)))

    @property
    def size(self) -> int:
        return len(self.itos)

    @property
    def eos(self) -> int:
        return 0

    @property
    def unk(self) -> int:
        return 1

    @property
    def bos(self) -> int:
        return len(self.itos)

    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.itos)}

    def encode(self, text: Tokens | list[list[str]]) -> tuple[np.ndarray, np.ndarray, int]:
        """Ids of every word plus one <eos> per line; the position of each <eos>; OOV word count.

        A literal `<unk>` in the text is in-vocabulary (PTB and WikiText-2 ship it); only words
        the train split did not admit count as OOV.
        """
        stoi = self.index()
        text = _tokens(text)
        words, lengths = text.words, text.lengths
        word_ids = np.fromiter(
            map(stoi.get, words, repeat(self.unk)), dtype=np.int32, count=len(words)
        )
        ids, eos_positions = with_line_ends(word_ids, lengths, self.eos)
        oov = int(np.count_nonzero(word_ids == self.unk)) - words.count(UNK)
        return ids, eos_positions, oov

    def decode(self, ids) -> list[str]:
        return [self.itos[i] if i < self.size else BOS for i in ids]


def with_line_ends(word_ids: np.ndarray, lengths: np.ndarray, eos: int) -> tuple[np.ndarray, ...]:
    """`word_ids` with `eos` after each line of `lengths` words, and each `eos`'s position."""
    ends = np.cumsum(lengths)  # where each line's <eos> goes, in word coordinates
    return np.insert(word_ids, ends, eos), ends + np.arange(lengths.size)
