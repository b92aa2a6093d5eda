"""Data-parallel training under torchrun: two gloo ranks train what one process trains at the
same global batch (dropout 0), and `lmbench run` under torchrun records one run from rank 0."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lmbench import distributed
from lmbench.cli import main
from lmbench.errors import UsageError
from lmbench.evaluate import evaluate
from lmbench.models.base import Budget
from lmbench.models.neural.trainer import Trainer
from lmbench.plan import RunSpec, plan

from .conftest import REPO, segments
from .test_neural import build, tiny_text

BATCH = 4  # the global batch: 2 rows per rank at world size 2
# Float tolerance: the ranks' partial sums are added in another order than one process's.
RTOL, ATOL = 1e-4, 1e-6
LR = {"lstm": 0.01, "transformer": 0.003}  # test_neural's SMALL/FAST settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(spec: str, tokens: int):
    """Train `spec` (dropout 0, batch BATCH) in this process's world: per-step losses, the
    final weights, the validation perplexities the trainer steered by."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank: one core each
    train_data = segments(tiny_text(sentences=40), "stream", 20)
    valid = segments(tiny_text(rng_seed=1, sentences=10), "stream", 20)
    model = build(spec, 20, 0, batch_size=BATCH, bptt=8, eval_every_tokens=100)
    seen = []

    def on_eval(_tokens: int) -> float:
        seen.append(evaluate(model, valid).perplexity)
        return seen[-1]

    trainer = Trainer(model, train_data, Budget(tokens=tokens), on_eval)
    try:
        report = trainer.fit()
    finally:
        torch.set_num_threads(threads)
    params = [p.detach().numpy().copy() for p in model.net.parameters()]
    return {
        "losses": list(trainer.losses),
        "params": params,
        "evals": seen,
        "tokens": report.train_tokens,
    }


def rank_main(rank: int, world: int, port: int, spec: str, tokens: int, out: str) -> None:
    env = {"RANK": rank, "WORLD_SIZE": world, "LOCAL_RANK": rank, "LOCAL_WORLD_SIZE": world}
    os.environ.update({k: str(v) for k, v in env.items()})
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    distributed.join("cpu")
    try:
        result = train(spec, tokens)
    finally:
        distributed.leave()
    torch.save(result, f"{out}.{rank}")


@pytest.mark.parametrize("spec", ["lstm", "transformer"])
def test_two_gloo_ranks_train_what_one_process_trains_at_the_same_global_batch(spec, tmp_path):
    tokens = 700  # over three epochs: the Transformer's per-epoch shift is agreed too
    one = train(spec, tokens)
    out = str(tmp_path / "result")
    mp.spawn(rank_main, args=(2, free_port(), spec, tokens, out), nprocs=2, join=True)
    ranks = [torch.load(f"{out}.{rank}", weights_only=False) for rank in range(2)]
    for two in ranks:
        assert two["tokens"] == one["tokens"] == tokens
        assert len(two["losses"]) == len(one["losses"]) > 20
        np.testing.assert_allclose(two["losses"], one["losses"], rtol=RTOL, atol=ATOL)
        # AdamW divides by the gradient's RMS: float noise in a near-zero gradient turns into
        # part of a step (lr), so weights agree to a fraction of lr (measured: < 0.05 lr), not 1e-5
        for a, b in zip(two["params"], one["params"]):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=0.2 * LR[spec])
    # the leader evaluated; the follower steered by the same numbers without evaluating
    assert len(ranks[0]["evals"]) == len(one["evals"]) > 3 and ranks[1]["evals"] == []
    np.testing.assert_allclose(ranks[0]["evals"], one["evals"], rtol=RTOL)


