"""Settings every neural model shares: how the one trainer trains it.

Each family's config extends `TrainConfig`, so `--set lr=...` works the same for all of them and
the whole resolved config is in the run record and its hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .schedule import SCHEDULES

OPTIMIZERS = ("sgd", "adamw")
PRECISIONS = ("auto", "float32", "bfloat16")


@dataclass(frozen=True)
class TrainConfig:
    # Settings added after runs were recorded: left out of the config hash at this default, so
    # those runs keep their hashes (plan.hashed_config).
    HASH_OMITS_DEFAULT: ClassVar[dict] = {"decay_fraction": 0.2}

    batch_size: int = 20  # parallel columns of the training stream
    bptt: int = 35  # tokens per column per step (truncated BPTT length; the Transformer's block)
    optimizer: str = "sgd"
    lr: float = 20.0
    # plateau: lr *= lr_decay when an evaluation does not improve (pytorch/examples);
    # step: lr * lr_decay ** max(epoch + 1 - decay_start_epoch, 0) (Zaremba et al.);
    # cosine: linear warm-up over warmup_tokens, then cosine to lr/10 over the budget;
    # wsd: warm-up, constant, linear decay to 0 over the last decay_fraction (schedule.py).
    lr_schedule: str = "plateau"
    lr_decay: float = 0.25
    decay_start_epoch: int = 0
    decay_fraction: float = 0.2
    warmup_tokens: int = 0
    weight_decay: float = 0.0
    clip: float = 0.25  # gradient-norm clipping; 0 turns it off
    dropout: float = 0.2
    eval_every_tokens: int | None = None  # None: at the end of every epoch
    patience: int = 0  # stop after this many evaluations without improvement; 0: never
    precision: str = "auto"  # auto: bf16 autocast on CUDA, float32 on CPU
    compile: bool = False  # torch.compile (CUDA); its time is reported as compile_seconds

    def __post_init__(self):
        positive = {"batch_size": self.batch_size, "bptt": self.bptt, "lr": self.lr}
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(
                f"lr_schedule {self.lr_schedule!r}: choose one of {', '.join(SCHEDULES)}"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay must be in (0, 1], got {self.lr_decay}")
        if not 0 < self.decay_fraction <= 1:
            raise ValueError(f"decay_fraction must be in (0, 1], got {self.decay_fraction}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.clip < 0 or self.weight_decay < 0 or self.warmup_tokens < 0 or self.patience < 0:
            raise ValueError("clip, weight_decay, warmup_tokens and patience must be >= 0")
        if self.eval_every_tokens is not None and self.eval_every_tokens <= 0:
            raise ValueError(f"eval_every_tokens must be > 0, got {self.eval_every_tokens}")


@dataclass(frozen=True)
class AdamWConfig(TrainConfig):
    """The modern recipe (nanoGPT's): AdamW with decoupled weight decay, a linear warm-up and a
    cosine decay over the budget, gradient norm clipped at 1."""

    optimizer: str = "adamw"
    lr: float = 2e-3
    lr_schedule: str = "cosine"
    warmup_tokens: int = 50_000
    weight_decay: float = 0.1
    clip: float = 1.0


def require_positive(**sizes: int) -> None:
    for name, value in sizes.items():
        if value <= 0:
            raise ValueError(f"{name} must be > 0, got {value}")
