"""Exact sampling from a backoff n-gram model, many streams at once: a synthetic corpus of any size
with an n-gram model's statistics (the memory-capped estimation is measured on one).

A backoff model gives p(w | h) = P(h w) for the words stored after context h, and
b(h) p(w | h') for the rest, h' being h without its oldest word. So a draw from p(. | h) is: with
probability sum of P(h .) one of the stored words in proportion; otherwise a draw from p(. | h')
that is redrawn while it is one of h's stored words (rejection: only the lower draw is repeated).
Every stream runs that recursion as a small state machine (the level it draws at, the level it
checks a candidate against), so one numpy step advances all streams; a Python loop runs per
token position and per backoff level, never per stream.
"""

from __future__ import annotations

import numpy as np

from .interpolated import BackoffTables

DRAW, DONE = -1, -2  # a stream's phase when it is not checking a candidate


class BackoffSampler:
    def __init__(self, tables: BackoffTables):
        if tables.spill is not None:
            raise ValueError("sampling needs a model estimated in memory")
        counts = tables.counts
        self.order, self.radix = counts.order, counts.radix
        self.lookups = tables.lookups
        self.keys = [o.keys for o in counts.orders]
        # per order: cumulative probability over its rows, and each context's row range
        self.cumulative, self.first_row = [], []
        for n, (o, log_prob) in enumerate(zip(counts.orders, tables.log_prob), 1):
            self.cumulative.append(np.concatenate([[0.0], np.cumsum(np.exp(log_prob))]))
            contexts = 1 if n == 1 else len(counts.orders[n - 2])
            prefix = np.zeros(len(o), dtype=np.int64) if n == 1 else o.prefix
            self.first_row.append(np.searchsorted(prefix, np.arange(contexts + 1)))

    def _ids(self, n: int, keys: np.ndarray) -> np.ndarray:
        """Ids of order-n n-grams by key (-1: absent or a negative key)."""
        if n == 1:
            return keys
        return self.lookups[n - 1].lookup(keys)

    def draw(self, context: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One word per stream; `context[:, j]` is the id of the stream's j-gram context (its
        last j tokens) among order-j n-grams, -1 where the model does not hold it; column 0 is
        the empty context (0)."""
        streams = context.shape[0]
        top = (context >= 0).sum(axis=1) - 1  # the longest context the model holds
        level = top.copy()  # the context a stream draws from next
        check = np.full(streams, DRAW)  # or the context its candidate word is checked against
        word = np.full(streams, -1, dtype=np.int64)
        while not np.all(check == DONE):
            drawing = np.flatnonzero(check == DRAW)
            for j in np.unique(level[drawing]):
                s = drawing[level[drawing] == j]
                lo, hi = self.first_row[j][context[s, j]], self.first_row[j][context[s, j] + 1]
                cum = self.cumulative[j]
                stored = cum[hi] - cum[lo]  # mass of the words stored after this context
                u = rng.random(s.size) * (stored if j == 0 else 1.0)  # order 1 stores all
                take = u < stored
                pick = np.searchsorted(cum, cum[lo] + u, side="right") - 1
                pick = np.minimum(np.maximum(pick, lo), hi - 1)
                chosen = s[take]
                word[chosen] = self.keys[j][pick[take]] % self.radix
                check[chosen] = j + 1
                level[s[~take]] -= 1  # the backoff's share: draw from the shorter context
            checking = np.flatnonzero(check >= 0)
            for c in np.unique(check[checking]):
                s = checking[check[checking] == c]
                accepted = c > top[s]  # past every context it backed off from
                check[s[accepted]] = DONE
                s = s[~accepted]
                if s.size == 0:
                    continue
                stored = self._ids(c + 1, context[s, c] * self.radix + word[s]) >= 0
                again = s[stored]  # the longer context stores this word: redraw below it
                check[again], level[again] = DRAW, c - 1
                check[s[~stored]] += 1
        return word

    def advance(self, context: np.ndarray, word: np.ndarray) -> np.ndarray:
        """The contexts after each stream's `word` (the state `InterpolatedNgram.query` keeps)."""
        out = np.full_like(context, -1)
        out[:, 0] = 0
        if context.shape[1] > 1:
            out[:, 1] = word
        for j in range(2, context.shape[1]):
            below = context[:, j - 1]
            out[:, j] = self._ids(j, np.where(below >= 0, below * self.radix + word, -1))
        return out

    def sample(self, streams: int, tokens: int, start: int, seed) -> np.ndarray:
        """(streams, tokens) word ids, each stream a document started after token `start`
        (<eos> for a stream-mode model); `seed`: an int or a sequence of ints."""
        rng = np.random.default_rng(seed)
        context = np.full((streams, self.order), -1, dtype=np.int64)
        context[:, 0] = 0
        if self.order > 1:
            context[:, 1] = start
        out = np.empty((streams, tokens), dtype=np.int32)
        for t in range(tokens):
            word = self.draw(context, rng)
            out[:, t] = word
            context = self.advance(context, word)
        return out
