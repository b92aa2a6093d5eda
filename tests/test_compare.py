import pytest

from lmbench.compare import judge


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
