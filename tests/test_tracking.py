import json

import numpy as np
import pytest

from lmbench.tracking import find_steps, load_tracking, tracked_steps


def _series(changes, noise=0.01, flat=8, seed=0):
    """Relative values: `flat` commits at 1, then one commit per change (each a factor), then
    `flat` more at the last level; multiplied by seeded noise of `noise` sd."""
    levels = [1.0] * flat
    for factor in changes:
        levels.append(levels[-1] * factor)
    levels += [levels[-1]] * flat
    rng = np.random.default_rng(seed)
    return list(np.array(levels) * np.exp(rng.normal(0, noise, len(levels))))


@pytest.mark.parametrize("seed", range(5))
def test_a_slowdown_of_3_percent_per_commit_over_5_commits_is_a_step(seed):
    """Each commit 3% slower passes every per-commit gate (15%, 20%) and adds up to 14%: flagged
    as one drift, named by the first slower commit (index 8)."""
    steps = find_steps(_series([0.97] * 5, seed=seed))
    assert [(s[0], s[2]) for s in steps] == [(8, "drift")], steps
    assert steps[0][1] == pytest.approx(0.97**5 - 1, abs=0.03)


@pytest.mark.parametrize("seed", range(5))
def test_single_3_percent_changes_are_not_steps(seed):
    """A lasting 3% slowdown, or 3% changes that come back, stay below the limit."""
    assert find_steps(_series([0.97], seed=seed)) == []
    assert find_steps(_series([0.97, 1 / 0.97, 0.97, 1 / 0.97], seed=seed)) == []


def test_a_sharp_step_is_named_by_the_commit_that_made_it():
    steps = find_steps(_series([0.8], seed=1))
    assert [(s[0], s[2]) for s in steps] == [(8, "shift")]
    assert steps[0][1] == pytest.approx(-0.2, abs=0.03)


@pytest.mark.parametrize("seed", range(5))
def test_a_noisy_metric_does_not_flag_its_noise(seed):
    """A 5-second timing on a shared VM moves about 10% between identical commits: the limit
    rises with the metric's own noise, so a flat noisy series has no step, and a 40% one still
    shows (named within two commits: noise that large blurs where a step is)."""
    assert find_steps(_series([], noise=0.10, flat=12, seed=seed)) == []
    (step,) = find_steps(_series([0.6], noise=0.10, flat=12, seed=seed))
    assert abs(step[0] - 12) <= 2 and step[1] < -0.25
    assert step[4] > 0.15  # the limit: three noise sds of a median shift, not the 10% floor


def _commit(root, fingerprint, commit, time, rate, ms):
    folder = root / fingerprint / commit
    folder.mkdir(parents=True)
    (folder / "commit.json").write_text(json.dumps({"commit": commit, "time": time}))
    record = {
        "status": "ok",
        "corpus": "ptb",
        "model": "lstm",
        "mode": "stream",
        "family": "lstm",
        "config_hash": "h",
        "test_ppl": 120.0,
        "peak_rss_bytes": 2**30,
        "train_tokens_per_s": rate,
        "calibration": {"matmul_gflops": 100.0, "sort_mkeys_per_s": 10.0},
    }
    (folder / "runs.jsonl").write_text(json.dumps(record) + "\n")
    bench = {
        "benchmarks": [{"fullname": "benchmarks/x.py::test_fit[kn5]", "stats": {"median": ms}}]
    }
    (folder / "microbench.json").write_text(json.dumps(bench))


