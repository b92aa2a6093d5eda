"""The download path against an HTTP server on 127.0.0.1: order of sources, verification, cache."""

import hashlib
import http.server
import io
import threading
import zipfile

import pytest

from lmbench.corpora import fetch
from lmbench.corpora.specs import CorpusFile, Source
from lmbench.errors import DataError

GOOD = b" the cat sat \n the dog ran \n"


@pytest.fixture
def server(tmp_path):
    """Serves tmp_path/www on 127.0.0.1 and counts requests per path."""
    root = tmp_path / "www"
    root.mkdir()
    hits: dict[str, int] = {}

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def do_GET(self):
            hits[self.path] = hits.get(self.path, 0) + 1
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    fetch._download.cache_clear()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root, hits
    httpd.shutdown()
    fetch._download.cache_clear()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_downloads_verifies_and_caches(server, isolated_cache):
    url, root, hits = server
    (root / "train.txt").write_bytes(GOOD)
    spec = CorpusFile("toy/train.txt", sha256(GOOD), (Source(f"{url}/train.txt"),))
    got = fetch.locate(spec)
    assert got.origin == f"{url}/train.txt"
    assert got.path == isolated_cache / "toy" / "train.txt"
    assert got.path.read_bytes() == GOOD
    fetch._download.cache_clear()
    again = fetch.locate(spec)
    assert again.origin == "cache" and hits["/train.txt"] == 1


def test_corrupted_source_falls_through_to_next(server, isolated_cache):
    url, root, hits = server
    (root / "broken.txt").write_bytes(GOOD[:-5] + b"XXXX\n")  # truncated/corrupted copy
    (root / "good.txt").write_bytes(GOOD)
    spec = CorpusFile(
        "toy/train.txt", sha256(GOOD), (Source(f"{url}/broken.txt"), Source(f"{url}/good.txt"))
    )
    assert fetch.locate(spec).origin == f"{url}/good.txt"
    assert hits == {"/broken.txt": 1, "/good.txt": 1}


def test_bad_checksum_everywhere_is_an_error_and_caches_nothing(server, isolated_cache):
    url, root, _ = server
    (root / "train.txt").write_bytes(GOOD)
    spec = CorpusFile(
        "toy/train.txt", "0" * 64, (Source(f"{url}/train.txt"), Source(f"{url}/missing.txt"))
    )
    with pytest.raises(DataError) as err:
        fetch.locate(spec)
    message = str(err.value)
    assert "toy/train.txt" in message and "sha256" in message and "404" in message
    assert "LMBENCH_DATA" in message
    assert not (isolated_cache / "toy" / "train.txt").exists()


def test_archive_member_and_archive_digest(server, isolated_cache):
    url, root, _ = server
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("corpus/train.txt", GOOD)
    payload = buffer.getvalue()
    (root / "corpus.zip").write_bytes(payload)
    md5 = hashlib.md5(payload).hexdigest()
    good = CorpusFile(
        "toy/train.txt", sha256(GOOD), (Source(f"{url}/corpus.zip", "corpus/train.txt", md5=md5),)
    )
    assert fetch.locate(good).path.read_bytes() == GOOD
    wrong_md5 = CorpusFile(
        "toy/other.txt",
        sha256(GOOD),
        (Source(f"{url}/corpus.zip", "corpus/train.txt", md5="0" * 32),),
    )
    with pytest.raises(DataError, match="md5"):
        fetch.locate(wrong_md5)


def test_corrupted_cache_is_downloaded_again(server, isolated_cache):
    url, root, hits = server
    (root / "train.txt").write_bytes(GOOD)
    cached = isolated_cache / "toy" / "train.txt"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"garbage\n")
    spec = CorpusFile("toy/train.txt", sha256(GOOD), (Source(f"{url}/train.txt"),))
    assert fetch.locate(spec).origin.startswith("http://127.0.0.1")
    assert cached.read_bytes() == GOOD


def test_mirror_wins_and_is_verified(server, tmp_path, isolated_cache):
    url, _, hits = server
    mirror = tmp_path / "mirror"
    (mirror / "toy").mkdir(parents=True)
    (mirror / "toy" / "train.txt").write_bytes(GOOD)
    spec = CorpusFile("toy/train.txt", sha256(GOOD), (Source(f"{url}/train.txt"),))
    assert fetch.locate(spec, mirror).origin == "mirror" and not hits
    (mirror / "toy" / "train.txt").write_bytes(GOOD + b"tampered\n")
    with pytest.raises(DataError, match="mirror copy is corrupted"):
        fetch.locate(spec, mirror)


