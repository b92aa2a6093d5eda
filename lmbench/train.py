"""The one trainer for every neural model.

The training split is laid out as `batch_size` parallel columns (pytorch/examples' batchify) and
walked in chunks of `bptt` tokens; recurrent nets carry their state across chunks, windowed nets
carry what their window needs. Budgets in epochs, tokens or seconds end training, whichever comes
first, and a stop signal (`interrupt`) ends it at the next step; validation every
`eval_every_tokens` (default: each epoch) draws the curve, drives the plateau schedule and early
stopping, and the best state is restored for the test evaluation.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch.nn import functional as F

from . import interrupt
from .measure import Stopwatch, device_sync
from .models.base import Budget, EvalHook, FitReport
from .models.neural.model import IGNORE, NeuralLM
from .models.neural.rnn import detach_state
from .protocol import Segments


class TrainingDiverged(RuntimeError):
    """The loss stopped being a finite number."""


def training_columns(train: Segments, vocab_size: int, batch_size: int):
    """(inputs, targets) as [batch_size, columns] int64; a target that is not predicted (the
    next segment's <s>, context only) is IGNORE."""
    ids = train.ids.astype(np.int64)
    targets = ids[1:].copy()
    targets[train.starts[1:-1] - 1] = IGNORE  # the position before each segment start
    columns = targets.size // batch_size
    if columns < 2:
        raise ValueError(
            f"the training split ({targets.size} tokens) is too small for batch_size "
            f"{batch_size}: lower --set batch_size"
        )
    keep = columns * batch_size
    return ids[:keep].reshape(batch_size, columns), targets[:keep].reshape(batch_size, columns)


def last_step(predicted: np.ndarray, targets: torch.Tensor, remaining: int):
    """The first steps' length and targets that hold exactly `remaining` predicted tokens
    (later time steps' targets, from the last column up, become IGNORE)."""
    keep = predicted.copy()
    cumulative = np.cumsum(keep.sum(axis=0))
    length = int(np.searchsorted(cumulative, remaining)) + 1
    keep = keep[:, :length]
    for t in range(length - 1, -1, -1):  # drop the excess, last time step first
        for row in range(keep.shape[0] - 1, -1, -1):
            if keep.sum() == remaining:
                break
            keep[row, t] = False
    targets = targets[:, :length].clone()
    targets[~torch.from_numpy(keep).to(targets.device)] = IGNORE
    return length, targets


class Schedule:
    """Learning rate at each step; `plateau` also reacts to evaluations."""

    def __init__(self, config, horizon_tokens: float | None, horizon_seconds: float | None):
        self.config, self.scale = config, 1.0
        self.horizons = (horizon_tokens, horizon_seconds)

    def lr(self, tokens: int, seconds: float, epoch: int) -> float:
        c = self.config
        lr = c.lr * self.scale
        if c.lr_schedule == "step":
            lr *= c.lr_decay ** max(epoch + 1 - c.decay_start_epoch, 0)
        if c.lr_schedule == "cosine":
            progress = max(
                (done / limit for done, limit in zip((tokens, seconds), self.horizons) if limit),
                default=0.0,
            )
            lr *= 0.1 + 0.45 * (1 + math.cos(math.pi * min(progress, 1.0)))
        if c.warmup_tokens and tokens < c.warmup_tokens:
            lr *= (tokens + 1) / c.warmup_tokens
        return lr

    def after_eval(self, improved: bool) -> None:
        if self.config.lr_schedule == "plateau" and not improved:
            self.scale *= self.config.lr_decay


def flat(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, T, V] logits and [B, T] targets as rows, in the logits' memory order: a time-major
    net's output is not copied (a 28 MB copy per step for the pytorch/examples LSTM)."""
    if logits.transpose(0, 1).is_contiguous():
        return logits.transpose(0, 1).reshape(-1, logits.shape[-1]), targets.t().reshape(-1)
    return logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)


