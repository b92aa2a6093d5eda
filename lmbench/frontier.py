"""The equal-compute frontier's design: which runs make it, and where the extra seeds go.

Count models train on growing fractions of the training split (their cost is the data they
digest); neural models train on the full split for growing token budgets, every budget a
complete WSD schedule, all of a family's budgets branches of one trunk (Hagele et al. 2024;
a branch equals a from-scratch WSD run of its budget, tested). Seed 0 runs every point; then
seeds 1 and 2 run the two budgets that bracket the family's crossover of full-data kn5 (or,
where it does not cross, its two largest budgets), so every claim the crossover table makes
rests on 3 seeds and every other point is labelled as one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .plan import RunSpec
from .records import target_run

WSD = {"lr_schedule": "wsd"}
PRUNE = "0 0 1"  # lmplz --prune 0 0 1: trigrams and above seen once are dropped
COUNT_MODELS = (("kn3", {}), ("kn5", {}), ("kn5", {"prune": PRUNE}))
EXTRA_SEEDS = (1, 2)


@dataclass(frozen=True)
class FrontierDesign:
    """One frontier: count models at `fractions` of each corpus's training split, neural
    families at `budgets[(corpus, model)]` training tokens (ascending; the largest is the
    trunk), each neural run with `sets` on top of WSD (a test slice for the quick variant)."""

    corpora: tuple[str, ...]
    fractions: tuple[float, ...]
    budgets: dict[tuple[str, str], tuple[int, ...]]
    sets: dict[str, str] | None = None
    eval_tokens: int | None = None
    # The softmax cost: each of `probe_models` for `probe_tokens` on corpora with a larger
    # vocabulary (corpus, vocabulary settings), beside kn5 on the same; throughput only, not
    # frontier points (`is_probe`)
    probes: tuple[tuple[str, dict[str, str]], ...] = ()
    probe_models: tuple[str, ...] = ()
    probe_tokens: int = 0

    def runs(self) -> tuple[RunSpec, ...]:
        """Seed 0 of every point: per corpus, full-data kn5 first (the yardstick), the other
        count points, then each neural family's trunk and its branches."""
        specs = []
        for corpus in self.corpora:
            specs += [
                RunSpec(
                    corpus,
                    model,
                    {k: str(v) for k, v in sets.items()},
                    train_fraction=None if fraction == 1.0 else fraction,
                    eval_tokens=self.eval_tokens,
                )
                for model, sets in COUNT_MODELS
                for fraction in sorted(self.fractions, reverse=True)
            ]
            for (where, model), budgets in self.budgets.items():
                if where == corpus:
                    specs += self.neural(corpus, model, budgets[:-1], budgets[-1], seed=0)
        for corpus, vocab in self.probes:
            specs.append(RunSpec(corpus, "kn5", dict(vocab), eval_tokens=self.eval_tokens))
            specs += [
                RunSpec(
                    corpus,
                    model,
                    {**WSD, **(self.sets or {}), **vocab},
                    budget_tokens=self.probe_tokens,
                    eval_tokens=self.eval_tokens,
                )
                for model in self.probe_models
            ]
        return tuple(specs)

    def neural(
        self, corpus: str, model: str, branches: tuple[int, ...], trunk: int, seed: int
    ) -> list[RunSpec]:
        """A WSD trunk of `trunk` tokens that keeps its state for `branches`, and the branches."""
        sets = {**WSD, **(self.sets or {})}
        common = {"seed": seed, "eval_tokens": self.eval_tokens}
        return [
            RunSpec(corpus, model, sets, budget_tokens=trunk, branches=branches, **common),
            *(
                RunSpec(corpus, model, sets, budget_tokens=b, trunk_tokens=trunk, **common)
                for b in branches
            ),
        ]

    def extra_seeds(self, records: Iterable[dict]) -> tuple[RunSpec, ...]:
        """Seeds 1 and 2 at the two budgets that bracket each family's crossover, chosen from
        seed 0's records (the suite's follow-up: `Suite.follow_up`). A family whose seed-0
        points or yardstick are missing gets none (rerun with --resume once they are there)."""
        records = [r for r in records if r and r.get("status") == "ok"]
        specs = []
        for (corpus, model), budgets in self.budgets.items():
            target = yardstick(records, corpus, self.eval_tokens)
            points = {
                tokens_of(r): r["test_ppl"]
                for r in records
                if (r["corpus"], r["model"], r.get("seed")) == (corpus, model, 0)
            }
            if target is None or set(budgets) - set(points):
                continue
            lower, upper = bracket(points, target["test_ppl"])
            for seed in EXTRA_SEEDS:
                specs += self.neural(corpus, model, (lower,), upper, seed)
        return tuple(specs)


def is_probe(record: dict) -> bool:
    """A softmax-cost probe (a run with vocabulary settings): a throughput, not a frontier
    point."""
    return bool((record.get("extra") or {}).get("vocab"))


def tokens_of(record: dict) -> int | None:
    return ((record.get("budget") or {}).get("limit") or {}).get("tokens")


def is_pruned(record: dict) -> bool:
    return bool((record.get("model_config") or {}).get("prune"))


def yardstick(records: Iterable[dict], corpus: str, eval_tokens: int | None) -> dict | None:
    """Full-data, unpruned kn5 of `corpus` (stream mode): the line each family must cross."""
    extra = {"eval_slice_tokens": eval_tokens} if eval_tokens else {}
    return target_run({"corpus": corpus, "mode": "stream", "extra": extra}, list(records))


def train_fraction(record: dict) -> float | None:
    return (record.get("extra") or {}).get("train_fraction")


def bracket(points: dict[int, float], target: float) -> tuple[int, int]:
    """The budget before the first one whose perplexity is below `target`, and that one (the
    two smallest where the first budget already is); the two largest where none is."""
    budgets = sorted(points)
    if len(budgets) < 2:
        raise ValueError("a bracket needs at least two budgets")
    for i, budget in enumerate(budgets):
        if points[budget] < target:
            i = max(i, 1)
            return budgets[i - 1], budgets[i]
    return budgets[-2], budgets[-1]


def crossover(means: dict[int, float], target: float) -> int | None:
    """The first budget whose seed-mean perplexity is below `target` (None: none is)."""
    return next((b for b in sorted(means) if means[b] < target), None)
