"""A suite's runs on a Ray cluster: `lmbench run --suite NAME --executor ray [--address ADDR]`.

Each run is one Ray task, placed so that no two timed runs share a node's cores or a GPU: a CPU
run asks for `threads` CPUs, and `threads` defaults to the cluster nodes' CPU count (the whole
node); a GPU run asks for one GPU and one CPU. On its node the task takes that host's timed-run
lock too (`hostlock`): nodes that share a host (a test cluster) still time one run at a time.

The task runs the run's worker process exactly as the local executor does (`runner.run_in_child`),
in a staging folder on its node, and streams back first the node's machine fingerprint, then the
worker's progress events, then the record and every artifact the run wrote (log, sentence NLLs,
log-probs, checkpoints, branch states). The driver is the only writer of the results folder.
A branch's trunk state and records travel to the branch's node with it; a branch waits for its
trunk, and a run for the suite's yardstick (`records.target_run`), as they would in order.

A run lost with its node (or its Ray worker) is recorded `failed` with the reason; Ray does not
retry it (`max_retries=0`) and `--resume` reruns it. Resume keeps the ok and skipped records of
any machine among the cluster's nodes (their fingerprints are read when the suite starts).
"""

from __future__ import annotations

import dataclasses
import json
import queue
import tempfile
import threading
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from . import measure, records
from .errors import UsageError
from .execute import base_record
from .hostlock import folder_lock, timed_run_lock
from .plan import PlannedRun, RunSpec, plan
from .progress import SuiteDisplay, done_line
from .records import (
    ARTIFACT_FOLDERS,
    RECORDS_FILE,
    RunRecord,
    append_record,
    read_records,
    restore,
    write_bytes,
)
from .runner import make_run_id, resumable, run_in_child, with_branch_states, with_target

WAIT_SECONDS = 1.0  # the driver's poll for finished items; Ctrl-C is seen this often
SHIPPED_FOLDERS = (*ARTIFACT_FOLDERS, "logs")


def require_ray():
    try:
        import ray
    except ImportError as exc:
        raise UsageError(
            "--executor ray needs Ray on this machine and every node: pip install -e '.[ray]' "
            "in lmbench's clone (or pip install 'ray>=2.40')"
        ) from exc
    return ray


def connect(address: str | None):
    """Ray, connected to the cluster at `address` (None: RAY_ADDRESS, else a local instance)."""
    ray = require_ray()
    if not ray.is_initialized():
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    return ray


def disconnect() -> None:
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()


def alive_nodes(ray) -> list[dict]:
    """The cluster's live nodes that can run something (a head with no CPUs cannot)."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return [n for n in nodes if n["Resources"].get("CPU", 0) or n["Resources"].get("GPU", 0)]


def node_threads(ray) -> int:
    """The CPU count of the cluster's nodes, which a CPU run reserves whole by default."""
    counts = sorted({int(n["Resources"].get("CPU", 0)) for n in alive_nodes(ray)} - {0})
    if not counts:
        raise UsageError("the Ray cluster has no node with CPUs: start one with `ray start`")
    if len(counts) > 1:
        raise UsageError(
            f"the Ray cluster's nodes have {', '.join(map(str, counts))} CPUs: give --threads N "
            "(each CPU run reserves N CPUs on one node; N = the nodes' CPU count keeps one run "
            "per node)"
        )
    return counts[0]


def placement(run: PlannedRun) -> dict:
    """The Ray resources a run reserves: all its threads' CPUs, or one GPU (and a CPU to feed
    it). No retries: a run lost with its node is recorded, and resume reruns it."""
    if run.device == "cuda":
        return {"num_cpus": 1, "num_gpus": 1, "max_retries": 0}
    return {"num_cpus": run.threads, "num_gpus": 0, "max_retries": 0}


def _fingerprint() -> dict:
    return measure.this_machine()


