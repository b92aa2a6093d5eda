"""The one evaluator: every model's perplexity comes from here, in both modes.

Perplexity = exp(mean negative log-likelihood in nats) over every predicted token, each counted
exactly once (the count is asserted); bits per token = mean NLL / ln 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ProtocolError
from .measure import Stopwatch
from .protocol import Segments


@dataclass(frozen=True)
class Evaluation:
    tokens: int
    nll_nats: float  # total
    seconds: float
    log_probs: np.ndarray  # float64, one per predicted token

    @property
    def mean_nll(self) -> float:
        return self.nll_nats / self.tokens

    @property
    def perplexity(self) -> float:
        return math.exp(self.mean_nll) if self.mean_nll < 709.0 else math.inf  # exp overflows

    @property
    def bits_per_token(self) -> float:
        return self.mean_nll / math.log(2)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else math.inf


def evaluate(model, data: Segments, stopwatch: Stopwatch | None = None) -> Evaluation:
    stopwatch = stopwatch or Stopwatch()
    stopwatch.start()
    log_probs = model.log_prob(data)
    seconds = stopwatch.stop()
    return scored(log_probs, data.n_predicted, seconds, type(model).__name__)


def scored(log_probs, expected: int, seconds: float = 0.0, source: str = "a model") -> Evaluation:
    """The evaluation of per-token log-probabilities already computed (a model's, or a mix of
    two runs'), checked against the protocol: exactly `expected` predicted tokens, each <= 0."""
    log_probs = np.asarray(log_probs, dtype=np.float64)
    if log_probs.shape != (expected,):
        raise ProtocolError(
            f"{source}.log_prob returned shape {log_probs.shape}; the protocol "
            f"predicts exactly {expected} tokens (every token once, segment starts are context)"
        )
    if np.isnan(log_probs).any() or (log_probs > 1e-9).any():
        bad = int(np.flatnonzero(np.isnan(log_probs) | (log_probs > 1e-9))[0])
        raise ProtocolError(
            f"{source}.log_prob gave {log_probs[bad]} at predicted token {bad}: "
            f"a log-probability must be a number <= 0"
        )
    return Evaluation(
        tokens=expected, nll_nats=float(-log_probs.sum()), seconds=seconds, log_probs=log_probs
    )
