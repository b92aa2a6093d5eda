"""One run, start to finish, inside its own process: load, calibrate, fit, evaluate, measure.

Whatever happens, a `RunRecord` comes back: `ok`, `skipped` (with the reason), `failed` (with
the error and every measurement taken before it) or `interrupted` (a stop signal: what was
measured until then; a neural run's best state so far is still evaluated).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import distributed, interrupt, measure
from .corpora import load_corpus
from .errors import DiskFull, SkipRun, is_disk_full_error
from .evaluate import evaluate
from .hostload import LoadWatch, load_average
from .latency import TOLERANCE, query_latency
from .models.neural.schedule import branch_point
from .models.ngram.smoothing import DiscountError
from .plan import PlannedRun
from .records import (
    RECORDS_FILE,
    RunRecord,
    artifact_path,
    machine_id,
    read_records,
    replacing,
    save_log_probs,
    save_sentence_nll,
)

LATENCY_WINDOW = 32  # batch-1 latency: score one window of this many tokens, per token
LATENCY_REPEATS = 30
LATENCY_MAX_SECONDS = 10.0  # slow peers: fewer repeats (at least 3) rather than minutes
SAMPLE_TOKENS = 30

Emit = Callable[[dict], None]


def base_record(run: PlannedRun, run_id: str) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        config_hash=run.config_hash,
        suite=run.suite,
        corpus=run.spec.corpus,
        corpus_sha256=run.corpus_sha256,
        mode=run.spec.mode,
        model=run.spec.model,
        family=run.model.model_class.family,
        model_config=run.config["model_config"],
        device=run.device,
        dtype=run.config["dtype"],
        threads=run.threads,
        seed=run.spec.seed,
        budget=run.budget.as_record(None),
        machine=measure.this_machine(),
        extra=data_scope_extra(run),
    )


def data_scope_extra(run: PlannedRun) -> dict:
    """What the records layer reads a run's data scope from (records.train_scope, eval_slice)."""
    extra = {}
    if run.spec.train_fraction is not None:  # the scaling suite: less data, not a shorter run
        extra["train_fraction"] = run.spec.train_fraction
    if run.spec.eval_tokens is not None:  # a slice: recorded, and labelled in reports
        extra["eval_slice_tokens"] = run.spec.eval_tokens
    if run.vocab:  # another vocabulary: another yardstick (records.target_run)
        extra["vocab"] = run.vocab
    return extra


def execute(
    run: PlannedRun, run_id: str, out_dir: Path, data_dir=None, emit: Emit | None = None
) -> RunRecord:
    emit = emit or (lambda event: None)
    phase = ["start"]  # where a stop signal arrived, for the record's error

    def emit_phase(event: dict) -> None:
        phase[0] = event.get("phase", phase[0])
        emit(event)

    record = base_record(run, run_id)
    env = measure.environment()  # at the start: the commit that runs, not the one at the end
    try:
        _execute(run, record, Path(out_dir), data_dir, emit_phase)
        record.status = "ok"
        if record.budget["ended_by"] == "interrupted":  # evaluated in full, trained part way
            record.status = "interrupted"
            record.error = f"{interrupt.reason()}: training stopped early, best state evaluated"
    except SkipRun as exc:
        record.status, record.error = "skipped", str(exc)
    except DiscountError as exc:  # a property of the data and settings: every rerun fails alike
        record.status = "skipped"
        record.error = f"no modified Kneser-Ney estimate of this data (lmplz refuses it too): {exc}"
    except interrupt.Interrupted as exc:  # mid-fit or mid-evaluation: keep what was measured
        record.status, record.error = "interrupted", f"{exc} during {phase[0]}"
        if record.budget["ended_by"] is None:
            record.budget = run.budget.as_record("interrupted")
    except DiskFull as exc:  # the suite stops after recording this (runner)
        record.status, record.error = "failed", str(exc)
        record.extra["disk_full"] = True
    except Exception as exc:  # a failed run is a result: record it, the suite goes on
        record.status = "failed"
        record.error = f"{type(exc).__name__}: {exc}"
        if is_disk_full_error(exc):  # a write outside the records layer (logs, a peer's files)
            record.error = f"disk full: {exc}"
            record.extra["disk_full"] = True
        record.extra["traceback"] = traceback.format_exc(limit=8)
    finally:
        distributed.leave()
    record.peak_rss_bytes = measure.peak_rss_bytes()
    record.env = env
    return record