def test_the_world_comes_from_torchruns_variables():
    assert distributed.from_env({}) == distributed.World()
    world = distributed.from_env(
        {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    )
    assert (world.rank, world.size, world.local_rank, world.local_size) == (3, 4, 1, 2)
    assert world.parallel and not world.leader
    with pytest.raises(ValueError, match="outside WORLD_SIZE"):
        distributed.from_env({"RANK": "2", "WORLD_SIZE": "2"})
    assert distributed.current() == distributed.World()  # no process group: a world of one


@pytest.fixture
def two_ranks(monkeypatch):
    for name, value in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize(
    ("model", "budget", "message"),
    [
        ("kn3", {}, "without torchrun"),
        ("lstm", {"budget_seconds": 5.0}, "--budget-tokens or --budget-epochs"),
        ("lstm", {"budget_tokens": 300, "branches": (100,)}, "one process"),
    ],
)
def test_what_torchrun_cannot_train_is_a_usage_error(
    two_ranks, tiny_corpus, model, budget, message
):
    sets = {"lr_schedule": "wsd"} if "branches" in budget else {}
    with pytest.raises(UsageError, match=message):
        plan(RunSpec(str(tiny_corpus), model, sets, **budget))


def test_a_torchrun_world_is_part_of_the_config_and_shares_the_cores(
    two_ranks, tiny_corpus, monkeypatch
):
    spec = RunSpec(str(tiny_corpus), "lstm", budget_tokens=300)
    run = plan(spec)
    assert run.config["world_size"] == 2
    assert run.threads == max(1, (os.cpu_count() or 1) // 2)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name)
    alone = plan(spec)
    assert "world_size" not in alone.config and alone.config_hash != run.config_hash


def test_a_suite_under_torchrun_is_refused(two_ranks, capsys):
    assert main(["run", "--suite", "quick"]) == 2
    assert "one neural run" in capsys.readouterr().err


def test_an_uneven_batch_is_refused_when_planned(two_ranks, tiny_corpus):
    spec = RunSpec(str(tiny_corpus), "lstm", {"batch_size": "3"}, budget_tokens=300)
    with pytest.raises(UsageError, match="multiple of 2"):
        plan(spec)


def test_an_uneven_batch_is_refused_with_the_fix(monkeypatch):
    monkeypatch.setattr(distributed, "current", lambda: distributed.World(0, 3, 0, 3))
    model = build("lstm", 20, 0, batch_size=4)
    with pytest.raises(ValueError, match="multiple of 3"):
        Trainer(model, segments(tiny_text(), "stream", 20), Budget(tokens=100))


def test_lmbench_run_under_torchrun_records_one_run_from_rank_0(tiny_corpus, tmp_path):
    """Two ranks through the real launcher: one record (rank 0's), global tokens and FLOPs,
    the world size recorded, each rank's log kept; the same perplexity as one process."""
    sets = ["--set", "hidden=32", "--set", "dropout=0", "--set", f"batch_size={BATCH}"]
    sets += ["--set", "bptt=8", "--set", "optimizer=adamw", "--set", "lr=0.01"]
    args = ["run", "--corpus", str(tiny_corpus), "--model", "lstm", "--budget-tokens", "60"]
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(REPO), "LMBENCH_QUERIES": "20"}
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    launch += ["--master-port", str(free_port()), "-m", "lmbench.cli"]
    done = subprocess.run(
        [*launch, *args, *sets, "--out", str(out)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (record,) = [json.loads(x) for x in (out / "runs.jsonl").read_text().splitlines()]
    assert record["status"] == "ok", record.get("error")
    assert record["extra"]["world_size"] == 2 and record["extra"]["rank"] == 0
    assert record["train_tokens"] == 60  # both ranks' tokens: the global count
    assert record["train_flops"] == record["flops_per_token"] * 60
    assert record["threads"] == max(1, (os.cpu_count() or 1) // 2)
    (follower_log,) = (out / "logs").glob(f"*.{record['config_hash'][:8]}.*.rank1.log")
    assert "recorded: ok" in follower_log.read_text()
    alone = tmp_path / "alone"
    assert main([*args, *sets, "--threads", str(record["threads"]), "--out", str(alone)]) == 0
    (single,) = [json.loads(x) for x in (alone / "runs.jsonl").read_text().splitlines()]
    assert single["config_hash"] != record["config_hash"]
    assert single["test_ppl"] == pytest.approx(record["test_ppl"], rel=1e-4)
    assert not dist.is_initialized()
