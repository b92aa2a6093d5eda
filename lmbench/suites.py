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

from collections.abc import Callable
from dataclasses import dataclass

from .errors import UsageError
from .frontier import FrontierDesign
from .mix import MixSpec
from .plan import RunSpec

# The report's sections a suite can feed (what `lmbench report` draws from its runs).
GAP = "gap"  # 1. ratios to kn5 on one machine (also section 10's samples)
FRONTIER = "frontier"  # 2. test perplexity against training seconds and FLOPs, crossovers
REPRODUCTION = "reproduction"  # 3. ours beside the published numbers
PERPLEXITY_VS_TIME = "perplexity vs time"  # 4. curves on CPU and GPU (also the throughput figure)
SCALING = "scaling"  # 5. test perplexity by training-set size
SMOOTHING = "smoothing"  # 5. test perplexity by order and smoothing
THROUGHPUT = "throughput"  # 6. tokens/s and MFU of every neural run
COST = "cost"  # 7. training FLOPs on the machines of 2001 and 2012
BRANCHES = "branches"  # 8. decay branches of one WSD trunk against complete runs
PRECISION = "precision"  # 9. bf16 autocast against fp32 runs of the same config
SECTIONS = (
    GAP,
    FRONTIER,
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
    # deterministic: one run. None: each run's own seed (a suite whose corpora differ in seeds)
    seeds: tuple[int, ...] | None = (0,)
    # more runs, chosen from the records of the runs above once they are done (the frontier's
    # extra seeds where its crossover lies); run in the same invocation, resumable alike
    follow_up: Callable[[list[dict]], tuple[RunSpec, ...]] | None = None

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


SEEDS = (0, 1, 2)  # a claim about a neural model rests on three
PTB_SLICE = 200_000  # training tokens: a count model's budget is a train slice
QUICK_NEURAL = {"budget_tokens": 20_000, "eval_tokens": 10_000}  # seconds each, deterministic

_register(
    Suite(
        "quick",
        "CI smoke benchmark, about 1.5 minutes: each count family on all three corpora and both "
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

# Bengio et al.'s |V| = 16,383: rare words merged, as they did (frequency <= 3 leaves 14,115
# in NLTK's tokenization; <= 2 leaves 17,715, cut to the 16,381 most frequent + <eos>, <unk>).
BROWN_PAPER_VOCAB = {"vocab.min_count": "3", "vocab.max_size": "16383"}
# no special status for sentence ends (a word stream), and the paper's 181,041 test words
BROWN_NO_EOS = {"text.sentence_ends": "false"}
BROWN_PAPER_TEST = {"text.test_words": "181041"}
BROWN_PAPER_PROTOCOL = BROWN_PAPER_VOCAB | BROWN_NO_EOS | BROWN_PAPER_TEST
BROWN_EARLY_STOP = {"patience": "2"}  # stop after 2 epochs without a better valid perplexity

# The published schedules, as the papers (and pytorch/examples) ran them; long: committed as
# they complete (`--resume`). Zaremba medium is a GPU run (hours on a CPU). Declared before the
# main job: where both ran a spec, the reproduction table shows the published schedule's run.
_register(
    Suite(
        "reproduce",
        "published schedules: pytorch/examples' LSTM (6 epochs, about 15 minutes on a 2-core "
        "CPU), Zaremba et al. small (13 epochs, about 40 minutes) and medium (39 epochs, GPU); "
        "Brown: kn5 under each of Bengio et al.'s protocol differences, their MLP9 and MLP1 for "
        "up to 20 epochs, 3 seeds each (about 35 and 65 minutes a seed), and each mixed with "
        "kn3 per seed (their MLP10)",
        (
            RunSpec("ptb", "kn5"),
            RunSpec("ptb", "lstm", budget_epochs=6),
            RunSpec("ptb", "lstm-zaremba-small", budget_epochs=13),
            RunSpec("ptb", "lstm-zaremba-medium", budget_epochs=39, device="cuda"),
            # Brown: why our kn5 differs from Bengio et al.'s (report, section 3), and their
            # MLPs toward the paper's schedule (10-20 epochs; early stopping on valid)
            RunSpec("brown", "kn5"),
            *(
                RunSpec("brown", "kn5", sets)
                for sets in (
                    BROWN_PAPER_VOCAB,
                    BROWN_NO_EOS,
                    BROWN_PAPER_TEST,
                    BROWN_PAPER_PROTOCOL,
                )
            ),
            *(  # 3 seeds: the Brown comparison is a claim about a neural model
                RunSpec("brown", model, BROWN_EARLY_STOP, budget_epochs=20, seeds=SEEDS)
                for model in ("mlp9", "mlp1")
            ),
            RunSpec("brown", "kn3"),  # the trigram of the paper's mixes (MLP10 = MLP9 + it)
        ),
        mixes=(MixSpec("brown", "mlp9", "kn3"), MixSpec("brown", "mlp1", "kn3")),
        feeds=(REPRODUCTION, THROUGHPUT, COST),
    )
)

# History. Token budgets (complete schedules, the same run on any machine), each about three
# minutes of training on a 2-core CPU, 3 seeds per neural model; count models take seconds.
# Evaluations every 300 k tokens draw the curves. 70.5 minutes in all, measured.
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
            # the era's strongest fair N-gram side: kn5 with a unigram cache (lmbench.cache),
            # in the papers' sentence convention and in the gap table's stream
            MixSpec("ptb", "kn5", "cache", mode="sentence"),
            MixSpec("ptb", "kn5", "cache"),
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
# What deployments traded: kn5 pruned as lmplz --prune (count thresholds by order, the last
# repeating), size against perplexity (Chelba et al. 2013 pruned 1B Word's KN5 from 1.14 B to
# 14.2 M n-grams)
PRUNE_LADDER = ("0 0 1", "0 1 1", "0 1 2", "0 2 4", "0 4 8", "0 8 16")
_register(
    Suite(
        "smoothing",
        "add-k, Witten-Bell, absolute discounting by order 1-6 and Kneser-Ney 2-6 on PTB, with the "
        "uniform floor; kn5 pruned at six count thresholds (about 2 minutes)",
        (RunSpec("ptb", "uniform"),)
        + tuple(
            RunSpec("ptb", family.format(n=n))
            for family, orders in SMOOTHING_ORDERS.items()
            for n in orders
        )
        + tuple(RunSpec("ptb", "kn5", {"prune": prune}) for prune in PRUNE_LADDER),
        feeds=(SMOOTHING,),
    )
)

# Data scaling: does more data help each family, and at what rate? kn5 and the LSTM on 10-100%
# of each corpus's training split; each LSTM point trains until validation stops improving (the
# plateau schedule, stopped after 2 evaluations without a gain) or its epoch cap (then the
# report marks it compute-limited). Full data first: its kn5 is the yardstick. PTB has 3 seeds;
# WikiText-2 (17 minutes an epoch here) one, so its fits are shown and claim nothing.
SCALING_FRACTIONS = (1.0, 0.5, 0.25, 0.1)
SCALING_EPOCH_CAP = {"ptb": 12, "wikitext2": 3}
SCALING_SEEDS = {"ptb": SEEDS, "wikitext2": (0,)}
EARLY_STOP = {"patience": "2"}


def scaling_runs(corpus: str) -> tuple[RunSpec, ...]:
    return tuple(
        spec
        for fraction in SCALING_FRACTIONS
        for spec in (
            RunSpec(corpus, "kn5", train_fraction=None if fraction == 1.0 else fraction),
            *(
                RunSpec(
                    corpus,
                    "lstm",
                    EARLY_STOP,
                    seed=seed,
                    budget_epochs=SCALING_EPOCH_CAP[corpus],
                    train_fraction=None if fraction == 1.0 else fraction,
                )
                for seed in SCALING_SEEDS[corpus]
            ),
        )
    )


_register(
    Suite(
        "scaling",
        "kn5 and the LSTM on 10%, 25%, 50% and 100% of PTB and WikiText-2 train, each LSTM "
        "until validation stops improving (epoch caps 12 and 3); 3 seeds on PTB, 1 on "
        "WikiText-2 (about 3.5 hours on a 2-core CPU)",
        scaling_runs("ptb") + scaling_runs("wikitext2"),
        feeds=(SCALING,),
        seeds=None,  # each run carries its seed: fewer on WikiText-2
    )
)

# The reversal: the history suite's neural runs, the same token budgets on each device; the
# clock says how long each took. The CPU half has the history runs' config hashes; the GPU half
# is skipped without CUDA. On the GPU also: a GPT-2-small-shaped Transformer to kn5's
# perplexity and past it, and Zaremba et al.'s medium LSTM for as many epochs as its seconds
# budget fits (a short lease; 39 epochs is the reproduce suite's). benchmarks/gpu_reversal.py
# runs the GPU half in stages, seed 0.
TRANSFORMER_GPU_TOKENS = 4_000_000  # about 4 epochs of PTB
ZAREMBA_MEDIUM_GPU_SECONDS = 45
REVERSAL_GPU_ONLY = (
    RunSpec(
        "ptb",
        "transformer-gpu",
        {"eval_every_tokens": "250000"},
        device="cuda",
        budget_tokens=TRANSFORMER_GPU_TOKENS,
    ),
    RunSpec("ptb", "lstm-zaremba-medium", device="cuda", budget_seconds=ZAREMBA_MEDIUM_GPU_SECONDS),
)
_register(
    Suite(
        "reversal",
        "MLP, RNN, LSTM and Transformer with the history suite's token budgets on CPU and GPU, "
        "3 seeds, time to the kn5 valid perplexity; on the GPU also transformer-gpu and "
        "Zaremba's medium LSTM (the GPU runs are recorded as skipped without CUDA)",
        (RunSpec("ptb", "kn5"),) + ptb_neural("cpu") + ptb_neural("cuda") + REVERSAL_GPU_ONLY,
        feeds=(GAP, REPRODUCTION, PERPLEXITY_VS_TIME, THROUGHPUT, COST),
        seeds=SEEDS,
    )
)


# Decay branches (Hagele et al. 2024): does a short decay from a constant-rate trunk give what a
# complete run of the shorter budget gives? Per model and seed: complete WSD and cosine runs of
# BRANCH_TOKENS, a WSD trunk of TRUNK_TOKENS (itself a complete WSD run of that length) that keeps
# its state where a BRANCH_TOKENS run decays, and the branch from there. About 2 hours here (124 minutes measured).
BRANCH_TOKENS = 1_000_000
TRUNK_TOKENS = 1_200_000
BRANCH_MODELS = ("lstm", "transformer", "mlp")
WSD = {"lr_schedule": "wsd"}
_register(
    Suite(
        "branches",
        f"decay branches: lstm, transformer, mlp on PTB, 3 seeds each of complete cosine and WSD "
        f"runs of {BRANCH_TOKENS / 1e6:g} M tokens and a decay branch to {BRANCH_TOKENS / 1e6:g} M "
        f"from a {TRUNK_TOKENS / 1e6:g} M-token WSD trunk (about 2 hours on a 2-core CPU)",
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


# The equal-compute frontier (DESIGN): per corpus, kn3, kn5 and pruned kn5 on growing shares of
# the training split; LSTM and Transformer (and on PTB the MLP) at log-spaced token budgets from
# about 0.1 epoch, each a complete WSD schedule, all budgets branches of one trunk; seed 0 at
# every point, seeds 1 and 2 where the crossover of full-data kn5 lies (`lmbench.frontier`).
# The Transformer's warm-up (100 k tokens) sets its smallest budget. Brown with its whole
# vocabulary probes the softmax's cost. 8.7 hours of training and scoring on a 2-core
# CPU, measured (WikiText-2's 33 k-word softmax is most of it): run in parts with --resume.
DOUBLING_FROM_100K = tuple(100_000 * 2**k for k in range(7))  # 0.1 M ... 6.4 M
FRONTIER_DESIGN = FrontierDesign(
    corpora=("ptb", "wikitext2"),
    # kn5 on 35% of PTB's training split has no modified-KN estimate (its 5-gram D3 comes out
    # negative, as lmplz's would without --discount_fallback; 40% fails too): 45% keeps six points
    fractions=(0.05, 0.1, 0.2, 0.35, 0.45, 0.6, 1.0),
    budgets={
        ("ptb", "lstm"): DOUBLING_FROM_100K,
        ("ptb", "transformer"): DOUBLING_FROM_100K[1:],
        ("ptb", "mlp"): (200_000, 800_000, 3_200_000),
        ("wikitext2", "lstm"): DOUBLING_FROM_100K[1:],
        ("wikitext2", "transformer"): DOUBLING_FROM_100K[1:-1],
    },
    # Brown with every word in the vocabulary (about 46 k types) beside PTB's 10 k and
    # WikiText-2's 33 k: how the softmax's cost grows with the vocabulary
    probes=(("brown", {"vocab.min_count": "1"}),),
    probe_models=("lstm", "transformer", "mlp"),
    probe_tokens=200_000,
)
_register(
    Suite(
        "frontier",
        "the equal-compute frontier on PTB and WikiText-2: kn3, kn5, pruned kn5 on 5-100% of "
        "the training split; LSTM and Transformer at 5-7 token budgets from about 0.1 epoch "
        "(MLP at 3 on PTB), WSD branches of one trunk; seed 0 everywhere, seeds 1 and 2 at "
        "the budgets that bracket each crossover of kn5; the softmax's cost on Brown's whole "
        "vocabulary (about 9 hours on a 2-core CPU)",
        FRONTIER_DESIGN.runs(),
        feeds=(FRONTIER,),
        follow_up=FRONTIER_DESIGN.extra_seeds,
    )
)
# The same design in minutes, for tests: a PTB slice for scoring, tiny budgets and networks.
FRONTIER_QUICK_DESIGN = FrontierDesign(
    corpora=("ptb",),
    fractions=(0.1, 0.3, 1.0),
    budgets={("ptb", "lstm"): (4_000, 8_000, 16_000)},
    sets={"hidden": "16", "layers": "1"},
    eval_tokens=5_000,
    probes=(("brown", {"vocab.min_count": "1"}),),
    probe_models=("lstm",),
    probe_tokens=4_000,
)
_register(
    Suite(
        "frontier-quick",
        "the frontier's design in about a minute: PTB (scored on a 5 k-token slice), count "
        "models on 10-100% of train, a 16-unit LSTM at 4 k, 8 k and 16 k tokens",
        FRONTIER_QUICK_DESIGN.runs(),
        feeds=(FRONTIER,),
        follow_up=FRONTIER_QUICK_DESIGN.extra_seeds,
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
