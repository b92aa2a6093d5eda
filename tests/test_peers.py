"""Peers through lmbench's protocol: KenLM (when built) and NLTK; and no torch on the count path."""

import shutil
import subprocess
import sys

import numpy as np
import pytest

from lmbench.errors import SkipRun
from lmbench.models.base import Budget
from lmbench.models.registry import resolve
from lmbench.protocol import make_segments
from lmbench.vocab import Vocab

from .conftest import segments

LINES = [[1, 2, 3], [2, 3, 4], [1, 1, 2, 3], [4, 3, 2, 1], [2, 2, 3]]


def test_kenlm_peer_is_skipped_without_lmplz(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    model = resolve("kenlm3").build(5)
    with pytest.raises(SkipRun, match="lmplz is not on PATH"):
        model.fit(segments(LINES, "sentence", 5), Budget())


@pytest.mark.skipif(shutil.which("lmplz") is None, reason="KenLM's lmplz is not on PATH")
def test_kenlm_peer_equals_our_kneser_ney():
    pytest.importorskip("kenlm")
    rng = np.random.default_rng(1)
    lines = [[f"t{z}" for z in rng.zipf(1.4, size=rng.integers(3, 15))] for _ in range(3000)]
    vocab = Vocab.build(lines[:2800])  # from train, as every corpus: KenLM's vocabulary too

    def lay_out(part):
        ids, eos, _ = vocab.encode(part)
        return make_segments(ids, eos, "sentence", vocab.eos, vocab.bos)

    train, test = lay_out(lines[:2800]), lay_out(lines[2800:])
    peer = resolve("kenlm3").build(vocab.size)
    ours = resolve("kn3").build(vocab.size)
    peer.fit(train, Budget())
    ours.fit(train, Budget())
    # KenLM's vocabulary adds its own zero-count <unk> beside ours: floors differ by 1/|V| terms
    np.testing.assert_allclose(peer.log_prob(test), ours.log_prob(test), atol=2e-3)
    vocab = vocab.size
    with pytest.raises(SkipRun, match="--mode sentence"):
        peer.log_prob(segments([[1, 2]], "stream", vocab))


def test_nltk_peer_scores_every_token():
    vocab = 5
    model = resolve("nltk-kn2").build(vocab)
    report = model.fit(segments(LINES, "sentence", vocab), Budget())
    assert report.train_tokens == sum(len(line) + 1 for line in LINES)
    scored = model.log_prob(segments([[1, 2, 3], [4]], "sentence", vocab))
    assert scored.shape == (6,) and np.all(scored <= 0)
    assert "different" in report.notes["protocol"]


def test_count_model_runs_never_import_torch(tiny_corpus, tmp_path):
    code = (
        "import sys; from pathlib import Path\n"
        "from lmbench.plan import RunSpec, plan\n"
        "from lmbench.execute import execute\n"
        f"run = plan(RunSpec({str(tiny_corpus)!r}, 'kn3', {{'discount_fallback': 'true'}}))\n"
        f"record = execute(run, 'r', Path({str(tmp_path)!r}))\n"
        "assert record.status == 'ok', record.error\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