def test_tracking_folders_become_one_frame_in_commit_order(tmp_path):
    """Commits are ordered by commit time, not by folder name; each fingerprint has its own
    order; a 3%-per-commit slowdown in the stored LSTM throughput is found with its commit."""
    rates = [9000.0] * 6 + [9000.0 * 0.97**k for k in range(1, 6)] + [9000.0 * 0.97**5] * 6
    for k, rate in enumerate(rates):
        _commit(tmp_path, "amd", f"c{99 - k:02d}", f"2026-11-{k + 1:02d}T00:00:00", rate, 0.5)
    _commit(tmp_path, "xeon", "c99", "2026-11-01T00:00:00", 12000.0, 0.4)
    frame = load_tracking(tmp_path)
    assert set(frame["metric"]) == {"throughput", "test ppl", "peak RSS MB", "microbench ms"}
    amd = frame[(frame.fingerprint == "amd") & (frame.metric == "throughput")]
    assert amd.sort_values("order")["commit"].tolist()[:2] == ["c99", "c98"]
    assert amd["value"].max() == pytest.approx(90.0)  # 9000 tok/s over 100 GFLOP/s, x 1e3
    assert frame[frame.fingerprint == "xeon"]["order"].unique().tolist() == [0]
    steps = tracked_steps(frame)
    assert [(s.fingerprint, s.metric, s.series, s.commit, s.kind, s.verdict) for s in steps] == [
        ("amd", "throughput", "ptb lstm stream", "c93", "drift", "worse")
    ]


def _track_script(relative: str = "track.py", name: str = "track"):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / relative
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_commits_are_measured_far_apart_from_their_neighbours():
    """A backfill takes hours: neighbours in commit order are measured far apart in time, so
    the machine's drift does not read as a trend; every commit exactly once."""
    interleaved = _track_script().interleaved
    assert interleaved(list("abcdefghi")) == list("aiecgbdfh")
    for n in range(12):
        items = [str(i) for i in range(n)]
        assert sorted(interleaved(items)) == sorted(items)


def test_report_draws_the_trends_and_names_the_steps(tmp_path):
    from lmbench.report.tracking import section

    rates = [9000.0] * 6 + [9000.0 * 0.97**k for k in range(1, 6)] + [9000.0 * 0.97**5] * 6
    for k, rate in enumerate(rates):
        _commit(tmp_path / "t", "amd", f"c{k:02d}", f"2026-11-{k + 1:02d}T00:00:00", rate, 0.5)
    lines = section(tmp_path / "t", tmp_path / "fig", lambda name, caption: f"![{caption}]({name})")
    text = "\n".join(lines)
    assert "17 commits measured on 1 machine" in text
    assert "| amd | throughput | ptb lstm stream | `c06`" in text and "drift over 5 commits" in text
    assert (tmp_path / "fig" / "tracking_throughput.png").stat().st_size > 0
    empty = section(tmp_path / "none", tmp_path / "fig", lambda n, c: n)
    assert "nox -s track" in empty[0]


def test_asv_sees_a_measured_commits_values_as_track_benchmarks(tmp_path, monkeypatch):
    """`benchmarks/asv_benchmarks/tracked.py` is what `asv run --set-commit-hash` imports: one
    track_* function per metric, parameterised by series, returning the folder's values."""
    _commit(tmp_path, "amd", "c01", "2026-11-01T00:00:00", 9000.0, 0.5)
    monkeypatch.setenv("LMBENCH_TRACKING_COMMIT", str(tmp_path / "amd" / "c01"))
    tracked = _track_script("asv_benchmarks/tracked.py", "tracked")
    assert tracked.track_inverse_throughput.params == ["ptb lstm stream"]
    # asv reads lower as better: throughput goes in as its inverse, so a slowdown is a regression
    assert tracked.track_inverse_throughput("ptb lstm stream") == pytest.approx(1 / 90.0)
    assert tracked.track_test_ppl("ptb lstm stream") == 120.0
    assert tracked.track_peak_rss_mb("ptb lstm stream") == 1024.0
    assert tracked.track_microbench_ms.params == ["test_fit[kn5]"]
    assert tracked.track_microbench_ms("test_fit[kn5]") == pytest.approx(500.0)
    assert np.isnan(tracked.track_test_ppl("another series"))
    assert tracked.track_inverse_throughput.__name__ == "track_inverse_throughput"
