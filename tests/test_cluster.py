"""Suites on a Ray cluster: a head and a worker node on 127.0.0.1 (their CPUs declared: both
share this machine's cores), the quick suite's records against the local executor's, resume,
a run lost with its node, and the resources each run asks for."""

import json
import os
import threading

import pytest

from lmbench import cluster
from lmbench.cli import main
from lmbench.plan import RunSpec, plan, plan_seeds
from lmbench.progress import SuiteDisplay
from lmbench.suites import get_suite

from .conftest import REPO

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]'")
from ray.cluster_utils import Cluster  # noqa: E402

CORES = os.cpu_count() or 1


@pytest.fixture(scope="module")
def node_env(tmp_path_factory):
    """What the nodes' processes inherit: this checkout's code and a private timed-run lock."""
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "LMBENCH_LOCK_DIR")}
    path = [str(REPO), *filter(None, [saved["PYTHONPATH"]])]
    os.environ["PYTHONPATH"] = os.pathsep.join(path)
    os.environ["LMBENCH_LOCK_DIR"] = str(tmp_path_factory.mktemp("node-locks"))
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def two_nodes(node_env):
    """A head and one worker, each declaring this machine's core count."""
    local = Cluster(initialize_head=True, head_node_args={"num_cpus": CORES})
    worker = local.add_node(num_cpus=CORES)
    local.wait_for_nodes()
    yield local, worker
    cluster.disconnect()
    local.shutdown()


def records_of(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "runs.jsonl").read_text().splitlines()]


def test_the_quick_suite_on_ray_gives_the_local_executors_records_and_resumes_alike(
    two_nodes, mirror, tmp_path
):
    local_cluster, _ = two_nodes
    on_ray = tmp_path / "ray"
    ray_args = ["run", "--suite", "quick", "--executor", "ray", "--out", str(on_ray)]
    ray_args += ["--address", local_cluster.address]
    assert main(ray_args) == 0
    records = records_of(on_ray)
    suite = get_suite("quick")
    planned = plan_seeds(list(suite.runs), suite.seeds, suite.name)  # as the local executor
    assert sorted(r["config_hash"] for r in records) == sorted(p.config_hash for p in planned)
    assert all(r["status"] == "ok" for r in records), [r.get("error") for r in records]
    # each run reserved a whole node: its threads are the nodes' declared CPUs
    for record in records:
        assert record["threads"] == CORES
        assert (on_ray / record["sentences"]).is_file()  # artifacts came back to the driver
        assert (on_ray / "logs" / f"{record['run_id']}.log").is_file()
    assert 1 <= len({r["extra"]["ray"]["node"] for r in records}) <= 2
    # count models are deterministic: the local executor gives the same perplexities exactly
    counting = [r for r in records if r["family"] != "neural"]
    local = tmp_path / "local"
    only = ",".join(r["config_hash"] for r in counting)
    assert main(["run", "--suite", "quick", "--only", only, "--out", str(local)]) == 0
    by_hash = {r["config_hash"]: r for r in records_of(local)}
    for record in counting:
        twin = by_hash[record["config_hash"]]
        assert (record["valid_ppl"], record["test_ppl"]) == (twin["valid_ppl"], twin["test_ppl"])
    # resume keeps every run: nothing is submitted, nothing appended
    assert main([*ray_args, "--resume"]) == 0
    assert len(records_of(on_ray)) == len(records)


class StartWatch(SuiteDisplay):
    """A display that calls `on_start` when a run reports its node."""

    def __init__(self, total, on_start):
        super().__init__(total, live=False)
        self.on_start = on_start

    def note(self, message: str) -> None:
        super().note(message)
        if message.startswith("[start"):
            self.on_start()


def test_a_run_lost_with_its_node_is_failed_and_rerun_on_resume(node_env, tiny_corpus, tmp_path):
    head_only = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})  # runs nothing
    worker = head_only.add_node(num_cpus=CORES)
    head_only.wait_for_nodes()
    try:
        small = {"batch_size": "2", "bptt": "4", "hidden": "32"}
        run = plan(RunSpec(str(tiny_corpus), "lstm", small, budget_tokens=5_000, threads=CORES))
        out = tmp_path / "out"
        lost = threading.Event()

        def kill_node() -> None:
            if not lost.is_set():
                lost.set()
                head_only.remove_node(worker)

        display = StartWatch(1, kill_node)
        (record,) = cluster.run_on_cluster([run], out, None, False, display, head_only.address)
        assert lost.is_set() and record["status"] == "failed"
        assert "lost on the Ray cluster" in record["error"]
        assert record["machine"]["id"]  # the node said which machine it was before it died
        head_only.add_node(num_cpus=CORES)
        head_only.wait_for_nodes()
        display = SuiteDisplay(1, live=False)
        (again,) = cluster.run_on_cluster([run], out, None, True, display, head_only.address)
        assert again["status"] == "ok" and again["train_tokens"] == 5_000
        assert [r["status"] for r in records_of(out)] == ["failed", "ok"]
    finally:
        cluster.disconnect()
        head_only.shutdown()


