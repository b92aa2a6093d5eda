"""Peer implementations run through lmbench's protocol, for side-by-side rows.

- `kenlm{N}`: KenLM's `lmplz` estimates, the `kenlm` module scores. Tokens are written as
  `w<id>`, so lmplz never sees a literal `<unk>` (which it refuses, and `--skip_symbols` would
  silently delete). Sentence mode only: KenLM scores sentences. Absent tools: `skipped`.
- `nltk-kn{N}`: NLTK's `KneserNeyInterpolated` (one fixed discount, 0.1: not modified KN; zero
  probability for words its training slice never saw). Milliseconds per token, so a speed peer:
  trained on `max_train_tokens` and scored on an `--eval-tokens` slice.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import SkipRun
from ...protocol import Segments
from ..base import Budget, FitReport, LanguageModel
from .counts import check_order

LN10 = math.log(10.0)


@dataclass(frozen=True)
class KenlmConfig:
    order: int = 5
    memory: str = "100M"  # lmplz -S: sort memory
    discount_fallback: bool = False

    def __post_init__(self):
        check_order(self.order)


class KenlmPeer(LanguageModel):
    family = "ngram"

    def _sentences(self, data: Segments) -> list[str]:
        """The words between <s> and the final <eos> of each segment, as lmplz reads them."""
        if not np.all(data.ids[data.starts[:-1]] == self.vocab_size):
            raise SkipRun("KenLM scores sentences: run kenlm models with --mode sentence")
        return [" ".join(f"w{t}" for t in seg[1:-1].tolist()) for seg in data.split()]

    def fit(self, train: Segments, budget: Budget, on_eval=None) -> FitReport:
        lmplz = shutil.which("lmplz")
        if lmplz is None:
            raise SkipRun("KenLM's lmplz is not on PATH (build github.com/kpu/kenlm, add its bin/)")
        try:
            import kenlm
        except ImportError:
            raise SkipRun("the kenlm Python module is not installed (pip install kenlm)") from None
        train, ended_by = budget.count_slice(train)
        self._folder = tempfile.TemporaryDirectory(prefix="lmbench-kenlm-")
        folder = Path(self._folder.name)
        (folder / "train.txt").write_text("\n".join(self._sentences(train)) + "\n")
        self.arpa = folder / "model.arpa"
        cmd = [
            lmplz,
            "-o",
            str(self.config.order),
            "-S",
            self.config.memory,
            "-T",
            str(folder),
            "--text",
            str(folder / "train.txt"),
            "--arpa",
            str(self.arpa),
        ]
        if self.config.discount_fallback:
            cmd.append("--discount_fallback")
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(
                f"lmplz failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}"
            )
        self.lm = kenlm.Model(str(self.arpa))
        self._kenlm = kenlm
        return FitReport(
            train_tokens=train.n_predicted, ended_by=ended_by, notes={"peer": "KenLM lmplz"}
        )

    def log_prob(self, data: Segments) -> np.ndarray:
        scores = [
            p for sentence in self._sentences(data) for p, _, _ in self.lm.full_scores(sentence)
        ]
        return np.asarray(scores, dtype=np.float64) * LN10

    def context_size(self) -> int:
        return self.config.order - 1

    def query_start(self, first: int):
        state = self._kenlm.State()
        if first == self.vocab_size:
            self.lm.BeginSentenceWrite(state)
        else:
            self.lm.NullContextWrite(state)
        return state

    def query(self, state, word: int) -> tuple[float, object]:
        """KenLM's own per-query path: `BaseScore` with its State (what a decoder calls)."""
        out = self._kenlm.State()
        score = self.lm.BaseScore(state, "</s>" if word == 0 else f"w{word}", out)
        return score * LN10, out

    def next_log_probs(self, context: np.ndarray) -> np.ndarray:
        state, out = self._kenlm.State(), self._kenlm.State()
        tokens = [int(t) for t in context]
        if tokens and tokens[0] == self.vocab_size:
            self.lm.BeginSentenceWrite(state)
            tokens = tokens[1:]
        else:
            self.lm.NullContextWrite(state)
        for t in tokens:
            word = "</s>" if t == 0 else f"w{t}"
            self.lm.BaseScore(state, word, out)
            state, out = out, state
        scores = [
            self.lm.BaseScore(state, "</s>" if w == 0 else f"w{w}", out)
            for w in range(self.vocab_size)
        ]
        logp = np.asarray(scores) * LN10
        return logp - np.logaddexp.reduce(logp)  # KenLM's <unk> mass: spread over our vocabulary

    def num_params(self) -> int:
        header = self.arpa.read_text(errors="replace").split("\n\\1-grams:", 1)[0]
        return sum(
            int(line.split("=")[1]) for line in header.splitlines() if line.startswith("ngram ")
        )

    def size_bytes(self) -> int:
        return self.arpa.stat().st_size