def _execute(run: PlannedRun, record: RunRecord, out_dir: Path, data_dir, emit: Emit) -> None:
    np.random.seed(run.spec.seed)
    if run.device == "cuda" and not measure.cuda_available():
        raise SkipRun("a GPU run: CUDA is not available on this machine")
    precision = getattr(run.model.config, "precision", None)
    if run.device == "cpu" and precision == "bfloat16" and not measure.cpu_has_bf16():
        raise SkipRun(
            "bf16 on a CPU without native bf16 (AVX512-BF16 or AMX): autocast would emulate it, "
            "slower than fp32; run it on such a CPU, or with --set precision=float32"
        )
    world = distributed.join(run.device)  # under torchrun: the ranks of this run
    if world.parallel:
        record.extra |= {"world_size": world.size, "rank": world.rank}
    emit({"phase": "calibrate"})
    if world.leader:  # the other ranks wait: a calibration beside them would time them too
        record.calibration = measure.calibrate(device=run.device)
    distributed.barrier()
    # Peak RSS is the run's (data, model, scoring), not the calibration's freed buffers.
    record.extra["peak_rss_excludes_calibration"] = measure.reset_peak_rss()
    measure.reset_peak_gpu(run.device)

    emit({"phase": "load"})
    corpus = load_corpus(run.spec.corpus, data_dir, **run.vocab)
    record.vocab_size = corpus.vocab.size
    record.device_name = measure.device_name(run.device)
    train, valid, test = (
        corpus.segments(split, run.spec.mode) for split in ("train", "valid", "test")
    )
    if run.spec.train_fraction is not None:
        train = train.head(round(run.spec.train_fraction * train.n_predicted))
    record.extra["train_data_tokens"] = train.n_predicted  # the data size (scaling's x axis)
    if run.spec.eval_tokens is not None:
        valid, test = valid.head(run.spec.eval_tokens), test.head(run.spec.eval_tokens)

    model = run.model.build(corpus.vocab.size, run.device, run.spec.seed)
    record.curve = []
    watch = measure.Stopwatch(measure.device_sync(run.device))

    last_eval: dict = {}  # the newest mid-training evaluation: the final one, if it is the best

    def on_eval(tokens: int) -> float:
        """Evaluate on valid mid-training; the time it takes is not training time."""
        seconds = watch.elapsed() - sum(p["eval_seconds"] for p in record.curve)
        result = evaluate(model, valid)
        last_eval.update(tokens=tokens, result=result)
        record.curve.append(
            {
                "seconds": seconds,
                "tokens": tokens,
                "valid_ppl": result.perplexity,
                "eval_seconds": result.seconds,
            }
        )
        emit(
            {
                "phase": "train",
                "tokens": tokens,
                "tokens_per_s": tokens / max(seconds, 1e-9),
                "valid_ppl": result.perplexity,
            }
        )
        return result.perplexity

    emit({"phase": "train"})
    # the machine's load around the timed phase: a busy host shows in the record
    record.extra["load_average"] = {"start": load_average()}
    branching = branch_options(run, record, out_dir)
    with LoadWatch() as load:
        watch.start()
        report = model.fit(train, run.budget, on_eval, **branching)
        total = watch.stop()
    record.extra["load_average"] |= {"end": load_average(), "peak_1min": load.peak}
    if not world.leader:  # the leader evaluates, scores and records the run
        record.train_tokens = report.train_tokens
        return
    record.train_seconds = total - sum(p["eval_seconds"] for p in record.curve)
    trunk_seconds = report.notes.get("resumed_train_seconds")
    if trunk_seconds is not None:  # a branch costs its trunk's seconds up to the branch point
        record.train_seconds += trunk_seconds
        for point in record.curve:
            point["seconds"] += trunk_seconds
    record.compile_seconds = report.compile_seconds
    record.train_tokens = report.train_tokens
    record.train_tokens_per_s = (  # None for models that do not train (uniform)
        report.train_tokens / record.train_seconds
        if record.train_seconds > 0 and report.train_tokens
        else None
    )
    record.budget = run.budget.as_record(report.ended_by)
    record.extra.update(report.notes)
    record.params = model.num_params()
    record.size_bytes = model.size_bytes()
    record.flops_per_token = model.flops_per_token()
    if record.flops_per_token is not None:
        record.train_flops = record.flops_per_token * report.train_tokens
        achieved = record.train_flops / record.train_seconds / 1e9
        peak = "matmul_bf16_gflops" if report.notes.get("compute_dtype") == "bfloat16" else None
        # the peak of one device (or one rank's threads) times the ranks that trained
        peak_gflops = record.calibration.get(peak, record.calibration["matmul_gflops"])
        record.mfu = achieved / (peak_gflops * world.size)
    if model.iterative:  # the best state, for `lmbench sample --run` (git-ignored)
        relative = artifact_path("checkpoint", record.run_id)
        with replacing(out_dir / relative) as temp:
            saved = model.save(temp)
        if saved:
            record.checkpoint = relative

    if run.target_ppl is not None:
        record.target_ppl, record.target_source = run.target_ppl, run.target_source
    emit({"phase": "valid"})
    if last_eval and report.notes.get("best_valid_at_tokens") == last_eval["tokens"]:
        valid_eval = last_eval["result"]  # the restored best state is the one last evaluated
    else:
        valid_eval = evaluate(model, valid)
    record.valid_ppl = valid_eval.perplexity
    if not record.curve:  # a one-shot (count) model: its curve is the single finished point
        record.curve.append(
            {
                "seconds": record.train_seconds,
                "tokens": report.train_tokens,
                "valid_ppl": valid_eval.perplexity,
                "eval_seconds": valid_eval.seconds,
            }
        )
    record.time_to_target_s = time_to_target(record.curve, record.target_ppl)
    emit({"phase": "test", "valid_ppl": valid_eval.perplexity})
    test_eval = evaluate(model, test)
    record.test_ppl = test_eval.perplexity
    record.test_bits_per_token = test_eval.bits_per_token
    record.eval_tokens = test_eval.tokens
    record.eval_seconds = test_eval.seconds
    record.eval_tokens_per_s = test_eval.tokens_per_s
    if hasattr(model, "index_bytes"):  # as scored: the model's arrays and the lookup indexes
        record.extra["scoring_bytes"] = record.size_bytes + model.index_bytes()
    record.logprobs = save_log_probs(
        out_dir, record.run_id, valid_eval.log_probs, test_eval.log_probs
    )
    record.sentences = save_sentence_nll(
        out_dir, record.run_id, sentence_nll(test_eval.log_probs, test.targets(), corpus.vocab.eos)
    )

    window = test.head(LATENCY_WINDOW)  # the first test tokens, in the run's mode
    seconds = measure.median_seconds(
        lambda: model.log_prob(window),
        LATENCY_REPEATS,
        sync=measure.device_sync(run.device),
        max_seconds=LATENCY_MAX_SECONDS,
    )
    record.latency_ms_per_token = 1e3 * seconds / window.n_predicted
    # a decoder's one-word queries, checked against the bulk scores of the same tokens; a stop
    # signal ends them early (the run is measured: it stays ok, with the queries that ran)
    emit({"phase": "query"})
    if model.query_unavailable():
        record.extra["query"] = {"skipped": model.query_unavailable()}
    elif not interrupt.requested():
        with interrupt.polling():
            query = query_latency(model, test, bulk=test_eval.log_probs, stop=interrupt.requested)
        record.extra["query"] = query.as_record()
        tolerance = TOLERANCE.get(getattr(model, "compute_dtype", model.dtype), 1e-9)
        if query.queries and query.max_abs_diff <= tolerance:
            record.query_us = query.us_per_query
        else:  # a query path that disagrees with the model's own scores times nothing useful
            record.extra["query"]["error"] = (
                f"answers differ from bulk scoring by {query.max_abs_diff:.3g} "
                f"(tolerance {tolerance:g}): not reported"
            )

    record.peak_gpu_bytes = measure.peak_gpu_bytes(run.device)
    start = np.array([test.ids[0]], dtype=np.int32)  # <eos> (stream) or <s> (sentence)
    try:
        sample = model.sample(start, SAMPLE_TOKENS, temperature=1.0, seed=run.spec.seed)
        record.samples = [" ".join(corpus.vocab.decode(sample))]
    except Exception as exc:  # a peer's sampler may crash: the measurements still stand
        record.extra["sample_error"] = f"{type(exc).__name__}: {exc}"