def node_machines(ray) -> dict[str, dict]:
    """Each live node's machine fingerprint, by node id: a zero-CPU task pinned to every node."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0, max_retries=0)(_fingerprint)
    nodes = [node["NodeID"] for node in alive_nodes(ray)]
    refs = [
        probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote()
        for n in nodes
    ]
    return dict(zip(nodes, ray.get(refs)))


def unplaceable(run: PlannedRun, nodes: list[dict]) -> tuple[str, str] | None:
    """(status, reason) for a run no live node can take (Ray would hold it forever): a GPU run
    on a cluster without GPUs is skipped, as the local executor skips it without CUDA."""
    gpus = max((n["Resources"].get("GPU", 0) for n in nodes), default=0)
    cpus = max((n["Resources"].get("CPU", 0) for n in nodes), default=0)
    wanted = placement(run)
    if wanted["num_gpus"] > gpus:
        return "skipped", "a GPU run: no node of the Ray cluster has a GPU"
    if wanted["num_cpus"] > cpus:
        return "failed", (
            f"the run asks for {wanted['num_cpus']} CPUs and the Ray cluster's largest node has "
            f"{cpus:g}: give --threads {cpus:g} or less, or add a larger node"
        )
    return None


# -- on the node ------------------------------------------------------------------------------


def run_on_node(job: dict, inputs: dict[str, bytes]):
    """The Ray task (a generator: Ray streams what it yields): the node's fingerprint, the
    worker's events, then {"record", "artifacts"}."""
    import ray

    yield {"machine": measure.this_machine(), "node": ray.get_runtime_context().get_node_id()}
    with tempfile.TemporaryDirectory(prefix="lmbench-ray-") as tmp:
        stage = Path(tmp)
        for relative, data in inputs.items():
            (stage / relative).parent.mkdir(parents=True, exist_ok=True)
            (stage / relative).write_bytes(data)
        commit = measure.git_commit()
        if None not in (commit, job["commit"]) and commit != job["commit"]:
            raise RuntimeError(
                f"this node runs lmbench at commit {commit}, the driver at {job['commit']}: "
                "install the same lmbench on every node"
            )
        run = plan(RunSpec(**job["spec"]), job["suite"], job["data_dir"])
        if run.config_hash != job["config_hash"]:
            raise RuntimeError(
                f"this node plans config {run.config_hash}, the driver {job['config_hash']}: "
                "install the same lmbench and corpora on every node"
            )
        run = replace(run, target_ppl=job["target_ppl"], target_source=job["target_source"])
        events: queue.Queue = queue.Queue()
        outcome: dict = {}

        def work() -> None:
            try:
                with timed_run_lock(stage, wait=True, note=lambda m: events.put({"note": m})):
                    outcome["record"] = run_in_child(
                        run, job["run_id"], stage, job["data_dir"], events.put
                    )
            except BaseException as exc:  # re-raised in the task, where Ray reports it
                outcome["error"] = exc
            finally:
                events.put(None)

        thread = threading.Thread(target=work, name="lmbench-run", daemon=True)
        thread.start()
        while (event := events.get()) is not None:
            yield {"event": event}
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        artifacts = {
            str(path.relative_to(stage)): path.read_bytes()
            for folder in SHIPPED_FOLDERS
            for path in sorted((stage / folder).rglob("*"))
            if path.is_file() and str(path.relative_to(stage)) not in inputs
        }
        record = outcome["record"]  # its paths as they will be on the driver
        if record.error:
            record.error = record.error.replace(str(stage), job["out_dir"])
        yield {"record": record.to_json(), "artifacts": artifacts}


# -- on the driver ----------------------------------------------------------------------------


@dataclass
class Task:
    """A run submitted to the cluster and what has come back from it so far."""

    index: int
    run: PlannedRun
    run_id: str
    stream: object  # Ray's ObjectRefGenerator
    machine: dict | None = None  # the node's fingerprint, once it reports
    node: str | None = None  # its Ray node id
    started: float = field(default_factory=measure.wall_time)

    @property
    def label(self) -> str:
        return f"{self.run.spec.corpus} {self.run.spec.model} {self.run.spec.mode}"


