"""Spec names -> models. A name may fix settings (`add1-3` is k=1, order 3); unknown names fail
listing the valid ones. Model classes are imported lazily so count models never import torch.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import UsageError
from ..settings import apply_overrides


@dataclass(frozen=True)
class ModelEntry:
    pattern: str  # full-match regex on the spec name
    example: str  # shown in listings and errors
    model: str  # "module:Class" under lmbench.models
    config: str  # "module:ConfigClass"
    fixed: Callable[[re.Match], dict]  # settings the name decides
    help: str


REGISTRY: tuple[ModelEntry, ...] = (
    ModelEntry(
        r"uniform",
        "uniform",
        "uniform:Uniform",
        "uniform:UniformConfig",
        lambda m: {},
        "every token equally likely (perplexity = |V|); for testing the harness",
    ),
    ModelEntry(
        r"unigram",
        "unigram",
        "ngram.additive:AdditiveNgram",
        "ngram.additive:AdditiveConfig",
        lambda m: {"order": 1},
        "add-k smoothed unigram (k=1 unless --set k=...)",
    ),
    ModelEntry(
        r"kn(?P<order>\d+)",
        "kn5",
        "ngram.families:KneserNey",
        "ngram.interpolated:NgramConfig",
        lambda m: {"order": int(m["order"])},
        "interpolated modified Kneser-Ney of order N, as KenLM's lmplz (kn3, kn5, ...)",
    ),
    ModelEntry(
        r"wb(?P<order>\d+)",
        "wb3",
        "ngram.families:WittenBell",
        "ngram.interpolated:NgramConfig",
        lambda m: {"order": int(m["order"])},
        "interpolated Witten-Bell of order N",
    ),
    ModelEntry(
        r"abs(?P<order>\d+)",
        "abs3",
        "ngram.families:AbsoluteDiscount",
        "ngram.interpolated:NgramConfig",
        lambda m: {"order": int(m["order"])},
        "interpolated absolute discounting of order N",
    ),
    ModelEntry(
        r"kenlm(?P<order>\d+)",
        "kenlm5",
        "ngram.peers:KenlmPeer",
        "ngram.peers:KenlmConfig",
        lambda m: {"order": int(m["order"])},
        "peer: KenLM's lmplz estimate scored by the kenlm module (sentence mode; skipped without them)",
    ),
    ModelEntry(
        r"nltk-kn(?P<order>\d+)",
        "nltk-kn3",
        "ngram.peers:NltkKneserNey",
        "ngram.peers:NltkConfig",
        lambda m: {"order": int(m["order"])},
        "peer: NLTK's KneserNeyInterpolated (speed only; use --eval-tokens, different protocol)",
    ),
    ModelEntry(
        r"add(?P<k>\d+(?:\.\d+)?)-(?P<order>\d+)",
        "add1-2",
        "ngram.additive:AdditiveNgram",
        "ngram.additive:AdditiveConfig",
        lambda m: {"k": float(m["k"]), "order": int(m["order"])},
        "add-k smoothing of order N: add{k}-{N}, e.g. add1-3 is the Laplace trigram",
    ),
)


@dataclass(frozen=True)
class ResolvedModel:
    spec: str
    entry: ModelEntry
    config: object  # the frozen config dataclass, every field resolved

    def build(self, vocab_size: int):
        return _load(self.entry.model)(self.config, vocab_size)

    @property
    def model_class(self):
        return _load(self.entry.model)


def _load(path: str):
    module, name = path.split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


def model_names() -> list[str]:
    return [entry.example for entry in REGISTRY]


def resolve(spec: str, overrides: dict[str, str] | None = None) -> ResolvedModel:
    """The model `spec` names, with `--set` overrides applied and type-checked."""
    for entry in REGISTRY:
        match = re.fullmatch(entry.pattern, spec)
        if match is None:
            continue
        fixed = entry.fixed(match)
        config_cls = _load(entry.config)
        try:
            config = config_cls(**fixed)
        except ValueError as exc:
            raise UsageError(f"model {spec!r}: {exc}") from None
        config = apply_overrides(config, overrides or {}, fixed=fixed)
        return ResolvedModel(spec, entry, config)
    names = ", ".join(f"{e.example} ({e.help})" for e in REGISTRY)
    raise UsageError(f"unknown model {spec!r}; valid models: {names}")
