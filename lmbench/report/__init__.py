"""`lmbench report DIR...`: Markdown + PNG figures from the results frame and reference data.

Sections (DESIGN): the gap table with bootstrap intervals, the reproduction table beside the
published numbers, perplexity vs training time (CPU and GPU panels), scaling and smoothing,
throughput and MFU, the historical cost projection, samples, and every failed or skipped run.
A section none of whose suites has been run says which command fills it: the suites that feed
each section are their own declaration (`lmbench.suites`, `Suite.feeds`), never named here.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..latency import read_measurements
from ..measure import describe_machine
from ..records import TARGET_MODEL, machine_id
from ..reference import hardware, published, reference_dir
from ..reference.utilisation import not_derivable
from ..suites import FRONTIER, PERPLEXITY_VS_TIME, SCALING, SMOOTHING
from . import brown, cost, figures, frontier, gap, reproduction, schedules, tables
from .markdown import table
from .runs import (
    BOOTSTRAP_BLOCK_SENTENCES,
    BOOTSTRAP_SAMPLES,
    MIN_SEEDS,
    Runs,
    how_to_fill,
    machine_label,
    results_folder,
)
from .summary import newest_kenlm_queries, summary
from .tracking import section as tracking_section

FIGURES = "figures"


def _sources(runs: Runs) -> list[str]:
    folders = sorted({results_folder(r) for r in runs.records})
    devices = sorted({r.get("device_name") or r.get("device") or "?" for r in runs.ok()})
    commits = sorted({_short_commit((r.get("env") or {}).get("git_commit")) for r in runs.records})
    machines = {machine_id(r): r.get("machine") for r in runs.ok()}
    named = [] if set(machines) <= {None} else ["", "Machines (fingerprints):", ""]
    return [
        f"{len(runs.records)} runs from {', '.join(f'`{f}`' for f in folders)}; devices: "
        f"{', '.join(devices)}; commits: {', '.join(commits)}.",
        *named,
        *(f"- {describe_machine(machines[m])}" for m in sorted(machines, key=str) if named),
    ]


def _short_commit(commit: str | None) -> str:
    """`0123456789` or `0123456789-dirty` (code that differed from the commit); `unknown`."""
    if not commit:
        return "unknown"
    return commit[:10] + ("-dirty" if commit.endswith("-dirty") else "")


def _fewest_seeds(runs: Runs, corpus: str, label: str) -> int:
    """The fewest seeds behind any data size of a model's scaling points."""
    model = label.split(" [")[0]  # a machine's id may follow the name
    chosen, _ = figures.scaling_runs(runs)  # the runs the table and the fits use
    series = figures.series_labels(chosen)
    sizes: dict = {}
    for r in chosen:
        if (r["corpus"], series(r)) == (corpus, model):
            key = (r.get("extra") or {}).get("train_fraction")
            sizes[key] = sizes.get(key, 0) + 1
    return min(sizes.values(), default=0)


def _seed_cell(ppl) -> str:
    """A scaling table cell: one run's perplexity, or several seeds' mean ± sd (count)."""
    if len(ppl) == 1:
        return f"{ppl.iloc[0]:.2f}"
    return f"{ppl.mean():.2f} ± {ppl.std():.2f} ({len(ppl)})"


def _scaling_machines(runs: Runs) -> str:
    """Which machine's seconds the scaling figure draws, and what the others contribute."""
    chosen, _ = figures.scaling_runs(runs)
    panel = figures.timing_machine(chosen)
    mine = [r for r in chosen if machine_id(r) == panel]
    others = len(chosen) - len(mine)
    text = f"Seconds are those of {machine_label(mine[0])} ({len(mine)} of {len(chosen)} runs)."
    if others:
        text += (
            f" The other {others} ran elsewhere: their perplexities are in the table (budgets "
            "are tokens and epochs, so a config's perplexity does not depend on the machine; "
            "a count model estimated on two machines is shown once), not their seconds."
        )
    return text


