"""The one trainer for every neural model.

The training split is laid out as `batch_size` parallel columns (pytorch/examples' batchify) and
walked in chunks of `bptt` tokens; recurrent nets carry their state across chunks, windowed nets
carry what their window needs. A budget in epochs or tokens ends training at an exact token
count; a seconds budget is turned into one, once, from the speed measured over its first tenth
(`SECONDS_MEASURED`), and the schedule follows that token horizon: no schedule reads a clock. A
stop signal (`interrupt`) ends training at the next step. Validation every `eval_every_tokens`
(default: each epoch) draws the curve, drives the plateau schedule and early stopping, and the
best state is restored for the test evaluation.

Under torchrun (`distributed`) each rank trains its rows of the global batch inside
DistributedDataParallel: the loss is each rank's sum over its tokens divided by the global count,
so the averaged gradient is one process's; losses, stop signals, validation perplexities and the
Transformer's epoch shifts are agreed among ranks, so every rank takes every decision alike.

Decay branches: a trunk keeps its whole training state (weights, optimizer, RNG, data position,
carried state, best state) at given token counts (`save_at`, `on_save`); a run started from such
a state (`resume`) continues exactly as the trunk would have, on its own schedule.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional as F

from ... import distributed, interrupt
from ...measure import Stopwatch, device_sync
from ...protocol import Segments
from ..base import Budget, EvalHook, FitReport
from .rnn import detach_state
from .schedule import Schedule

IGNORE = -100  # target of a position that predicts nothing (the <s> context, padding)
SECONDS_MEASURED = 0.1  # a seconds budget measures its speed over this fraction of it
CHECKPOINT_FORMAT = 1


class TrainingDiverged(RuntimeError):
    """The loss stopped being a finite number."""


def training_columns(train: Segments, vocab_size: int, batch_size: int):
    """(inputs, targets) as [batch_size, columns] int64; a target that is not predicted (the
    next segment's <s>, context only) is IGNORE."""
    ids = np.asarray(train.ids).astype(np.int64)  # a large split's ids may be on disk
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


def last_step(
    predicted: np.ndarray, targets: torch.Tensor, remaining: int, rows: slice = slice(None)
):
    """The first steps' length and targets that hold exactly `remaining` predicted tokens
    (later time steps' targets, from the last column up, become IGNORE). `predicted` is the
    whole batch, `targets` its `rows` (a rank's share under DDP)."""
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
    targets[~torch.from_numpy(keep[rows]).to(targets.device)] = IGNORE
    return length, targets


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


def rng_state(device: str) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device == "cuda":
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict, device: str) -> None:
    torch.set_rng_state(state["torch"])
    if device == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"])


