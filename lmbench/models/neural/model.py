"""The neural families behind the one model interface: build the net on its device, train it with
the one trainer, score any `Segments` exactly by the protocol, sample, save and load."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import ClassVar

import numpy as np
import torch
from torch.nn import functional as F

from ...protocol import Segments
from ..base import Budget, EvalHook, FitReport, LanguageModel
from .mlp import BengioMLP
from .rnn import RecurrentLM
from .trainer import IGNORE, Trainer
from .transformer import GPT

SCORE_CHUNK = 2048  # tokens per column per forward pass while scoring (state carried between)
SCORE_BATCH_TOKENS = 65_536  # padded tokens per batch of sentences (sentence mode)


class NeuralLM(LanguageModel):
    devices = ("cpu", "cuda")
    dtype = "float32"
    iterative = True
    net_class: ClassVar[type]

    def __init__(self, config, vocab_size: int, device: str = "cpu", seed: int = 0):
        super().__init__(config, vocab_size, device, seed)
        torch.manual_seed(seed)
        if device == "cuda":  # fp32 matmuls may use TF32 tensor cores
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.net = self.net_class(config, vocab_size).to(device)

    # -- precision -----------------------------------------------------------------------------
    @property
    def autocast_dtype(self) -> torch.dtype | None:
        precision = self.config.precision
        if precision == "bfloat16" or (precision == "auto" and self.device == "cuda"):
            return torch.bfloat16
        return None

    def autocast(self):
        dtype = self.autocast_dtype
        return torch.autocast(self.device, dtype=dtype) if dtype else nullcontext()

    @property
    def compute_dtype(self) -> str:
        return "bfloat16" if self.autocast_dtype else "float32"

    # -- the interface ----------------------------------------------------------------------------
    def fit(
        self, train: Segments, budget: Budget, on_eval: EvalHook | None = None, **branching
    ) -> FitReport:
        """`branching`: the trainer's save_at/on_save (a trunk) or resume (a branch)."""
        return Trainer(self, train, budget, on_eval, **branching).fit()

    def log_prob(self, data: Segments) -> np.ndarray:
        rows = data.split()
        order = np.argsort([-len(r) for r in rows], kind="stable")  # long rows batch together
        scored: list[np.ndarray | None] = [None] * len(rows)
        i = 0
        while i < len(order):
            width = len(rows[order[i]])
            take = max(1, SCORE_BATCH_TOKENS // width)
            batch = order[i : i + take]
            for index, logp in zip(batch, self._score_rows([rows[j] for j in batch])):
                scored[index] = logp
            i += take
        return np.concatenate(scored) if scored else np.zeros(0)

    def _score_rows(self, rows: list[np.ndarray]) -> list[np.ndarray]:
        """Log-prob of tokens 1.. of each row given the tokens before it in the same row."""
        width = max(len(r) for r in rows)
        x = np.zeros((len(rows), width - 1), dtype=np.int64)
        y = np.full((len(rows), width - 1), IGNORE, dtype=np.int64)
        for k, r in enumerate(rows):
            x[k, : len(r) - 1], y[k, : len(r) - 1] = r[:-1], r[1:]
        x, y = torch.from_numpy(x).to(self.device), torch.from_numpy(y).to(self.device)
        out = torch.empty(y.shape, dtype=torch.float64, device=self.device)
        with self._scoring():
            for span, logits in self._chunks(x):
                logp = F.log_softmax(logits.float(), dim=-1)
                target = y[:, span].clamp(min=0).unsqueeze(-1)
                out[:, span] = logp.gather(-1, target).squeeze(-1).double()
        out = out.cpu().numpy()
        return [out[k, : len(r) - 1] for k, r in enumerate(rows)]

    def _chunks(self, x: torch.Tensor):
        """(slice, logits) of each chunk of `x` [B, T], the state carried from chunk to chunk."""
        chunk = getattr(self.config, "stride", SCORE_CHUNK)  # a windowed model's stride
        state = self.net.initial_state(x.shape[0], self.device, scoring=True)
        for s in range(0, x.shape[1], chunk):
            logits, state = self.net(x[:, s : s + chunk], state)
            yield slice(s, s + chunk), logits

    @contextmanager
    def _scoring(self):
        """Eval mode, no autograd, the training precision; the training mode is restored."""
        was_training = self.net.training
        self.net.eval()
        try:
            with torch.inference_mode(), self.autocast():
                yield
        finally:
            self.net.train(was_training)

    def context_size(self) -> int | None:
        return self.net.context_size()

    def querying(self):
        return self._scoring()

    def query_start(self, first: int):
        return self._step_state(), first

    def _step_state(self):
        """The net's state before a decoder's first token."""
        return self.net.initial_state(1, self.device, scoring=True)

    def _step(self, x: torch.Tensor, state):
        """Logits after one new token (x [1, 1]) and the state after it: for the recurrent
        nets and the MLP, one token at a time is their scoring path itself."""
        return self.net(x, state)

    def query(self, state, word: int) -> tuple[float, object]:
        """One step of the net on the pending token (recurrent: the hidden state; Transformer:
        its KV cache; MLP: its window), then log p(word) from the full softmax."""
        # a state is a value: a decoder may extend one hypothesis by several words, so nothing
        # in it is updated in place (the pending token is a new tensor, the KV cache a new one)
        net_state, pending = state
        x = torch.tensor([[pending]], device=self.device)
        logits, net_state = self._step(x, net_state)
        logp = F.log_softmax(logits[0, -1].float(), dim=-1)[word].item()
        return logp, (net_state, word)

    def next_log_probs(self, context: np.ndarray) -> np.ndarray:
        context = np.asarray(context, dtype=np.int64)
        keep = self.context_size()
        if keep is not None:
            context = context[max(len(context) - keep, 0) :]
        x = torch.from_numpy(context).to(self.device).unsqueeze(0)
        with self._scoring():
            *_, (_, logits) = self._chunks(x)  # only the last chunk's last position matters
            return F.log_softmax(logits[0, -1].float(), dim=-1).double().cpu().numpy()

    def num_params(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    def size_bytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.net.parameters())

    def flops_per_token(self) -> float:
        """Training FLOPs per token: forward + backward (= 2 x forward), DESIGN's rules."""
        return 3.0 * self.net.forward_flops_per_token()

    def save(self, path) -> bool:
        torch.save({"config": vars(self.config), "state_dict": self.net.state_dict()}, path)
        return True

    def load(self, path) -> bool:
        saved = torch.load(path, map_location=self.device, weights_only=True)
        self.net.load_state_dict(saved["state_dict"])
        return True


class MLP(NeuralLM):
    family = "mlp"
    net_class = BengioMLP


class Elman(NeuralLM):
    family = "rnn"
    net_class = RecurrentLM


class LSTM(Elman):
    family = "lstm"


class GRU(Elman):
    family = "gru"


class Transformer(NeuralLM):
    family = "transformer"
    net_class = GPT

    def _step_state(self):
        return self.net.initial_step_state(1, self.device)

    def _step(self, x: torch.Tensor, state):  # its KV cache, not the strided window
        return self.net.step(x, state)
