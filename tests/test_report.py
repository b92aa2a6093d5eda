"""The report's parts: bootstrap intervals, mixes, power-law fits, and the whole Markdown + PNG."""

import importlib
import json
import math
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmbench.cli import main
from lmbench.execute import sentence_nll
from lmbench.measure import this_machine
from lmbench.mix import MixSpec, best_weight, mix_log_probs, run_mixes
from lmbench.models.registry import resolve
from lmbench.records import RunRecord
from lmbench.reference import hardware, parse_duration, published, reference_dir
from lmbench.report import cost, gap, reproduction, schedules, tables
from lmbench.report.figures import crossovers, power_law, throughput
from lmbench.report.runs import Runs, block_resamples, how_to_fill, ratio_interval, ratio_point
from lmbench.suites import PERPLEXITY_VS_TIME, SECTIONS, SUITES, suites_feeding

N_SENTENCES, LENGTH = 400, 20


def _record(folder, model, family, ppl, rng, suite="history", tag="", **fields):
    """A finished run with per-token log-probs (valid, test) and per-sentence NLLs on disk."""
    corpus = fields.pop("corpus", "ptb")
    run_id = f"{corpus}.{model}.stream.{suite}{tag}"
    tokens = N_SENTENCES * LENGTH
    logs = {}
    for split in ("valid", "test"):
        noise = rng.normal(0, 1.0, tokens)
        logs[split] = -(math.log(ppl) + noise - noise.mean())  # mean NLL exactly log(ppl)
        (folder / "logprobs").mkdir(parents=True, exist_ok=True)
        np.save(folder / "logprobs" / f"{run_id}.{split}.npy", logs[split].astype(np.float32))
    targets = np.tile(np.r_[np.full(LENGTH - 1, 5), 0], N_SENTENCES)  # <eos> (id 0) ends each
    (folder / "sentences").mkdir(exist_ok=True)
    np.save(folder / "sentences" / f"{run_id}.npy", sentence_nll(logs["test"], targets, 0))
    record = RunRecord(
        run_id=run_id,
        config_hash=fields.pop("config_hash", run_id),
        suite=suite,
        corpus=corpus,
        corpus_sha256="x",
        vocab_size=fields.pop("vocab_size", 10),
        mode="stream",
        model=model,
        family=family,
        device="cpu",
        device_name="test CPU",
        status=fields.pop("status", "ok"),
        budget=fields.pop("budget", {"kind": "none", "limit": None, "ended_by": "data"}),
        train_seconds=fields.pop("train_seconds", 1.0),
        train_tokens=1000,
        train_tokens_per_s=fields.pop("train_tokens_per_s", 1000.0),
        eval_tokens=tokens,
        latency_ms_per_token=(latency := fields.pop("latency", 0.01)),
        query_us=fields.pop("query_us", 1e3 * latency),
        valid_ppl=float(np.exp(-logs["valid"].mean())),
        test_ppl=float(np.exp(-logs["test"].mean())),
        size_bytes=fields.pop("size_bytes", 1_000_000),
        peak_rss_bytes=2**28,
        params=1000,
        logprobs={s: f"logprobs/{run_id}.{s}.npy" for s in logs},
        sentences=f"sentences/{run_id}.npy",
        samples=[f"a sample of {model}"],
        curve=[{"seconds": 1.0, "tokens": 1000, "valid_ppl": float(np.exp(-logs["valid"].mean()))}],
        machine=fields.pop("machine", this_machine()),  # measured here, unless a test says not
        **fields,
    )
    with open(folder / "runs.jsonl", "a") as f:
        f.write(record.to_json() + "\n")
    return json.loads(record.to_json()) | {"source_file": str(folder / "runs.jsonl")}


def test_sentence_nll_splits_at_each_predicted_eos():
    log_probs = -np.arange(1, 8, dtype=float)
    targets = np.array([3, 4, 0, 5, 0, 6, 7])  # two sentences and a cut-off tail
    out = sentence_nll(log_probs, targets, eos=0)
    np.testing.assert_allclose(out, [[6, 3], [9, 2], [13, 2]])


def test_bootstrap_interval_holds_the_ratio_and_narrows_with_a_real_gap(tmp_path):
    rng = np.random.default_rng(1)
    kn5 = _record(tmp_path, "kn5", "ngram", 140.0, rng)
    same = _record(tmp_path, "lstm", "lstm", 140.0, rng)
    better = _record(tmp_path, "rnn", "rnn", 100.0, rng)
    low, high = ratio_interval(same, kn5)
    assert low < same["test_ppl"] / kn5["test_ppl"] < high
    assert low < 1 < high  # no real difference: the interval covers 1
    low, high = ratio_interval(better, kn5)
    assert high < 1 and low < better["test_ppl"] / kn5["test_ppl"] < high


def test_block_bootstrap_keeps_runs_of_consecutive_sentences():
    index = block_resamples(np.random.default_rng(0), n=250, samples=30, block=100)
    assert index.shape == (30, 250) and index.min() >= 0 and index.max() < 250
    steps = np.diff(index, axis=1) % 250  # within a block the next sentence follows
    assert (steps[:, :99] == 1).all() and (steps[:, 100:199] == 1).all()
    assert (block_resamples(np.random.default_rng(0), n=5, samples=2, block=100) < 5).all()


