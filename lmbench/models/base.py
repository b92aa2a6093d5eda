"""The one interface every model implements, count-based or neural.

Nothing outside a model branches on its family: the evaluator calls `log_prob`, the runner calls
`fit`, sampling goes through `next_log_probs` (or a model's own faster `sample`), and a decoder's
one-word-at-a-time queries through `query_start` / `query` inside `querying()`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..errors import UsageError
from ..protocol import Segments


@dataclass(frozen=True)
class Budget:
    """Training budget; whichever limit is reached first ends training (None: no limit)."""

    seconds: float | None = None
    tokens: int | None = None
    epochs: float | None = None  # passes over the training split (neural models)

    def count_slice(self, train: Segments, cap: int | None = None) -> tuple[Segments, str]:
        """What a count model trains on: the first `tokens` (or `cap`) training tokens, and what
        ended training ("tokens" when cut, "data" otherwise). Count models see each token once."""
        limits = [t for t in (self.tokens, cap) if t is not None]
        if limits and min(limits) < train.n_predicted:
            train, ended_by = train.head(min(limits)), "tokens"
        else:
            ended_by = "data"
        if train.n_predicted == 0:
            raise ValueError("empty training split: nothing to count")
        return train, ended_by

    def for_hash(self) -> dict:
        """What the config hash covers; an unset epochs limit is left out so that records made
        before epochs existed keep their hashes."""
        out = {"seconds": self.seconds, "tokens": self.tokens}
        return out if self.epochs is None else {**out, "epochs": self.epochs}

    @property
    def unlimited(self) -> bool:
        return self.seconds is None and self.tokens is None and self.epochs is None

    def as_record(self, ended_by: str | None) -> dict:
        kind = [k for k in ("seconds", "tokens", "epochs") if getattr(self, k) is not None]
        return {
            "kind": "+".join(kind) if kind else "none",
            "limit": {k: getattr(self, k) for k in kind} or None,
            "ended_by": ended_by,
        }


@dataclass
class FitReport:
    train_tokens: int  # training tokens the model consumed (a count model: each token once)
    ended_by: str  # "data" (all of it), "tokens", "seconds", ...
    compile_seconds: float | None = None
    notes: dict = field(default_factory=dict)  # model-specific facts worth recording


# Called by a model during fit to evaluate on valid: (train_tokens_so_far) -> valid perplexity.
EvalHook = Callable[[int], float]


class LanguageModel(ABC):
    family: ClassVar[str]
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    dtype: ClassVar[str] = "float64"  # arithmetic of training and scoring
    # True: trains in steps until a budget ends, and keeps its trained state per run
    # (`save`/`load`) for `lmbench sample --run`. False: one pass over the data; refitting from
    # the record is cheap and exact (count models).
    iterative: ClassVar[bool] = False

    def __init__(self, config, vocab_size: int, device: str = "cpu", seed: int = 0):
        self.config = config
        self.vocab_size = vocab_size  # the predicted vocabulary; id vocab_size is <s> (context)
        self.device = device

    @abstractmethod
    def fit(self, train: Segments, budget: Budget, on_eval: EvalHook | None = None) -> FitReport:
        """Learn from `train` within `budget`; may call `on_eval` to record a validation curve."""

    @abstractmethod
    def log_prob(self, data: Segments) -> np.ndarray:
        """Natural-log probability of every predicted token of `data`, float64, in order."""

    def context_size(self) -> int | None:
        """Tokens of context that can change a prediction (None: unbounded)."""
        return None

    def next_log_probs(self, context: np.ndarray) -> np.ndarray:
        """Natural-log distribution (length vocab_size) of the token after `context`.

        Default: score every candidate as the last token of its own segment in one `log_prob`
        call (fine for count models; recurrent models override it with a cached state).
        """
        context = np.asarray(context, dtype=np.int32)
        keep = self.context_size()
        history = context if keep is None else context[max(len(context) - keep, 0) :]
        if keep == 0 or history.size == 0:  # a segment needs a first (context) token: <s>
            history = np.array([self.vocab_size], dtype=np.int32)
        width = history.size + 1
        ids = np.empty((self.vocab_size, width), dtype=np.int32)
        ids[:, :-1] = history
        ids[:, -1] = np.arange(self.vocab_size, dtype=np.int32)
        starts = np.arange(0, ids.size + 1, width, dtype=np.int64)
        scored = self.log_prob(Segments(ids.ravel(), starts))  # width - 1 per segment
        return scored.reshape(self.vocab_size, width - 1)[:, -1]

    # -- decoder-style queries: one word at a time, the state carried ---------------------------
    def querying(self):
        """Context for a run of queries (a neural model: eval mode, no autograd)."""
        return nullcontext()

    def query_unavailable(self) -> str | None:
        """Why this trained model has no per-query path (None: it has one)."""
        return None

    def query_start(self, first: int):
        """The state before the first query of a segment whose first (context) token is `first`
        (<s> in sentence mode, <eos> in stream mode)."""
        return (first,)

    def query(self, state, word: int) -> tuple[float, object]:
        """log p(word | the state's context) and the state after `word`: what a first-pass
        decoder asks once per hypothesis extension. Queries chained from `query_start` over a
        segment give exactly `log_prob` of that segment.

        Default: score the context plus `word` as a segment of its own, the context cut to
        `context_size` (models with an incremental state override this).
        """
        keep = self.context_size()
        context = state if keep is None else state[max(len(state) - keep, 0) :]
        if keep == 0 or not context:  # a segment needs a first (context) token: <s>
            context = (self.vocab_size,)
        ids = np.array([*context, word], dtype=np.int32)
        logp = float(self.log_prob(Segments(ids, np.array([0, ids.size])))[-1])
        return logp, (*context, word)

    def sample(
        self, prefix: np.ndarray, n: int, temperature: float = 1.0, seed: int = 0
    ) -> np.ndarray:
        """Draw `n` tokens after `prefix` (temperature 0: greedy).

        A prefix that starts with <s> samples sentences: after each <eos> (id 0) the context
        starts again from <s>, as sentence mode scores them.
        """
        rng = np.random.default_rng(seed)
        context = [int(t) for t in prefix]
        sentences = bool(context) and context[0] == self.vocab_size
        drawn = []
        for _ in range(n):
            logp = self.next_log_probs(np.asarray(context, dtype=np.int32))
            if temperature <= 0:
                token = int(np.argmax(logp))
            else:
                scaled = logp / temperature
                p = np.exp(scaled - scaled.max())
                token = int(rng.choice(p.size, p=p / p.sum()))
            drawn.append(token)
            context = [self.vocab_size] if sentences and token == 0 else [*context, token]
        return np.asarray(drawn, dtype=np.int32)

    @abstractmethod
    def num_params(self) -> int:
        """Learned numbers (a count model: stored counts or probabilities)."""

    @abstractmethod
    def size_bytes(self) -> int:
        """Bytes the trained model needs to score text (its arrays, not the process)."""

    def export_arpa(self, path, itos: tuple[str, ...]):
        """Write the trained model as an ARPA file (backoff n-gram models only)."""
        raise UsageError(
            f"{type(self).__name__} has no ARPA form; export-arpa takes kn, wb and abs models"
        )

    def save(self, path) -> bool:
        """Write the trained state to `path`; False when the model keeps none (see checkpointed)."""
        return False

    def load(self, path) -> bool:
        return False

    def flops_per_token(self) -> float | None:
        """Training FLOPs per token by DESIGN's counting rules; None for count models."""
        return None
