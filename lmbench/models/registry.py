"""Spec names -> models. A name may fix settings (`add1-3` is k=1, order 3); unknown names fail
listing the valid ones. Model classes are imported lazily so count models never import torch.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import UsageError
from ..settings import apply_overrides


@dataclass(frozen=True)
class ModelEntry:
    pattern: str  # full-match regex on the spec name
    example: str  # shown in listings and errors
    model: str  # "module:Class" under lmbench.models
    config: str  # "module:ConfigClass"
    fixed: Callable[[re.Match], dict]  # settings the name decides (--set may not contradict)
    help: str
    preset: dict = field(default_factory=dict)  # defaults the name brings (--set may change)


# Zaremba et al. 2014's training: SGD from lr 1, decayed per epoch after a few, norm clipped at
# 5, on a loss summed over the BPTT steps (mean over the batch). Our loss is the mean over every
# token, so the same updates take lr = 1 x bptt and clip = 5 / bptt (for bptt 20: pytorch/examples'
# lr 20 and clip 0.25, which descend from it).
def zaremba(bptt: int, **schedule) -> dict:
    return {"bptt": bptt, "lr": 1.0 * bptt, "clip": 5.0 / bptt, "lr_schedule": "step", **schedule}


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
    ModelEntry(
        r"mlp",
        "mlp",
        "neural.model:MLP",
        "neural.mlp:MlpConfig",
        lambda m: {},
        "Bengio et al. 2003 feedforward NNLM, sized for PTB on a CPU (order 5, m=256, h=512)",
    ),
    ModelEntry(
        r"mlp1",
        "mlp1",
        "neural.model:MLP",
        "neural.mlp:MlpConfig",
        lambda m: {"order": 5, "hidden": 50, "embed": 60, "direct": True},
        "Bengio et al. 2003's MLP1 (n=5, h=50, m=60, direct connections)",
    ),
    ModelEntry(
        r"mlp9",
        "mlp9",
        "neural.model:MLP",
        "neural.mlp:MlpConfig",
        lambda m: {"order": 5, "hidden": 100, "embed": 30, "direct": False},
        "Bengio et al. 2003's MLP9 (n=5, h=100, m=30, no direct connections)",
    ),
    ModelEntry(
        r"rnn",
        "rnn",
        "neural.model:Elman",
        "neural.rnn:RnnConfig",
        lambda m: {"cell": "rnn"},
        "Elman RNN (Mikolov's RNNLM): one tanh layer of 256, truncated BPTT, AdamW",
        preset={
            "layers": 1,
            "hidden": 256,
            "optimizer": "adamw",
            "lr": 2e-3,
            "lr_schedule": "cosine",
            "warmup_tokens": 50_000,
            "clip": 1.0,
            "dropout": 0.2,
        },
    ),
    ModelEntry(
        r"lstm",
        "lstm",
        "neural.model:LSTM",
        "neural.rnn:RnnConfig",
        lambda m: {"cell": "lstm"},
        "LSTM, pytorch/examples word_language_model's default (2x200, dropout 0.2, SGD lr 20, "
        "clip 0.25, batch 20, BPTT 35, lr/4 on a plateau)",
    ),
    ModelEntry(
        r"gru",
        "gru",
        "neural.model:GRU",
        "neural.rnn:RnnConfig",
        lambda m: {"cell": "gru"},
        "GRU, trained as the lstm default (2x200, dropout 0.2, SGD, clip 0.25)",
    ),
    ModelEntry(
        r"lstm-zaremba-small",
        "lstm-zaremba-small",
        "neural.model:LSTM",
        "neural.rnn:RnnConfig",
        lambda m: {"cell": "lstm", "layers": 2, "hidden": 200},
        "Zaremba et al. 2014 small: 2x200, no dropout, BPTT 20, lr halved each epoch after 4",
        preset=zaremba(20, dropout=0.0, lr_decay=0.5, decay_start_epoch=4),
    ),
    ModelEntry(
        r"lstm-zaremba-medium",
        "lstm-zaremba-medium",
        "neural.model:LSTM",
        "neural.rnn:RnnConfig",
        lambda m: {"cell": "lstm", "layers": 2, "hidden": 650},
        "Zaremba et al. 2014 medium: 2x650, dropout 0.5, BPTT 35, lr / 1.2 each epoch after 6",
        preset=zaremba(35, dropout=0.5, lr_decay=1 / 1.2, decay_start_epoch=6),
    ),
    ModelEntry(
        r"transformer",
        "transformer",
        "neural.model:Transformer",
        "neural.transformer:TransformerConfig",
        lambda m: {},
        "GPT-style decoder sized for a CPU (3 layers, width 192, 4 heads, block 128, tied)",
    ),
    ModelEntry(
        r"transformer-gpu",
        "transformer-gpu",
        "neural.model:Transformer",
        "neural.transformer:TransformerConfig",
        lambda m: {},
        "GPT-2-small-shaped decoder for GPU throughput (12 layers, width 768, block 256)",
        preset={
            "layers": 12,
            "heads": 12,
            "width": 768,
            "bptt": 256,
            "batch_size": 64,
            "lr": 6e-4,
            "warmup_tokens": 1_000_000,
            "dropout": 0.2,
            "compile": True,
        },
    ),
)


@dataclass(frozen=True)
class ResolvedModel:
    spec: str
    entry: ModelEntry
    config: object  # the frozen config dataclass, every field resolved

    def build(self, vocab_size: int, device: str = "cpu", seed: int = 0):
        return _load(self.entry.model)(self.config, vocab_size, device, seed)

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
            config = config_cls(**{**entry.preset, **fixed})
        except ValueError as exc:
            raise UsageError(f"model {spec!r}: {exc}") from None
        config = apply_overrides(config, overrides or {}, fixed=fixed)
        return ResolvedModel(spec, entry, config)
    names = ", ".join(f"{e.example} ({e.help})" for e in REGISTRY)
    raise UsageError(f"unknown model {spec!r}; valid models: {names}")
