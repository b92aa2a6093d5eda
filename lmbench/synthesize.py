"""`lmbench synthesize`: a corpus of any size sampled from a count model, for measuring at scale.

The real 100 M-token corpora cannot always be fetched (or fit a test machine's disk and time);
text sampled from a kn5 trained on WikiText-2 has realistic n-gram statistics (Zipfian
unigrams, a long tail of rare 5-grams) and any size. Each split is written as documents of
`DOCUMENT_TOKENS` tokens, `streams` of them drawn at once (`BackoffSampler`), every document
starting after <eos> as stream mode does; <eos> ends a line. Each sampled <unk> becomes one of
`RARE_WORDS` words drawn from a Zipf-shaped tail, so the vocabulary grows with the text as real
text's does (WikiText-103: 267,735 types; a closed 33 K vocabulary would leave no word seen once
or twice at 10 M tokens, and modified Kneser-Ney's discounts undefined). The same arguments give
the same bytes: the seed, split and wave seed every draw. `synthesized.json` records them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .corpora import load_corpus
from .errors import UsageError
from .measure import Stopwatch
from .models.base import Budget
from .models.ngram.interpolated import InterpolatedNgram
from .models.ngram.sampler import BackoffSampler
from .models.registry import resolve

DOCUMENT_TOKENS = 1_000
RARE_WORDS = 250_000  # what <unk> stands for: p(k-th rare word) proportional to 1 / (k + 10)


def synthesize(
    corpus_name: str,
    model_spec: str,
    sets: dict,
    sizes: dict[str, int],
    seed: int,
    streams: int,
    out: Path,
    data_dir=None,
    note=print,
) -> dict:
    """Write out/{train,valid,test}.txt with `sizes[split]` tokens each; returns the manifest."""
    corpus = load_corpus(corpus_name, data_dir)
    model = resolve(model_spec, sets).build(corpus.vocab.size)
    if not isinstance(model, InterpolatedNgram):
        raise UsageError(
            f"synthesize samples a backoff n-gram model (kn5, wb3, ...), not {model_spec}"
        )
    watch = Stopwatch().start()
    model.fit(corpus.segments("train", "stream"), Budget())
    sampler = BackoffSampler(model.tables)
    out.mkdir(parents=True, exist_ok=True)
    words = [w.encode() + b" " for w in corpus.vocab.itos]
    words[corpus.vocab.eos] = b"\n"
    lookup = np.array(words + [f"rare{k} ".encode() for k in range(RARE_WORDS)], dtype=object)
    rare = 1.0 / (np.arange(RARE_WORDS) + 10.0)
    rare /= rare.sum()
    for index, (split, tokens) in enumerate(sizes.items()):
        with open(out / f"{split}.txt", "wb") as f:
            left = tokens
            for wave in range(math.ceil(tokens / (streams * DOCUMENT_TOKENS))):
                count = min(streams, math.ceil(left / DOCUMENT_TOKENS))
                drawn = sampler.sample(
                    count, DOCUMENT_TOKENS, corpus.vocab.eos, [seed, index, wave]
                )
                unknown = drawn == corpus.vocab.unk
                rng = np.random.default_rng([seed, index, wave, 1])
                drawn[unknown] = corpus.vocab.size + rng.choice(RARE_WORDS, unknown.sum(), p=rare)
                rows = list(drawn)
                rows[-1] = rows[-1][: left - (count - 1) * DOCUMENT_TOKENS]  # the split's end
                left -= sum(row.size for row in rows)
                f.write(_text(lookup, rows))
                note(f"{split}: {tokens - left:,} of {tokens:,} tokens ({watch.elapsed():.0f} s)")
    manifest = {
        "source_corpus": corpus.name,
        "source_sha256": corpus.sha256,
        "model": model_spec,
        "settings": sets,
        "seed": seed,
        "streams": streams,
        "document_tokens": DOCUMENT_TOKENS,
        "rare_words": RARE_WORDS,
        "tokens": sizes,
        "vocab_size": corpus.vocab.size,
        "seconds": watch.stop(),
    }
    (out / "synthesized.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _text(lookup: np.ndarray, documents) -> bytes:
    """Each document's words joined by spaces, <eos> a line end; a document ends a line."""
    parts = []
    for document in documents:
        text = b"".join(lookup[document])
        parts.append(text if text.endswith(b"\n") else text.rstrip(b" ") + b"\n")
    return b"".join(parts).replace(b" \n", b"\n")
