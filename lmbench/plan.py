"""From what the user asked for to a fully resolved run: validated, hashed, ready to execute.

Everything that can be wrong with a request is found here, before any run starts, so usage
errors exit with status 2 and nothing half-done.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from . import distributed
from .corpora import (
    check_corpus_name,
    corpus_is_large,
    corpus_sha256,
    is_directory_corpus,
    load_corpus,
    locate_files,
)
from .corpora.specs import BROWN_CUTS, BROWN_WORDS
from .errors import UsageError
from .models.base import Budget
from .models.neural.schedule import branch_point
from .models.registry import ResolvedModel, resolve
from .protocol import MODES
from .records import config_hash
from .settings import coerce

DEVICES = ("cpu", "cuda", "auto")
# Corpus settings (`--set vocab.min_count=3`, `--set text.sentence_ends=false`): how the text
# becomes token ids, passed to `load_corpus` by their names after the prefix
CORPUS_SETTINGS = {
    "vocab.min_count": int | None,
    "vocab.max_size": int | None,
    "text.sentence_ends": bool,  # false: no <eos> but each split's last (an analysis variant)
    "text.test_words": int | None,  # brown: the test split's size in words, taken from valid
}


_CORPUS_PREFIXES = tuple({key.split(".")[0] + "." for key in CORPUS_SETTINGS})


def corpus_settings(sets: dict[str, str]) -> dict:
    """The corpus settings among `--set` values, typed and named as `load_corpus` takes them
    (`vocab.min_count` -> min_count); a text setting at its default is left out, so the run
    is the one without it (the same hash)."""
    given = {k: v for k, v in sets.items() if k.startswith(_CORPUS_PREFIXES)}
    unknown = set(given) - set(CORPUS_SETTINGS)
    if unknown:
        raise UsageError(
            f"unknown setting {sorted(unknown)[0]}; valid: {', '.join(CORPUS_SETTINGS)}"
        )
    settings = {
        key.split(".", 1)[1]: coerce(v, CORPUS_SETTINGS[key], key) for key, v in given.items()
    }
    for key, default in (("sentence_ends", True), ("test_words", None)):
        if key in settings and settings[key] == default:
            del settings[key]
    return settings


@dataclass(frozen=True)
class RunSpec:
    """One run as a user or a suite asks for it."""

    corpus: str
    model: str
    sets: dict[str, str] = field(default_factory=dict)  # raw `--set key=value`, incl. vocab.*
    mode: str = "stream"
    device: str = "auto"
    seed: int = 0
    budget_seconds: float | None = None
    budget_tokens: int | None = None
    budget_epochs: float | None = None
    threads: int | None = None  # None: every core
    eval_tokens: int | None = None  # score only the first N tokens of valid/test (slow peers)
    train_fraction: float | None = None  # train on the first fraction of the train split
    # Decay branches (lr_schedule=wsd, token budgets): a trunk keeps its training state for
    # branches of these budgets (not in the hash: keeping it changes nothing in the run) ...
    branches: tuple[int, ...] = ()
    # ... and a branch starts from the trunk of this many tokens with otherwise equal settings
    trunk_tokens: int | None = None
    # A suite's run with seeds of its own in place of the suite's (a long run whose claim needs
    # three seeds in a suite of one); not in the hash: each planned run has one `seed`
    seeds: tuple[int, ...] | None = None


@dataclass(frozen=True)
class PlannedRun:
    spec: RunSpec
    suite: str
    model: ResolvedModel
    vocab: dict  # corpus settings given (CORPUS_SETTINGS, by name): vocabulary and text
    device: str  # resolved: cpu or cuda
    threads: int
    budget: Budget
    corpus_sha256: str
    config: dict  # what the config hash covers
    config_hash: str
    # The valid perplexity whose first reaching is timed (the suite's kn5), and where it came
    # from; outside the hash: the target is a yardstick, not a setting.
    target_ppl: float | None = None
    target_source: str | None = None


def _resolve_device(requested: str, model: ResolvedModel, strict: bool = True) -> str:
    """cpu or cuda. Not `strict` (a suite's GPU run): cuda stays cuda where it is missing, and
    the run is recorded as skipped instead of stopping the suite."""
    if requested not in DEVICES:
        raise UsageError(f"unknown device {requested!r}; choose one of {', '.join(DEVICES)}")
    supported = model.model_class.devices
    if requested == "cpu":
        return "cpu"
    if "cuda" not in supported:
        if requested == "cuda":
            raise UsageError(f"model {model.spec!r} runs on the CPU only; use --device cpu or auto")
        return "cpu"
    try:
        import torch

        available = torch.cuda.is_available()
    except ImportError:
        available = False
    if requested == "cuda" and not available and not strict:
        return "cuda"
    if requested == "cuda" and not available:
        raise UsageError(
            "--device cuda: CUDA is not available here (torch.cuda.is_available() is "
            "False); use --device cpu, or install a CUDA build of torch (README, GPU users)"
        )
    return "cuda" if available else "cpu"


def check_branching(spec: RunSpec, model: ResolvedModel) -> None:
    """Branches and trunks: a WSD schedule, token budgets, branch points inside the trunk."""
    if not (spec.branches or spec.trunk_tokens is not None):
        return
    if not model.model_class.iterative or getattr(model.config, "lr_schedule", None) != "wsd":
        raise UsageError(
            "decay branches (--branches, --trunk-tokens) need a neural model with "
            "--set lr_schedule=wsd: only its constant phase is the same for every budget"
        )
    if spec.budget_tokens is None or spec.budget_seconds or spec.budget_epochs:
        raise UsageError("decay branches need a token budget alone (--budget-tokens)")
    trunk = spec.trunk_tokens or spec.budget_tokens
    if spec.trunk_tokens is not None and spec.branches:
        raise UsageError("a run is a trunk (--branches) or a branch (--trunk-tokens), not both")
    budgets = spec.branches or (spec.budget_tokens,)
    bad = [b for b in budgets if not 0 < b < trunk]
    if bad:
        raise UsageError(f"a branch budget must be below its trunk's {trunk} tokens, got {bad[0]}")
    warmup = model.config.warmup_tokens
    short = [b for b in budgets if branch_point(b, model.config.decay_fraction) <= warmup]
    if short:
        raise UsageError(
            f"a branch of {short[0]} tokens would decay before the warm-up "
            f"({warmup} tokens) ends: lower --set decay_fraction or raise the budget"
        )


def check_data_parallel(spec: RunSpec, model: ResolvedModel, world) -> None:
    """Under torchrun: a neural model, a token or epoch budget, no decay branches."""
    if not world.parallel:
        return
    if not model.model_class.iterative:
        raise UsageError(
            f"model {spec.model!r} does not train step by step: run it without torchrun"
        )
    if spec.budget_seconds is not None:
        raise UsageError(
            "under torchrun give --budget-tokens or --budget-epochs: the ranks must agree on "
            "where training ends, and a seconds budget is each one's own clock"
        )
    if spec.branches or spec.trunk_tokens is not None:
        raise UsageError("decay branches (--branches, --trunk-tokens) run in one process")
    batch = getattr(model.config, "batch_size", None)
    if batch is not None and batch % world.size:
        raise UsageError(
            f"batch_size {batch} does not split evenly over {world.size} ranks: --set "
            f"batch_size to a multiple of {world.size} (it is the global batch)"
        )


def hashed_config(config) -> dict:
    """The model config as the hash covers it: a setting added after runs were recorded is
    left out at its default (`HASH_OMITS_DEFAULT`), so those runs keep their hashes."""
    fields = asdict(config)
    for name, default in getattr(config, "HASH_OMITS_DEFAULT", {}).items():
        if fields.get(name) == default:
            del fields[name]
    return fields


def plan(spec: RunSpec, suite: str = "adhoc", data_dir=None) -> PlannedRun:
    check_corpus_name(spec.corpus)
    if spec.mode not in MODES:
        raise UsageError(f"unknown mode {spec.mode!r}; choose one of {', '.join(MODES)}")
    vocab = corpus_settings(spec.sets)
    model_sets = {k: v for k, v in spec.sets.items() if not k.startswith(_CORPUS_PREFIXES)}
    if vocab.get("min_count") is not None and vocab["min_count"] < 1:
        raise UsageError("vocab.min_count must be >= 1")
    if vocab.get("max_size") is not None and vocab["max_size"] < 3:
        raise UsageError("vocab.max_size must be >= 3 (<eos>, <unk> and a word)")
    most = BROWN_WORDS - BROWN_CUTS[0] - 1  # valid keeps a word
    if vocab.get("test_words") is not None and not 1 <= vocab["test_words"] <= most:
        raise UsageError(f"text.test_words must be 1 to {most:,} (brown's words after train)")
    if vocab.get("sentence_ends") is False and spec.mode != "stream":
        raise UsageError("text.sentence_ends=false makes each split one line: use --mode stream")
    if vocab.get("test_words") is not None and spec.corpus != "brown":
        raise UsageError("text.test_words applies to brown (its word-stream cuts) only")
    model = resolve(spec.model, model_sets)
    device = _resolve_device(spec.device, model, strict=suite == "adhoc")
    if spec.budget_seconds is not None and spec.budget_seconds <= 0:
        raise UsageError(f"--budget-seconds must be > 0, got {spec.budget_seconds}")
    if spec.budget_tokens is not None and spec.budget_tokens <= 0:
        raise UsageError(f"--budget-tokens must be > 0, got {spec.budget_tokens}")
    if spec.budget_epochs is not None and spec.budget_epochs <= 0:
        raise UsageError(f"--budget-epochs must be > 0, got {spec.budget_epochs}")
    if spec.eval_tokens is not None and spec.eval_tokens <= 0:
        raise UsageError(f"--eval-tokens must be > 0, got {spec.eval_tokens}")
    if spec.train_fraction is not None and not 0 < spec.train_fraction <= 1:
        raise UsageError(f"train fraction must be in (0, 1], got {spec.train_fraction}")
    world = distributed.from_env()  # under torchrun: one run's ranks (`distributed`)
    check_data_parallel(spec, model, world)
    threads = spec.threads or distributed.default_threads(world)
    budget = Budget(spec.budget_seconds, spec.budget_tokens, spec.budget_epochs)
    if model.model_class.iterative and budget.unlimited:
        raise UsageError(
            f"model {spec.model!r} trains until a budget ends: give --budget-epochs, "
            "--budget-tokens or --budget-seconds"
        )
    if is_directory_corpus(spec.corpus) and not corpus_is_large(spec.corpus, data_dir):
        load_corpus(spec.corpus, data_dir, **vocab)  # user data: find bad files now, not in a run
    sha = corpus_sha256(locate_files(spec.corpus, data_dir))
    config = {
        "corpus_sha256": sha,
        "mode": spec.mode,
        "model": spec.model,
        "model_config": hashed_config(model.config),
        "vocab": vocab,
        "budget": budget.for_hash(),
        "seed": spec.seed,
        "device": device,
        "dtype": model.model_class.dtype,
        "threads": threads,
        "eval_tokens": spec.eval_tokens,
    }
    if spec.train_fraction is not None:  # only when set: earlier runs keep their hashes
        config["train_fraction"] = spec.train_fraction
    if world.parallel:  # the same training, timed on other hardware: its own config
        config["world_size"] = world.size
    check_branching(spec, model)
    if spec.trunk_tokens is not None:  # a branch: its trunk's whole config is part of it
        trunk = replace(spec, budget_tokens=spec.trunk_tokens, trunk_tokens=None, branches=())
        config["trunk_config_hash"] = plan(trunk, suite, data_dir).config_hash
    return PlannedRun(
        spec, suite, model, vocab, device, threads, budget, sha, config, config_hash(config)
    )


def plan_seeds(
    specs: list[RunSpec], seeds: tuple[int, ...] | None, suite: str = "adhoc", data_dir=None
) -> list[PlannedRun]:
    """Each spec planned; a neural one once per seed of its own `seeds`, else of `seeds` (None:
    its own seed). Count models are deterministic: one run, whatever the seeds."""
    planned = []
    for spec in specs:
        run = plan(spec, suite, data_dir)
        each = spec.seeds or seeds
        if each is None or not run.model.model_class.iterative:
            planned.append(run)
            continue
        planned += [plan(replace(spec, seed=seed, seeds=None), suite, data_dir) for seed in each]
    return planned


def parse_seeds(text: str) -> tuple[int, ...]:
    """`0,1,2` or `0-4`: distinct non-negative seeds, in order."""
    try:
        if "-" in text.strip("-"):
            low, high = (int(x) for x in text.split("-", 1))
            seeds = tuple(range(low, high + 1))
        else:
            seeds = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        seeds = ()
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds {text!r}: give distinct seeds >= 0, e.g. 0,1,2 or 0-4")
    return seeds