def _scaling_fits(runs: Runs, fits, points) -> list[str]:
    """The fits table and each crossover the fits support: both fits from >= MIN_FIT_POINTS
    sizes, every point >= MIN_SEEDS seeds, and the crossover inside the measured sizes."""
    if fits.empty:
        return [
            f"No power law is fitted: no config of the scaling suite has "
            f"{figures.MIN_FIT_POINTS} or more data sizes here (fewer make an exact fit, not "
            "evidence), so no crossover is stated. The frontier's count models have 6-7 data "
            "sizes each (section 2).",
            "",
        ]
    unfitted = sorted(
        f"{corpus} {model} ({sizes} size{'s' if sizes > 1 else ''})"
        for (corpus, model), sizes in points.groupby(["corpus", "model"])["train tokens"]
        .nunique()
        .items()
        if sizes < figures.MIN_FIT_POINTS
    )
    # D_c lies orders of magnitude beyond the measured sizes: not shown as if it were a finding
    shown = fits.drop(columns=["low", "high", "D_c"]).assign(
        **{
            "compute-limited": [
                f"{k} of {n}" for k, n in zip(fits["compute-limited"], fits["points"])
            ]
        },
        **{"alpha 95%": fits["alpha 95%"].map(lambda a: f"[{a[0]:.3f}, {a[1]:.3f}]")},
    )
    lines = [
        "Fits of Kaplan et al.'s form to the test loss (nats per token): "
        "L(D) = (D_c / D)^alpha, with a 95% bootstrap interval on alpha (points resampled; "
        "with one seed per size it is no more than a range), drawn over the measured sizes "
        "only. D_c is not shown: it lies far beyond them. These exponents are not comparable "
        "with Kaplan et al.'s (other models, BPE tokens, early-stopped runs).",
        "",
        table(shown),
        "",
    ]
    if fits["compute-limited"].gt(0).any():
        lines += [
            "A fit over compute-limited points describes runs of a fixed number of epochs at "
            "each size, not what each size of data gives a model trained to convergence: the "
            "epoch cap cuts the small shares' runs after fewer tokens than the large ones', "
            "so its exponent and any crossover it implies hold for that schedule only.",
            "",
        ]
    if unfitted:
        lines += [
            f"Not fitted (fewer than {figures.MIN_FIT_POINTS} data sizes so far): "
            + ", ".join(unfitted)
            + ".",
            "",
        ]
    for c in figures.crossovers(fits):
        seeds = _fewest_seeds(runs, c["corpus"], c["model"])
        low, high = c["measured range"]
        if seeds < MIN_SEEDS:
            lines.append(
                f"- {c['corpus']}: `{c['model']}`'s points rest on {seeds} seed(s) each: no "
                f"crossover is stated (a finding needs >= {MIN_SEEDS} seeds)."
            )
        elif not low <= c["crossover tokens"] <= high:
            # the fits meet outside the range: one model is below the other across all of it
            better = (c["crossover tokens"] < low) == c["wins with more data"]
            lines.append(
                f"- {c['corpus']}: `{c['model']}` and kn5: the fits do not meet within the "
                f"measured sizes ({low:,.0f}-{high:,.0f} training tokens); by the fits "
                f"`{c['model']}` is the {'better' if better else 'worse'} model across them, "
                f"for this schedule{_overlap_at_ends(points, c['corpus'], c['model'])}. Where "
                "a point's plateau schedule never lowered its rate (the table's count), a "
                "complete schedule would only lower its perplexity: "
                + (
                    "the direction stands as a bound, the exponent does not."
                    if better
                    else "the direction is not established, nor the exponent."
                )
            )
        else:
            side = "beyond" if c["wins with more data"] else "below"
            lines.append(
                f"- {c['corpus']}: `{c['model']}`'s fit meets kn5's at "
                f"{c['crossover tokens']:,.0f} training tokens; by the fits it is the better "
                f"model {side} that."
            )
    return lines


def _overlap_at_ends(points: pd.DataFrame, corpus: str, model: str) -> str:
    """Where a fit says more than its points: a measured size at which the seeds' range holds
    kn5's perplexity (there the two are not told apart, whatever the fits say)."""
    here = points[points["corpus"] == corpus]
    kn5 = here[here["model"] == TARGET_MODEL].groupby("train tokens")["test ppl"].mean()
    said = []
    for size, seeds in here[here["model"] == model].groupby("train tokens"):
        if size in kn5.index and seeds["test ppl"].min() <= kn5[size] <= seeds["test ppl"].max():
            said.append(
                f"at {size:,.0f} tokens its seeds ({seeds['test ppl'].min():.2f}-"
                f"{seeds['test ppl'].max():.2f}) bracket kn5's {kn5[size]:.2f}"
            )
    return f"; but {', and '.join(said)}: not told apart there" if said else ""