def test_block_bootstrap_widens_the_interval_where_neighbouring_sentences_move_together(
    tmp_path,
):
    """A model whose loss drifts over stretches of the text (its state, the topic) is not
    sentence-by-sentence noise: single-sentence resampling would understate the interval."""
    rng = np.random.default_rng(3)
    kn5 = _record(tmp_path, "kn5", "ngram", 140.0, rng)
    lstm = _record(tmp_path, "lstm", "lstm", 130.0, rng)
    path = tmp_path / lstm["sentences"]
    nll = np.load(path)
    nll[:, 0] += np.repeat(rng.normal(0, 8.0, N_SENTENCES // 50), 50)  # 50-sentence stretches
    np.save(path, nll)
    blocks, single = ratio_interval(lstm, kn5), ratio_interval(lstm, kn5, block=1)
    assert blocks[1] - blocks[0] > 1.5 * (single[1] - single[0])


def test_em_weight_maximises_the_mixture_likelihood():
    rng = np.random.default_rng(0)
    a, b = np.log(rng.uniform(0.01, 1, 5000)), np.log(rng.uniform(0.01, 1, 5000))
    weight = best_weight(a, b)
    grid = np.linspace(0.01, 0.99, 99)
    best_grid = grid[np.argmax([mix_log_probs(a, b, w).sum() for w in grid])]
    assert abs(weight - best_grid) <= 0.011
    assert mix_log_probs(a, b, weight).sum() >= max(mix_log_probs(a, b, w).sum() for w in grid)


def test_a_mix_is_recorded_and_skipped_with_its_reason_when_a_part_is_missing(tmp_path):
    rng = np.random.default_rng(2)
    kn5 = _record(tmp_path, "kn5", "ngram", 140.0, rng)
    rnn = _record(tmp_path, "rnn", "rnn", 130.0, rng)
    ok, missing = run_mixes(
        (MixSpec("ptb", "rnn", "kn5"), MixSpec("ptb", "lstm", "kn5")), tmp_path, "history"
    )
    assert ok["status"] == "ok" and ok["family"] == "mix"
    # independent noise: the mixture beats both parts on test
    assert ok["test_ppl"] < min(kn5["test_ppl"], rnn["test_ppl"])
    assert sum(ok["model_config"]["weights"].values()) == pytest.approx(1)
    assert ok["train_seconds"] == kn5["train_seconds"] + rnn["train_seconds"]
    assert missing["status"] == "skipped" and "lstm" in missing["error"]
    files = sorted(p.name for p in tmp_path.rglob("*.npy"))
    again = run_mixes((MixSpec("ptb", "rnn", "kn5"),), tmp_path, "history", resume=True)
    assert again[0]["run_id"] == ok["run_id"]  # resumed: kept, not recomputed
    assert sorted(p.name for p in tmp_path.rglob("*.npy")) == files  # and no orphan written


def test_power_law_fit_recovers_its_parameters_and_the_crossover():
    tokens = np.array([1e5, 3e5, 1e6, 3e6])
    fits = []
    for model, alpha, critical in (("kn5", 0.05, 1e40), ("lstm", 0.08, 1e26)):
        loss = (critical / tokens) ** alpha
        got_alpha, got_critical = power_law(tokens, loss)
        assert got_alpha == pytest.approx(alpha, rel=1e-6)
        assert math.log(got_critical) == pytest.approx(math.log(critical), rel=1e-6)
        fits.append(
            {
                "corpus": "ptb",
                "model": model,
                "alpha": alpha,
                "D_c": critical,
                "low": 1e5,
                "high": 3e6,
            }
        )
    (cross,) = crossovers(pd.DataFrame(fits))
    d = cross["crossover tokens"]
    assert (1e40 / d) ** 0.05 == pytest.approx((1e26 / d) ** 0.08, rel=1e-9)
    assert cross["wins with more data"] and cross["measured range"] == (1e5, 3e6)


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("2-3 hours", 2.5 * 3600),
        ("about half a day", 43200),
        ("an entire day", 86400),
        ("5 epochs, over 3 weeks", 3 * 7 * 86400),
        ("10-20 epochs", None),
        (None, None),
    ],
)
def test_published_training_times_parse(text, seconds):
    assert parse_duration(text) == seconds


def test_report_has_every_section_and_lists_failures(tmp_path):
    rng = np.random.default_rng(3)
    _record(tmp_path, "kn5", "ngram", 140.0, rng, train_seconds=0.2, latency=0.005)
    for seed in (0, 1, 2):  # three seeds of one config: one row, a claim
        _record(
            tmp_path,
            "lstm",
            "lstm",
            115.0,
            rng,
            tag=f"s{seed}",
            seed=seed,
            train_seconds=540.0,
            size_bytes=20_000_000,
            flops_per_token=1.5e7,
            train_flops=1.5e7 * 5e6,
            mfu=0.7,
            calibration={"matmul_gflops": 150.0},
            time_to_target_s=100.0,
            target_ppl=147.0,
        )
    _record(tmp_path, "rnn", "rnn", 120.0, rng, train_seconds=60.0)  # one seed: no claim
    failed = RunRecord(
        run_id="f",
        config_hash="f",
        suite="history",
        corpus="ptb",
        mode="stream",
        model="transformer",
        family="transformer",
        device="cuda",
        status="skipped",
        error="a GPU run: CUDA is not available on this machine",
    )
    with open(tmp_path / "runs.jsonl", "a") as f:
        f.write(failed.to_json() + "\n")
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r.md")]) == 0
    text = (tmp_path / "r.md").read_text()
    for heading in ("## 1.", "## 2.", "## 3.", "## 4.", "## 5.", "## 6.", "## 7.", "## Failed"):
        assert heading in text
    assert "0.821 [" in text  # lstm / kn5 with its interval
    assert "**lstm** (3 seeds, sd 0.00, 115.00-115.00; full data): 17.9% better" in text
    assert "2,700x the training time" in text
    assert "**rnn**: 1 seed: no claim" in text
    assert "Zaremba et al. 2014" in text  # the published rows, read from the reference data
    assert "not run here: the AP News corpus" in text  # where the history was decided
    # each row at scale gives its own obstacle beside its corpus's
    assert "0.83 B-parameter LSTM trained on 32 K40 GPUs" in text
    assert "the pruned model is small (14.2 M n-grams)" in text
    assert "Not reproductions: " in text  # history-budget neural rows beside papers' models
    summary = text.split("## 1.")[0]  # the first page: claims with numbers, and what is not run
    assert "## Summary: what these runs support" in summary
    assert "lstm 115.00 (17.9% better: 0.821 [" in summary and "3 seeds" in summary
    assert "rnn 120" not in summary  # one seed: no claim on the first page
    assert "No GPU run" in summary and "transformer: a GPU run" in summary
    assert "Jozefowicz et al. 2016" in text and "32 Tesla K40" in text
    assert "not measured on this machine" not in text  # said in the figure, not the text
    assert "No GPU run is in these results" in text
    assert "CUDA is not available" in text
    assert "lmbench run --suite scaling" in text
    assert "weeks" in text or "days" in text  # the 2001 projection of 7.5e13 FLOPs
    for png in ("perplexity_vs_time.png", "throughput.png"):
        assert (tmp_path / "figures" / png).stat().st_size > 10_000


def test_report_of_a_missing_folder_is_a_usage_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no such results folder" in capsys.readouterr().err


def _fingerprint(cpu, cores, id_):
    return {"cpu": cpu, "isa": ["avx2"], "cores": cores, "memory_gib": 8, "gpu": None, "id": id_}


