"""A recorded run's trained model, back in memory: its checkpoint (neural models), or an exact
refit of its recorded budget (count models: one pass over the data gives the same model)."""

from __future__ import annotations

from pathlib import Path

from .corpora import load_corpus
from .errors import DataError
from .measure import cuda_available
from .models.base import Budget
from .models.registry import resolve
from .records import jsonl_files, read_records


def find_record(run_id: str, root: Path) -> tuple[dict, Path]:
    """The record of `run_id` under `root`, and the folder of its runs.jsonl."""
    for path in jsonl_files(Path(root)):
        for record in read_records(path):
            if record.get("run_id") == run_id:
                return record, path.parent
    raise DataError(
        f"no run {run_id!r} in any *.jsonl under {root}; run ids are in the records' run_id "
        "field (give the folder with --results)"
    )


def restore(record: dict, folder: Path, data_dir):
    """(model, corpus) of an `ok` record whose runs.jsonl is in `folder`."""
    run_id = record.get("run_id")
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
                "trained (git-ignored); rerun it, or use a fresh run"
            )
        model.load(path)
    else:
        limit = (record.get("budget") or {}).get("limit") or {}
        model.fit(corpus.segments("train", record["mode"]), Budget(**limit))
    return model, corpus