def _frontier(runs: Runs, hw, pub, figure_dir: Path, figure) -> list[str]:
    drawn = frontier.figure(runs, figure_dir / "frontier.png")
    if drawn is None:
        return [f"_Not run yet: {how_to_fill(FRONTIER)}._"]
    machines = "; ".join(f"{corpus}: {machine}" for corpus, machine in drawn.items())
    return [
        figure("frontier.png", "test perplexity by training seconds and FLOPs"),
        "",
        "Count models (squares) train on growing shares of the training split; neural models "
        "(circles) on all of it for growing token budgets, each a complete WSD schedule (a "
        "decay branch of one trunk per seed: the same model as a from-scratch run of its "
        "budget). Points are seed means with their range; lines are each family's lower "
        "envelope; the dashed line is kn5 on all the data; a star marks a family's first "
        "budget below it. Seconds are training seconds on one machine per corpus "
        f"({machines}; fingerprints), a decay branch's including its trunk's share. FLOPs "
        "are the neural runs' training FLOPs (count models have none). Seeds 1 and 2 run at "
        "the budgets around each crossover once every seed-0 point of the suite is in; until "
        "then, and elsewhere, a point is one seed, and a crossover is no claim.",
        "",
        "At equal seconds on the drawn machine (the left panels):",
        "",
        *frontier.seconds_reading(runs),
        "",
        "The crossover is in training tokens and FLOPs: each neural family's first token "
        "budget whose test perplexity (seed mean) is below full-data kn5's, the budget before "
        "it, whether valid agrees, and what it took here and would have taken then:",
        "",
        frontier.crossover_table(runs, hw, pub),
        "",
        *_softmax(runs, figure_dir, figure),
    ]


def _softmax(runs: Runs, figure_dir: Path, figure) -> list[str]:
    frame = frontier.softmax_rows(runs)
    if not frontier.softmax_figure(frame, figure_dir / "softmax.png"):
        return []
    return [
        "### The softmax's cost",
        "",
        figure("softmax.png", "training tokens per second by vocabulary size"),
        "",
        "Training tokens/s of complete runs by the corpus's vocabulary size (Brown with every "
        "word kept, about 46 k types, beside PTB's 10 k and WikiText-2's 33 k), kn5's "
        "estimation rate beside them. A neural model pays for every vocabulary word at every "
        "token; a count model pays for the n-grams it sees. Each figure is the median over a "
        "family's complete runs at that vocabulary (a decay branch's speed is its trunk's; runs "
        "whose cores were shared left out); runs of one config differ by up to about 15% here, "
        "so a ratio moves by as much.",
        "",
        *frontier.softmax_reading(frame),
    ]


