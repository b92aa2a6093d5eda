import json

import numpy as np
import pytest

from lmbench.corpora import describe, load_corpus
from lmbench.corpora.readers import cut_word_stream, read_lines
from lmbench.errors import DataError, UsageError
from lmbench.vocab import Vocab

from .conftest import write_corpus

PUBLISHED = {
    "ptb": ((929_589, 73_760, 82_430), 10_000),
    "wikitext2": ((2_088_628, 217_646, 245_569), 33_278),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_named_corpus_matches_published_counts(mirror, name):
    corpus = load_corpus(name, mirror)
    tokens, vocab = PUBLISHED[name]
    assert tuple(corpus.splits[s].tokens for s in ("train", "valid", "test")) == tokens
    assert corpus.vocab.size == vocab
    info = describe(corpus)
    assert info["verified"] and info["origin"] == "mirror"
    assert all(info["splits"][s]["oov_rate"] == 0 for s in ("valid", "test"))


def test_brown_follows_bengio_cuts(mirror):
    corpus = load_corpus("brown", mirror)
    words = [corpus.splits[s].words for s in ("train", "valid", "test")]
    assert words == [800_000, 200_000, 161_192]  # NLTK's reader yields 1,161,192 words
    # vocabulary: train words seen more than 3 times, plus <unk> and <eos>
    assert corpus.vocab.size == 14_115
    assert describe(corpus)["splits"]["test"]["oov_rate"] > 0


def test_brown_analysis_variants_paper_test_size_and_no_sentence_ends(mirror):
    """Bengio et al.'s protocol where a setting can reach it: 181,041 test words (taken from
    the end of valid) and sentence ends with no special status (one <eos> per split)."""
    paper_test = load_corpus("brown", mirror, test_words=181_041)
    words = [paper_test.splits[s].words for s in ("train", "valid", "test")]
    assert words == [800_000, 180_151, 181_041]
    plain = load_corpus("brown", mirror, sentence_ends=False)
    assert [plain.splits[s].words for s in ("train", "valid", "test")] == [
        800_000,
        200_000,
        161_192,
    ]
    assert all(plain.splits[s].eos_positions.size == 1 for s in ("train", "valid", "test"))
    assert plain.vocab == load_corpus("brown", mirror).vocab  # the same words: the same vocabulary
    with pytest.raises(DataError, match="choose 1 to 361,191"):
        load_corpus("brown", mirror, test_words=361_192)  # all but train: no valid left
    with pytest.raises(DataError, match="applies to brown"):
        load_corpus("ptb", mirror, test_words=1000)


def test_text_settings_are_checked_when_a_run_is_planned(mirror):
    from lmbench.plan import RunSpec, plan

    base = plan(RunSpec("brown", "kn5"), data_dir=mirror)
    same = plan(RunSpec("brown", "kn5", {"text.sentence_ends": "true"}), data_dir=mirror)
    assert same.config_hash == base.config_hash  # the default is the run without the setting
    plain = plan(RunSpec("brown", "kn5", {"text.sentence_ends": "no"}), data_dir=mirror)
    assert plain.vocab == {"sentence_ends": False} and plain.config_hash != base.config_hash
    with pytest.raises(UsageError, match="use --mode stream"):
        plan(RunSpec("brown", "kn5", {"text.sentence_ends": "false"}, mode="sentence"))
    with pytest.raises(UsageError, match="brown"):
        plan(RunSpec("ptb", "kn5", {"text.test_words": "5000"}), data_dir=mirror)
    with pytest.raises(UsageError, match="unknown setting text.words"):
        plan(RunSpec("brown", "kn5", {"text.words": "5"}), data_dir=mirror)
    for bad in ("0", "361192"):  # none, or no valid left: refused before any run starts
        with pytest.raises(UsageError, match="1 to 361,191"):
            plan(RunSpec("brown", "kn5", {"text.test_words": bad}), data_dir=mirror)
    unset = plan(RunSpec("brown", "kn5", {"text.test_words": "none"}), data_dir=mirror)
    assert unset.config_hash == base.config_hash
    with pytest.raises(UsageError, match="vocab.min_count must be >= 1"):
        plan(RunSpec("brown", "kn5", {"vocab.min_count": "0"}), data_dir=mirror)


def test_corpus_checksum_mismatch_names_the_file(tmp_path):
    bad = tmp_path / "mirror" / "ptb"
    bad.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (bad / f"ptb.{split}.txt").write_text(" a b \n")
    with pytest.raises(DataError, match=r"ptb\.train\.txt: sha256 .* does not match"):
        load_corpus("ptb", tmp_path / "mirror")


def test_vocabulary_comes_from_train_only(tiny_corpus):
    corpus = load_corpus(str(tiny_corpus))
    assert set(corpus.vocab.itos) == {"<eos>", "<unk>", "the", "cat", "sat", "dog", "ran"}
    test = corpus.splits["test"]
    assert corpus.vocab.decode(test.ids) == [
        "the",
        "dog",
        "ran",
        "<eos>",
        "the",
        "<unk>",
        "sat",
        "<eos>",
    ]
    assert test.oov_words == 1
    assert describe(corpus)["splits"]["valid"]["oov_rate"] == pytest.approx(3 / 6)


def test_vocab_settings_min_count_and_max_size():
    lines = [["a", "a", "a", "b", "b", "c"]]
    assert Vocab.build(lines, min_count=2).itos == ("<eos>", "<unk>", "a", "b")
    assert Vocab.build(lines, max_size=3).itos == ("<eos>", "<unk>", "a")


def test_bad_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "train.txt"
    path.write_bytes(b"fine line\nsecond\nbad \xff byte\n")
    with pytest.raises(DataError, match=r"train\.txt:3: not valid UTF-8"):
        read_lines(path)


def test_empty_and_missing_splits_are_named(tmp_path):
    folder = write_corpus(tmp_path / "c", "a b\n", "\n\n", "a\n")
    with pytest.raises(DataError, match=r"valid\.txt: empty split"):
        load_corpus(str(folder))
    with pytest.raises(DataError, match=r"missing split file"):
        read_lines(tmp_path / "nope.txt")


def test_word_stream_cut_splits_straddling_sentence():
    sents = [["a", "b", "c"], ["d", "e"], ["f"]]
    splits = cut_word_stream(sents, (2, 4))
    assert splits == {"train": [["a", "b"]], "valid": [["c"], ["d"]], "test": [["e"], ["f"]]}


def test_corpora_json_cli_prints_published_counts(mirror, capsys):
    from lmbench.cli import main

    assert main(["corpora", "--json", "--data-dir", str(mirror)]) == 0
    rows = {r["corpus"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["ptb"]["splits"]["test"]["tokens"] == 82_430
    assert rows["wikitext2"]["vocab_size"] == 33_278
    assert rows["brown"]["splits"]["test"]["words"] == 161_192
    assert (
        rows["ptb"]["differs_from_published"] == rows["wikitext2"]["differs_from_published"] == []
    )
    assert rows["brown"]["differs_from_published"] is None  # no token counts are published
    # not in the mirror, and --download not given: listed as missing, with what to do
    assert not rows["wikitext103"]["available"] and "wikitext-103" in rows["wikitext103"]["error"]


@pytest.mark.parametrize(
    "text",
    [b" a b \n\n c\td \r\n", b"a b\nc", b"x\x1fy z\n \n", "a\u00a0b c\n d\u2009e\n".encode()],
)
def test_fast_tokenizer_agrees_with_str_split(tmp_path, text):
    from lmbench.corpora.readers import read_tokens
    from lmbench.vocab import Tokens

    path = tmp_path / "t.txt"
    path.write_bytes(text)
    fast, slow = read_tokens(path), Tokens.from_lines(read_lines(path))
    assert fast.words == slow.words and fast.lengths.tolist() == slow.lengths.tolist()


def test_counts_that_differ_from_the_published_ones_are_named(mirror):
    import dataclasses

    from lmbench.corpora import differences
    from lmbench.corpora.specs import PTB

    corpus = load_corpus("ptb", mirror)
    assert differences(corpus, PTB) == []
    wrong = dataclasses.replace(PTB, published_tokens={"train": 929_000}, published_vocab=9_999)
    assert differences(corpus, wrong) == [
        "train 929,589 tokens (published 929,000)",
        "vocabulary 10,000 (published 9,999)",
    ]
    other = load_corpus("ptb", mirror, max_size=5000)  # other settings: other counts, by design
    assert differences(other, wrong) is None


def test_large_splits_are_encoded_in_blocks_to_the_same_ids(tmp_path, monkeypatch):
    """A split above LARGE_SPLIT_BYTES is read in blocks into ids on disk: the same ids, line
    ends, counts and vocabulary as the whole-file path, and the same segments in both modes."""
    import lmbench.corpora as corpora
    import lmbench.corpora.readers as readers
    from lmbench.spill import Spill

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(50)] + ["<unk>", "naïve"]
    lines = [" ".join(rng.choice(words, size=rng.integers(0, 12))) for _ in range(3_000)]
    text = "\n".join(lines) + "\n  trailing words without a newline"
    folder = write_corpus(tmp_path / "big", text, "w1 w2 zz\n\nw3\n", "w4 naïve\n")
    whole = load_corpus(str(folder))
    monkeypatch.setattr(corpora, "LARGE_SPLIT_BYTES", 0)
    monkeypatch.setattr(readers, "BLOCK_BYTES", 997)  # blocks cut between many lines
    blocks = load_corpus(str(folder))
    assert blocks.vocab == whole.vocab and blocks.sha256 == whole.sha256
    for name in ("train", "valid", "test"):
        a, b = blocks.splits[name], whole.splits[name]
        assert isinstance(a.ids, Spill)
        np.testing.assert_array_equal(np.asarray(a.ids), b.ids)
        np.testing.assert_array_equal(a.eos_positions, b.eos_positions)
        assert (a.words, a.oov_words, a.tokens, a.lines) == (
            b.words,
            b.oov_words,
            b.tokens,
            b.lines,
        )
        for mode in ("stream", "sentence"):
            sa, sb = blocks.segments(name, mode), whole.segments(name, mode)
            np.testing.assert_array_equal(np.asarray(sa.ids), sb.ids)
            np.testing.assert_array_equal(sa.starts, sb.starts)
            for n in {1, 7, sb.n_predicted // 2, sb.n_predicted - 1} & set(
                range(1, sb.n_predicted)
            ):
                ha, hb = sa.head(n), sb.head(n)
                assert hb.ids.size == sb.predicted_positions()[n - 1] + 1 and hb.n_predicted == n
                np.testing.assert_array_equal(np.asarray(ha.ids), hb.ids)
                np.testing.assert_array_equal(ha.starts, hb.starts)
    assert describe(blocks)["splits"] == describe(whole)["splits"]


def test_splits_in_memory_are_read_in_blocks_to_the_ids_of_the_whole_file(tmp_path, monkeypatch):
    """Splits that fit in memory are read a block of lines at a time (only a block's words are
    ever Python strs): the ids, <eos> positions and counts `Vocab.encode` gives for each whole
    file, whatever the block size; without sentence ends, each split as one line."""
    import lmbench.corpora.readers as readers
    from lmbench.corpora.readers import read_tokens
    from lmbench.vocab import Tokens

    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(80)] + ["<unk>", "<eos>", "naïve"]
    lines = [" ".join(rng.choice(words, size=rng.integers(0, 9))) for _ in range(2_000)]
    folder = write_corpus(tmp_path / "c", "\n".join(lines) + "\n", "w1 zz\n\nw3", "w4 naïve\n")
    for block_bytes in (readers.BLOCK_BYTES, 613):
        monkeypatch.setattr(readers, "BLOCK_BYTES", block_bytes)
        corpus = load_corpus(str(folder), min_count=2)
        whole = {s: read_tokens(folder / f"{s}.txt") for s in ("train", "valid", "test")}
        vocab = Vocab.build(whole["train"], min_count=2)
        assert corpus.vocab == vocab
        for name, tokens in whole.items():
            ids, eos, oov = vocab.encode(tokens)
            split = corpus.splits[name]
            assert split.ids.dtype == np.int32
            np.testing.assert_array_equal(split.ids, ids)
            np.testing.assert_array_equal(split.eos_positions, eos)
            assert (split.words, split.oov_words) == (len(tokens.words), oov)
        one_line = load_corpus(str(folder), min_count=2, sentence_ends=False)
        for name, tokens in whole.items():
            ids, eos, oov = vocab.encode(Tokens(tokens.words, np.array([len(tokens.words)])))
            split = one_line.splits[name]
            np.testing.assert_array_equal(split.ids, ids)
            np.testing.assert_array_equal(split.eos_positions, eos)
            assert (split.words, split.oov_words) == (len(tokens.words), oov)


def test_the_vocabulary_keeps_copies_of_the_counted_words():
    """The counted words are the text's own strs, spread over all of its memory: the
    vocabulary keeps copies, so the text's memory is freed with it."""
    from collections import Counter

    counted = "".join(["wo", "rd"])  # a str made at run time, as a split's words are
    vocab = Vocab.from_counts(Counter({counted: 3}))
    assert vocab.itos[2] == counted and vocab.itos[2] is not counted


def test_a_large_train_split_is_counted_and_encoded_in_one_read_by_parts(tmp_path, monkeypatch):
    """A large train split is read once, by children each numbering a range of its lines: the
    vocabulary, ids, line ends and counts are the whole-file ones for any number of parts (more
    parts than lines too), and a bad byte in a later range is reported at its line."""
    import lmbench.corpora as corpora
    import lmbench.corpora.encoded as encoded
    import lmbench.corpora.readers as readers
    from lmbench.corpora.readers import line_spans, read_tokens

    rng = np.random.default_rng(2)
    words = [f"w{i}" for i in range(40)] + ["<unk>", "é"]
    lines = [" ".join(rng.choice(words, size=rng.integers(0, 7))) for _ in range(500)]
    folder = write_corpus(tmp_path / "c", "\n".join(lines) + "\nlast line", "w1 zz\n", "w2\n")
    train = folder / "train.txt"
    spans = line_spans(train, 3)
    assert spans[0][0] == 0 and spans[-1][1] == train.stat().st_size
    raw = train.read_bytes()
    assert all(a == b for (_, a), (b, _) in zip(spans, spans[1:]))  # contiguous
    assert all(raw[a - 1 : a] == b"\n" for a, _ in spans[1:])  # each at a line's start
    tokens = read_tokens(train)
    vocab = Vocab.build(tokens, min_count=2)
    ids, eos, oov = vocab.encode(tokens)
    monkeypatch.setattr(corpora, "LARGE_SPLIT_BYTES", 0)
    monkeypatch.setattr(readers, "BLOCK_BYTES", 331)
    for parts in (1, 3, 2_000):
        monkeypatch.setattr(encoded, "PARTS", parts)
        corpus = load_corpus(str(folder), min_count=2)
        split = corpus.splits["train"]
        assert corpus.vocab == vocab
        np.testing.assert_array_equal(np.asarray(split.ids), ids)
        np.testing.assert_array_equal(split.eos_positions, eos)
        assert (split.words, split.oov_words) == (len(tokens.words), oov)
    bad = raw[: spans[-1][0]] + b"w1 \xff w2\n" + raw[spans[-1][0] :]
    train.write_bytes(bad)
    monkeypatch.setattr(encoded, "PARTS", 3)
    line = bad[: spans[-1][0]].count(b"\n") + 1
    with pytest.raises(DataError, match=rf"train\.txt:{line}: not valid UTF-8"):
        load_corpus(str(folder))
