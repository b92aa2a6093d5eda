"""The equal-compute frontier: its design (points, trunks and branches, extra seeds where the
crossover lies) and its report section, end to end on the quick variant."""

import json

import pytest

from lmbench.cli import main
from lmbench.frontier import FrontierDesign, bracket, crossover
from lmbench.plan import plan_seeds
from lmbench.reference import hardware, published, reference_dir
from lmbench.report import frontier as report_frontier
from lmbench.report.runs import MIN_SEEDS, Runs, budget_label, timed_seconds
from lmbench.suites import SUITES


@pytest.mark.parametrize(
    "points, target, expected",
    [
        ({1: 300.0, 2: 200.0, 4: 130.0, 8: 110.0}, 140.0, (2, 4)),  # crosses at 4
        ({1: 130.0, 2: 120.0, 4: 110.0}, 140.0, (1, 2)),  # below already: the two smallest
        ({1: 300.0, 2: 250.0, 4: 200.0}, 140.0, (2, 4)),  # never: the two largest
    ],
)
def test_bracket_is_the_pair_around_the_first_budget_below_the_target(points, target, expected):
    assert bracket(points, target) == expected


def test_crossover_is_the_first_budget_whose_mean_is_below():
    assert crossover({4: 130.0, 2: 150.0, 8: 120.0}, 140.0) == 4
    assert crossover({2: 150.0}, 140.0) is None


DESIGN = FrontierDesign(
    corpora=("ptb",),
    fractions=(0.5, 1.0),
    budgets={("ptb", "lstm"): (1_000, 2_000, 4_000, 8_000)},
)


def test_every_budget_is_a_branch_of_one_trunk_and_count_models_run_by_fraction():
    runs = DESIGN.runs()
    count = [r for r in runs if r.model.startswith("kn")]
    assert len(count) == 3 * 2  # kn3, kn5, pruned kn5 at two fractions
    assert [r.train_fraction for r in count[:2]] == [None, 0.5]  # all data first: the yardstick
    trunk, *branches = [r for r in runs if r.model == "lstm"]
    assert trunk.budget_tokens == 8_000 and trunk.branches == (1_000, 2_000, 4_000)
    assert [b.budget_tokens for b in branches] == [1_000, 2_000, 4_000]
    assert {b.trunk_tokens for b in branches} == {8_000} and trunk.sets["lr_schedule"] == "wsd"


def _record(model, test_ppl, seed=0, tokens=None, prune=None, fraction=None):
    return {
        "status": "ok",
        "corpus": "ptb",
        "mode": "stream",
        "model": model,
        "seed": seed,
        "test_ppl": test_ppl,
        "model_config": {"prune": prune} if prune else {},
        "budget": {"limit": {"tokens": tokens} if tokens else None},
        "extra": {"train_fraction": fraction} if fraction else {},
    }


def test_extra_seeds_go_to_the_budgets_around_the_crossover_of_full_data_kn5():
    records = [
        _record("kn5", 140.0),
        _record("kn5", 120.0, prune="0 0 1"),  # not the yardstick: pruned
        _record("kn5", 110.0, fraction=0.5),  # nor a share of the data
        *(_record("lstm", p, tokens=t) for t, p in ((1_000, 300), (2_000, 150), (4_000, 139))),
        _record("lstm", 120.0, tokens=8_000),
    ]
    specs = DESIGN.extra_seeds(records)
    assert {s.seed for s in specs} == {1, 2}
    trunks = [s for s in specs if s.branches]
    assert {(s.budget_tokens, s.branches) for s in trunks} == {(4_000, (2_000,))}
    assert {(s.budget_tokens, s.trunk_tokens) for s in specs if not s.branches} == {(2_000, 4_000)}
    assert DESIGN.extra_seeds(records[:3]) == ()  # seed 0 not all there yet: none chosen


@pytest.mark.parametrize("name", ["frontier", "frontier-quick"])
def test_the_frontier_suites_plan(name):
    """Every branch point lies past its model's warm-up, every budget below its trunk."""
    planned = plan_seeds(list(SUITES[name].runs), SUITES[name].seeds, name)
    assert len({p.config_hash for p in planned}) == len(planned)


