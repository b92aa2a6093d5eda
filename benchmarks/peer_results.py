"""Where the peer benchmarks write: results/peers/<host>-<date>/<name>.json (plus a summary on
stdout, without the environment block)."""

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