def test_a_folder_of_two_machines_gives_two_gap_tables_each_divided_by_its_own_kn5(tmp_path):
    rng = np.random.default_rng(4)
    slow, fast = _fingerprint("Slow CPU", 2, "aaaaaaaaaaaa"), _fingerprint("Fast CPU", 64, "b" * 12)
    # the same configs measured on two machines, in one results file; each machine's kn5 comes
    # first, so the newest kn5 of the file is the fast one's
    for machine, kn5_s, lstm_s, kn5_ms, lstm_ms in (
        (slow, 0.2, 540, 0.005, 0.5),
        (fast, 0.05, 60, 0.002, 0.02),
    ):
        tag = machine["cpu"][0]
        flops = {"flops_per_token": 1.5e7, "train_flops": 1.5e7 * 5e6}
        for model, family, ppl, seconds, latency, more in (
            ("kn5", "ngram", 140.0, kn5_s, kn5_ms, {}),
            ("lstm", "lstm", 115.0, lstm_s, lstm_ms, flops),
        ):
            _record(
                tmp_path,
                model,
                family,
                ppl,
                rng,
                tag=tag,
                config_hash=model,
                machine=machine,
                train_seconds=seconds,
                latency=latency,
                **more,
            )
    # an interrupted kn5 on the slow machine, newest of all: never a row, never a yardstick
    _record(
        tmp_path,
        "kn5",
        "ngram",
        900.0,
        rng,
        tag="I",
        config_hash="kn5-cut",
        machine=slow,
        train_seconds=1e-6,
        latency=1e-6,
        status="interrupted",
    )
    runs = Runs.load(tmp_path)
    assert len(runs.records) == 5  # another machine's run of a config is not a retry of it
    rows = gap.gap_rows(runs)
    assert len(rows) == 4 and set(rows["machine_id"]) == {slow["id"], fast["id"]}
    lstm = rows[rows["model"] == "lstm"].set_index("machine_id")
    assert lstm.loc[slow["id"], "time_ratio"] == pytest.approx(540 / 0.2)
    assert lstm.loc[fast["id"], "time_ratio"] == pytest.approx(60 / 0.05)
    assert lstm.loc[slow["id"], "query_ratio"] == pytest.approx(0.5 / 0.005)
    assert lstm.loc[fast["id"], "query_ratio"] == pytest.approx(0.02 / 0.002)
    text = gap.gap_table(runs)
    assert text.count("### ptb, stream mode, cpu") == 2
    assert "Measured on Slow CPU (avx2), 2 cores" in text and "Fast CPU (avx2), 64 cores" in text
    assert "time to kn5 valid" in text and "time / kn5" not in text  # not a budget's constant
    for crossed in ("10,800x", "300x", "250x", "4x"):  # one machine's seconds by the other's
        assert crossed not in text
    # the per-run tables of seconds name each row's machine once the runs span several
    eras = hardware(reference_dir(None))
    for shown in (
        cost.throughput_table(runs),
        cost.cost_table(runs, eras, published(reference_dir(None))),
    ):
        assert "Slow CPU, 2 cores [aaaaaaaaaaaa]" in shown and "Fast CPU, 64 cores" in shown