def dependencies(run: PlannedRun, todo: list[PlannedRun]) -> set[str]:
    """Config hashes among `todo` that `run` must wait for: its trunk, and the run that would be
    its time-to-target yardstick."""
    needs = {run.config.get("trunk_config_hash")} - {None}  # kept by resume: not waited for
    if run.model.model_class.iterative:
        yardsticks = [
            dict(asdict(base_record(other, other.config_hash)), status="ok")
            for other in todo
            if other.spec.model == records.TARGET_MODEL
        ]
        target = records.target_run(asdict(base_record(run, "")), yardsticks)
        if target is not None:
            needs.add(target["config_hash"])
    return needs & {other.config_hash for other in todo}


def branch_inputs(run: PlannedRun, out_dir: Path, known: list[dict]) -> tuple[dict, dict | None]:
    """What a branch's node needs from the results folder (its trunk's record and state), and
    that trunk's record."""
    wanted = run.config.get("trunk_config_hash")
    if wanted is None:
        return {}, None
    budget = str(run.spec.budget_tokens)
    trunks = [
        r
        for r in known
        if r["config_hash"] == wanted
        and r["status"] == "ok"
        and budget in ((r.get("extra") or {}).get("branch_states") or {})
    ]
    if not trunks:
        return {}, None  # the node's worker records why (execute.trunk_record)
    state = trunks[-1]["extra"]["branch_states"][budget]
    inputs = {
        RECORDS_FILE: (json.dumps(trunks[-1]) + "\n").encode(),
        state: (out_dir / state).read_bytes(),
    }
    return inputs, trunks[-1]


def lost_record(task: Task, reason: str, status: str = "failed") -> RunRecord:
    """The record of a run whose task came back without one: the node's fingerprint where it
    had reported it (else none: it never started)."""
    record = base_record(task.run, task.run_id)
    record.machine = task.machine
    record.status, record.error = status, reason
    record.extra["ray"] = {"node": task.node}
    return record


def run_on_cluster(
    runs: list[PlannedRun],
    out_dir: Path,
    data_dir=None,
    resume: bool = False,
    display: SuiteDisplay | None = None,
    address: str | None = None,
) -> list[dict]:
    """`runner.run_planned`, with each run a Ray task; the same records, resume and locks
    (the folder lock here, each node's timed-run lock there)."""
    ray = connect(address)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jsonl = out_dir / RECORDS_FILE
    existing = read_records(jsonl) if jsonl.exists() else []
    display = display or SuiteDisplay(len(runs), live=False)  # its notes: runs overlap
    machines = node_machines(ray)
    cluster_ids = {fp["id"] for fp in machines.values()}
    kept = resumable(existing, cluster_ids, display, "the cluster's nodes") if resume else {}
    kept = with_branch_states(kept, runs, out_dir, display)
    nodes = alive_nodes(ray)
    todo = [run for run in runs if run.config_hash not in kept]
    remote = ray.remote(run_on_node)
    waits = {run.config_hash: dependencies(run, todo) for run in todo}
    results: dict[str, dict] = {}
    with folder_lock(out_dir):
        if kept:
            display.note(f"resuming {jsonl}: {len(runs) - len(todo)} runs kept, {len(todo)} to run")
        waiting, running = list(enumerate(todo)), {}

        def finish(task: Task, record: RunRecord) -> None:
            """Append the run's record (a node's full disk fails its run, not the suite)."""
            append_record(jsonl, record)
            results[task.run.config_hash] = restore(json.loads(record.to_json()))
            wall = measure.wall_time() - task.started
            line = done_line(
                len(results), len(todo), task.label, results[task.run.config_hash], wall
            )
            display.note(line)

        try:
            while waiting or running:
                for index, run in [
                    (i, r) for i, r in waiting if waits[r.config_hash] <= set(results)
                ]:
                    waiting.remove((index, run))
                    if (refused := unplaceable(run, nodes)) is not None:
                        # decided here, on the driver: its fingerprint
                        task = Task(index, run, make_run_id(run), None, measure.this_machine())
                        finish(task, lost_record(task, refused[1], refused[0]))
                        continue
                    known = [*existing, *results.values()]
                    task = submit(remote, index, run, out_dir, data_dir, known, machines)
                    running[task.stream] = task
                if not running:
                    continue  # runs refused just now; the rest become ready on the next pass
                ready, _ = ray.wait(list(running), num_returns=1, timeout=WAIT_SECONDS)
                for stream in ready:
                    record = receive(ray, running[stream], out_dir, display)
                    if record is not None:
                        finish(running.pop(stream), record)
        except KeyboardInterrupt:  # cancel what runs; record it interrupted; resume reruns it
            for task in running.values():
                ray.cancel(task.stream, force=True)
                append_record(
                    jsonl, lost_record(task, "stopped by Ctrl-C or SIGTERM", "interrupted")
                )
            raise
    return [kept.get(run.config_hash) or results[run.config_hash] for run in runs]


