"""Every usage error exits 2 with one clear line on stderr; a real run on a plain-text folder."""

import json
import subprocess
import sys

import pytest

from lmbench.cli import main
from lmbench.corpora import fetch
from lmbench.errors import UsageError
from lmbench.plan import _resolve_device
from lmbench.records import read_records

from .conftest import write_corpus


def usage_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "add1-2", "--corpus", "penn"], "unknown corpus 'penn'"),
        (["--model", "zz9"], "unknown model 'zz9'"),
        (["--model", "add1-2", "--set", "k"], "malformed --set 'k'"),
        (["--model", "unigram", "--set", "k=abc"], "expected float"),
        (["--model", "add1-2", "--set", "order=3"], "contradicts the model name"),
        (["--model", "add1-2", "--set", "width=3"], "unknown setting 'width'"),
        (["--model", "add1-2", "--set", "vocab.size=3"], "unknown setting vocab.size"),
        (["--model", "add1-2", "--set", "vocab.min_count=x"], "expected int"),
        (["--model", "add1-2", "--mode", "poem"], "unknown mode 'poem'"),
        (["--model", "add1-2", "--device", "tpu"], "unknown device 'tpu'"),
        (["--model", "add1-2", "--device", "cuda"], "runs on the CPU only"),
        (["--model", "add1-2", "--budget-tokens", "0"], "--budget-tokens must be > 0"),
        (["--model", "add1-2", "--budget-tokens", "many"], "invalid int value"),
    ],
)
def test_run_usage_errors(capsys, tiny_corpus, extra, message):
    argv = ["run", "--corpus", str(tiny_corpus), *extra]
    if "--corpus" in extra:
        argv = ["run", *extra]
    assert message in usage_error(capsys, argv)


def test_other_usage_errors(capsys, tiny_corpus, tmp_path):
    assert "needs --corpus and --model" in usage_error(capsys, ["run", "--model", "add1-2"])
    assert "unknown suite" in usage_error(capsys, ["run", "--suite", "nope"])
    assert "invalid choice" in usage_error(capsys, ["frobnicate"])
    missing = write_corpus(tmp_path / "partial", "a\n", "a\n", "a\n")
    (missing / "test.txt").unlink()
    assert "lacks test.txt" in usage_error(
        capsys, ["run", "--corpus", str(missing), "--model", "add1-2"]
    )
    bad = write_corpus(tmp_path / "bad", "a b\n", "a\n", "a\n")
    (bad / "valid.txt").write_bytes(b"a\n\xfe\n")
    assert "valid.txt:2: not valid UTF-8" in usage_error(
        capsys, ["run", "--corpus", str(bad), "--model", "add1-2"]
    )


def test_missing_named_corpus_offline(capsys, isolated_cache, tmp_path, monkeypatch):
    def offline(url):
        raise OSError("network unreachable")

    monkeypatch.setattr(fetch, "_download", offline)
    err = usage_error(
        capsys, ["run", "--corpus", "ptb", "--model", "add1-2", "--data-dir", str(tmp_path)]
    )
    assert "could not obtain ptb/ptb.train.txt" in err and "LMBENCH_DATA" in err


def test_cuda_requested_without_cuda(monkeypatch):
    import torch

    class GpuModel:
        devices = ("cpu", "cuda")

    class Resolved:
        spec, model_class = "gpu-model", GpuModel

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match="CUDA is not available"):
        _resolve_device("cuda", Resolved())
    assert _resolve_device("auto", Resolved()) == "cpu"


def test_run_on_a_plain_text_directory(tiny_corpus, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lmbench.cli",
            "run",
            "--corpus",
            str(tiny_corpus),
            "--model",
            "add1-2",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (rec,) = read_records(out / "runs.jsonl")
    assert rec["status"] == "ok" and rec["vocab_size"] == 7
    assert rec["eval_tokens"] == 8 and 1 < rec["test_ppl"] < 7
    assert (out / rec["logprobs"]["test"]).exists()
    assert "[done 1/1]" in proc.stderr


def test_models_listing(capsys):
    assert main(["models"]) == 0
    assert "add1-2" in capsys.readouterr().out


def test_report_and_compare(tiny_corpus, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--corpus", str(tiny_corpus), "--model", "unigram", "--out", str(out)]) == 0
    assert main(["report", str(out)]) == 0
    assert "unigram" in (out / "report.md").read_text()
    assert main(["compare", str(out), str(out)]) == 0
    assert "No regressions" in capsys.readouterr().out
    # the same run with a changed perplexity is a regression for a count model
    records = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    records[0]["test_ppl"] *= 1 + 1e-6
    (tmp_path / "new.jsonl").write_text(json.dumps(records[0]) + "\n")
    assert main(["compare", str(out), str(tmp_path / "new.jsonl")]) == 1


def test_only_runs_the_named_configs(tiny_corpus, tmp_path, capsys):
    """`--only` keeps the planned runs whose hash starts with a given prefix (how nox times a
    suspect again); a prefix that matches nothing is a usage error naming what was planned."""
    from lmbench.cli import only_configs
    from lmbench.plan import RunSpec, plan_seeds

    planned = plan_seeds(
        [RunSpec(str(tiny_corpus), "unigram"), RunSpec(str(tiny_corpus), "kn3")], None, "t", None
    )
    first, second = (run.config_hash for run in planned)
    assert [r.config_hash for r in only_configs(planned, second[:6])] == [second]
    assert len(only_configs(planned, f"{first},{second[:8]}")) == 2
    with pytest.raises(UsageError, match="no planned config matches; planned: .*unigram"):
        only_configs(planned, "zzzz")


def test_a_run_with_seeds_of_its_own_and_its_mixes_per_seed(tiny_corpus):
    """A suite's spec may carry its own seeds (the suite's others keep the suite's); each mix is
    made once per seed of its neural part; `--only` remakes the mixes that use the runs it
    reruns, a count part serving every seed."""
    from lmbench.cli import only_configs
    from lmbench.mix import MixSpec, per_seed, using
    from lmbench.plan import RunSpec, plan_seeds

    corpus = str(tiny_corpus)
    specs = [
        RunSpec(corpus, "kn3"),
        RunSpec(corpus, "mlp", budget_tokens=100),
        RunSpec(corpus, "mlp", {"hidden": "8"}, budget_tokens=100, seeds=(0, 1, 2)),
    ]
    planned = plan_seeds(specs, (0,), "t", None)
    assert [(r.spec.model, r.spec.sets, r.spec.seed) for r in planned] == [
        ("kn3", {}, 0),
        ("mlp", {}, 0),
        *(("mlp", {"hidden": "8"}, seed) for seed in (0, 1, 2)),
    ]
    assert len({r.config_hash for r in planned}) == 5 and all(r.spec.seeds is None for r in planned)
    mixes = (MixSpec(corpus, "mlp", "kn3"), MixSpec(corpus, "kn3", "cache"))
    made = per_seed(mixes, planned)
    assert [(m.name, m.seed) for m in made] == [
        *(("mlp+kn3", seed) for seed in (0, 1, 2)),
        ("kn3+cache", 0),
    ]
    seed_two = only_configs(planned, planned[-1].config_hash)
    assert [(m.name, m.seed) for m in using(made, seed_two)] == [("mlp+kn3", 2)]
    count = only_configs(planned, planned[0].config_hash)
    assert len(using(made, count)) == 4  # kn3 is a part of every mix, at every seed
