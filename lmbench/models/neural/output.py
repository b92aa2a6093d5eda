"""The softmax layer every neural family ends in, own or tied to the input embedding."""

from __future__ import annotations

import torch
from torch import nn


class OutputLayer(nn.Module):
    """Logits over the predicted vocabulary. Tied: the embedding's first `vocab_size` rows (its
    last row is <s>, context only) serve as the output matrix, one parameter for both."""

    def __init__(self, width: int, vocab_size: int, tied_to: nn.Embedding | None = None):
        super().__init__()
        self.vocab_size = vocab_size
        self._tied = [tied_to] if tied_to is not None else []  # a list: not a second submodule
        if tied_to is None:
            self.weight = nn.Parameter(torch.empty(vocab_size, width).uniform_(-0.1, 0.1))
        else:
            self.register_parameter("weight", None)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        weight = self._tied[0].weight[: self.vocab_size] if self._tied else self.weight
        return nn.functional.linear(h, weight, self.bias)
