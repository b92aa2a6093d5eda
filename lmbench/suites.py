"""Named benchmark suites: data only (corpus x model x settings x budget x mode).

`quick` is what CI runs and compares with `results/baseline/quick/`. `history` is the main
job of `nox -s bench` (about 70 minutes on a 2-core CPU). The budgets are sized for such a CPU;
a suite can be completed in parts (`--resume`), and the report combines suites' folders.

Each suite declares the report sections it feeds (`feeds`); the report asks `suites_feeding`
and names no suite itself. Declaration order is preference: where two suites feed a section
with a run of the same spec, the earlier suite's run is shown (the published schedules before
the main job).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UsageError
from .mix import MixSpec
from .plan import RunSpec

# The report's sections a suite can feed (what `lmbench report` draws from its runs).
GAP = "gap"  # 1. ratios to kn5 on one machine (also section 8's samples)
REPRODUCTION = "reproduction"  # 2. ours beside the published numbers
PERPLEXITY_VS_TIME = "perplexity vs time"  # 3. curves on CPU and GPU (also the throughput figure)
SCALING = "scaling"  # 4. test perplexity by training-set size
SMOOTHING = "smoothing"  # 4. test perplexity by order and smoothing
THROUGHPUT = "throughput"  # 5. tokens/s and MFU of every neural run
COST = "cost"  # 6. training FLOPs on the machines of 2001 and 2012
BRANCHES = "branches"  # 7. decay branches of one WSD trunk against complete runs
PRECISION = "precision"  # 8. bf16 autocast against fp32 runs of the same config
SECTIONS = (
    GAP,
    REPRODUCTION,
    PERPLEXITY_VS_TIME,
    SCALING,
    SMOOTHING,
    THROUGHPUT,
    COST,
    BRANCHES,
    PRECISION,
)


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    runs: tuple[RunSpec, ...]
    mixes: tuple[MixSpec, ...] = ()  # combined from the runs' saved log-probabilities, after them
    feeds: tuple[str, ...] = ()  # the report SECTIONS drawn from its runs
    # each neural run (and each mix with a neural part) once per seed; a count model is
    # deterministic: one run
    seeds: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        unknown = set(self.feeds) - set(SECTIONS)
        if unknown:
            raise ValueError(f"suite {self.name!r} feeds unknown sections {sorted(unknown)}")


SUITES: dict[str, Suite] = {}


def _register(suite: Suite) -> None:
    SUITES[suite.name] = suite


def suites_feeding(section: str) -> tuple[str, ...]:
    """The suites whose runs a report section draws, in declaration order (= preference)."""
    if section not in SECTIONS:
        raise ValueError(f"unknown report section {section!r}; one of {', '.join(SECTIONS)}")
    return tuple(name for name, suite in SUITES.items() if section in suite.feeds)


PTB_SLICE = 200_000  # training tokens: a count model's budget is a train slice
QUICK_NEURAL = {"budget_tokens": 20_000, "eval_tokens": 10_000}  # seconds each, deterministic

_register(
    Suite(
        "quick",
        "CI smoke benchmark, about 3 minutes: each count family on all three corpora and both "
        "modes, and each neural family on 20 k PTB tokens (scored on a 10 k-token slice)",
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
        )
        + tuple(
            RunSpec("ptb", model, device="cpu", **QUICK_NEURAL)
            for model in ("mlp", "rnn", "lstm", "gru", "transformer")
        ),
    )
)

# The published schedules, as the papers (and pytorch/examples) ran them; long: committed as
# they complete (`--resume`). Zaremba medium is a GPU run (hours on a CPU). Declared before the
# main job: where both ran a spec, the reproduction table shows the published schedule's run.
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
        feeds=(REPRODUCTION, THROUGHPUT, COST),
    )
)

# History. Token budgets (complete schedules, the same run on any machine), each about three
# minutes of training on a 2-core CPU, 3 seeds per neural model; count models take seconds.
# Evaluations every 300 k tokens draw the curves. 70.5 minutes in all, measured.
SEEDS = (0, 1, 2)
PTB_NEURAL_TOKENS = {"lstm": 1_600_000, "rnn": 1_400_000, "transformer": 1_200_000, "mlp": 800_000}
BROWN_MLP_TOKENS = {"mlp1": 300_000, "mlp9": 600_000}
CURVE = {"eval_every_tokens": "300000"}


def ptb_neural(device: str = "auto") -> tuple[RunSpec, ...]:
    return tuple(
        RunSpec("ptb", model, CURVE, device=device, budget_tokens=tokens)
        for model, tokens in PTB_NEURAL_TOKENS.items()
    )


_register(
    Suite(
        "history",
        "the main job (about 70 minutes on a 2-core CPU): PTB count models (KN 2-5, KN5 in "
        "sentence mode = the 141.2 row, Witten-Bell, Laplace, KenLM where built) and LSTM, RNN, "
        "Transformer, MLP at about 3 minutes of training each (token budgets); Brown KN 3/5 and "
        "Bengio's MLP1 and MLP9; 3 seeds per neural model; the papers' mixes (MLP + trigram, "
        "RNN + KN5), one per seed",
        tuple(RunSpec("ptb", model) for model in ("kn5", "kn2", "kn3", "kn4", "wb3", "add1-3"))
        + tuple(RunSpec("ptb", m, mode="sentence") for m in ("kn5", "kn3", "kenlm5", "kenlm3"))
        + ptb_neural()
        + tuple(RunSpec("brown", model) for model in ("kn5", "kn3"))
        + tuple(
            RunSpec("brown", model, {"eval_every_tokens": "200000"}, budget_tokens=tokens)
            for model, tokens in BROWN_MLP_TOKENS.items()
        ),
        mixes=(
            MixSpec("ptb", "rnn", "kn5"),
            MixSpec("ptb", "lstm", "kn5"),
            MixSpec("ptb", "mlp", "kn5"),
            MixSpec("brown", "mlp1", "kn3"),
            MixSpec("brown", "mlp9", "kn3"),
        ),
        feeds=(GAP, REPRODUCTION, PERPLEXITY_VS_TIME, THROUGHPUT, COST),
        seeds=SEEDS,
    )
)

# Why smoothing mattered: each family by order on PTB (seconds each).
# Kneser-Ney from order 2: its unigram has no lower order to take continuation counts from,
# and its count-of-counts discounts are out of range on PTB (a failed kn1 run showed it).
SMOOTHING_ORDERS = {
    "add1-{n}": range(1, 7),
    "add0.01-{n}": range(1, 7),
    "wb{n}": range(1, 7),
    "abs{n}": range(1, 7),
    "kn{n}": range(2, 7),
}
_register(
    Suite(
        "smoothing",
        "add-k, Witten-Bell, absolute discounting by order 1-6 and Kneser-Ney 2-6 on PTB, with the "
        "uniform floor (about 3 minutes)",
        (RunSpec("ptb", "uniform"),)
        + tuple(
            RunSpec("ptb", family.format(n=n))
            for family, orders in SMOOTHING_ORDERS.items()
            for n in orders
        ),
        feeds=(SMOOTHING,),
    )
)

# Scaling: the same training tokens per neural run (the history budgets) on more and more data.
# Full data first on each corpus: its kn5 is every run's yardstick (records.target_run).
SCALING_DATA = (("ptb", 1.0), ("ptb", 0.1), ("ptb", 0.3), ("wikitext2", 1.0), ("wikitext2", 0.1))
_register(
    Suite(
        "scaling",
        "kn5, LSTM and Transformer on 10%, 30% and 100% of PTB train and 10% and 100% of "
        "WikiText-2 train, the history suite's token budgets, 3 seeds (about 2 hours)",
        tuple(
            RunSpec(
                corpus,
                model,
                {} if model == "kn5" else CURVE,
                budget_tokens=PTB_NEURAL_TOKENS.get(model),
                train_fraction=None if fraction == 1.0 else fraction,
            )
            for corpus, fraction in SCALING_DATA
            for model in ("kn5", "lstm", "transformer")
        ),
        feeds=(SCALING,),
        seeds=SEEDS,
    )
)

# The reversal: the history suite's neural runs, the same token budgets on each device; the
# clock says how long each took. The CPU half has the history runs' config hashes; the GPU half
# is skipped without CUDA.
_register(
    Suite(
        "reversal",
        "MLP, RNN, LSTM and Transformer with the history suite's token budgets on CPU and GPU, "
        "3 seeds, time to the kn5 valid perplexity (the GPU half is recorded as skipped without "
        "CUDA)",
        (RunSpec("ptb", "kn5"),) + ptb_neural("cpu") + ptb_neural("cuda"),
        feeds=(GAP, REPRODUCTION, PERPLEXITY_VS_TIME, THROUGHPUT, COST),
        seeds=SEEDS,
    )
)


# Decay branches (Hagele et al. 2024): does a short decay from a constant-rate trunk give what a
# complete run of the shorter budget gives? Per model and seed: complete WSD and cosine runs of
# BRANCH_TOKENS, a WSD trunk of TRUNK_TOKENS (itself a complete WSD run of that length) that keeps
# its state where a BRANCH_TOKENS run decays, and the branch from there. About 80 minutes here.
BRANCH_TOKENS = 1_000_000
TRUNK_TOKENS = 1_200_000
BRANCH_MODELS = ("lstm", "transformer", "mlp")
WSD = {"lr_schedule": "wsd"}
_register(
    Suite(
        "branches",
        f"decay branches: lstm, transformer, mlp on PTB, 3 seeds each of complete cosine and WSD "
        f"runs of {BRANCH_TOKENS / 1e6:g} M tokens and a decay branch to {BRANCH_TOKENS / 1e6:g} M "
        f"from a {TRUNK_TOKENS / 1e6:g} M-token WSD trunk (about 80 minutes on a 2-core CPU)",
        (RunSpec("ptb", "kn5"),)
        + tuple(
            spec
            for model in BRANCH_MODELS
            for spec in (
                RunSpec("ptb", model, {"lr_schedule": "cosine"}, budget_tokens=BRANCH_TOKENS),
                RunSpec("ptb", model, WSD, budget_tokens=TRUNK_TOKENS, branches=(BRANCH_TOKENS,)),
                RunSpec("ptb", model, WSD, budget_tokens=BRANCH_TOKENS, trunk_tokens=TRUNK_TOKENS),
                RunSpec("ptb", model, WSD, budget_tokens=BRANCH_TOKENS),
            )
        ),
        feeds=(BRANCHES,),
        seeds=SEEDS,
    )
)


# bf16 autocast on a CPU that multiplies bf16 natively (AVX512-BF16, AMX): the history suite's
# PTB LSTM, Transformer and MLP, the same token budgets, evaluations and seeds, in bf16. The
# report sets each beside the fp32 runs of the same config on the same machine (the history
# suite's). About 25 minutes here; on a CPU without native bf16 its runs are recorded skipped.
BF16 = {"precision": "bfloat16"}
PRECISION_MODELS = ("lstm", "transformer", "mlp")
_register(
    Suite(
        "bf16",
        "bf16 autocast on the CPU: the history suite's PTB LSTM, Transformer and MLP (same token "
        "budgets, 3 seeds) in bf16, to set beside its fp32 runs (about 25 minutes on a 2-core "
        "CPU with AVX512-BF16; skipped on CPUs without native bf16)",
        tuple(
            RunSpec("ptb", model, {**CURVE, **BF16}, device="cpu", budget_tokens=tokens)
            for model, tokens in PTB_NEURAL_TOKENS.items()
            if model in PRECISION_MODELS
        ),
        feeds=(PRECISION,),
        seeds=SEEDS,
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
        feeds=(REPRODUCTION, THROUGHPUT),
    )
)


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise UsageError(f"unknown suite {name!r}; choose one of {', '.join(sorted(SUITES))}")
    return SUITES[name]