class Trainer:
    """Trains `model` (a `NeuralLM`) on `train` until `budget` ends; `fit()` returns the report."""

    def __init__(
        self,
        model,
        train: Segments,
        budget: Budget,
        on_eval: EvalHook | None = None,
        save_at: tuple[int, ...] = (),
        on_save: Callable[[int, dict], None] | None = None,
        resume: dict | None = None,
    ):
        if budget.unlimited:
            raise ValueError("a neural model needs a budget: epochs, tokens or seconds")
        self.model, self.config, self.net = model, model.config, model.net
        self.device, self.budget, self.on_eval = model.device, budget, on_eval
        self.inputs, self.targets = training_columns(
            train, model.vocab_size, self.config.batch_size
        )
        self.predicted = self.targets != IGNORE
        self.epoch_tokens = int(self.predicted.sum())
        # the exact token count that ends training; a seconds budget sets it after its warm-up
        self.token_limit = min(
            (x for x in (budget.tokens, budget.epochs and budget.epochs * self.epoch_tokens) if x),
            default=None,
        )
        self.world = distributed.current()
        self.rows = self.rank_rows(save_at, resume)
        self.x_all = torch.from_numpy(self.inputs[self.rows]).to(self.device)
        self.y_all = torch.from_numpy(self.targets[self.rows]).to(self.device)
        self.eval_every = self.config.eval_every_tokens or self.epoch_tokens
        self.optimizer = make_optimizer(self.net, self.config)
        self.schedule = Schedule(self.config, self.token_limit)
        self.train_net = self.net
        if self.world.parallel:
            self.train_net = self.data_parallel()
        self.step_net = torch.compile(self.train_net) if self.config.compile else self.train_net
        self.clock = Stopwatch(device_sync(self.device))
        self.save_at = sorted(set(save_at))
        self.on_save = on_save
        # the position in training: what a checkpoint holds
        self.tokens = self.steps = self.epoch = self.evals_without_gain = 0
        self.column: int | None = None  # next chunk's first column; None: a new epoch starts
        self.carry = None  # the state a recurrent net carries from chunk to chunk
        self.best_ppl, self.best_state, self.best_tokens = math.inf, None, None
        self.seconds_before = 0.0  # training seconds of the trunk this run resumes
        self.eval_seconds = 0.0
        self.compile_seconds = None
        self.first_step_at: tuple[int, float] | None = None  # (tokens, seconds) after step 1
        self.horizon_from_seconds: int | None = None
        self.pending: list[torch.Tensor] = []  # losses not yet checked (a check syncs a GPU)
        self.losses: list[float] = []  # the training loss of each step (all ranks' mean)
        self.ended_by: str | None = None
        self.resumed_from: int | None = None
        if resume is not None:
            self.load_state(resume)

    # -- data parallelism (torchrun) --------------------------------------------------------------
    def rank_rows(self, save_at, resume) -> slice:
        """This rank's rows of the global batch (all of them in a world of one)."""
        world, batch = self.world, self.config.batch_size
        if not world.parallel:
            return slice(None)
        if batch % world.size:
            raise ValueError(
                f"batch_size {batch} does not split evenly over {world.size} ranks: set "
                f"--set batch_size to a multiple of {world.size} (it is the global batch)"
            )
        if save_at or resume is not None or self.budget.seconds is not None:
            raise ValueError(
                "under torchrun a run needs a token or epoch budget and no decay branches"
            )
        share = batch // world.size
        return slice(world.rank * share, (world.rank + 1) * share)

    def data_parallel(self) -> torch.nn.Module:
        """The net inside DistributedDataParallel (which broadcasts rank 0's initial weights).
        Each rank then draws its own dropout masks; the data order stays rank 0's
        (`begin_epoch`), whose random stream is left as one process's would be."""
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.world.local_rank] if self.device == "cuda" else None
        wrapped = DistributedDataParallel(self.net, device_ids=ids)
        if not self.world.leader:
            torch.manual_seed(torch.initial_seed() + 1_000_003 * self.world.rank)
        return wrapped

    # -- clocks: measured, never read by the schedule -------------------------------------------
    def train_seconds(self) -> float:
        return self.clock.elapsed() - self.eval_seconds

    def horizon_from_speed(self, seconds: float) -> None:
        """A seconds budget, once past its measured fraction: the token count it will reach at
        this speed becomes the run's token limit and the schedule's horizon."""
        tokens0, seconds0 = self.first_step_at  # the first step (compilation, caches) left out
        rate = (self.tokens - tokens0) / max(seconds - seconds0, 1e-9)
        limit = self.tokens + int(rate * max(self.budget.seconds - seconds, 0.0))
        if self.token_limit is not None:  # a tokens or epochs limit may still come first
            limit = min(limit, self.token_limit)
        self.token_limit = self.horizon_from_seconds = max(limit, self.tokens + 1)
        self.schedule.horizon = self.token_limit

    # -- checkpoints for decay branches -----------------------------------------------------------
    def state(self) -> dict:
        """A copy of the whole training state (state dicts alias the live tensors)."""
        self.check_losses()
        return copy.deepcopy(
            {
                "format": CHECKPOINT_FORMAT,
                "tokens": self.tokens,
                "steps": self.steps,
                "epoch": self.epoch,
                "column": self.column,
                "carry": self.carry,
                "net": self.net.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(),
                "rng": rng_state(self.device),
                "best_ppl": self.best_ppl,
                "best_tokens": self.best_tokens,
                "best_state": self.best_state,
                "evals_without_gain": self.evals_without_gain,
                "train_seconds": self.seconds_before + self.train_seconds(),
            }
        )

    def load_state(self, saved: dict) -> None:
        if saved.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"unknown training-state format {saved.get('format')!r}")
        self.net.load_state_dict(saved["net"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.schedule.load_state_dict(saved["schedule"])
        set_rng_state(saved["rng"], self.device)
        for name in ("tokens", "steps", "epoch", "column", "best_ppl", "best_tokens"):
            setattr(self, name, saved[name])
        self.evals_without_gain, self.best_state = saved["evals_without_gain"], saved["best_state"]
        carry = saved["carry"]  # None, a tensor, or a tuple of them (an LSTM's h and c)
        if isinstance(carry, tuple):
            self.carry = tuple(t.to(self.device) for t in carry)
        else:
            self.carry = carry if carry is None else carry.to(self.device)
        self.seconds_before, self.resumed_from = saved["train_seconds"], saved["tokens"]
        if self.token_limit is not None and self.tokens >= self.token_limit:
            raise ValueError(
                f"the saved state is at {self.tokens} training tokens, at or past this run's "
                f"budget of {self.token_limit}"
            )

    # -- the loop ---------------------------------------------------------------------------------
    def check_losses(self, stop: bool = False) -> bool:
        """Raise if a pending loss is not finite; whether to stop (`stop` on any rank)."""
        if not self.pending:
            return stop
        losses = torch.stack(self.pending).float()
        if self.world.parallel:  # ranks agree on the loss and on stopping
            losses, stop = distributed.mean_and_any(losses, stop, self.device)
        losses = losses.float().cpu()
        self.losses += losses.tolist()
        finite = torch.isfinite(losses)
        if not bool(finite.all()):
            bad = int((~finite).nonzero()[0])
            step = self.steps - len(self.pending) + bad + 1
            raise TrainingDiverged(
                f"training loss became {float(losses[bad])} at step {step} "
                f"(after {self.tokens} training tokens, lr "
                f"{self.schedule.lr(self.tokens, self.epoch):.4g}): "
                "lower --set lr or turn clipping on (--set clip=...)"
            )
        self.pending.clear()
        return stop

    def evaluate(self) -> None:
        self.check_losses()
        started = self.clock.elapsed()
        ppl = self.on_eval(self.tokens) if self.world.leader else math.nan
        if self.world.parallel:  # the leader evaluates; every rank steers by its result
            ppl = distributed.broadcast_float(ppl, self.device)
        improved = ppl < self.best_ppl
        if improved:
            self.best_ppl, self.best_tokens, self.evals_without_gain = ppl, self.tokens, 0
            self.best_state = copy.deepcopy(self.net.state_dict())
        else:
            self.evals_without_gain += 1
        self.schedule.after_eval(improved)
        self.eval_seconds += self.clock.elapsed() - started

    def begin_epoch(self) -> None:
        rows = self.x_all.shape[0]  # this rank's share of the batch
        self.carry = self.net.initial_state(rows, self.device, scoring=False)
        # Nets that carry nothing between chunks (the Transformer's blocks) would learn each
        # token's position in a fixed chunking; a random shift per epoch varies it (nanoGPT
        # samples random offsets). Recurrent nets walk the columns as pytorch/examples does.
        windowed = self.carry is None
        self.column = int(torch.randint(self.config.bptt, ())) if windowed and self.epoch else 0
        if windowed and self.epoch and self.world.parallel:  # one data order: rank 0's
            self.column = int(distributed.broadcast_float(self.column, self.device))

    def step(self) -> int:
        """One optimizer step on the next chunk; the predicted tokens it consumed."""
        start, c = self.column, self.config
        length = min(c.bptt, self.inputs.shape[1] - start)
        n = int(self.predicted[:, start : start + length].sum())  # known without a device sync
        x = self.x_all[:, start : start + length]
        y = self.y_all[:, start : start + length]
        if self.token_limit is not None and self.tokens + n > self.token_limit:  # the last step
            remaining = self.token_limit - self.tokens
            length, y = last_step(
                self.predicted[:, start:], self.y_all[:, start:], remaining, self.rows
            )
            x, n = x[:, :length], remaining
        for group in self.optimizer.param_groups:
            group["lr"] = self.schedule.lr(self.tokens, self.epoch)
        with self.model.autocast():
            logits, carry = self.step_net(x, self.carry)
            if self.world.parallel:  # over the global count: DDP's mean is then one process's
                loss = F.cross_entropy(*flat(logits, y), ignore_index=IGNORE, reduction="sum")
                loss = loss * (self.world.size / max(n, 1))
            else:
                loss = F.cross_entropy(*flat(logits, y), ignore_index=IGNORE)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if c.clip:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), c.clip)
        self.optimizer.step()
        self.carry = detach_state(carry)
        self.pending.append(loss.detach())
        self.column = start + c.bptt
        self.tokens += n
        self.steps += 1
        return n

    def after_step(self, n: int) -> None:
        """Clocks, limits, evaluations and checkpoints once a step is done."""
        check_every = 1 if self.device == "cpu" else 25  # a check syncs a GPU
        if self.first_step_at is None:
            seconds = self.train_seconds()
            self.first_step_at = (self.tokens, seconds)
            if self.config.compile:  # compilation happens in the first step: reported apart
                self.compile_seconds = seconds
        stop = interrupt.requested()
        if self.steps % check_every == 0:
            stop = self.check_losses(stop)
            if self.budget.seconds is not None and self.horizon_from_seconds is None:
                seconds = self.train_seconds()
                if seconds >= SECONDS_MEASURED * self.budget.seconds and self.steps > 1:
                    self.horizon_from_speed(seconds)
        elif self.world.parallel:  # ranks decide to stop together, at a check
            stop = False
        if self.token_limit is not None and self.tokens >= self.token_limit:
            self.ended_by = self.limit_name()
        if self.ended_by is None and stop:  # evaluated below, then kept
            self.ended_by = "interrupted"
        crossed = self.tokens // self.eval_every > (self.tokens - n) // self.eval_every
        if self.on_eval is not None and (crossed or self.ended_by):
            self.evaluate()
            patience = self.config.patience
            if patience and self.evals_without_gain >= patience and not self.ended_by:
                self.ended_by = "plateau"
        # a branch point: the first step boundary at or past it (every step before it began
        # below the point, where a trunk's schedule and a branch's agree)
        while self.save_at and self.tokens >= self.save_at[0]:
            self.on_save(self.save_at.pop(0), self.state())

    def limit_name(self) -> str:
        if self.horizon_from_seconds is not None:
            return "seconds"
        return "tokens" if self.token_limit == self.budget.tokens else "epochs"

    @interrupt.polling()  # a stop signal ends training at the next step, not mid-step
    def fit(self) -> FitReport:
        self.net.train()
        self.clock.start()
        while self.ended_by is None:
            if self.column is None:
                self.begin_epoch()
            if self.column >= self.inputs.shape[1]:
                self.epoch, self.column = self.epoch + 1, None
                continue
            self.after_step(self.step())
        self.check_losses()
        if self.best_state is not None:
            self.net.load_state_dict(self.best_state)
        self.net.eval()
        return self.report()

    def report(self) -> FitReport:
        notes = {
            "steps": self.steps,
            "epochs": self.tokens / self.epoch_tokens,
            "epoch_tokens": self.epoch_tokens,
            "best_valid_at_tokens": self.best_tokens,
            "final_lr": self.optimizer.param_groups[0]["lr"],
            "compute_dtype": self.model.compute_dtype,
            "compiled": self.config.compile,
        }
        if self.horizon_from_seconds is not None:
            notes["horizon_tokens_from_seconds"] = self.horizon_from_seconds
        if self.world.parallel:
            notes["world_size"] = self.world.size
        if self.resumed_from is not None:
            notes["resumed_at_tokens"] = self.resumed_from
            notes["resumed_train_seconds"] = self.seconds_before
        return FitReport(
            train_tokens=self.tokens,
            ended_by=self.ended_by,
            compile_seconds=self.compile_seconds,
            notes=notes,
        )