def test_every_report_section_is_fed_and_the_report_names_no_suite():
    for section in SECTIONS:
        assert suites_feeding(section), f"no suite feeds the report's {section!r} section"
    # preference is declaration order: the published schedules before the main job
    assert suites_feeding("reproduction")[:2] == ("reproduce", "history")
    assert how_to_fill(PERPLEXITY_VS_TIME, "cuda") == "`lmbench run --suite reversal`"
    report = Path(tables.__file__).parent
    for path in sorted(report.glob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "not a suite" in line:  # a column that happens to share a suite's name
                continue
            for name in SUITES:
                assert not re.search(rf"[\"']{re.escape(name)}[\"']", line), (
                    f"{path.name}:{number} names the suite {name!r}: declare it in Suite.feeds"
                )


def test_seeds_group_into_one_row_and_widen_the_interval(tmp_path):
    rng = np.random.default_rng(4)
    kn5 = _record(tmp_path, "kn5", "ngram", 140.0, rng)
    seeds = [
        _record(tmp_path, "lstm", "lstm", ppl, rng, tag=f"s{i}", seed=i)
        for i, ppl in enumerate((110.0, 118.0, 126.0))
    ]
    runs = Runs.load(tmp_path)
    (group,) = [g for g in runs.groups() if g.first["model"] == "lstm"]
    assert group.seeds == 3 and group.claims and group.label == "lstm"
    assert group.spread() == "3 seeds, sd 8.00, 110.00-126.00"
    one_seed = ratio_interval(seeds[1], kn5)
    all_seeds = ratio_interval(seeds, kn5)
    # the seeds' spread (110 to 126) is wider than one seed's sentence noise
    assert (all_seeds[1] - all_seeds[0]) > 2 * (one_seed[1] - one_seed[0])
    assert all_seeds[0] < ratio_point(seeds, kn5) < all_seeds[1]


def test_two_configs_of_one_model_get_labels_that_say_what_differs(tmp_path):
    rng = np.random.default_rng(5)
    default = asdict(resolve("transformer", {}).config)
    _record(tmp_path, "transformer", "transformer", 130.0, rng, model_config=default)
    other = {**default, "dropout": 0.2}
    _record(tmp_path, "transformer", "transformer", 150.0, rng, tag="b", model_config=other)
    labels = sorted(g.label for g in Runs.load(tmp_path).groups())
    assert labels == ["transformer", "transformer (dropout 0.2)"]


def test_a_config_whose_settings_and_budget_differ_names_both(tmp_path):
    # the reproduce suite's mlp9 sets patience 2, which never fired: its 20 epochs differ too
    rng = np.random.default_rng(5)
    default = asdict(resolve("mlp9", {}).config)

    def budget(kind: str, limit: float) -> dict:
        return {"kind": kind, "limit": {kind: limit}, "ended_by": kind}

    _record(
        tmp_path, "mlp9", "mlp", 150.0, rng, model_config=default, budget=budget("tokens", 600_000)
    )
    _record(
        tmp_path,
        "mlp9",
        "mlp",
        120.0,
        rng,
        tag="b",
        model_config={**default, "patience": 2},
        budget=budget("epochs", 20),
    )
    labels = sorted(g.label for g in Runs.load(tmp_path).groups())
    assert labels == ["mlp9", "mlp9 (patience 2, 20 epochs)"]


def test_decay_branches_sit_beside_complete_runs_with_a_verdict(tmp_path):
    rng = np.random.default_rng(6)

    def run(role: str, ppl: float, seed: int, tokens: int = 1_000_000) -> None:
        extra = {}
        if role == "trunk":
            extra["branch_states"] = {"1000000": f"branches/t{seed}.pt"}
        if role == "branch":
            extra["branch"] = {"trunk_run_id": f"t{seed}", "trunk_tokens": 1_200_000}
        schedule = "cosine" if role == "cosine" else "wsd"
        _record(
            tmp_path,
            "lstm",
            "lstm",
            ppl,
            rng,
            suite="branches",
            tag=f"{role}{seed}",
            seed=seed,
            extra=extra,
            model_config={"lr_schedule": schedule},
            budget={"kind": "tokens", "limit": {"tokens": tokens}, "ended_by": "tokens"},
        )

    for seed, (cosine, branch) in enumerate(((120.0, 119.0), (122.0, 121.5), (121.0, 120.0))):
        run("cosine", cosine, seed)
        run("trunk", branch - 3, seed, tokens=1_200_000)
        run("branch", branch, seed)
        run("wsd", branch + 10, seed)
    wsd, cosine = schedules.branch_rows(Runs.load(tmp_path))
    # the complete WSD run is the check and comes first; cosine is the usual schedule's figure
    assert wsd["complete schedule"] == "wsd" and wsd["verdict"] == "branch better"
    assert wsd["branch - complete"] == "-10.00"
    assert cosine["complete run"] == "121.00 ± 1.00 (3)"
    assert cosine["decay branch (WSD)"] == "120.17 ± 1.26 (3)"
    assert cosine["branch - complete"] == "-0.83" and cosine["tolerance"] == "2.27"
    assert cosine["verdict"] == "WSD (to 0) equivalent to cosine"
    assert cosine["complete schedule"] == "cosine"
    assert cosine["trunk (complete WSD, 1.2 M)"].startswith("117.17")


def test_bf16_runs_sit_beside_the_fp32_runs_of_their_config_on_this_machine(tmp_path):
    rng = np.random.default_rng(7)
    history, bf16 = tmp_path / "history", tmp_path / "bf16"
    base = {"lr": 20.0, "precision": "auto", "lr_schedule": "plateau"}

    def run(folder, precision_setting, dtype, ppl, seed, final_lr=20.0, **fields) -> None:
        folder.mkdir(exist_ok=True)
        _record(
            folder,
            "lstm",
            "lstm",
            ppl,
            rng,
            suite=folder.name,
            tag=f"{precision_setting}{seed}{fields.get('dtype', '')}",
            seed=seed,
            model_config={**base, "precision": precision_setting},
            extra={"compute_dtype": dtype, "final_lr": final_lr},
            **fields,
        )

    for seed, (fp32, low) in enumerate(((150.0, 151.0), (152.0, 152.5), (151.0, 151.5))):
        run(history, "auto", "float32", fp32, seed)
        run(bf16, "bfloat16", "bfloat16", low, seed, final_lr=5.0 if seed == 2 else 20.0)
        # the same config measured on another machine is not its twin
        other = {"cpu": "other", "isa": [], "cores": 2, "memory_gib": 8, "gpu": None, "id": "x"}
        run(history, "auto", "float32", fp32 + 40, seed, machine=other)
    (row,) = schedules.precision_rows(Runs.load(history, bf16))
    assert row["fp32"] == "151.00 ± 1.00 (3)" and row["fp32 from"] == "history"
    assert row["bf16 - fp32"] == "+0.67" and row["tolerance"] == "1.78"
    assert row["verdict"] == "within seed noise" and row["bf16 / fp32 speed"] == "1.00x"
    assert row["plateau lr cut (bf16; fp32)"] == "1 of 3; 0 of 3"  # the schedule reacted


def test_scaling_fits_need_four_sizes_and_carry_an_interval(tmp_path):
    from lmbench.report import figures

    rng = np.random.default_rng(8)

    def size(fraction: float, ppl: float, model: str = "kn5", family: str = "ngram") -> None:
        extra = {} if fraction == 1.0 else {"train_fraction": fraction}
        extra["train_data_tokens"] = int(fraction * 1_000_000)
        _record(tmp_path, model, family, ppl, rng, suite="scaling", tag=f"{fraction}", extra=extra)

    for fraction, ppl in ((0.1, 300.0), (0.3, 220.0), (1.0, 160.0)):
        size(fraction, ppl)
    fits, points = figures.scaling(Runs.load(tmp_path), tmp_path / "s.png")
    assert fits.empty and len(points) == 3  # three sizes: measured, not fitted
    size(0.6, 180.0)
    fits, _ = figures.scaling(Runs.load(tmp_path), tmp_path / "s.png")
    (fit,) = fits.to_dict("records")
    low, high = fit["alpha 95%"]
    assert fit["points"] == 4 and low <= fit["alpha"] <= high


def test_scaling_leaves_out_clock_budgets_and_the_seconds_of_shared_cores(tmp_path):
    from lmbench.report import figures

    rng = np.random.default_rng(10)
    lstm = {"family": "lstm", "model_config": {"patience": 2}}
    for fraction, ppl in ((0.25, 200.0), (1.0, 150.0)):
        extra = {"train_data_tokens": int(fraction * 1_000_000), "train_fraction": fraction}
        _record(tmp_path, "lstm", ppl=ppl, rng=rng, suite="scaling", tag=f"{fraction}",
                extra=extra, train_seconds=100.0 * fraction, **lstm)  # fmt: skip
    busy = {"load_average": {"end": [4.0, 4.0], "peak_1min": 4.0}, "train_data_tokens": 500_000}
    _record(tmp_path, "lstm", ppl=170.0, rng=rng, suite="scaling", tag="busy",
            extra={**busy, "train_fraction": 0.5}, train_seconds=300.0,
            threads=2, **lstm)  # fmt: skip
    _record(tmp_path, "lstm", "lstm", 180.0, rng, suite="scaling", tag="clock",
            budget={"kind": "seconds", "limit": {"seconds": 180}, "ended_by": "seconds"},
            extra={"train_data_tokens": 500_000})  # fmt: skip
    runs = Runs.load(tmp_path)
    kept, timed = figures.scaling_runs(runs)
    assert len(kept) == 3 and [r["run_id"] for r in timed] == ["ptb.lstm.stream.scalingclock"]
    _, points = figures.scaling(runs, tmp_path / "s.png")
    seconds = dict(zip(points["train tokens"], points["train seconds"]))
    assert seconds[250_000] == 25.0 and seconds[1_000_000] == 100.0
    assert np.isnan(seconds[500_000])  # its cores were shared: no seconds


def test_scaling_shows_a_count_model_once_and_one_machines_seconds(tmp_path):
    """Budgets are tokens and epochs, so a config's perplexity is the same on any machine: kn5
    estimated on an older machine and again here is one point, labelled without a machine; the
    time panel draws the seconds of the machine that trained the neural runs, no other's."""
    from lmbench.report import figures, write_report

    rng = np.random.default_rng(11)
    old = {"cpu": "old", "isa": [], "cores": 2, "memory_gib": 8, "gpu": None, "id": "old"}
    lstm = {"family": "lstm", "model_config": {"patience": 2}}
    for fraction, ppl in ((0.5, 200.0), (1.0, 150.0)):
        extra = {"train_data_tokens": int(fraction * 1_000_000), "train_fraction": fraction}
        _record(tmp_path, "kn5", "ngram", ppl, rng, suite="scaling", tag=f"old{fraction}",
                config_hash=f"kn5-{fraction}", machine=old, train_seconds=9.0,
                extra=extra)  # fmt: skip
    extra = {"train_data_tokens": 1_000_000, "train_fraction": 1.0}
    _record(tmp_path, "kn5", "ngram", 150.0, rng, suite="scaling", tag="here",
            config_hash="kn5-1.0", train_seconds=2.0, extra=extra)  # fmt: skip
    _record(tmp_path, "lstm", ppl=120.0, rng=rng, suite="scaling", tag="here",
            train_seconds=500.0, extra=extra, **lstm)  # fmt: skip
    runs = Runs.load(tmp_path)
    kept, _ = figures.scaling_runs(runs)
    kn5 = sorted((r["config_hash"], r["machine"]["id"]) for r in kept if r["model"] == "kn5")
    assert kn5 == [("kn5-0.5", "old"), ("kn5-1.0", this_machine()["id"])]
    _, points = figures.scaling(runs, tmp_path / "s.png")
    assert set(points["model"]) == {"kn5", "lstm"}  # no machine in the labels
    seconds = {(p["model"], p["train tokens"]): p["train seconds"] for _, p in points.iterrows()}
    assert seconds[("kn5", 1_000_000)] == 2.0 and seconds[("lstm", 1_000_000)] == 500.0
    assert np.isnan(seconds[("kn5", 500_000)])  # the old machine's clock: not drawn
    text = write_report([tmp_path]).read_text()
    assert "(2 of 3 runs). The other 1 ran elsewhere" in text
    for seed, ppl in ((1, 110.0), (2, 130.0)):  # two more seeds: the cell shows their spread
        _record(tmp_path, "lstm", ppl=ppl, rng=rng, suite="scaling", tag=f"seed{seed}",
                seed=seed, extra=extra, **lstm)  # fmt: skip
    text = write_report([tmp_path]).read_text()
    (row,) = [line for line in text.splitlines() if line.startswith("| ptb | 1,000,000 |")]
    assert row.split(" | ")[2:] == ["150.00", "120.00 ± 10.00 (3) |"]
    assert "No power law is fitted" in text  # kn5 has 2 sizes, the LSTM 1
    for fraction, ppl in ((0.25, 240.0), (0.75, 170.0)):
        more = {"train_data_tokens": int(fraction * 1_000_000), "train_fraction": fraction}
        _record(tmp_path, "kn5", "ngram", ppl, rng, suite="scaling", tag=f"{fraction}",
                config_hash=f"kn5-{fraction}", extra=more)  # fmt: skip
    text = write_report([tmp_path]).read_text()
    assert "Not fitted (fewer than 4 data sizes so far): ptb lstm (1 size)." in text


def test_a_scaling_crossover_counts_the_seeds_of_the_runs_it_fits(tmp_path):
    """The suite's first, fixed-time design is left out of the fits; its LSTM config must not
    make the seed count of the fitted one zero (it did: 'rests on 0 seed(s)')."""
    from lmbench.report import write_report

    rng = np.random.default_rng(12)
    plateau = {"kind": "epochs", "limit": {"epochs": 12}, "ended_by": "plateau"}
    lstm = {"family": "lstm", "model_config": {"patience": 2}}
    sizes = {0.1: (300.0, 320.0), 0.25: (220.0, 230.0), 0.5: (180.0, 170.0), 1.0: (150.0, 120.0)}
    for fraction, (kn5, neural) in sizes.items():
        extra = {"train_data_tokens": int(fraction * 1_000_000), "train_fraction": fraction}
        _record(tmp_path, "kn5", "ngram", kn5, rng, suite="scaling", tag=f"kn{fraction}",
                extra=extra)  # fmt: skip
        for seed in (0, 1, 2):
            _record(tmp_path, "lstm", ppl=neural + seed, rng=rng, suite="scaling",
                    tag=f"{fraction}s{seed}", seed=seed, extra=extra, budget=plateau,
                    **lstm)  # fmt: skip
    _record(tmp_path, "lstm", "lstm", 180.0, rng, suite="scaling", tag="clock",
            budget={"kind": "seconds", "limit": {"seconds": 180}, "ended_by": "seconds"},
            extra={"train_data_tokens": 500_000})  # fmt: skip
    text = write_report([tmp_path]).read_text()
    assert "seed(s) each" not in text
    assert "fixed number of epochs" not in text  # no point was ended by its epoch cap
    assert "- ptb: `lstm`'s fit meets kn5's at" in text or "no crossover within" in text
    capped = {**plateau, "ended_by": "epochs"}
    _record(tmp_path, "lstm", ppl=400.0, rng=rng, suite="scaling", tag="small", extra={
        "train_data_tokens": 50_000, "train_fraction": 0.05}, budget=capped, **lstm)  # fmt: skip
    text = write_report([tmp_path]).read_text()
    assert "`lstm`'s points rest on 1 seed(s) each" in text
    assert (
        "ptb lstm at 50,000 training tokens (1 of 1 run; learning rate never lowered in 0)." in text
    )
    assert "| ptb | lstm |" in text and "| 1 of 13 |" in text  # the fit's compute-limited points
    assert "fixed number of epochs" in text


def test_mixes_of_two_configs_of_a_model_get_two_labels_and_their_parts_budgets(tmp_path):
    rng = np.random.default_rng(9)
    kn5 = _record(tmp_path, "kn5", "ngram", 140.0, rng)
    for tag, budget in (("a", {"tokens": 1_600_000}), ("b", {"seconds": 540})):
        lstm = _record(
            tmp_path,
            "lstm",
            "lstm",
            120.0,
            rng,
            tag=tag,
            budget={"kind": "x", "limit": budget, "ended_by": "tokens"},
            model_config={"lr": 20.0},
        )
        _record(
            tmp_path,
            "lstm+kn5",
            "mix",
            110.0,
            rng,
            tag=tag,
            model_config={"components": [lstm["run_id"], kn5["run_id"]]},
        )
    runs = Runs.load(tmp_path)
    mixes = [g for g in runs.groups() if g.first["family"] == "mix"]
    labels = sorted(g.label for g in mixes)
    assert labels == ["lstm (1.6 M tokens)+kn5", "lstm (9 min wall-clock)+kn5"]
    budgets = sorted(runs.budget(g.first) for g in mixes)
    assert budgets[0].startswith("mix of lstm 1.6 M tokens; kn5")


def test_a_mix_of_count_models_and_a_cache_is_deterministic_and_makes_claims(tmp_path):
    """kn5 + cache has no seed to vary: one run carries its verdict, as kn5's does."""
    rng = np.random.default_rng(5)
    kn5 = _record(tmp_path, "kn5", "ngram", 140.0, rng)
    _record(
        tmp_path,
        "kn5+cache",
        "mix",
        126.0,
        rng,
        model_config={"components": [kn5["run_id"]], "cache_size": 200},
    )
    runs = Runs.load(tmp_path)
    (row,) = [r for r in gap.gap_rows(runs).itertuples() if r.model == "kn5+cache"]
    assert row.claims and row.seeds == "1 run (deterministic)"
    assert "**kn5+cache** (1 run (deterministic)" in gap.gap_table(runs)


def test_pruned_kn5_is_drawn_by_size_and_kept_out_of_the_smoothing_ladder(tmp_path):
    """Each order unpruned and kn5 pruned, by size as stored and as scored; the smoothing table
    (perplexity by order) holds the unpruned runs only."""
    from lmbench.report import figures
    from lmbench.report.runs import pruning_rows, smoothing_rows

    rng = np.random.default_rng(6)
    for model, prune, ppl, size in (
        ("kn3", None, 148.0, 30e6),
        ("kn5", None, 141.0, 90e6),
        ("kn5", "0 0 1", 147.0, 20e6),
        ("kn5", "0 1 2", 160.0, 8e6),
    ):
        config = {"order": int(model[-1])} | ({"prune": prune} if prune else {})
        _record(
            tmp_path,
            model,
            "ngram",
            ppl,
            rng,
            tag=prune or "",
            suite="smoothing",
            model_config=config,
            size_bytes=int(size),
            extra={"ngrams": [10, 20, 30], "scoring_bytes": int(size * 1.5)},
        )
    runs = Runs.load(tmp_path)
    assert sorted(r["order"] for r in smoothing_rows(runs)) == [3, 5]
    rows = pruning_rows(runs)
    assert [r["model"] for r in rows if r["series"] == "kn5 pruned"] == [
        "kn5 pruned 0 0 1",
        "kn5 pruned 0 1 2",
    ]
    assert rows[0]["as scored MB"] == pytest.approx(rows[0]["size MB"] * 1.5)
    assert figures.pruning(runs, tmp_path / "pruning.png")
    assert "| kn5 pruned 0 1 2 | 60 |" in tables.pruning_table(runs)


def test_runs_recorded_without_query_latency_take_a_later_measurement_of_the_same_machine(
    tmp_path,
):
    rng = np.random.default_rng(5)
    kn5 = _record(tmp_path, "kn5", "ngram", 140.0, rng, query_us=None, tag="a")
    lstm = _record(tmp_path, "lstm", "lstm", 115.0, rng, query_us=None, tag="b")
    other = dict(this_machine(), id="another")
    measured = [
        {
            "run_id": kn5["run_id"],
            "machine": this_machine(),
            "query": {"us_per_query": 2.0},
            "measured_at": "2026-11-30T10:00:00+00:00",
        },
        {
            "run_id": lstm["run_id"],
            "machine": other,
            "query": {"us_per_query": 900.0},
            "measured_at": "2026-11-30T10:00:00+00:00",
        },
    ]
    runs = Runs.load(tmp_path)
    runs.attach_queries(measured)
    by_model = {r["model"]: r for r in runs.records}
    assert by_model["kn5"]["query_us"] == 2.0 and by_model["kn5"]["query_remeasured"]
    assert by_model["lstm"]["query_us"] is None  # another machine's figure is not this run's
    assert "µs/query (batch 1, median)" in gap.gap_table(runs)


def test_brown_protocol_table_measures_each_difference_and_names_the_rest(tmp_path):
    from lmbench.report import brown

    rng = np.random.default_rng(7)
    pub = published(reference_dir(None))
    kn5 = {"corpus": "brown", "suite": "reproduce", "vocab_size": 14115}
    _record(tmp_path, "kn5", "ngram", 145.83, rng, tag="a", **kn5)
    runs = Runs.load(tmp_path)
    text = brown.protocol_table(runs, pub)
    assert "145.83" in text and "not run yet" in text
    assert "Not every difference is measured yet" in text
    variants = {  # each difference alone, then all three: what the reproduce suite runs
        "b": ({"min_count": 3, "max_size": 16383}, 156.0),
        "c": ({"sentence_ends": False}, 199.0),
        "d": ({"test_words": 181041}, 150.0),
        "e": ({"min_count": 3, "max_size": 16383, "sentence_ends": False, "test_words": 181041},
              214.0),
    }  # fmt: skip
    for tag, (vocab, ppl) in variants.items():
        _record(tmp_path, "kn5", "ngram", ppl, rng, tag=tag, extra={"vocab": vocab}, **kn5)
    runs = Runs.load(tmp_path)
    text = brown.protocol_table(runs, pub)
    for _, ppl in variants.values():
        assert f"{ppl:.2f}" in text
    assert "text.sentence_ends=false" in text and "text.test_words=181041" in text
    assert f"{321 / 214:.2f} remains unexplained" in text and "not run yet" not in text
    # the variants answer no published row: the reproduction table keeps ours
    assert reproduction.our_match(runs, "brown", "kn5", "stream").first[
        "test_ppl"
    ] == pytest.approx(145.83, rel=1e-3)
    assert brown.protocol_table(Runs.load(tmp_path / "none"), pub) == ""


def test_summary_states_each_familys_decoder_query_beside_kn5s(tmp_path):
    from lmbench.report.summary import summary

    rng = np.random.default_rng(11)
    _record(tmp_path, "kn5", "ngram", 140.0, rng, query_us=3.0)
    _record(tmp_path, "lstm", "lstm", 150.0, rng, query_us=600.0, tag="x")
    ref = reference_dir(None)
    text = "\n".join(summary(Runs.load(tmp_path), published(ref), hardware(ref)))
    assert "kn5 3.0 µs per query; lstm 600 µs (200x)" in text


def test_era_costs_use_the_paper_run_of_the_nearest_width_and_mark_bounds_honestly():
    ref = reference_dir(None)
    eras = cost.era_machines(hardware(ref), published(ref))
    k20 = next(runs for name, _, _, runs in eras if "K20" in name)
    assert [(paper.width, paper.paper.rsplit(" (", 1)[0]) for paper in k20] == [
        (200, "LSTM small (non-regularized)"),
        (650, "LSTM medium (dropout 0.5)"),
        (1500, "LSTM large (dropout 0.65)"),
    ]
    assert cost.nearest_run(192, k20) == k20[0]  # our Transformer's width: the small row
    assert cost.nearest_run(1200, k20) == k20[2]
    # a WikiText-2 LSTM of width 200 has many FLOPs per token (its 33 k softmax) but small
    # matrices: it is costed as the small LSTM, not the medium one
    wt2_lstm = {"model": "lstm", "model_config": {"hidden": 200}, "flops_per_token": 4.4e7}
    costs = cost.era_costs(1e15, wt2_lstm, eras)
    k20_cost = next(v for k, v in costs.items() if "K20" in k)
    athlon = next(v for k, v in costs.items() if "Athlon" in k)
    assert k20_cost.endswith("as LSTM small (non-regularized) on ptb)")
    assert not k20_cost.startswith("≥")
    # "over 3 weeks" on 40 CPUs: a per-CPU upper bound that one CPU may beat, so no bound; the
    # cell names the paper run's corpus (AP News, not Brown's MLP10 of the same name)
    assert athlon.startswith("~ ") and "per device of 40" in athlon and "on apnews" in athlon
    small = {"model": "lstm-zaremba-small", "corpus": "ptb", "model_config": {"hidden": 200}}
    k20_self = next(v for k, v in cost.era_costs(1.9e14, small, eras).items() if "K20" in k)
    assert "the reference run" in k20_self
    # the same config on a short budget (the reversal suite's GPU check) is not the paper's run
    medium = {"model": "lstm-zaremba-medium", "corpus": "ptb", "model_config": {"hidden": 650}}
    short = next(v for k, v in cost.era_costs(2e13, medium, eras).items() if "K20" in k)
    assert "reference run" not in short and "as LSTM medium" in short
    shown = cost.utilisation_table(published(ref), hardware(ref))
    assert "≤ 2.4% per device" in shown


def test_published_rows_without_a_derivation_say_what_is_missing():
    from lmbench.reference.utilisation import not_derivable

    reasons = dict(item.split(": ", 1) for item in not_derivable(published(reference_dir(None))))
    assert "schedule, not a time" in reasons["MLP1 (brown)"]
    assert "GP100" in reasons["AWD-LSTM (finetuned) (ptb)"]


def test_runs_whose_cores_were_shared_are_flagged_by_their_load_average():
    from lmbench.report.runs import contention, contention_note

    def run(seconds, threads=2, cores=2, **loads):
        machine = {"cores": cores}
        return {"threads": threads, "train_seconds": seconds, "machine": machine,
                "extra": {"load_average": loads}}  # fmt: skip

    quiet = run(600, start=[3.9, 3.5, 2.0], end=[2.1, 2.2, 2.0], peak_1min=2.3)
    busy_end = run(600, start=[1.4, 1.3, 1.2], end=[2.1, 3.0, 2.8])  # the last 5 minutes
    busy_mid = run(120, start=[1.0], end=[2.0, 3.9], peak_1min=3.6)  # its 5-minute: before it
    short = run(20, start=[4.0], end=[4.0, 4.0], peak_1min=4.0)  # under a minute: not judged
    one_thread = run(600, threads=1, cores=16, end=[3.0, 3.0], peak_1min=3.0)
    assert contention(quiet) is None and contention({"threads": 2}) is None
    assert contention(busy_end) == 3.0 and contention(busy_mid) == 3.6
    assert contention(short) is None
    assert contention(one_thread) == 3.0  # one core used, 3 busy
    assert contention(run(600, threads=16, cores=2, end=[2.3], peak_1min=2.4)) is None
    assert contention_note([quiet, busy_end, busy_mid]) == "contended (load 3.6 on 2 threads)"
    assert contention_note([quiet]) == ""


def test_the_summary_quotes_the_newest_measured_kenlm_query_ratio(tmp_path):
    from lmbench.report.summary import _beside_kenlm, newest_kenlm_queries

    def measured(folder, when, ours):
        path = tmp_path / folder / "kenlm-queries.json"
        path.parent.mkdir()
        queries = {"ours_us_per_query": ours, "kenlm_base_score_us_per_query": 0.5,
                   "ratio_ours_to_kenlm": ours / 0.5}  # fmt: skip
        env = {"cpu": "AMD EPYC", "time_utc": when}
        path.write_text(json.dumps({"env": env, "queries": queries}))

    assert newest_kenlm_queries(tmp_path) is None and "not measured" in _beside_kenlm(None)
    measured("b", "2026-11-30T12:00:00Z", 2.0)
    measured("a", "2026-11-30T13:00:00Z", 1.5)  # newer, though its folder sorts first
    text = _beside_kenlm(newest_kenlm_queries(tmp_path))
    assert text.startswith("3.0x KenLM's BaseScore") and "1.50 vs 0.50 µs" in text
    # a whole `peer_kenlm.py` run measures the queries too, in kenlm.json
    measured("c", "2026-12-01T04:00:00Z", 1.25)
    (tmp_path / "c" / "kenlm-queries.json").rename(tmp_path / "c" / "kenlm.json")
    (tmp_path / "d").mkdir()  # an early whole run, without queries
    (tmp_path / "d" / "kenlm.json").write_text(json.dumps({"env": {"time_utc": "2027"}}))
    assert "1.25 vs 0.50 µs" in _beside_kenlm(newest_kenlm_queries(tmp_path))


def test_brown_mlps_on_the_papers_schedule_are_summarised_beside_our_kn5_as_checks(tmp_path):
    """A published schedule run on a protocol of our own: on the first page beside our kn5 (not
    the paper's numbers), with its seed count; one seed is a check, not a finding."""
    from lmbench.report.summary import summary

    rng = np.random.default_rng(13)
    brown = {"corpus": "brown", "suite": "reproduce"}
    _record(tmp_path, "kn5", "ngram", 145.83, rng, tag="k", **brown)
    _record(tmp_path, "mlp9", "mlp", 112.76, rng, tag="m", **brown)
    ref = reference_dir(None)
    text = "\n".join(summary(Runs.load(tmp_path), published(ref), hardware(ref)))
    line = next(x for x in text.splitlines() if x.startswith("- brown MLP9"))
    assert f"112.76, {112.76 / 145.83:.3f} of our kn5 (145.83)" in line
    assert "1 seed" in line and "a check, not a finding" in line and "276" not in line
    assert "[" not in line  # one seed: no interval
    for seed in (1, 2):  # three seeds: a finding, with its interval
        _record(tmp_path, "mlp9", "mlp", 112.76 + seed, rng, tag=f"m{seed}", seed=seed, **brown)
    text = "\n".join(summary(Runs.load(tmp_path), published(ref), hardware(ref)))
    line = next(x for x in text.splitlines() if x.startswith("- brown MLP9"))
    assert re.search(r"113\.76, 0\.780 \[0\.\d{3}, 0\.\d{3}\] of our kn5", line), line
    assert "3 seeds" in line and "a check" not in line


def test_a_crossing_whose_interval_covers_one_is_not_led_as_a_crossing(monkeypatch):
    """Below kn5 on the seed mean but with a ratio interval covering 1: the summary line says so
    first, not "first below it"."""
    # the module, not the function `lmbench.report.summary` that shadows it
    report_summary = importlib.import_module("lmbench.report.summary")

    row = {
        "corpus": "wikitext2",
        "family": "transformer",
        "kn5 (all data)": "217.80",
        "first below": "3,200,000 tokens (above kn5 at 1,600,000)",
        "on valid": "not within 3,200,000 tokens",
        "valid agrees": False,
        "epochs": "1.5",
        "schedule": "WSD",
        "test ppl (seeds)": "212.96 ± 0.63 (3)",
        "/ kn5 [95% CI]": "0.978 [0.948, 1.012]",
        "here": "22.3 min",
        "finding": "below kn5 on the mean at 3,200,000 tokens, but its interval covers 1",
        "mean only": True,
    }
    monkeypatch.setattr(
        report_summary, "crossover_rows", lambda *_: [row, {**row, "mean only": False}]
    )
    covered, crossed = report_summary._crossings(None, None, None)
    assert "kn5 217.80: below it on the mean only at 3,200,000 tokens" in covered
    assert "first below" not in covered and "first below it at 3,200,000" in crossed


def test_a_plateau_schedule_that_never_lowered_its_rate_states_no_finding(tmp_path):
    """A config whose plateau schedule ended at its starting rate in some of its three seeds is
    shown, and the summary says why no finding is drawn from it."""
    rng = np.random.default_rng(11)
    kn5 = _record(tmp_path, "kn5", "ngram", 140.0, rng)
    plateau = {"lr_schedule": "plateau", "lr": 20.0}

    def seeds(model: str, ppls: tuple, final_lrs: tuple, **config) -> None:
        for seed, (ppl, final) in enumerate(zip(ppls, final_lrs)):
            settings = {"model_config": {**plateau, **config}, "extra": {"final_lr": final}}
            _record(tmp_path, model, model, ppl, rng, tag=f"s{seed}", seed=seed, **settings)

    seeds("lstm", (120.0, 121.0, 119.0), (20.0, 20.0, 5.0))
    seeds("rnn", (110.0, 111.0, 112.0), (5.0, 5.0, 5.0), cell="rnn")
    runs = Runs.load(tmp_path)
    by_model = {g.first["model"]: g for g in runs.groups()}
    assert by_model["lstm"].incomplete and not by_model["lstm"].claims  # one seed never decayed
    assert "plateau schedule" in by_model["lstm"].no_claim()
    assert by_model["rnn"].claims and by_model["kn5"].claims
    rows = gap.gap_rows(runs)
    (line,) = importlib.import_module("lmbench.report.summary")._gap_claims(rows)
    stated, held = line.split("No finding from:")
    assert "rnn" in stated and "lstm" not in stated and held.strip().startswith("lstm 120.00")
    verdicts = "\n".join(gap._verdicts(rows[rows["corpus"] == kn5["corpus"]]))
    assert "**lstm**: 3 seeds" in verdicts and "no claim (a plateau schedule" in verdicts


def test_mfu_divides_by_the_machines_median_calibration(tmp_path):
    rng = np.random.default_rng(12)
    for tag, rate, mfu in (("a", 100.0, 0.9), ("b", 150.0, 0.6), ("c", 200.0, 0.45)):
        fields = {"config_hash": tag, "mfu": mfu, "calibration": {"matmul_gflops": rate}}
        _record(tmp_path, "lstm", "lstm", 120.0, rng, tag=tag, **fields)
    runs = Runs.load(tmp_path)
    # each achieved 90 GFLOP/s; against the median (150) each is 0.6, whatever its own figure
    assert [round(runs.mfu(r), 6) for r in runs.ok()] == [0.6, 0.6, 0.6]
    assert runs.machine_peak(runs.ok()[0]) == 150.0


def test_failures_name_their_budget_folder_and_a_later_ok_run(tmp_path):
    rng = np.random.default_rng(13)
    early, later = tmp_path / "early", tmp_path / "later"
    _record(
        early,
        "kn5",
        "ngram",
        140.0,
        rng,
        tag="x",
        config_hash="h",
        status="failed",
        error="worker killed by signal 15",
        extra={"train_fraction": 0.35},
    )
    _record(later, "kn5", "ngram", 140.0, rng, tag="y", config_hash="h")
    _record(
        early,
        "kn4",
        "ngram",
        150.0,
        rng,
        tag="z",
        config_hash="g",
        status="skipped",
        error="no estimate",
        model_config={"prune": "0 0 1"},
    )
    failed, skipped = tables.failures(Runs.load(early, later)).splitlines()
    assert f"35% of train; {early})" in failed and failed.endswith("finished ok)")
    assert "full data, prune 0 0 1;" in skipped and "superseded" not in skipped


def test_the_width_rule_quotes_the_utilisation_table():
    rule = cost.width_rule(hardware(reference_dir()), published(reference_dir()))
    fractions = cost.utilisation_table(published(reference_dir()), hardware(reference_dir()))
    for share in re.findall(r"(\d+\.\d%) at (?:width )?\d+", rule):
        assert share in fractions  # every figure in the prose is one of the table's
    assert rule.count("%") >= 4 and "faster" in rule


def test_a_figure_with_error_bars_is_the_same_bytes_when_drawn_again(tmp_path):
    """seaborn bootstraps its error bars; seeded, a regenerated report leaves the PNG as it was."""
    rng = np.random.default_rng(14)
    for seed, speed in enumerate(rng.uniform(500.0, 5_000.0, 12)):  # 3 seeds: always min-max
        fields = {"seed": seed, "train_tokens_per_s": speed, "mfu": speed / 10_000}
        _record(tmp_path, "lstm", "lstm", 120.0, rng, tag=f"s{seed}", **fields)
    runs = Runs.load(tmp_path)
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    assert throughput(runs, first) and throughput(runs, second)
    assert first.read_bytes() == second.read_bytes()
