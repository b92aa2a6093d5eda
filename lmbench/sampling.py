"""`lmbench sample`: text from a recorded run (its checkpoint, or an exact refit for count models)
or from a fresh short run. Any model, through the one interface's `sample`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .corpora import load_corpus
from .restore import find_record, restore


def sample_recorded(run_id: str, root: Path, data_dir, **options) -> list[str]:
    record, folder = find_record(run_id, root)
    model, corpus = restore(record, folder, data_dir)
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
