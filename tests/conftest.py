import os
from pathlib import Path

# Every run times a decoder's per-query path; 300 queries (not 10,000) keeps the suite quick.
# Set before lmbench is imported: `lmbench.latency.QUERIES` reads it once.
os.environ.setdefault("LMBENCH_QUERIES", "300")

import numpy as np
import pytest

from lmbench.protocol import make_segments

REPO = Path(__file__).resolve().parent.parent


def _mirror() -> Path | None:
    """LMBENCH_DATA, the team's shared/corpora beside the clone, or lmbench's download cache
    (laid out alike: what `nox -s bench` downloaded)."""
    from lmbench.corpora.fetch import cache_root

    for candidate in (
        os.environ.get("LMBENCH_DATA"),
        REPO.parent / "shared" / "corpora",
        cache_root(),
    ):
        if candidate and (Path(candidate) / "ptb" / "ptb.train.txt").exists():
            return Path(candidate).resolve()
    return None


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The offline corpus mirror. With CI=true a missing corpus fails the run, never skips."""
    found = _mirror()
    if found is None:
        message = "no corpus mirror: set LMBENCH_DATA to a folder laid out like shared/corpora"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """A private XDG cache and no mirror, so nothing outside tmp_path is read or written."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("LMBENCH_DATA", raising=False)
    return tmp_path / "xdg" / "lmbench" / "corpora"


def write_corpus(folder: Path, train: str, valid: str, test: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("train", train), ("valid", valid), ("test", test)):
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def tiny_corpus(tmp_path) -> Path:
    """Plain-text corpus whose valid and test hold words never seen in train."""
    return write_corpus(
        tmp_path / "tiny",
        "the cat sat\nthe dog sat\nthe cat ran\n",
        "the cat sat\na bird sang\n",
        "the dog ran\nthe fox sat\n",
    )


def segments(lines: list[list[int]], mode: str, vocab_size: int):
    """Segments from lines of ids (0 is <eos>), the way the corpus loader lays them out."""
    ids = np.array([t for line in lines for t in (*line, 0)], dtype=np.int32)
    eos = np.cumsum([len(line) + 1 for line in lines]) - 1
    return make_segments(ids, eos, mode, eos=0, bos=vocab_size)


@pytest.fixture(autouse=True)
def private_locks(tmp_path, monkeypatch):
    """Tests never wait behind (or block) a real suite's host-wide timed-run lock."""
    monkeypatch.setenv("LMBENCH_LOCK_DIR", str(tmp_path / "locks"))
