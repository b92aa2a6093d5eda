"""Data-parallel training of one neural run under `torchrun` (DistributedDataParallel).

`torchrun --nproc-per-node N -m lmbench.cli run ...` starts N copies of `lmbench run`; each reads
its rank from the environment torchrun sets (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
`LOCAL_WORLD_SIZE`) and starts its run's worker process as usual. The workers join one process
group (gloo on CPU, NCCL on CUDA) and train the same config as one process would: the global batch
is the config's `batch_size`, each rank takes its rows, and the loss is normalised by the global
count of predicted tokens, so the gradient DDP averages is the one-process gradient. Rank 0
(the leader) alone calibrates, evaluates, scores and writes the record; the others train and
wait for its evaluations, whose perplexity it broadcasts (validation steers the schedule and early
stopping, and every rank must take the same decisions).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class World:
    """This process's place among the ranks training one run (one rank: no torchrun)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def leader(self) -> bool:
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1


def from_env(environ=os.environ) -> World:
    """The world torchrun describes in the environment; a plain process is a world of one."""
    try:
        size = int(environ.get("WORLD_SIZE", "1"))
        rank = int(environ.get("RANK", "0"))
        local_rank = int(environ.get("LOCAL_RANK", str(rank)))
        local_size = int(environ.get("LOCAL_WORLD_SIZE", str(size)))
    except ValueError as exc:
        raise ValueError(f"torchrun's RANK/WORLD_SIZE variables are not integers: {exc}") from exc
    if size < 1 or not 0 <= rank < size:
        raise ValueError(f"RANK={rank} is outside WORLD_SIZE={size}")
    return World(rank, size, local_rank, local_size)


def default_threads(world: World) -> int:
    """CPU threads per rank: this node's cores shared among the ranks on it."""
    return max(1, (os.cpu_count() or 1) // world.local_size)


TIMEOUT_VARIABLE = "LMBENCH_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 3600.0  # the other ranks wait this long for rank 0's evaluations


def join(device: str) -> World:
    """Join the process group of the ranks torchrun started (no-op for a world of one). A rank
    waits for the others up to LMBENCH_DIST_TIMEOUT_S seconds (default an hour: rank 0 evaluates
    while they wait, and NCCL's own default is 10 minutes)."""
    world = from_env()
    if not world.parallel:
        return world
    import datetime

    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        timeout = datetime.timedelta(
            seconds=float(os.environ.get(TIMEOUT_VARIABLE, DEFAULT_TIMEOUT_S))
        )
        if device == "cuda":  # this rank's GPU, for every collective from the first on
            torch.cuda.set_device(world.local_rank)
            gpu = torch.device("cuda", world.local_rank)
            dist.init_process_group(backend="nccl", timeout=timeout, device_id=gpu)
        else:
            dist.init_process_group(backend="gloo", timeout=timeout)
    return world


def current() -> World:
    """The world of an initialised process group, else a world of one (a plain run, tests)."""
    return from_env() if _group() is not None else World()


def _group():
    """torch.distributed when a process group is up, else None (a count model never loads
    torch: this does not either)."""
    if "torch" not in sys.modules:
        return None
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def leave() -> None:
    if (dist := _group()) is not None:
        dist.destroy_process_group()


def barrier() -> None:
    if (dist := _group()) is not None:
        dist.barrier()


def broadcast_float(value: float, device: str) -> float:
    """The leader's `value` on every rank."""
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def mean_and_any(values, flag: bool, device: str):
    """`values` (a float tensor) averaged over ranks, and whether `flag` is set on any rank: one
    all-reduce for the loss check and the stop decision together."""
    import torch
    import torch.distributed as dist

    values = values.to(device).double().reshape(-1)  # NCCL reduces CUDA tensors only
    flag_tensor = torch.tensor([float(flag)], dtype=torch.float64, device=device)
    packed = torch.cat([values, flag_tensor])
    dist.all_reduce(packed)
    packed = packed.cpu()
    world = dist.get_world_size()
    return packed[:-1] / world, bool(packed[-1] > 0)