def submit(
    remote,
    index: int,
    run: PlannedRun,
    out_dir: Path,
    data_dir,
    known: list[dict],
    machines: dict[str, dict],
) -> Task:
    run = with_target(run, known)
    run_id = make_run_id(run)
    job = {  # the device as the driver resolved it: the hash holds it, whatever the node has
        "spec": dataclasses.asdict(replace(run.spec, device=run.device)),
        "suite": run.suite,
        "run_id": run_id,
        "data_dir": str(data_dir) if data_dir else None,
        "out_dir": str(out_dir),
        "config_hash": run.config_hash,
        "target_ppl": run.target_ppl,
        "target_source": run.target_source,
        "commit": measure.git_commit(),
    }
    inputs, trunk = branch_inputs(run, out_dir, known)
    options = placement(run)
    node = ((trunk or {}).get("extra") or {}).get("ray", {}).get("node")
    if node in machines:  # a branch goes where its trunk ran (its cost includes those seconds)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=True)
    stream = remote.options(**options).remote(job, inputs)
    return Task(index, run, run_id, stream)


def receive(ray, task: Task, out_dir: Path, display: SuiteDisplay) -> RunRecord | None:
    """The next item of `task`'s stream: its record when it is the last (artifacts written),
    else None. A task that failed or lost its node gives a `failed` record."""
    try:
        item = ray.get(next(task.stream))
    except StopIteration:
        return lost_record(task, "the Ray task ended without a record")
    except ray.exceptions.RayTaskError as exc:  # the task raised (planning on the node)
        cause = getattr(exc, "cause", None) or exc
        return lost_record(task, f"failed on its node: {type(cause).__name__}: {cause}"[:2000])
    except ray.exceptions.RayError as exc:  # the node, its raylet or the task's worker died
        return lost_record(task, f"lost on the Ray cluster: {type(exc).__name__}: {exc}"[:2000])
    if "machine" in item:
        task.machine, task.node = item["machine"], item["node"]
        display.note(
            f"[start {task.index + 1}] {task.label} on {measure.describe_machine(task.machine)} "
            f"(node {item['node'][:12]})"
        )
    elif "event" in item:
        event = item["event"]
        if "note" in event:
            display.note(f"[{task.index + 1}] {event['note']}")
        elif event.get("phase") == "train" and event.get("valid_ppl") is not None:
            display.note(
                f"[{task.index + 1}] {task.label} | {event['tokens']:,} tokens | "
                f"{event['tokens_per_s']:,.0f} tok/s | valid ppl {event['valid_ppl']:.2f}"
            )
    else:
        for relative, data in item["artifacts"].items():
            write_bytes(out_dir / relative, data)
        try:
            record = RunRecord(**json.loads(item["record"]))
        except (TypeError, ValueError) as exc:  # another lmbench's record
            return lost_record(task, f"the node's record is unreadable here: {exc}"[:2000])
        record.extra["ray"] = {"node": task.node}
        return record
    return None