def make_optimizer(net: torch.nn.Module, config) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    # AdamW: no weight decay on biases, norms and embeddings' 1-d cousins (nanoGPT's rule)
    decay = [p for p in net.parameters() if p.dim() >= 2]
    rest = [p for p in net.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": rest, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.99))


@interrupt.polling()  # a stop signal ends training at the next step, not mid-step
def train_model(
    model: NeuralLM, train: Segments, budget: Budget, on_eval: EvalHook | None = None
) -> FitReport:
    config, net, device = model.config, model.net, model.device
    if budget.unlimited:
        raise ValueError("a neural model needs a budget: epochs, tokens or seconds")
    inputs, targets = training_columns(train, model.vocab_size, config.batch_size)
    predicted = targets != IGNORE
    epoch_tokens = int(predicted.sum())
    token_limit = min(
        (x for x in (budget.tokens, budget.epochs and budget.epochs * epoch_tokens) if x),
        default=None,
    )
    x_all = torch.from_numpy(inputs).to(device)
    y_all = torch.from_numpy(targets).to(device)
    eval_every = config.eval_every_tokens or epoch_tokens

    optimizer = make_optimizer(net, config)
    schedule = Schedule(config, token_limit, budget.seconds)
    step_net = torch.compile(net) if config.compile else net
    sync = device_sync(device)
    check_every = 1 if device == "cpu" else 25  # a finiteness/clock check syncs a GPU
    clock = Stopwatch(sync).start()
    eval_seconds = 0.0
    compile_seconds = None
    tokens = steps = epoch = evals_without_gain = 0
    best_ppl, best_state, best_tokens = math.inf, None, None
    pending: list[torch.Tensor] = []
    ended_by = None

    seconds_seen = 0.0  # training seconds at the last clock read (a read syncs a GPU)

    def train_seconds() -> float:
        nonlocal seconds_seen
        seconds_seen = clock.elapsed() - eval_seconds
        return seconds_seen

    def check_losses() -> None:
        if not pending:
            return
        losses = torch.stack(pending).float().cpu()
        finite = torch.isfinite(losses)
        if not bool(finite.all()):
            bad = int((~finite).nonzero()[0])
            step = steps - len(pending) + bad + 1
            raise TrainingDiverged(
                f"training loss became {float(losses[bad])} at step {step} "
                f"(after {tokens} training tokens, lr {schedule.lr(tokens, 0, epoch):.4g}): "
                "lower --set lr or turn clipping on (--set clip=...)"
            )
        pending.clear()

    def evaluate_now() -> None:
        nonlocal eval_seconds, best_ppl, best_state, best_tokens, evals_without_gain
        check_losses()
        started = clock.elapsed()
        ppl = on_eval(tokens)
        improved = ppl < best_ppl
        if improved:
            best_ppl, best_tokens, evals_without_gain = ppl, tokens, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            evals_without_gain += 1
        schedule.after_eval(improved)
        eval_seconds += clock.elapsed() - started

    net.train()
    while ended_by is None:
        state = net.initial_state(config.batch_size, device, scoring=False)
        # Nets that carry nothing between chunks (the Transformer's blocks) would learn each
        # token's position in a fixed chunking; a random shift per epoch varies it (nanoGPT
        # samples random offsets). Recurrent nets walk the columns as pytorch/examples does.
        shift = int(torch.randint(config.bptt, ())) if state is None and epoch else 0
        for start in range(shift, inputs.shape[1], config.bptt):
            length = min(config.bptt, inputs.shape[1] - start)
            n = int(predicted[:, start : start + length].sum())  # known without a device sync
            x = x_all[:, start : start + length]
            y = y_all[:, start : start + length]
            if token_limit is not None and tokens + n > token_limit:  # the last, partial step
                length, y = last_step(predicted[:, start:], y_all[:, start:], token_limit - tokens)
                x, n = x[:, :length], token_limit - tokens
            for group in optimizer.param_groups:
                group["lr"] = schedule.lr(tokens, seconds_seen, epoch)
            first = compile_seconds is None and config.compile
            with model.autocast():
                logits, state = step_net(x, state)
                loss = F.cross_entropy(*flat(logits, y), ignore_index=IGNORE)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.clip:
                torch.nn.utils.clip_grad_norm_(net.parameters(), config.clip)
            optimizer.step()
            state = detach_state(state)
            pending.append(loss.detach())
            tokens += n
            steps += 1
            if first:  # compilation happens in the first step: its time, reported apart
                compile_seconds = train_seconds()
            if steps % check_every == 0:
                check_losses()
                if budget.seconds is not None and train_seconds() >= budget.seconds:
                    ended_by = "seconds"
            if token_limit is not None and tokens >= token_limit:
                ended_by = "tokens" if token_limit == budget.tokens else "epochs"
            if ended_by is None and interrupt.requested():  # evaluated below, then kept
                ended_by = "interrupted"
            if on_eval is not None and (
                tokens // eval_every > (tokens - n) // eval_every or ended_by
            ):
                evaluate_now()
                if config.patience and evals_without_gain >= config.patience and not ended_by:
                    ended_by = "plateau"
            if ended_by:
                break
        else:
            epoch += 1
    check_losses()
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return FitReport(
        train_tokens=tokens,
        ended_by=ended_by,
        compile_seconds=compile_seconds,
        notes={
            "steps": steps,
            "epochs": tokens / epoch_tokens,
            "epoch_tokens": epoch_tokens,
            "best_valid_at_tokens": best_tokens,
            "final_lr": optimizer.param_groups[0]["lr"],
            "compute_dtype": model.compute_dtype,
            "compiled": config.compile,
        },
    )
