import json

import pytest

from lmbench.corpora import describe, load_corpus
from lmbench.corpora.readers import cut_word_stream, read_lines
from lmbench.errors import DataError
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
