import json

import pytest

from lmbench.cli import main
from lmbench.compare import judge
from lmbench.records import RunRecord


def rec(family="ngram", ppl=100.0, rate=1000.0, sort=50.0, seconds=5.0, status="ok"):
    return {
        "config_hash": "h",
        "family": family,
        "status": status,
        "test_ppl": ppl,
        "train_tokens_per_s": rate,
        "train_seconds": seconds,
        "calibration": {"sort_mkeys_per_s": sort, "matmul_gflops": sort},
    }


@pytest.mark.parametrize(
    "new, flagged",
    [
        (rec(ppl=100.0 * (1 + 2e-9)), True),  # count model: exact to 1e-9 relative
        (rec(ppl=100.0 * (1 + 5e-10)), False),
        (rec(family="lstm", ppl=100.0 * 1.0051), True),  # neural: 0.5% worse allowed
        (rec(family="lstm", ppl=100.0 * 1.0049), False),
        (rec(family="lstm", ppl=90.0), False),  # better is never a regression
        (rec(rate=840.0), True),  # throughput 16% worse
        (rec(rate=860.0), False),  # 14% worse
        (rec(rate=840.0, sort=42.0), False),  # ... on a machine 16% slower: not lmbench's fault
        (rec(rate=500.0, seconds=0.05), False),  # too short a timing to judge
        (rec(status="failed"), True),
    ],
)
def test_thresholds(new, flagged):
    base = rec(family=new["family"])
    assert bool(judge(base, new).problems) is flagged


def _write(folder, records):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "runs.jsonl", "w") as f:
        for r in records:
            f.write(json.dumps(RunRecord(**r).__dict__) + "\n")


AMD = {"cpu": "AMD EPYC", "isa": ["avx2", "avx512f"], "cores": 2, "memory_gib": 24, "id": "amd"}
XEON = {**AMD, "cpu": "Intel(R) Xeon(R) Processor", "isa": ["avx2", "amx_tile"], "id": "xeon"}


def _suite(ngram_ppl=141.0, lstm_ppl=120.0, lstm_rate=9000.0, matmul=200.0, machine=AMD):
    common = {
        "suite": "quick",
        "corpus": "ptb",
        "mode": "stream",
        "status": "ok",
        "machine": machine,
    }
    return [
        common
        | {
            "config_hash": "kn5",
            "model": "kn5",
            "family": "ngram",
            "test_ppl": ngram_ppl,
            "train_tokens_per_s": 4e6,
            "train_seconds": 0.2,
            "calibration": {"sort_mkeys_per_s": 90.0, "matmul_gflops": matmul},
        },
        common
        | {
            "config_hash": "lstm",
            "model": "lstm",
            "family": "lstm",
            "test_ppl": lstm_ppl,
            "train_tokens_per_s": lstm_rate,
            "train_seconds": 3.0,
            "calibration": {"sort_mkeys_per_s": 90.0, "matmul_gflops": matmul},
        },
    ]


@pytest.mark.parametrize(
    "changes, code",
    [
        ({}, 0),
        ({"ngram_ppl": 141.0 * (1 + 1.1e-9)}, 1),  # just past the count-model threshold
        ({"ngram_ppl": 141.0 * (1 + 0.9e-9)}, 0),  # just inside
        ({"lstm_ppl": 120.0 * 1.0051}, 1),
        ({"lstm_ppl": 120.0 * 1.0049}, 0),
        ({"lstm_rate": 9000.0 * 0.849}, 1),
        ({"lstm_rate": 9000.0 * 0.851}, 0),
        ({"lstm_rate": 9000.0 * 0.80, "matmul": 200.0 * 0.80}, 0),  # a slower machine
    ],
)
def test_compare_command_exit_codes(tmp_path, capsys, changes, code):
    """`lmbench compare` end to end: planted regressions just past each threshold fail it,
    changes just inside pass, and the table names the config and the reason."""
    _write(tmp_path / "base", _suite())
    _write(tmp_path / "new", _suite(**changes))
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "new")]) == code
    out = capsys.readouterr().out
    assert "2 configs compared" in out
    assert ("REGRESSION" in out) is bool(code)