@dataclass(frozen=True)
class NltkConfig:
    order: int = 3
    discount: float = 0.1  # NLTK's default: one discount for every count
    max_train_tokens: int = 100_000  # NLTK trains in Python objects: a cap, recorded

    def __post_init__(self):
        check_order(self.order)


class NltkKneserNey(LanguageModel):
    family = "ngram"

    def fit(self, train: Segments, budget: Budget, on_eval=None) -> FitReport:
        from nltk.lm import KneserNeyInterpolated

        train, ended_by = budget.count_slice(train, self.config.max_train_tokens)
        words = [[str(t) for t in seg.tolist()] for seg in train.split()]
        ngrams = [
            [
                tuple(seg[i - n + 1 : i + 1])
                for i in range(len(seg))
                for n in range(1, self.config.order + 1)
                if i - n + 1 >= 0
            ]
            for seg in words
        ]
        self.model = KneserNeyInterpolated(self.config.order, discount=self.config.discount)
        self.model.fit(ngrams, sorted({w for seg in words for w in seg}))
        return FitReport(
            train_tokens=train.n_predicted,
            ended_by=ended_by,
            notes={
                "peer": "NLTK KneserNeyInterpolated",
                "protocol": "different: one fixed "
                "discount; zero probability for words unseen in its training slice "
                "and for contexts it never saw (where NLTK divides by zero)",
            },
        )

    def _score(self, word: int, history: list[int]) -> float:
        context = (
            [str(t) for t in history[-(self.config.order - 1) :]] if self.config.order > 1 else None
        )
        try:
            p = self.model.score(str(word), context)
        except ZeroDivisionError:  # NLTK divides by the count of a context it never saw
            return -math.inf
        return math.log(p) if p > 0 else -math.inf

    def log_prob(self, data: Segments) -> np.ndarray:
        out = []
        for seg in data.split():
            tokens = seg.tolist()
            out.extend(self._score(tokens[i], tokens[:i]) for i in range(1, len(tokens)))
        return np.asarray(out, dtype=np.float64)

    def context_size(self) -> int:
        return self.config.order - 1

    def query(self, state, word: int) -> tuple[float, object]:
        return self._score(word, list(state)), (*state, word)[-max(self.config.order - 1, 1) :]

    def next_log_probs(self, context: np.ndarray) -> np.ndarray:
        history = [int(t) for t in context]
        return np.array([self._score(w, history) for w in range(self.vocab_size)])

    def sample(
        self, prefix: np.ndarray, n: int, temperature: float = 1.0, seed: int = 0
    ) -> np.ndarray:
        """NLTK's own sampler (scoring the whole vocabulary per step would take minutes)."""
        seed_text = [str(int(t)) for t in prefix]
        words = self.model.generate(n, text_seed=seed_text, random_seed=seed)
        return np.array([int(w) if w.isdigit() else 1 for w in words], dtype=np.int32)

    def num_params(self) -> int:
        return int(sum(len(self.model.counts[n]) for n in range(1, self.config.order + 1)))

    def size_bytes(self) -> int:
        return 0  # Python objects: not comparable; peak RSS tells the memory story