def render(
    runs: Runs,
    reference: Path,
    figure_dir: Path,
    link_prefix: str,
    tracking: Path | None = None,
    peers: Path | None = None,
) -> str:
    figure_dir.mkdir(parents=True, exist_ok=True)
    pub, hw = published(reference), hardware(reference)

    def figure(name: str, caption: str) -> str:
        return f"![{caption}]({link_prefix}{name})"

    kenlm = newest_kenlm_queries(peers)
    lines = ["# lmbench report", "", *summary(runs, pub, hw, kenlm), *_sources(runs), ""]
    lines += [
        "Perplexity is per token, every token (incl. `<eos>`) predicted once (README, evaluation "
        "protocol). Stream mode unless a table says sentence. Times are training seconds "
        "(evaluation excluded). A neural budget is training tokens or epochs with its complete "
        "schedule, the same run on any machine; the seconds are what it took on the machine "
        "named. A budget marked `wall-clock` is a seconds budget: how far it got depends on the "
        "machine, so it supports no claim across machines.",
        "",
        "## 1. The gap: what a neural model buys over kn5, and what it costs",
        "",
        "Ratios are to the `kn5` run of the same corpus, mode and machine. A neural row is one "
        "config over its seeds: the mean test perplexity, the seeds' standard deviation and "
        "range, and the geometric mean of the seeds' ratios. The interval on the ratio is a 95% "
        f"paired bootstrap ({BOOTSTRAP_SAMPLES} resamples of the saved per-sentence "
        "log-likelihoods) that resamples seeds and blocks of "
        f"{BOOTSTRAP_BLOCK_SENTENCES} consecutive test sentences (a model's state and the "
        "text's topic carry across sentences, so single sentences are not independent draws). "
        "Count models are "
        f"deterministic: one run each. Fewer than {MIN_SEEDS} seeds, or a plateau schedule "
        "that never lowered its learning rate (not a complete schedule): the row is shown, and "
        "no finding is stated. Its train time is the seeds' mean (section 2's points take the "
        "median of the seeds whose cores were not shared). With 3 seeds, resampling them understates the spread between "
        "seeds: the interval is mostly test-sentence sampling; read it beside the seeds' "
        "standard deviation and range. Each verdict holds at its row's budget (tokens and the "
        "epochs they make), not beyond it. kn5 counts in well under a second, and one run's "
        f"time varies between sessions ({tables.kn5_seconds_range(runs)} for full-data PTB kn5 "
        "in these records): a ratio of training times to it is an order of magnitude, not a "
        "measurement to three digits.",
        "",
        gap.gap_table(runs),
        "",
        "## 2. The equal-compute frontier: what each family buys per second and per FLOP",
        "",
        *_frontier(runs, hw, pub, figure_dir, figure),
        "",
        "## 3. Reproduction: ours beside the published numbers",
        "",
        "Published figures come from `published.csv` (read at report time; sources in the "
        "table). Our budgets are far smaller than the papers' unless the row says otherwise.",
        "",
        reproduction.reproduction_table(runs, pub),
        "",
        brown.protocol_table(runs, pub),
        "",
        "## 4. Perplexity against training time",
        "",
    ]
    measured = figures.perplexity_vs_time(runs, pub, figure_dir / "perplexity_vs_time.png")
    lines.append(figure("perplexity_vs_time.png", "validation perplexity vs training seconds"))
    lines.append("")
    lines.append(
        "Stars mark each neural model's first evaluation at or below the kn5 valid perplexity "
        "(its time to target; MLPerf-style, no interpolation)."
    )
    for device, name in figures.DEVICES.items():
        reached = measured.get(f"{device} reached")
        if reached:
            lines.append(f"Reached kn5's valid perplexity on the {name}: {', '.join(reached)}.")
    if not measured.get("cuda"):
        lines.append(
            "No GPU run is in these results: the GPU panel shows the published GPU-era runs "
            f"(their reported training times) instead. {how_to_fill(PERPLEXITY_VS_TIME, 'cuda')} "
            "on a machine with CUDA fills it. The published GPU-era runs:"
        )
        lines += ["", reproduction.gpu_era_table(pub)]
    lines += ["", "## 5. Scaling and smoothing", "", "### Scaling: where is the crossover?", ""]
    fits, points = figures.scaling(runs, figure_dir / "scaling.png")
    if points.empty:
        lines.append(f"_Not run yet: {how_to_fill(SCALING)}._")
    else:
        measured_table = (
            points.groupby(["corpus", "train tokens", "model"])["test ppl"]
            .agg(_seed_cell)
            .unstack("model", fill_value="-")
            .reset_index()
        )
        lines += [
            figure("scaling.png", "test perplexity and training time by training-set size"),
            "",
            "Test perplexity by training-set size (mean ± standard deviation over a config's "
            "seeds, their number in brackets; one seed: its value). Each LSTM point "
            "trains until validation stops improving (2 evaluations without a gain) or its "
            "epoch cap, whichever comes first; kn5 is estimated on the same share of the "
            "training split. Runs whose cores were shared have no seconds in the right panel "
            f"(their clock measured the sharing). {_scaling_machines(runs)}",
            "",
            table(measured_table),
            "",
        ]
        capped = points.groupby(["corpus", "model", "train tokens"]).agg(
            capped=("compute-limited", "sum"),
            runs=("compute-limited", "size"),
            never_lowered=("lr never lowered", "sum"),
        )
        capped = capped[capped["capped"] > 0]
        if not capped.empty:
            named = [
                f"{corpus} {model} at {tokens:,} training tokens ({n} of {runs_here} run"
                f"{'s' if runs_here > 1 else ''}; learning rate never lowered in {low})"
                for (corpus, model, tokens), (n, runs_here, low) in capped.iterrows()
            ]
            lines += [
                "Compute-limited (the epoch cap ended them before early stopping fired; a "
                "plateau schedule whose rate was never lowered is not a complete schedule, and "
                "seeds that differ in it differ by more than seed noise): "
                + "; ".join(named)
                + ".",
                "",
            ]
        _, timed = figures.scaling_runs(runs)
        if timed:
            lines += [
                f"Left out: {len(timed)} runs of the suite's first design, which gave every "
                "data size the same training seconds (a clock budget: the same minutes are "
                "many epochs of a small share and few of the whole, so their points measure the "
                "clock as much as the data).",
                "",
            ]
        lines += _scaling_fits(runs, fits, points)
    lines += ["", "### Smoothing: why it mattered", ""]
    if figures.smoothing(runs, figure_dir / "smoothing.png"):
        lines += [
            figure("smoothing.png", "test perplexity by order and smoothing"),
            "",
            "PTB test perplexity (stream mode, full training data):",
            "",
            tables.smoothing_table(runs),
        ]
    if figures.pruning(runs, figure_dir / "pruning.png"):
        lines += [
            "",
            "What a deployment trades: Kneser-Ney's size against its perplexity, each order "
            "unpruned and kn5 pruned by lmplz's `--prune` count rule (lmbench's implementation: "
            "n-grams of count <= the threshold of their order dropped, the last threshold "
            "repeating for higher orders). Size as stored: lmbench's uncompressed arrays (n-gram "
            "keys, trie links, log-probabilities and backoffs, about 35 bytes per n-gram; KenLM's "
            "quantised tries are smaller); as scored adds the hash indexes scoring builds over "
            "the keys. A size ratio to a neural model (fp32 parameters) depends on both "
            "representations.",
            "",
            figure("pruning.png", "Kneser-Ney size against test perplexity"),
            "",
            tables.pruning_table(runs),
        ]
    else:
        lines.append(f"_Not run yet: {how_to_fill(SMOOTHING)}._")
    lines += ["", "## 6. Throughput and model FLOP utilisation", ""]
    if figures.throughput(runs, figure_dir / "throughput.png"):
        lines.append(figure("throughput.png", "training tokens/s and MFU"))
    lines += [
        "",
        "FLOPs count 2 per multiply-add, backward = 2 x forward; MFU divides the achieved rate "
        "by the median of the matmul rates calibrated at the start of every neural run on the "
        "same machine and device (in the run's precision, by torch): one run's own calibration "
        "moves with what the host does, and would move its MFU with it. A record without a "
        "machine fingerprint (v1) keeps its own calibration.",
        "",
        cost.throughput_table(runs),
        "",
        "## 7. What this would have cost then",
        "",
        "Each run's training FLOPs (counted by our formulas from its architecture and tokens, "
        "not measured by a profiler) divided by the FLOP/s an earlier machine achieved: its "
        "peak (`hardware.csv`) times the fraction of it the papers' own runs reached. That "
        "fraction is derived, not assumed: each paper run's training FLOPs by the same formulas "
        "(its architecture, vocabulary, tokens and epochs) over its reported time and devices:",
        "",
        cost.utilisation_table(pub, hw),
        "",
        "Published rows with hardware and a time that give no fraction here: "
        + ("; ".join(not_derivable(pub)) or "none")
        + ". Each of our runs is costed at the fraction reached by the paper run on that "
        "machine nearest to it in hidden width (named in each cell): how much of a machine a "
        "run uses follows the shape of its matrix products "
        + cost.width_rule(hw, pub)
        + " The K20 figures are the K20 as those papers' code used it, not the hardware's best. "
        "Our Transformer and MLP are costed at the K20's LSTM rate of their width, an "
        "assumption: no paper run of theirs on a K20 gives one. A time given as a lower bound "
        '("over 3 weeks") makes its fraction an upper bound; on one machine a cost from it is '
        "a lower bound (≥). Bengio et al.'s AP News run used 40 Athlons: its fraction is per "
        "CPU, and one CPU alone, with no communication, may do better, so its costs carry no "
        "bound (~; an exact time on several devices would give an upper bound, ≤). A run that "
        "is a paper run itself (its config, corpus and training FLOPs: our full 13-epoch "
        "`lstm-zaremba-small`) is marked as the reference run: its K20 time is the paper's by "
        "construction. The peak columns are the unreachable best case. A measured time marked "
        "contended ran while other work shared the cores (its load average).",
        "",
        cost.cost_table(runs, hw, pub),
        "",
        "## 8. Decay branches: one trunk, every shorter budget",
        "",
        "Warmup-stable-decay (Hagele et al. 2024): a WSD run is constant until the last fifth of "
        "its budget, so one constant-rate trunk serves every shorter budget: a branch resumes "
        "the trunk's saved state (weights, optimizer, RNG, data position) where its budget's "
        "decay begins and decays to 0. Test perplexity, mean ± standard deviation (seeds); the "
        "branch's time includes its trunk's seconds up to the branch point. Equivalent: the mean "
        "difference is within 2 standard deviations of the seeds (pooled over both sides), or "
        "within 1%, whichever is larger; identical: every seed's perplexity is the same. Two "
        "comparisons per branch: with a complete WSD run of its budget "
        "(the check: a branch should reproduce it, and `tests/test_training.py` shows it does to "
        "the last bit at small scale) and with a complete cosine run (what the usual schedule "
        "gives at that budget). A difference from cosine is WSD against cosine, not the "
        "branching, and it is confounded by where each schedule ends: WSD decays to 0, our "
        "cosine to a tenth of its peak rate.",
        "",
        schedules.branches_table(runs),
        "",
        "## 9. bf16 autocast on the CPU",
        "",
        "The same configs, token budgets and seeds in bf16 autocast (weights and optimizer in "
        "fp32) beside their fp32 runs on the same machine: test perplexity, mean ± standard "
        "deviation (seeds); within seed noise: the difference is within 2 standard deviations "
        "of the seeds (pooled over both sides), or 1%, whichever is larger. The two sides ran in separate sessions "
        "of one machine fingerprint, so their speed ratio is indicative; the side-by-side "
        "figure is `benchmarks/peer_word_language_model.py`'s (`results/peers/`). A plateau schedule "
        "cuts its learning rate after one evaluation that does not improve: where the two sides "
        "cut it in different numbers of seeds, their difference is the schedule's reaction to "
        "evaluation noise as much as the precision's.",
        "",
        schedules.precision_table(runs),
        "",
        "## 10. Samples",
        "",
        tables.samples_table(runs),
        "",
        "## 11. Tracking across commits",
        "",
        *(
            tracking_section(tracking, figure_dir, figure)
            if tracking
            else ["Not drawn: `lmbench report ... --tracking results/tracking` draws it."]
        ),
        "",
        "## Failed and skipped runs",
        "",
        tables.failures(runs),
        "",
        "## All runs",
        "",
        tables.all_runs_table(runs),
        "",
    ]
    return "\n".join(lines)


def write_report(
    paths: list[Path],
    out: Path | None = None,
    reference=None,
    tracking: Path | None = None,
    latency: Path | None = None,
) -> Path:
    """Render the report of every run under `paths` into `out` (default: first folder's
    report.md), figures beside it under figures/; with `tracking`, the per-commit history
    under that folder (`results/tracking`) as section 11; with `latency`, the per-query
    latencies `lmbench latency` measured there for runs recorded without one."""
    out = Path(out) if out else Path(paths[0]) / "report.md"
    runs = Runs.load(*paths)
    if latency is not None:
        runs.attach_queries(read_measurements(latency))
    if not runs.records:
        out.write_text("# lmbench report\n\nNo runs found.\n")
        return out
    # peer measurements beside the report (results/peers/): the KenLM query ratio it quotes
    peers = out.parent / "peers"
    text = render(
        runs, reference_dir(reference), out.parent / FIGURES, f"{FIGURES}/", tracking, peers
    )
    out.write_text(text)
    return out


__all__ = ["Runs", "render", "write_report"]