def test_frontier_quick_end_to_end_gives_three_seeds_where_it_matters(tmp_path):
    out = tmp_path / "out"
    assert main(["run", "--suite", "frontier-quick", "--out", str(out)]) == 0
    records = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert all(r["status"] == "ok" for r in records)
    lstm = [r for r in records if r["model"] == "lstm" and r["corpus"] == "ptb"]
    assert sorted(r["seed"] for r in lstm) == [0, 0, 0, 1, 1, 2, 2]
    probe = [r for r in records if r["corpus"] == "brown"]  # the softmax probe: all of Brown
    assert {r["model"] for r in probe} == {"kn5", "lstm"} and probe[0]["vocab_size"] > 40_000
    runs = Runs.load(out)
    points = report_frontier.points(runs)
    neural = points[~points["count"]].set_index("tokens")
    # a 16-unit LSTM does not reach kn5: seeds 1 and 2 ran at the two largest budgets (a 16 k
    # trunk with one branch each), and seed 0's branch of its own trunk is one of the seeds
    assert neural["seeds"].to_dict() == {4_000: 1, 8_000: MIN_SEEDS, 16_000: MIN_SEEDS}
    (row,) = report_frontier.crossover_rows(
        runs, hardware(reference_dir()), published(reference_dir())
    )
    assert row["crosses at"] == "not within 16,000 tokens"
    assert (
        row["finding"].startswith("does not reach kn5") and "e+" in row["training FLOPs (counted)"]
    )
    # rerun: everything kept, the follow-up included
    assert main(["run", "--suite", "frontier-quick", "--out", str(out), "--resume"]) == 0
    assert len((out / "runs.jsonl").read_text().splitlines()) == len(records)
    assert main(["report", str(out), "--out", str(tmp_path / "r.md")]) == 0
    text = (tmp_path / "r.md").read_text()
    assert "## 2. The equal-compute frontier" in text and "frontier.png" in text
    assert "the time per token" in text  # the softmax reading: PTB's 10 k against Brown's
    (equal_seconds,) = report_frontier.seconds_reading(runs)  # PTB: the drawn corpus
    assert equal_seconds.startswith("- ptb: kn5 on all the data trains in ")
    assert "At equal seconds" in text and equal_seconds in text
    assert "vocab.min_count=1" in text  # Brown's probe is labelled by its own vocabulary
    assert (tmp_path / "figures" / "frontier.png").stat().st_size > 10_000


def _timed(seconds: float, peak_load: float) -> dict:
    return {
        "train_seconds": seconds,
        "threads": 2,
        "machine": {"cores": 2},
        "extra": {"load_average": {"peak_1min": peak_load, "end": [peak_load]}},
    }


def test_a_points_seconds_leave_out_seeds_whose_cores_were_shared():
    clean, busy = _timed(800.0, 1.9), _timed(1_400.0, 3.0)
    seconds, used = timed_seconds([clean, busy, _timed(760.0, 2.0)])
    assert seconds == 780.0 and busy not in used  # the median of the two clean seeds
    seconds, used = timed_seconds([busy, _timed(1_000.0, 3.5)])
    assert seconds == 1_200.0 and len(used) == 2  # all contended: the mean, flagged by caller


def test_a_run_on_another_vocabulary_says_so_in_its_budget_label():
    record = {"budget": {"limit": None}, "vocab_size": 46_189, "extra": {"vocab": {"min_count": 1}}}
    assert budget_label(record) == "full data, |V| = 46,189 (vocab.min_count=1)"
    assert budget_label({"budget": {"limit": None}, "extra": {}}) == "full data"
    # text settings by the names `--set` takes (the record keeps load_corpus's)
    text = {"sentence_ends": False, "test_words": 181_041}
    record = {"budget": {"limit": None}, "vocab_size": 14_115, "extra": {"vocab": text}}
    assert budget_label(record).endswith("(text.sentence_ends=false, text.test_words=181041)")


def test_the_softmax_speed_counts_complete_seeds_of_a_config_whose_first_is_a_branch():
    """Seed 0's 3.2 M point is a decay branch (its speed is its trunk's), seeds 1 and 2 ran it
    as complete runs: their speeds are the config's, not dropped with the branch."""

    def run(seed, tokens, speed, branch=False):
        record = _record("lstm", 120.0, seed=seed, tokens=tokens)
        record |= {"suite": "frontier", "family": "lstm", "vocab_size": 10_000}
        record |= {
            "train_tokens_per_s": speed,
            "train_seconds": 100.0,
            "run_id": f"{seed}-{tokens}",
        }
        record["machine"] = {"id": "m1", "cores": 2}
        record["extra"] = {"branch": {"trunk_tokens": 6_400_000}} if branch else {}
        return record

    runs = Runs(
        [
            run(0, 6_400_000, 6_000.0),
            run(0, 3_200_000, 7_000.0, branch=True),
            run(1, 3_200_000, 7_500.0),
            run(2, 3_200_000, 8_000.0),
        ]
    )
    (row,) = report_frontier.softmax_rows(runs).to_dict("records")
    # the 6.4 M trunk and the complete 3.2 M seeds: the median of the three complete runs
    assert row["tokens/s"] == 7_500.0