def test_other_machine_judges_count_models_only(tmp_path, capsys):
    """A Xeon run against an AMD baseline: the count model's perplexity is still exact (a
    change fails), the LSTM's perplexity and every throughput are not judged, and the table
    says how to record this machine's baseline."""
    _write(tmp_path / "base", _suite(machine=AMD))
    _write(tmp_path / "slow", _suite(lstm_ppl=130.0, lstm_rate=5000.0, machine=XEON))
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "slow")]) == 0
    out = capsys.readouterr().out
    assert "status only: no base of this machine" in out and "--record-baseline" in out
    _write(tmp_path / "changed", _suite(ngram_ppl=141.5, machine=XEON))
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "changed")]) == 1
    crashed = _suite(machine=XEON)
    crashed[1] = crashed[1] | {"status": "failed", "error": "boom", "test_ppl": None}
    _write(tmp_path / "crashed", crashed)  # a crash fails on any machine
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "crashed")]) == 1


def test_baseline_of_several_machines_uses_this_ones(tmp_path):
    """A baseline folder with an AMD and a Xeon file: each new run meets its own machine's."""
    _write(tmp_path / "base" / "amd", _suite(lstm_rate=9000.0, machine=AMD))
    _write(tmp_path / "base" / "xeon", _suite(lstm_rate=5000.0, machine=XEON))
    _write(tmp_path / "new", _suite(lstm_rate=5000.0, machine=XEON))
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "new")]) == 0
    _write(tmp_path / "new_amd", _suite(lstm_rate=5000.0, machine=AMD))
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "new_amd")]) == 1


def test_garbage_sides_are_usage_errors(tmp_path, capsys):
    """Exit 2 with one line for each broken side; exit 1 is kept for regressions."""
    _write(tmp_path / "base", _suite())
    base = str(tmp_path / "base")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "runs.jsonl").write_text("not json at all\n")
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "runs.jsonl").write_text("[1, 2, 3]\n")
    (tmp_path / "binary").mkdir()
    (tmp_path / "binary" / "runs.jsonl").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "runs.jsonl").write_text("")
    (tmp_path / "nohash").mkdir()
    (tmp_path / "nohash" / "runs.jsonl").write_text('{"config_hash": "x", "status": "ok"}\n')
    (tmp_path / "badppl").mkdir()
    (tmp_path / "badppl" / "runs.jsonl").write_text('{"config_hash": "x", "test_ppl": "abc"}\n')
    (tmp_path / "badextra").mkdir()
    (tmp_path / "badextra" / "runs.jsonl").write_text('{"config_hash": "x", "extra": "abc"}\n')
    sides = ("missing", "text", "list", "binary", "empty", "nohash", "badppl", "badextra")
    for side in sides:
        assert main(["compare", base, str(tmp_path / side)]) == 2, side
        assert main(["compare", str(tmp_path / side), base]) == 2, side
        err = capsys.readouterr().err.strip()
        assert err.count("lmbench: error: compare:") == 2 and "Traceback" not in err, err


def test_missing_config_fails_unless_allowed(tmp_path, capsys):
    _write(tmp_path / "base", _suite())
    _write(tmp_path / "new", _suite()[:1])  # the LSTM run is absent
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "new")]) == 1
    assert "MISSING from new" in capsys.readouterr().out
    args = ["compare", str(tmp_path / "base"), str(tmp_path / "new"), "--allow-missing"]
    assert main(args) == 0


def test_interrupted_runs_are_ignored(tmp_path):
    _write(tmp_path / "base", _suite())
    new = _suite()
    new[1] = new[1] | {"status": "interrupted", "test_ppl": 999.0}
    _write(tmp_path / "new", new)
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "new")]) == 0  # not missing
    _write(tmp_path / "only", new[1:])
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "only")]) == 2  # nothing ran