def test_wikitext103_downloads_from_a_stand_in_archive_laid_out_as_the_real_one(
    server, isolated_cache, monkeypatch, tmp_path
):
    """The real archive cannot be fetched here: a small zip with WikiText-103's member paths,
    served locally, goes through the corpus's own sources (their URLs pointed at the server)
    and its sha1 checks (the stand-in's digests in place of the published ones)."""
    import dataclasses

    from lmbench.corpora import load_corpus, specs

    url, root, hits = server
    texts = {
        "train": b" = Valkyria = \n\n the cat sat on the mat \n the dog ran \n",
        "valid": b" the cat ran \n",
        "test": b" the dog sat on a mat \n",
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for split, text in texts.items():
            archive.writestr(f"wikitext-103/wiki.{split}.tokens", text)
    payload = buffer.getvalue()
    (root / "wikitext-103-v1.zip").write_bytes(payload)
    real = specs.WIKITEXT103
    assert [s.url.rsplit("/", 1)[1] for s in real.files["train"].sources] == [
        "wikitext-103-v1.zip"
    ] * 2
    assert all(f.sha256 is None and len(f.sha1) == 40 for f in real.files.values())

    def stand_in(split: str) -> specs.CorpusFile:
        file = real.files[split]
        sources = tuple(
            dataclasses.replace(
                source,
                url=f"{url}/wikitext-103-v1.zip",
                md5=hashlib.md5(payload).hexdigest(),
                sha1=hashlib.sha1(payload).hexdigest(),
            )
            for source in file.sources[:1]
        )
        return dataclasses.replace(
            file, sources=sources, sha1=hashlib.sha1(texts[split]).hexdigest()
        )

    served = dataclasses.replace(real, files={s: stand_in(s) for s in texts})
    monkeypatch.setitem(specs.CORPORA, "wikitext103", served)
    monkeypatch.setenv("LMBENCH_DATA", str(tmp_path / "no-mirror"))
    corpus = load_corpus("wikitext103")
    assert corpus.splits["train"].words == 12 and corpus.splits["test"].oov_words == 1
    assert hits == {"/wikitext-103-v1.zip": 1}  # one archive for the three splits
    cached = isolated_cache / "wikitext-103" / "wiki.test.tokens"
    assert cached.read_bytes() == texts["test"]
    broken = dataclasses.replace(served.files["test"], sha1="0" * 40)
    cached.unlink()
    with pytest.raises(DataError, match="sha1"):
        fetch.locate(broken)


def test_the_wikitext103_variant_scores_wikitext2_in_its_vocabulary(tmp_path, monkeypatch):
    """`wikitext103-wt2`: WikiText-103's train, WikiText-2's valid, test and vocabulary."""
    import dataclasses

    from lmbench.corpora import load_corpus, specs

    variant = specs.CORPORA["wikitext103-wt2"]
    wt2, wt103 = specs.WIKITEXT2.files, specs.WIKITEXT103.files
    assert variant.files == {
        "train": wt103["train"],
        "valid": wt2["valid"],
        "test": wt2["test"],
        "vocab": wt2["train"],
    }
    mirror = tmp_path / "mirror"
    texts = {
        "wikitext-103/wiki.train.tokens": b" the cat sat on the mat \n a zebra ran \n",
        "wikitext-2/wiki.train.tokens": b" the cat sat \n the dog ran \n",
        "wikitext-2/wiki.valid.tokens": b" the dog sat \n",
        "wikitext-2/wiki.test.tokens": b" the cat ran \n",
    }
    for path, text in texts.items():
        (mirror / path).parent.mkdir(parents=True, exist_ok=True)
        (mirror / path).write_bytes(text)
    files = {key: CorpusFile(f.path, sha256(texts[f.path]), ()) for key, f in variant.files.items()}
    monkeypatch.setitem(specs.CORPORA, "wikitext103-wt2", dataclasses.replace(variant, files=files))
    corpus = load_corpus("wikitext103-wt2", mirror)
    # the vocabulary is WikiText-2's train words: WikiText-103's "on", "mat", "a", "zebra" are <unk>
    assert set(corpus.vocab.itos) == {"<eos>", "<unk>", "the", "cat", "sat", "dog", "ran"}
    assert corpus.splits["train"].oov_words == 4 and corpus.splits["test"].oov_words == 0
