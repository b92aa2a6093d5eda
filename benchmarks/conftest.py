import os

import pytest

from lmbench.corpora import load_corpus
from lmbench.protocol import make_segments


@pytest.fixture(scope="session")
def ptb():
    """PTB train and test as stream-mode segments (needs LMBENCH_DATA or a cached download)."""
    try:
        corpus = load_corpus("ptb", os.environ.get("LMBENCH_DATA"), download=False)
    except Exception as exc:  # noqa: BLE001 - any reason the corpus is absent
        pytest.skip(f"PTB not available: {exc}")
    vocab = corpus.vocab

    def segments(split):
        s = corpus.splits[split]
        return make_segments(s.ids, s.eos_positions, "stream", vocab.eos, vocab.bos)

    return vocab.size, segments("train"), segments("test")
