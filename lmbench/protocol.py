"""The evaluation protocol's data shape: what is context and what is predicted.

Both modes become `Segments`: token ids cut into independent segments whose first token is
context only and whose every other token is predicted exactly once.

    stream:    [<eos> t1 t2 ... tn]                      one segment, the whole split
    sentence:  [<s> w1 ... <eos>] [<s> w1 ... <eos>] ...  one segment per line

A model sees, for each predicted token, only tokens before it in the same segment. The stream's
leading <eos> gives the first token the context every later sentence start has.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODES = ("stream", "sentence")


@dataclass(frozen=True)
class Segments:
    ids: np.ndarray  # int32, all segments back to back
    starts: np.ndarray  # int64, start of each segment, then len(ids)

    @property
    def n_segments(self) -> int:
        return int(self.starts.size - 1)

    @property
    def n_predicted(self) -> int:
        return int(self.ids.size - self.n_segments)

    def segment_start_of_each_position(self) -> np.ndarray:
        lengths = np.diff(self.starts)
        return np.repeat(self.starts[:-1], lengths)

    def tokens_to_the_left(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """For positions start..stop-1: how many tokens of their segment precede them."""
        stop = self.ids.size if stop is None else stop
        positions = np.arange(start, stop, dtype=np.int64)
        if start == 0 and stop == self.ids.size:  # all of them: no search
            return positions - self.segment_start_of_each_position()
        segment = np.searchsorted(self.starts, positions, side="right") - 1
        return positions - self.starts[segment]

    def predicted_positions(self) -> np.ndarray:
        """Indices into `ids` of the predicted tokens, in order."""
        mask = np.ones(self.ids.size, dtype=bool)
        mask[self.starts[:-1]] = False
        return np.flatnonzero(mask)

    def targets(self) -> np.ndarray:
        return self.ids[self.predicted_positions()]

    def split(self) -> list[np.ndarray]:
        """Each segment's ids (views), in order."""
        return np.split(self.ids, self.starts[1:-1])

    def head(self, n_predicted: int) -> Segments:
        """The prefix holding the first `n_predicted` predicted tokens (a training-token budget)."""
        if n_predicted >= self.n_predicted:
            return self
        # predicted tokens through the end of each segment; the n-th lies in segment j, at n + j
        through = self.starts[1:] - np.arange(1, self.starts.size)
        j = int(np.searchsorted(through, n_predicted))
        end = n_predicted + j + 1
        starts = self.starts[self.starts < end]
        ids = self.ids.head(end) if hasattr(self.ids, "head") else self.ids[:end]
        return Segments(ids, np.append(starts, end))


def make_segments(
    ids: np.ndarray, eos_positions: np.ndarray, mode: str, eos: int, bos: int
) -> Segments:
    """Lay out a split (ids with an <eos> ending each line) for `mode`."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if hasattr(ids, "sibling"):  # a `Spill`: laid out on disk too
        return _segments_on_disk(ids, eos_positions, mode, eos, bos)
    ids = np.asarray(ids, dtype=np.int32)
    if mode == "stream":
        stream = np.concatenate([np.array([eos], dtype=np.int32), ids])
        return Segments(stream, np.array([0, stream.size], dtype=np.int64))
    line_starts = np.concatenate([[0], np.asarray(eos_positions[:-1], dtype=np.int64) + 1])
    with_bos = np.insert(ids, line_starts, bos).astype(np.int32)  # sentence mode
    starts = line_starts + np.arange(line_starts.size)
    return Segments(with_bos, np.append(starts, with_bos.size).astype(np.int64))


def _segments_on_disk(ids, eos_positions, mode: str, eos: int, bos: int) -> Segments:
    """`make_segments` for ids in a `Spill`, chunk by chunk into a new one."""
    out = ids.sibling(mode, np.int32)
    if mode == "stream":
        out.append(np.array([eos], dtype=np.int32))
        for _, chunk in ids.chunks():
            out.append(chunk)
        return Segments(out, np.array([0, out.size], dtype=np.int64))
    line_starts = np.concatenate([[0], np.asarray(eos_positions[:-1], dtype=np.int64) + 1])
    for start, chunk in ids.chunks():
        inside = line_starts[(line_starts >= start) & (line_starts < start + chunk.size)]
        out.append(np.insert(chunk, inside - start, bos).astype(np.int32))
    starts = line_starts + np.arange(line_starts.size)
    return Segments(out, np.append(starts, out.size).astype(np.int64))
