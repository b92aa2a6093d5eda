import json

import pytest

from lmbench.cli import main
from lmbench.compare import judge
from lmbench.results import RunRecord


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


def _suite(ngram_ppl=141.0, lstm_ppl=120.0, lstm_rate=9000.0, matmul=200.0):
    common = {"suite": "quick", "corpus": "ptb", "mode": "stream", "status": "ok"}
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
