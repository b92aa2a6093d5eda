"""A GPT-style decoder (nanoGPT's shape): pre-LayerNorm blocks, causal scaled_dot_product_attention,
learned or rotary positions, tied input/output embeddings."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .config import AdamWConfig, require_positive
from .output import OutputLayer


@dataclass(frozen=True)
class TransformerConfig(AdamWConfig):
    layers: int = 3
    heads: int = 4
    width: int = 192  # d_model
    mlp_ratio: int = 4
    positions: str = "learned"  # learned or rotary
    tied: bool = True
    eval_stride: int | None = None  # scoring a stream: new tokens per window (None: bptt / 2)
    # 768 tokens a step: 4,200 optimizer steps in PTB's 3.25 M-token budget (at 32 x 128 it was
    # 800 steps and valid perplexity 242), and logits under glibc's 32 MB reuse threshold.
    batch_size: int = 6
    bptt: int = 128  # the block: longest context
    lr: float = 2e-3
    warmup_tokens: int = 100_000
    dropout: float = 0.1  # 0.2 underfit in 3.25 M tokens: valid 163.9 vs 147.9 at 0.1

    def __post_init__(self):
        super().__post_init__()
        require_positive(layers=self.layers, heads=self.heads, width=self.width)
        require_positive(mlp_ratio=self.mlp_ratio)
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by heads {self.heads}")
        if self.positions not in ("learned", "rotary"):
            raise ValueError(f"positions {self.positions!r}: choose learned or rotary")
        if self.positions == "rotary" and (self.width // self.heads) % 2:
            raise ValueError("rotary positions need an even head width (width / heads)")
        if self.eval_stride is not None and not 0 < self.eval_stride <= self.bptt:
            raise ValueError(
                f"eval_stride must be in 1..bptt ({self.bptt}), got {self.eval_stride}"
            )

    @property
    def stride(self) -> int:
        return self.eval_stride or max(self.bptt // 2, 1)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding (Su et al. 2021) on the last dimension, halves paired."""
    a, b = x.chunk(2, dim=-1)
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


class Block(nn.Module):
    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.heads = c.heads
        self.ln1, self.ln2 = nn.LayerNorm(c.width), nn.LayerNorm(c.width)
        self.qkv = nn.Linear(c.width, 3 * c.width)
        self.proj = nn.Linear(c.width, c.width)
        self.mlp = nn.Sequential(
            nn.Linear(c.width, c.mlp_ratio * c.width),
            nn.GELU(),
            nn.Linear(c.mlp_ratio * c.width, c.width),
        )
        self.drop = nn.Dropout(c.dropout)
        self.attn_dropout = c.dropout

    def forward(self, x: torch.Tensor, rope, past=None):
        """x [B, T, width] -> (x, (keys, values) of every position so far). `past`: the keys and
        values of the positions before x (a decoder's KV cache); x's tokens then see all of them."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))  # [B, heads, T, head width]
        if rope is not None:
            q, k = rotate(q, *rope), rotate(k, *rope)
        if past is not None:
            if t != 1:  # several new tokens would need a causal mask offset by the cache
                raise ValueError(f"a cached step takes one new token per row, got {t}")
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            is_causal=past is None,  # with a cache: one new token per step, it sees every key
            dropout_p=self.attn_dropout if self.training else 0.0,
        )
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.mlp(self.ln2(x))), (k, v)


class GPT(nn.Module):
    """State while scoring = the last bptt - stride token ids, so every scored token sees at
    least bptt - stride tokens before it (none lose context a shorter stream would give them).
    In training the state is None: each block of bptt tokens stands alone (nanoGPT)."""

    def __init__(self, config: TransformerConfig, vocab_size: int):
        super().__init__()
        self.config, self.vocab_size = config, vocab_size
        c = config
        self.embed = nn.Embedding(vocab_size + 1, c.width)  # + <s> (context only)
        self.pos = nn.Embedding(c.bptt, c.width) if c.positions == "learned" else None
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.ln_f = nn.LayerNorm(c.width)
        self.out = OutputLayer(c.width, vocab_size, self.embed if c.tied else None)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: residual projections scaled by depth
            if name.endswith(("proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, std=0.02 / (2 * c.layers) ** 0.5)
        if c.positions == "rotary":
            half = c.width // c.heads // 2
            freq = 1.0 / 10000 ** (torch.arange(half) / half)
            angles = torch.outer(torch.arange(c.bptt).float(), freq)
            self.register_buffer("cos", angles.cos(), persistent=False)
            self.register_buffer("sin", angles.sin(), persistent=False)

    @staticmethod
    def _init(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def initial_state(self, batch: int, device, scoring: bool):
        return torch.zeros(batch, 0, dtype=torch.long, device=device) if scoring else None

    def _hidden(self, tokens: torch.Tensor, start: int, past=None):
        """Final-block states of `tokens` at positions start.., and every block's keys and values
        (`past`: those of positions 0..start-1)."""
        t = tokens.shape[1]
        h = self.embed(tokens)
        rope = None
        if self.pos is not None:
            h = h + self.pos.weight[start : start + t]
        else:
            rope = (self.cos[start : start + t], self.sin[start : start + t])
        h = self.drop(h)
        cache = []
        for block, kv in zip(self.blocks, past or [None] * len(self.blocks)):
            h, kv = block(h, rope, kv)
            cache.append(kv)
        return h, cache

    def forward(self, x: torch.Tensor, state):
        full = x if state is None else torch.cat([state, x], dim=1)
        if full.shape[1] > self.config.bptt:
            raise ValueError(f"{full.shape[1]} tokens exceed the block of {self.config.bptt}")
        t = full.shape[1]
        h, _ = self._hidden(full, 0)
        logits = self.out(self.ln_f(h[:, t - x.shape[1] :]))
        if state is None:
            return logits, None
        keep = self.config.bptt - self.config.stride
        return logits, full[:, max(full.shape[1] - keep, 0) :] if keep else full[:, :0]

    def initial_step_state(self, batch: int, device):
        """A decoder's state before its first token: no tokens, no cache, none fed."""
        return torch.zeros(batch, 0, dtype=torch.long, device=device), None, 0

    def step(self, x: torch.Tensor, state):
        """Logits after one new token per row (x [B, 1]), with a KV cache: exactly the logits
        strided scoring gives that token. Every `stride` tokens, where scoring starts a new
        window, the cache is rebuilt from the window's kept bptt - stride tokens."""
        ids, cache, fed = state
        c = self.config
        if fed and fed % c.stride == 0:
            keep = c.bptt - c.stride
            ids = ids[:, max(ids.shape[1] - keep, 0) :]
            cache = self._hidden(ids, 0)[1] if keep else None
        h, cache = self._hidden(x, ids.shape[1], cache)
        return self.out(self.ln_f(h)), (torch.cat([ids, x], dim=1), cache, fed + 1)

    def forward_flops_per_token(self) -> float:
        """Matrix products per token at a full block of context: the projections and MLP, the
        attention scores and mixing (the whole T x T product, as the kernels compute it), and
        the output layer."""
        c = self.config
        per_layer = (4 + 2 * c.mlp_ratio) * c.width**2 + 2 * c.bptt * c.width
        return 2.0 * (c.layers * per_layer + c.width * self.vocab_size)

    def context_size(self) -> int:
        return self.config.bptt - 1
