"""Every learning-rate schedule the one trainer knows, in one place, driven by tokens only.

No schedule reads a clock: a run's learning rate at each step is a function of its settings,
the training tokens seen so far, the epoch and (plateau) the evaluations so far. A seconds budget
reaches a schedule only as a token horizon, measured once after a warm-up (`Trainer`), so
the same config and seed give the same run on any machine that computes the same arithmetic.

    constant  lr throughout
    plateau   lr *= lr_decay when an evaluation does not improve (pytorch/examples)
    step      lr * lr_decay ** max(epoch + 1 - decay_start_epoch, 0) (Zaremba et al.)
    cosine    cosine from lr to lr/10 over the horizon (nanoGPT)
    wsd       warmup-stable-decay: lr until the last `decay_fraction` of the horizon, then
              linearly to 0 at the horizon (Hagele et al. 2024); a run's first (1 - f) x horizon
              tokens do not depend on the horizon, so one constant-rate trunk serves every
              shorter budget: branch it there and decay (`branch_point`)

and, before any of them, a linear warm-up over `warmup_tokens`.
"""

from __future__ import annotations

import math

SCHEDULES = ("plateau", "step", "cosine", "constant", "wsd")
HORIZON_SCHEDULES = ("cosine", "wsd")  # need to know where training ends
COSINE_FLOOR = 0.1  # cosine ends at lr / 10


def branch_point(horizon: int, decay_fraction: float) -> int:
    """The training tokens at which a WSD run of `horizon` tokens starts to decay: a trunk's
    state there is the state of every run of that horizon."""
    return int(round(horizon * (1.0 - decay_fraction)))


class Schedule:
    """The learning rate of each step, from the run's config (`TrainConfig` fields)."""

    def __init__(self, config, horizon_tokens: int | None):
        self.config = config
        self.horizon = horizon_tokens  # None: unknown yet (a seconds budget before its warm-up)
        self.scale = 1.0  # plateau's decays so far

    def lr(self, tokens: int, epoch: int) -> float:
        c = self.config
        lr = c.lr * self.scale
        if c.lr_schedule == "step":
            lr *= c.lr_decay ** max(epoch + 1 - c.decay_start_epoch, 0)
        elif c.lr_schedule == "cosine" and self.horizon:
            progress = min(tokens / self.horizon, 1.0)
            lr *= COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + math.cos(math.pi * progress))
        elif c.lr_schedule == "wsd" and self.horizon:
            start = branch_point(self.horizon, c.decay_fraction)
            if tokens >= start:
                lr *= max(self.horizon - tokens, 0) / max(self.horizon - start, 1)
        if c.warmup_tokens and tokens < c.warmup_tokens:
            lr *= (tokens + 1) / c.warmup_tokens
        return lr

    def after_eval(self, improved: bool) -> None:
        if self.config.lr_schedule == "plateau" and not improved:
            self.scale *= self.config.lr_decay

    def state_dict(self) -> dict:
        return {"scale": self.scale}

    def load_state_dict(self, state: dict) -> None:
        self.scale = state["scale"]
