"""Where the peer benchmarks read corpora and write: results/peers/<host>-<date>/<name>.json
(plus a summary on stdout, without the environment block)."""

from __future__ import annotations

import json
import socket
from datetime import date
from pathlib import Path


def save_peer_results(name: str, results: dict, out: str | None = None) -> Path:
    folder = Path(out or f"results/peers/{socket.gethostname()}-{date.today()}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if k != "env"}, indent=2))
    return path


def corpus_folder(data_dir: str | None, corpora: tuple[str, ...]) -> str:
    """`data_dir` (an offline mirror, as LMBENCH_DATA), else lmbench's download cache, which is
    laid out alike: `corpora` are downloaded and verified into it first."""
    if data_dir:
        return data_dir
    from lmbench.corpora import load_corpus
    from lmbench.corpora.fetch import cache_root

    for name in corpora:
        load_corpus(name)
    return str(cache_root())