def _timings(rates, matmuls=None, machine=AMD, **changes):
    """One side's records of the quick suite's two configs, once per LSTM timing in `rates`."""
    matmuls = matmuls or [200.0] * len(rates)
    return [
        r for rate, mm in zip(rates, matmuls) for r in _suite(lstm_rate=rate, matmul=mm, **changes)
    ]


@pytest.mark.parametrize(
    "new_rates, new_matmuls, code",
    [
        ([5000.0, 9000.0, 9100.0], None, 0),  # one slow timing of three: the median is fine
        ([7000.0, 7200.0, 9000.0], None, 1),  # two of three 20% slower: confirmed
        ([9000.0] * 3, [200.0, 400.0, 200.0], 0),  # one calibration outlier does not decide
        ([7000.0] * 3, [160.0] * 3, 0),  # the whole side ran on a 20% slower VM
    ],
)
def test_throughput_is_judged_on_medians(tmp_path, capsys, new_rates, new_matmuls, code):
    """Several timings of a config on one side (a baseline recorded 3 times, suspects rerun):
    the verdict divides the median rate by the side's median calibration, and says how many
    timings it rests on."""
    _write(tmp_path / "base", _timings([9000.0, 8800.0, 9200.0]))
    _write(tmp_path / "new", _timings(new_rates, new_matmuls))
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "new")]) == code
    out = capsys.readouterr().out
    assert "| 3/3 |" in out
    assert ("median of 3 timings against 3" in out) is bool(code)


def test_compare_report_files_say_whether_a_rerun_may_clear_it(tmp_path):
    """`--out DIR` writes Markdown and JSON named by both sides; the JSON tells nox whether
    every failure is a throughput (rerun to confirm) or something a rerun cannot change."""
    import json as _json

    _write(tmp_path / "base", _suite())
    cases = {"slow": _suite(lstm_rate=5000.0), "worse": _suite(lstm_rate=5000.0, lstm_ppl=130.0)}
    for name, records in cases.items():
        _write(tmp_path / name, records)
        reports = tmp_path / f"reports-{name}"
        assert (
            main(["compare", str(tmp_path / "base"), str(tmp_path / name), "--out", str(reports)])
            == 1
        )
        (md,) = reports.glob("*.md")
        (js,) = reports.glob("*.json")
        assert (
            md.stem == js.stem
            and md.stem.startswith("quick-amd-")
            and "--vs--quick-amd-" in md.stem
        )
        assert "REGRESSION" in md.read_text()
        result = _json.loads(js.read_text())
        assert result["regressions"] == 1 and result["failing"][0]["config_hash"] == "lstm"
        assert result["throughput_only"] is (name == "slow")


def test_previous_compares_the_two_newest_folders_of_this_machine(tmp_path, monkeypatch, capsys):
    """`--previous ROOT`: the newest folder of this machine's records against the one before it
    (another machine's folder is not either side); fewer than two: said, exit 0."""
    from lmbench import compare

    monkeypatch.setattr(compare, "machine_fingerprint", lambda: {"id": "amd"})
    root = tmp_path / "history"

    def dated(records, day):
        return [r | {"env": {"time_utc": f"2026-11-{day}T00:00:00Z"}} for r in records]

    _write(root / "vm-1", dated(_suite(), "01"))
    assert main(["compare", "--previous", str(root)]) == 0
    assert "fewer than two run folders" in capsys.readouterr().out
    _write(root / "vm-3", dated(_suite(lstm_ppl=130.0), "03"))
    _write(root / "xeon-4", dated(_suite(machine=XEON), "04"))
    assert main(["compare", "--previous", str(root)]) == 1  # vm-1 -> vm-3: the LSTM got worse
    assert f"{root / 'vm-1'} -> {root / 'vm-3'}" in capsys.readouterr().out
