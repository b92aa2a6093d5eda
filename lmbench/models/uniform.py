"""Every token equally likely: perplexity is exactly |V|. The oracle the evaluator is tested with."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..protocol import Segments
from .base import Budget, FitReport, LanguageModel


@dataclass(frozen=True)
class UniformConfig:
    pass


class Uniform(LanguageModel):
    family = "baseline"

    def fit(self, train: Segments, budget: Budget, on_eval=None) -> FitReport:
        return FitReport(train_tokens=0, ended_by="data")

    def log_prob(self, data: Segments) -> np.ndarray:
        return np.full(data.n_predicted, -np.log(self.vocab_size), dtype=np.float64)

    def context_size(self) -> int:
        return 0

    def next_log_probs(self, context: np.ndarray) -> np.ndarray:
        return np.full(self.vocab_size, -np.log(self.vocab_size), dtype=np.float64)

    def num_params(self) -> int:
        return 0

    def size_bytes(self) -> int:
        return 0
