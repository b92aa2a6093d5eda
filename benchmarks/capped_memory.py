"""Peak RSS of each stage of a memory-capped n-gram estimate, beside its cap.

    python benchmarks/capped_memory.py CORPUS [--cap 256M] [--model kn5] [--mode sentence]

Each stage's high-water mark is reset before it starts (Linux clear_refs), so a line reads what
that stage itself holds above what was resident when it began: the figure the per-row constants
in `lmbench/models/ngram/external.py` are sized from. CORPUS is any corpus name or folder
(`lmbench synthesize` makes large ones). Memory, not time, is measured: this may run beside
other work.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from lmbench.corpora import load_corpus
from lmbench.measure import peak_rss_bytes, reset_peak_rss
from lmbench.models.ngram import external
from lmbench.models.ngram.arpa import write_arpa
from lmbench.models.ngram.prune import parse_thresholds
from lmbench.models.registry import resolve
from lmbench.spill import MemoryCap, fixed_mmap_threshold, parse_size, resident_bytes

MiB = 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus")
    parser.add_argument("--cap", default="256M")
    parser.add_argument("--model", default="kn5")
    parser.add_argument("--mode", default="sentence")
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    cap_bytes = parse_size(args.cap)
    fixed_mmap_threshold()  # as InterpolatedNgram does before a capped estimate
    stages = []

    def stage(name, fn):
        before = resident_bytes()
        reset_peak_rss()
        start = time.perf_counter()
        result = fn()
        stages.append(
            {
                "stage": name,
                "seconds": round(time.perf_counter() - start, 2),
                "resident_before_mb": round(before / MiB),
                "peak_above_before_mb": round((peak_rss_bytes() - before) / MiB),
                "cap_mb": round(cap_bytes / MiB),
            }
        )
        print(json.dumps(stages[-1]), flush=True)
        return result

    # the estimate's inner stages too, each call its own line
    for name in ("_merge_runs", "_positions_to_ids", "effective_counts", "discount_rule"):
        _watch(external, name, stage)
    for name in ("_weights", "_compact", "_interpolate"):
        _watch(external, name, stage)
    corpus = stage("load corpus", lambda: load_corpus(args.corpus, args.data_dir))
    train = stage("lay out train", lambda: corpus.segments("train", args.mode))
    model = resolve(args.model).build(corpus.vocab.size)
    config = model.config
    cap = MemoryCap(cap_bytes)  # after the corpus, as a run makes it: its baseline
    with tempfile.TemporaryDirectory(prefix="lmbench-capped-") as folder:
        columns = external.Columns(folder, cap)
        counts = stage(
            "count",
            lambda: external.count_ngrams_capped(train, config.order, corpus.vocab.size, columns),
        )
        thresholds = parse_thresholds(config.prune, config.order)
        tables = stage(
            "estimate",
            lambda: external.estimate_capped(
                counts, model.method, config.discount_fallback, thresholds, columns
            ),
        )
        stage("write ARPA", lambda: write_arpa(tables, corpus.vocab.itos, f"{folder}/model.arpa"))
        test = corpus.segments("test", args.mode)
        model.tables = tables
        stage("score test", lambda: model.log_prob(test))


def _watch(module, name: str, stage) -> None:
    inner = getattr(module, name)

    def watched(*args, **kwargs):
        return stage(f"  {name}", lambda: inner(*args, **kwargs))

    setattr(module, name, watched)


if __name__ == "__main__":
    main()
