"""Estimation within a memory cap (`--set memory=SIZE`): columns on disk, the same model bit for bit.

The lmplz parity tests in test_kneser_ney.py run both paths too; here every array of the capped
model is compared with the in-memory one, on PTB and on small cases that reach every branch
(several runs to merge, contexts longer than a chunk, pruning, each smoother, both modes).
"""

import numpy as np
import pytest

from lmbench.corpora import load_corpus
from lmbench.errors import UsageError
from lmbench.evaluate import evaluate
from lmbench.models.base import Budget
from lmbench.models.ngram.arpa import write_arpa
from lmbench.models.registry import resolve
from lmbench.protocol import Segments, make_segments
from lmbench.spill import MemoryCap, Spill, count_ids, gather, parse_size, resident_bytes


def column(values) -> np.ndarray:
    return np.asarray(values[:]) if isinstance(values, Spill) else np.asarray(values)


def assert_same_model(capped, in_memory) -> None:
    """Every key, link, probability and backoff equal (NaN-aware), and the same notes."""
    a, b = capped.tables, in_memory.tables
    assert a.spill is not None and b.spill is None
    for n, (oa, ob) in enumerate(zip(a.counts.orders, b.counts.orders), 1):
        for name in ("keys", "prefix", "suffix"):
            np.testing.assert_array_equal(
                column(getattr(oa, name)), getattr(ob, name), f"{name} {n}"
            )
    for kind in ("log_prob", "log_backoff"):
        for n, (ca, cb) in enumerate(zip(getattr(a, kind), getattr(b, kind)), 1):
            np.testing.assert_array_equal(column(ca), cb, f"{kind} of order {n}")
    without = {k: v for k, v in a.notes.items() if k != "estimation"}
    assert without == {k: v for k, v in b.notes.items() if k != "estimation"}


def fit_both(spec, sets, vocab_size, train, memory="1M"):
    capped = resolve(spec, {**sets, "memory": memory}).build(vocab_size)
    capped.fit(train, Budget())
    in_memory = resolve(spec, sets).build(vocab_size)
    in_memory.fit(train, Budget())
    assert capped.tables.notes["estimation"]["on_disk"]
    assert not in_memory.tables.notes["estimation"]["on_disk"]
    return capped, in_memory


def zipf_segments(size, vocab_size, segment_every, seed=0):
    rng = np.random.default_rng(seed)
    ids = (np.minimum(rng.zipf(1.2, size=size), vocab_size) - 1).astype(np.int32)
    starts = np.unique(np.r_[np.arange(0, size, segment_every), size]).astype(np.int64)
    return Segments(ids, starts)


@pytest.mark.parametrize(
    "spec, sets",
    [
        ("kn5", {}),
        ("kn4", {"prune": "0 1 2"}),
        ("wb3", {}),
        ("abs3", {}),
        ("kn3", {"discount_fallback": "true"}),
    ],
)
def test_capped_model_equals_the_in_memory_one(spec, sets, tmp_path):
    vocab_size = 3_000  # enough rare words that every order's discounts are defined
    train = zipf_segments(60_000, vocab_size, segment_every=41)
    capped, in_memory = fit_both(spec, sets, vocab_size, train)
    assert_same_model(capped, in_memory)
    test = zipf_segments(5_000, vocab_size, segment_every=37, seed=1)
    np.testing.assert_array_equal(capped.log_prob(test), in_memory.log_prob(test))
    itos = tuple(f"w{i}" for i in range(vocab_size - 1)) + ("<eos>",)
    ours = write_arpa(capped.tables, itos, tmp_path / "capped.arpa").read_bytes()
    assert ours == write_arpa(in_memory.tables, itos, tmp_path / "memory.arpa").read_bytes()


def test_a_context_longer_than_a_chunk_and_one_long_segment():
    """Stream mode (one segment) where every other token is one word: its context has ~3,000
    distinct successors, more than a chunk's 1,024 rows at the smallest cap, so chunks must
    stretch to whole contexts."""
    rng = np.random.default_rng(3)
    ids = np.zeros(200_000, dtype=np.int32)
    ids[1::2] = rng.integers(1, 3_000, size=100_000)
    train = Segments(ids, np.array([0, ids.size]))
    sets = {"discount_fallback": "true"}
    capped, in_memory = fit_both("kn3", sets, 3_000, train, memory="64K")
    assert_same_model(capped, in_memory)
    assert np.bincount(column(capped.tables.counts.orders[1].prefix)).max() > 1_024


def test_full_ptb_capped_equals_in_memory(mirror):
    corpus = load_corpus("ptb", mirror)

    def segments(split, mode):
        s = corpus.splits[split]
        return make_segments(s.ids, s.eos_positions, mode, corpus.vocab.eos, corpus.vocab.bos)

    for mode in ("stream", "sentence"):
        capped, in_memory = fit_both("kn5", {}, corpus.vocab.size, segments("train", mode), "16M")
        assert_same_model(capped, in_memory)
        test = segments("test", mode)
        assert evaluate(capped, test).perplexity == evaluate(in_memory, test).perplexity


def test_capped_models_refuse_per_query_decoding_with_the_fix():
    train = zipf_segments(20_000, 3_000, segment_every=50)
    model = resolve("kn3", {"memory": "256K"}).build(3_000)
    model.fit(train, Budget())
    with pytest.raises(UsageError, match="--set memory=SIZE"):
        model.query(model.query_start(0), 1)


