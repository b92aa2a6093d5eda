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


_register(
    Suite(
        "quick",
        "CI smoke benchmark, about a minute: the simplest models on all three corpora, both modes",
        (
            RunSpec("ptb", "unigram"),
            RunSpec("ptb", "add1-2"),
            RunSpec("ptb", "add1-2", mode="sentence"),
            RunSpec(
                "ptb", "add1-3", budget_tokens=200_000
            ),  # a PTB slice: the budget caps train tokens
            RunSpec("wikitext2", "add1-2"),
            RunSpec("brown", "add1-2"),
        ),
    )
)

_register(
    Suite(
        "history",
        "the main job: every implemented model on PTB, WikiText-2 and Brown, stream mode, plus PTB "
        "sentence mode (the SRILM/KenLM convention)",
        tuple(
            RunSpec(corpus, model)
            for corpus in ("ptb", "wikitext2", "brown")
            for model in ("uniform", "unigram", "add1-2", "add1-3", "add0.01-2", "add0.01-3")
        )
        + tuple(
            RunSpec("ptb", model, mode="sentence") for model in ("add1-2", "add1-3", "add0.01-3")
        ),
    )
)


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise UsageError(f"unknown suite {name!r}; choose one of {', '.join(sorted(SUITES))}")
    return SUITES[name]