def test_each_run_asks_for_a_whole_node_or_one_gpu(tiny_corpus):
    cpu_run = plan(RunSpec(str(tiny_corpus), "kn3", threads=8))
    assert cluster.placement(cpu_run) == {"num_cpus": 8, "num_gpus": 0, "max_retries": 0}
    gpu_run = plan(RunSpec(str(tiny_corpus), "lstm", device="cuda", budget_tokens=10), "suite")
    assert cluster.placement(gpu_run) == {"num_cpus": 1, "num_gpus": 1, "max_retries": 0}


class FakeRay:
    def __init__(self, *cpus, gpus=0):
        self._nodes = [
            {"Alive": True, "NodeID": str(i), "Resources": {"CPU": c, "GPU": gpus}}
            for i, c in enumerate(cpus)
        ]

    def nodes(self):
        return self._nodes


def test_a_cpu_run_reserves_the_nodes_cpu_count_and_mixed_nodes_need_threads():
    assert cluster.node_threads(FakeRay(0, 16, 16)) == 16  # a head without CPUs runs nothing
    with pytest.raises(Exception, match="--threads"):
        cluster.node_threads(FakeRay(8, 16))


def test_branches_and_runs_timed_to_a_target_wait_for_what_they_need(tiny_corpus):
    corpus = str(tiny_corpus)
    kn5 = plan(RunSpec(corpus, "kn5"), "suite")
    wsd = {"lr_schedule": "wsd"}
    trunk = plan(RunSpec(corpus, "lstm", wsd, budget_tokens=400, branches=(200,)), "suite")
    branch = plan(RunSpec(corpus, "lstm", wsd, budget_tokens=200, trunk_tokens=400), "suite")
    todo = [kn5, trunk, branch]
    assert cluster.dependencies(kn5, todo) == set()
    assert cluster.dependencies(trunk, todo) == {kn5.config_hash}
    assert cluster.dependencies(branch, todo) == {kn5.config_hash, trunk.config_hash}


def test_a_run_that_cannot_be_planned_on_its_node_is_failed_with_the_cause(
    two_nodes, tiny_corpus, tmp_path
):
    local_cluster, _ = two_nodes
    run = plan(RunSpec(str(tiny_corpus), "kn3", threads=CORES))
    for path in tiny_corpus.iterdir():  # gone after the driver planned it
        path.unlink()
    display = SuiteDisplay(1, live=False)
    (record,) = cluster.run_on_cluster(
        [run], tmp_path / "out", None, False, display, local_cluster.address
    )
    assert record["status"] == "failed"
    assert record["error"].startswith("failed on its node: ") and "tiny" in record["error"]
    assert record["machine"]["id"] and record["extra"]["ray"]["node"]


def test_a_run_no_node_can_take_is_recorded_not_left_pending(tiny_corpus):
    """Ray would hold such a task forever: a GPU run on a CPU cluster is skipped (as locally
    without CUDA), a CPU run larger than every node fails with the fix."""
    gpu_run = plan(RunSpec(str(tiny_corpus), "lstm", device="cuda", budget_tokens=10), "suite")
    cpu_run = plan(RunSpec(str(tiny_corpus), "kn3", threads=8))
    cpu_nodes = FakeRay(0, 4).nodes()
    status, reason = cluster.unplaceable(gpu_run, cpu_nodes)
    assert status == "skipped" and "no node" in reason and "GPU" in reason
    status, reason = cluster.unplaceable(cpu_run, cpu_nodes)
    assert status == "failed" and "--threads 4" in reason
    assert cluster.unplaceable(gpu_run, FakeRay(4, gpus=1).nodes()) is None
    assert cluster.unplaceable(cpu_run, FakeRay(8).nodes()) is None


def test_a_branch_whose_trunk_resume_kept_waits_for_nothing(tiny_corpus):
    wsd = {"lr_schedule": "wsd"}
    branch = plan(RunSpec(str(tiny_corpus), "lstm", wsd, budget_tokens=200, trunk_tokens=400))
    assert cluster.dependencies(branch, [branch]) == set()


def test_a_gpu_run_on_a_cluster_without_gpus_is_skipped_at_once(two_nodes, tiny_corpus, tmp_path):
    local_cluster, _ = two_nodes
    gpu_run = plan(RunSpec(str(tiny_corpus), "lstm", device="cuda", budget_tokens=10), "suite")
    display = SuiteDisplay(1, live=False)
    out = tmp_path / "out"
    (record,) = cluster.run_on_cluster([gpu_run], out, None, False, display, local_cluster.address)
    assert record["status"] == "skipped" and "no node" in record["error"]
    assert records_of(out)[0]["status"] == "skipped"
