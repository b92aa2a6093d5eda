"""Property tests: whatever bytes a corpus holds and whatever `--set` says, the answer is a
result or one actionable error (LmbenchError), never a traceback."""

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmbench.cli import main
from lmbench.corpora import load_corpus
from lmbench.errors import LmbenchError
from lmbench.models.registry import resolve
from lmbench.plan import RunSpec, plan
from lmbench.settings import parse_sets

from .conftest import write_corpus

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODELS = ["add1-2", "kn3", "wb3", "abs3", "lstm", "transformer", "mlp", "mlp1"]
KEYS = ["k", "order", "lr", "hidden", "dropout", "batch_size", "heads", "layers", "discount"]
KEYS += ["vocab.min_count", "vocab.max_size", "bptt", "eval_every_tokens", "clip"]
VALUES = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["nan", "inf", "-1", "0", "1e309", "none", "true", "3.5", "", "=", "1_0"]),
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True).map(str),
)


@FUZZ
@given(
    model=st.sampled_from(MODELS),
    items=st.lists(
        st.one_of(
            st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS), VALUES),
            st.text(alphabet=string.printable, max_size=20),
        ),
        max_size=4,
    ),
)
def test_set_parsing_never_tracebacks(tmp_path_factory, model, items):
    """Through parsing, the model's settings and the planner (budgets, vocabulary, hashing)."""
    corpus = tmp_path_factory.getbasetemp() / "fuzz-corpus"
    if not corpus.exists():
        write_corpus(corpus, "a b c\nb c a\n" * 20, "a b\n", "c a\n")
    try:
        sets = parse_sets(items)
        resolve(model, sets)
        plan(RunSpec(str(corpus), model, sets, budget_tokens=100))
    except LmbenchError as exc:
        assert str(exc) and "\n" not in str(exc)


SPLIT_BYTES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda t: t.encode("utf-8")),
    st.lists(st.sampled_from(["a", "b", "c", " ", "\n", "\t", "\r", "\u00e9", "\x00"]))
    .map("".join)
    .map(lambda t: t.encode("utf-8")),
)


@FUZZ
@given(train=SPLIT_BYTES, valid=SPLIT_BYTES, test=SPLIT_BYTES)
def test_directory_corpus_reader_never_tracebacks(tmp_path_factory, train, valid, test):
    folder = tmp_path_factory.mktemp("corpus")
    for name, data in (("train", train), ("valid", valid), ("test", test)):
        (folder / f"{name}.txt").write_bytes(data)
    try:
        corpus = load_corpus(str(folder), download=False)
    except LmbenchError as exc:
        assert str(exc) and str(folder) in str(exc) or "corpus" in str(exc)
        return
    for split in ("train", "valid", "test"):
        for mode in ("stream", "sentence"):
            assert corpus.segments(split, mode).n_predicted >= 0


@pytest.mark.parametrize("data", [b"\xff\xfe\x00", b"", b"\n\n\n", b"a\x00b\n"])
def test_bad_corpus_through_the_cli_is_one_line(tmp_path, capsys, data):
    for name in ("train", "valid", "test"):
        (tmp_path / f"{name}.txt").write_bytes(data if name == "train" else b"a b\n")
    code = main(["run", "--corpus", str(tmp_path), "--model", "add1-2", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code in (0, 2) and "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1
