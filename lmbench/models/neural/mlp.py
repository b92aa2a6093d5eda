"""Bengio et al. (2003): the previous n-1 words' embeddings, concatenated, through a tanh hidden
layer (optional: h = 0), plus optional direct input-to-output connections, into a softmax."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import AdamWConfig, require_positive


@dataclass(frozen=True)
class MlpConfig(AdamWConfig):
    order: int = 5  # n: predicts from the previous n-1 tokens
    embed: int = 256  # m
    hidden: int = 512  # h (0: no hidden layer; then `direct` must be on)
    direct: bool = False  # input-to-output connections (Bengio's W)
    batch_size: int = 32  # 768 tokens a step: PTB's [tokens, |V|] logits stay under 32 MB,
    bptt: int = 24  # which glibc keeps for reuse (see runner.MALLOC_TUNABLES)
    lr: float = 3e-3
    # At m=128, h=256, dropout 0.3, lr 2e-3 the 3.25 M-token PTB run ended at valid 195 and
    # still falling: too little capacity and too much regularisation for 3.5 epochs.
    dropout: float = 0.1

    def __post_init__(self):
        super().__post_init__()
        require_positive(embed=self.embed, order=self.order - 1)
        if self.hidden < 0:
            raise ValueError(f"hidden must be >= 0, got {self.hidden}")
        if self.hidden == 0 and not self.direct:
            raise ValueError("hidden=0 needs direct=true: otherwise nothing reaches the output")


class BengioMLP(nn.Module):
    """State = the last n-1 token ids of each column, so a stream is scored chunk by chunk exactly."""

    def __init__(self, config: MlpConfig, vocab_size: int):
        super().__init__()
        self.config, self.vocab_size = config, vocab_size
        self.context = config.order - 1
        width = self.context * config.embed
        self.embed = nn.Embedding(vocab_size + 1, config.embed)  # + <s> (context only)
        self.drop = nn.Dropout(config.dropout)
        self.hidden = nn.Linear(width, config.hidden) if config.hidden else None
        self.out = nn.Linear(config.hidden, vocab_size) if config.hidden else None
        self.direct = (
            nn.Linear(width, vocab_size, bias=not config.hidden) if config.direct else None
        )

    def initial_state(self, batch: int, device, scoring: bool) -> torch.Tensor:
        # Before the first token: <eos> padding, the context a stream's first sentence has.
        return torch.zeros(batch, self.context, dtype=torch.long, device=device)

    def forward(self, x: torch.Tensor, state: torch.Tensor):
        full = torch.cat([state, x], dim=1)
        windows = full.unfold(1, self.context, 1)[:, 1:]  # [B, T, n-1]: the n-1 ids before each
        e = self.drop(self.embed(windows).flatten(2))
        logits = 0
        if self.hidden is not None:
            logits = self.out(self.drop(torch.tanh(self.hidden(e))))
        if self.direct is not None:
            logits = logits + self.direct(e)
        return logits, full[:, -self.context :]

    def forward_flops_per_token(self) -> float:
        width, h, v = self.context * self.config.embed, self.config.hidden, self.vocab_size
        macs = width * h + h * v + (width * v if self.config.direct else 0)
        return 2.0 * macs

    def context_size(self) -> int:
        return self.context