def branch_options(run: PlannedRun, record: RunRecord, out_dir: Path) -> dict:
    """What the trainer needs for decay branches: a trunk saves its training state where each
    branch decays (`branch_states` in its record); a branch resumes from its trunk's."""
    spec = run.spec
    if not (spec.branches or spec.trunk_tokens is not None):
        return {}
    import torch  # a neural run: torch is loaded already

    fraction = run.model.config.decay_fraction
    if spec.branches:
        budgets = {branch_point(b, fraction): b for b in spec.branches}
        states = record.extra.setdefault("branch_states", {})

        def on_save(point: int, state: dict) -> None:
            relative = artifact_path("branch", record.run_id, str(budgets[point]))
            with replacing(out_dir / relative) as temp:
                torch.save(state, temp)
            states[str(budgets[point])] = relative

        return {"save_at": tuple(budgets), "on_save": on_save}
    trunk = trunk_record(run, out_dir)
    saved = torch.load(
        out_dir / trunk["extra"]["branch_states"][str(spec.budget_tokens)],
        map_location=run.device,
        weights_only=True,
    )
    record.extra["branch"] = {
        "trunk_run_id": trunk["run_id"],
        "trunk_tokens": spec.trunk_tokens,
        "from_tokens": saved["tokens"],
        "trunk_seconds": saved["train_seconds"],
    }
    return {"resume": saved}