@pytest.mark.parametrize(
    "text, size", [("2G", 2 << 30), ("500M", 500 << 20), ("64k", 64 << 10), ("1.5G", 3 << 29)]
)
def test_sizes_read_as_lmplz_reads_them(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "-1G", "0", "2X"])
def test_bad_sizes_say_what_to_write(text):
    with pytest.raises(ValueError, match="such as 2G"):
        parse_size(text)


def test_a_bad_memory_setting_fails_when_set():
    with pytest.raises(UsageError, match="memory='2 gigs'"):
        resolve("kn5", {"memory": "2 gigs"})


def test_spill_columns_answer_as_numpy_arrays(tmp_path):
    rng = np.random.default_rng(5)
    values = np.sort(rng.integers(0, 1_000_000, size=10_000))
    spill = Spill.of(tmp_path, "keys", values, chunk_rows=333)
    assert len(spill) == values.size and spill.nbytes == values.nbytes
    np.testing.assert_array_equal(spill[1234:5678], values[1234:5678])
    ids = rng.integers(0, values.size, size=4_000)
    np.testing.assert_array_equal(spill[ids], values[ids])
    queries = np.r_[rng.integers(-5, 1_000_005, size=3_000), values[::7], -1]
    np.testing.assert_array_equal(spill.searchsorted(queries), np.searchsorted(values, queries))
    rows = rng.integers(0, 255, size=(500, 7)).astype(np.uint8)
    matrix = Spill(tmp_path, "rows", np.uint8, (7,), chunk_rows=64)
    matrix.resize(500)
    matrix[100:500] = rows[100:]
    matrix[0:100] = rows[:100]
    np.testing.assert_array_equal(matrix[np.arange(50, 450, 3)], rows[50:450:3])


def test_gather_and_count_ids_partition_the_table(tmp_path):
    rng = np.random.default_rng(6)
    table = rng.normal(size=5_000)
    ids = rng.integers(0, table.size, size=20_000)
    cap = MemoryCap(8 * 1024)  # partitions of 1,024 rows: five passes
    spilled_ids = Spill.of(tmp_path, "ids", ids, chunk_rows=3_000)
    out = gather(
        Spill.of(tmp_path, "table", table, 700), spilled_ids, Spill(tmp_path, "out", float), cap
    )
    np.testing.assert_array_equal(out[:], table[ids])
    counts = count_ids(spilled_ids, 6_000, cap)
    np.testing.assert_array_equal(counts[:], np.bincount(ids, minlength=6_000))


@pytest.mark.skipif(resident_bytes() == 0, reason="no /proc/self/statm here")
def test_chunks_shrink_by_what_the_estimate_already_holds():
    MiB = 1 << 20
    cap = MemoryCap(64 * MiB)
    KiB = 1 << 10  # rows of 1 KiB: 65,536 in the cap
    assert cap.rows(KiB) in range(60_000, 65_537)  # about the whole cap: nothing held yet
    held = np.ones(32 * MiB, dtype=np.uint8)  # touched, so resident
    assert cap.rows(KiB) in range(28_000, 34_000)
    more = np.ones(64 * MiB, dtype=np.uint8)
    assert cap.rows(KiB) == 16_384  # never below a quarter of the cap
    del held, more


@pytest.mark.parametrize("block", [1, 2, 3, 7, 10_000])
def test_merging_runs_block_by_block_equals_one_merge(tmp_path, monkeypatch, block):
    """The merge of sorted runs cuts blocks in order and merges them on threads: at any block
    size (keys equal across runs and across block edges, a run that ends early, an empty run)
    its columns and per-run maps are those of one merge of everything."""
    from lmbench.models.ngram import external

    rng = np.random.default_rng(7)
    keys = [np.unique(rng.integers(0, 300, size=size)) for size in (150, 40, 0, 200, 5)]
    cap = MemoryCap(1 << 30)
    monkeypatch.setattr(cap, "rows", lambda bytes_per_row: block)
    columns = external.Columns(tmp_path, cap)
    # each run: keys, counts, suffix (a function of the key), anchored
    arrays = [
        [k, rng.integers(1, 6, size=k.size).astype(np.int32), (k % 17).astype(np.int32)]
        + [rng.random(k.size) < 0.3]
        for k in keys
    ]
    runs = [
        [columns.of(f"run{r}.{i}", a) for i, a in enumerate(run)] for r, run in enumerate(arrays)
    ]
    uniq, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    counts = np.bincount(inverse, weights=np.concatenate([run[1] for run in arrays]))
    anchored = np.bincount(inverse, weights=np.concatenate([run[3] for run in arrays])) > 0

    out, maps = external._merge_runs(runs, columns, 3, 300, np.int32)

    np.testing.assert_array_equal(column(out[0]), uniq)
    np.testing.assert_array_equal(column(out[1]), counts.astype(np.int32))
    np.testing.assert_array_equal(column(out[2]), (uniq % 17).astype(np.int32))
    np.testing.assert_array_equal(column(out[3]), anchored)
    for k, merged_ids in zip(keys, maps, strict=True):
        np.testing.assert_array_equal(column(merged_ids), np.searchsorted(uniq, k))
