"""Named benchmark suites: data only (corpus x model x settings x budget x mode).

`quick` is what CI runs and compares with `results/baseline/quick.jsonl`. `history` is the main
job of `nox -s bench`; it holds the models implemented so far and grows as families land.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UsageError
from .plan import RunSpec


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    runs: tuple[RunSpec, ...]


SUITES: dict[str, Suite] = {}


def _register(suite: Suite) -> None:
    SUITES[suite.name] = suite


PTB_SLICE = 200_000  # training tokens: a count model's budget is a train slice

_register(
    Suite(
        "quick",
        "CI smoke benchmark, about a minute: each count family on all three corpora, both modes",
        (
            RunSpec("ptb", "unigram"),
            RunSpec("ptb", "add1-2"),
            RunSpec("ptb", "add1-3", budget_tokens=PTB_SLICE),
            RunSpec("ptb", "kn3", budget_tokens=PTB_SLICE),
            RunSpec("ptb", "kn5", mode="sentence"),
            RunSpec("ptb", "wb3", budget_tokens=PTB_SLICE),
            RunSpec("ptb", "abs3", budget_tokens=PTB_SLICE),
            RunSpec("wikitext2", "kn3"),
            RunSpec("brown", "kn3"),
        ),
    )
)

# Why smoothing mattered: additive vs Witten-Bell vs absolute discounting vs Kneser-Ney.
SMOOTHERS = ("unigram", "add1-2", "add1-3", "add0.01-3", "abs3", "wb3", "kn2", "kn3", "kn4", "kn5")

_register(
    Suite(
        "history",
        "the main job: every implemented model on PTB, WikiText-2 and Brown (stream mode), PTB "
        "sentence mode (the SRILM/KenLM convention: KN5 = 141.2), pruned KN5, and the peers "
        "(KenLM when built; NLTK on a slice)",
        tuple(
            RunSpec(corpus, model)
            for corpus in ("ptb", "wikitext2", "brown")
            for model in ("uniform", *SMOOTHERS)
        )
        + tuple(
            RunSpec("ptb", model, mode="sentence") for model in ("kn3", "kn5", "kenlm3", "kenlm5")
        )
        + (
            RunSpec("ptb", "kn5", {"prune": "0 1 1"}, mode="sentence"),
            RunSpec("ptb", "kn5", {"prune": "0 2 2 3"}, mode="sentence"),
            # NLTK scores ~10 ms per token: the same train slice and eval slice for both
            RunSpec("ptb", "nltk-kn3", mode="sentence", budget_tokens=100_000, eval_tokens=2_000),
            RunSpec("ptb", "kn3", mode="sentence", budget_tokens=100_000, eval_tokens=2_000),
        ),
    )
)


# The neural quality targets: PTB stream, 3.25 M training tokens (about 3.5 epochs) each, so
# speed and quality stay separate; kn5 first: its valid perplexity is the time-to-target line.
NEURAL_TOKENS = 3_250_000
_register(
    Suite(
        "neural",
        "every neural family on PTB (stream) for 3.25 M training tokens each, kn5 first as the "
        "time-to-target yardstick; about 50 minutes on a 2-core CPU",
        (
            RunSpec("ptb", "kn5"),
            RunSpec("ptb", "lstm", budget_tokens=NEURAL_TOKENS),
            RunSpec(
                "ptb", "transformer", {"eval_every_tokens": "325000"}, budget_tokens=NEURAL_TOKENS
            ),
            RunSpec("ptb", "mlp", {"eval_every_tokens": "325000"}, budget_tokens=NEURAL_TOKENS),
            RunSpec("ptb", "gru", budget_tokens=NEURAL_TOKENS),
            RunSpec("ptb", "rnn", {"eval_every_tokens": "325000"}, budget_tokens=NEURAL_TOKENS),
        ),
    )
)

# The published schedules, as the papers (and pytorch/examples) ran them; long: committed as
# they complete (`--resume`). Zaremba medium is a GPU run (hours on a CPU).
_register(
    Suite(
        "reproduce",
        "published schedules: pytorch/examples' LSTM (6 epochs, about 15 minutes on a 2-core "
        "CPU), Zaremba et al. small (13 epochs, about 40 minutes) and medium (39 epochs, GPU)",
        (
            RunSpec("ptb", "kn5"),
            RunSpec("ptb", "lstm", budget_epochs=6),
            RunSpec("ptb", "lstm-zaremba-small", budget_epochs=13),
            RunSpec("ptb", "lstm-zaremba-medium", budget_epochs=39, device="cuda"),
        ),
    )
)


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise UsageError(f"unknown suite {name!r}; choose one of {', '.join(sorted(SUITES))}")
    return SUITES[name]
