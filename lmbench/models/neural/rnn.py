"""Recurrent LMs: Elman RNN (Mikolov's RNNLM, tanh or relu), LSTM and GRU; stacked, dropout
between layers, optional tied input/output embeddings (as pytorch/examples' word_language_model)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import TrainConfig, require_positive
from .output import OutputLayer

CELLS = {"rnn": (nn.RNN, 1), "lstm": (nn.LSTM, 4), "gru": (nn.GRU, 3)}  # module, gate blocks


@dataclass(frozen=True)
class RnnConfig(TrainConfig):
    cell: str = "lstm"
    hidden: int = 200
    layers: int = 2
    embed: int | None = None  # None: = hidden
    tied: bool = False
    nonlinearity: str = "tanh"  # Elman RNN only: tanh or relu

    def __post_init__(self):
        super().__post_init__()
        if self.cell not in CELLS:
            raise ValueError(f"cell {self.cell!r}: choose one of {', '.join(CELLS)}")
        require_positive(hidden=self.hidden, layers=self.layers, embed=self.embed or self.hidden)
        if self.tied and (self.embed or self.hidden) != self.hidden:
            raise ValueError("tied=true needs embed == hidden (one matrix serves both)")
        if self.nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity {self.nonlinearity!r}: choose tanh or relu")


class RecurrentLM(nn.Module):
    """State = the hidden (and cell) state of every layer, carried across chunks of a stream."""

    def __init__(self, config: RnnConfig, vocab_size: int):
        super().__init__()
        self.config, self.vocab_size = config, vocab_size
        embed = config.embed or config.hidden
        module, _ = CELLS[config.cell]
        extra = {"nonlinearity": config.nonlinearity} if config.cell == "rnn" else {}
        self.embed = nn.Embedding(vocab_size + 1, embed)  # + <s> (context only)
        self.drop = nn.Dropout(config.dropout)
        self.rnn = module(
            embed,
            config.hidden,
            config.layers,
            dropout=config.dropout if config.layers > 1 else 0.0,
            batch_first=False,  # time-major runs faster (no layout copies inside the kernel)
            **extra,
        )
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)  # as pytorch/examples
        self.out = OutputLayer(config.hidden, vocab_size, self.embed if config.tied else None)

    def initial_state(self, batch: int, device, scoring: bool):
        shape = (self.config.layers, batch, self.config.hidden)
        zeros = torch.zeros(shape, device=device)
        return (zeros, torch.zeros(shape, device=device)) if self.config.cell == "lstm" else zeros

    def forward(self, x: torch.Tensor, state):
        h, state = self.rnn(self.drop(self.embed(x.t())), state)
        return self.out(self.drop(h)).transpose(0, 1), state  # [B, T, V], a time-major view

    def forward_flops_per_token(self) -> float:
        c, v = self.config, self.vocab_size
        _, gates = CELLS[c.cell]
        embed = c.embed or c.hidden
        macs = sum(
            gates * c.hidden * ((embed if i == 0 else c.hidden) + c.hidden) for i in range(c.layers)
        )
        return 2.0 * (macs + c.hidden * v)

    def context_size(self) -> None:
        return None


def detach_state(state):
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()
