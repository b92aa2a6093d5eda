"""`lmbench sample`: text from a recorded run (its checkpoint, or an exact refit for count models)
or from a fresh short run. Any model, through the one interface's `sample`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .corpora import load_corpus
from .errors import DataError
from .measure import cuda_available
from .models.base import Budget
from .models.registry import resolve
from .records import read_records


def find_record(run_id: str, root: Path) -> tuple[dict, Path]:
    """The record of `run_id` under `root`, and the folder of its runs.jsonl."""
    for path in sorted(Path(root).rglob("*.jsonl")):
        for record in read_records(path):
            if record.get("run_id") == run_id:
                return record, path.parent
    raise DataError(
        f"no run {run_id!r} in any *.jsonl under {root}; run ids are in the records' run_id "
        "field (give the folder with --results)"
    )


def sample_recorded(run_id: str, root: Path, data_dir, **options) -> list[str]:
    record, folder = find_record(run_id, root)
    if record.get("status") != "ok":
        raise DataError(f"run {run_id} ended {record.get('status')}: {record.get('error')}")
    resolved = resolve(record["model"])
    config = type(resolved.config)(**record["model_config"])
    corpus = load_corpus(record["corpus"], data_dir, **(record.get("extra") or {}).get("vocab", {}))
    device = record["device"] if record["device"] == "cpu" or cuda_available() else "cpu"
    model = resolved.model_class(config, corpus.vocab.size, device, record["seed"])
    if model.iterative:
        path = folder / (record.get("checkpoint") or "")
        if not record.get("checkpoint") or not path.is_file():
            raise DataError(
                f"run {run_id} has no checkpoint at {path}: checkpoints stay on the machine that "
                "trained (git-ignored); rerun it, or sample a fresh run with --corpus --model"
            )
        model.load(path)
    else:  # one pass over the data: refitting the recorded budget gives the same model
        limit = (record.get("budget") or {}).get("limit") or {}
        model.fit(corpus.segments("train", record["mode"]), Budget(**limit))
    return _draw(model, corpus, record["mode"], **options)


def sample_fresh(corpus_name, model_spec, sets, mode, device, seconds, data_dir, **options):
    from .plan import RunSpec, plan
    from .settings import parse_sets

    run = plan(
        RunSpec(corpus_name, model_spec, parse_sets(sets), mode, device, budget_seconds=seconds),
        "sample",
        data_dir,
    )
    corpus = load_corpus(corpus_name, data_dir, **run.vocab)
    model = run.model.build(corpus.vocab.size, run.device, run.spec.seed)
    model.fit(corpus.segments("train", mode), run.budget)
    return _draw(model, corpus, mode, **options)


def _draw(model, corpus, mode, prefix, tokens, temperature, seed, count) -> list[str]:
    vocab = corpus.vocab
    start = vocab.bos if mode == "sentence" else vocab.eos
    words = prefix.split()
    index = vocab.index()
    context = np.array([start, *(index.get(w, vocab.unk) for w in words)], dtype=np.int32)
    texts = []
    for k in range(count):
        drawn = model.sample(context, tokens, temperature=temperature, seed=seed + k)
        texts.append(" ".join([*words, *vocab.decode(drawn)]))
    return texts