def has_branch_state(trunk: dict, budget_tokens: int, out_dir: Path) -> bool:
    """Whether `trunk`'s saved state for the branch of `budget_tokens` is on disk in `out_dir`
    (branch states are never committed: a fresh clone has none)."""
    state = ((trunk.get("extra") or {}).get("branch_states") or {}).get(str(budget_tokens))
    return state is not None and (out_dir / state).is_file()


def trunk_record(run: PlannedRun, out_dir: Path) -> dict:
    """The newest ok trunk of this branch in `out_dir`, on this machine, with its state."""
    wanted, budget = run.config["trunk_config_hash"], str(run.spec.budget_tokens)
    jsonl = out_dir / RECORDS_FILE
    here = measure.this_machine()["id"]
    found = [
        r
        for r in (read_records(jsonl, quiet=True) if jsonl.exists() else [])
        if (r["config_hash"], r["status"], machine_id(r)) == (wanted, "ok", here)
        and has_branch_state(r, run.spec.budget_tokens, out_dir)
    ]
    if not found:
        raise LookupError(  # failed, not skipped: a resume runs it once its trunk is there
            f"no trunk for this branch in {out_dir}: run the same settings with "
            f"--budget-tokens {run.spec.trunk_tokens} --branches {budget} into this folder on "
            "this machine first (a suite lists the trunk before its branches)"
        )
    return found[-1]


def time_to_target(curve: list[dict], target: float | None) -> float | None:
    """Training seconds at the first evaluation whose valid perplexity reaches `target`
    (MLPerf: no interpolation); None when none does or there is no target."""
    if target is None:
        return None
    reached = [p["seconds"] for p in curve if p["valid_ppl"] <= target]
    return reached[0] if reached else None


def sentence_nll(log_probs: np.ndarray, targets: np.ndarray, eos: int) -> np.ndarray:
    """[n_sentences, 2]: each test sentence's NLL in nats and its predicted-token count. A
    sentence ends at each predicted <eos>, in both modes; a cut-off tail counts as one more."""
    ends = np.flatnonzero(targets == eos) + 1
    starts = np.concatenate([[0], ends[ends < targets.size]]).astype(np.int64)
    nll = np.add.reduceat(-np.asarray(log_probs, dtype=np.float64), starts)
    counts = np.diff(np.append(starts, targets.size))
    return np.stack([nll, counts], axis=1)
