"""Brown's protocol table: why our kn5 differs from Bengio et al.'s 321, difference by difference,
each measured where a run can measure it and named as unexplained where none can."""

from __future__ import annotations

import pandas as pd

from ..corpora.specs import BROWN_CUTS, BROWN_WORDS
from ..plan import corpus_settings
from ..records import is_full_data
from ..suites import (
    BROWN_NO_EOS,
    BROWN_PAPER_PROTOCOL,
    BROWN_PAPER_TEST,
    BROWN_PAPER_VOCAB,
    REPRODUCTION,
)
from .markdown import table
from .reproduction import our_match
from .runs import Runs

PAPER_ROW = "KN back-off 5-gram"
PAPER_TEST_WORDS = 181_041  # Bengio et al. 2003, section 4.1
NLTK_TEST_WORDS = BROWN_WORDS - BROWN_CUTS[1]  # ours: what NLTK's stream leaves after valid


def _variant_run(runs: Runs, sets: dict) -> dict | None:
    """The newest Brown kn5 run of the reproduce suite made with exactly these corpus
    settings (`--set` keys, as the suite gives them)."""
    wanted = corpus_settings(sets)
    found = [
        r
        for r in runs.ok(REPRODUCTION)
        if (r["corpus"], r["model"], r["mode"]) == ("brown", "kn5", "stream")
        and (r.get("extra") or {}).get("vocab") == wanted
        and is_full_data(r)
    ]
    return found[-1] if found else None


def protocol_table(runs: Runs, published: pd.DataFrame) -> str:
    paper = published[(published.corpus == "brown") & (published.model == PAPER_ROW)]
    ours = our_match(runs, "brown", "kn5", "stream")
    if paper.empty or ours is None:
        return ""
    target = float(paper.test_ppl.iloc[0])
    base = ours.first
    missing = "not run yet: `lmbench run --suite reproduce --resume`"

    def row(difference: str, sets: dict | None) -> dict:
        run = base if sets is None else _variant_run(runs, sets)
        ppl = run and run["test_ppl"]
        how = f"the {run and run.get('suite')} suite's kn5" + (
            " with `" + " ".join(f"{k}={v}" for k, v in sets.items()) + "`" if sets else ""
        )
        return {
            "difference from the paper": difference,
            "measured by": how if ppl else missing,
            "test tokens": f"{run['eval_tokens']:,}" if ppl else None,
            "our kn5 test ppl": ppl,
            "/ as run": ppl / base["test_ppl"] if ppl else None,
            f"paper ({target:.0f}) / ours": target / ppl if ppl else None,
        }

    rows = [
        row(
            f"none: our protocol (|V| = {base['vocab_size']:,}, an <eos> predicted at each "
            "sentence end and kept in the context)",
            None,
        ),
        row(
            "no sentence ends: the word stream alone, no <eos> predicted or in any context (one "
            "reading of the paper's 'we did not give a special status to end-of-sentence "
            "tokens'; each split keeps one, its last token)",
            BROWN_NO_EOS,
        ),
        row(
            f"the paper's |V| = 16,383 (ours: {base['vocab_size']:,}): its size, not its rule "
            "(frequency <= 3 merged gives us the smaller one)",
            BROWN_PAPER_VOCAB,
        ),
        row(
            f"the paper's test size, {PAPER_TEST_WORDS:,} words (ours {NLTK_TEST_WORDS:,}): the "
            f"last {PAPER_TEST_WORDS - NLTK_TEST_WORDS:,} words of valid moved to test",
            BROWN_PAPER_TEST,
        ),
        row("all three", BROWN_PAPER_PROTOCOL),
    ]
    every = rows[-1]["our kn5 test ppl"]
    vocab_only = rows[2]["our kn5 test ppl"]
    if every and vocab_only:
        together = (
            f"Read as a word stream, the three measured differences together bring ours to "
            f"{every:.2f}, and a factor of {target / every:.2f} remains unexplained. The "
            "paper's sentence can also be read as end-of-sentence tokens present and counted "
            "like any word, as ours are: then only the vocabulary and the test size differ "
            f"(the vocabulary alone gives {vocab_only:.2f}; the test size moves kn5 by "
            f"{abs(rows[3]['/ as run'] - 1):.1%}), and a factor of about "
            f"{target / vocab_only:.2f} remains."
        )
    else:
        together = "Not every difference is measured yet (see the table)."
    lines = [
        "### Brown: why our kn5 is not Bengio et al.'s",
        "",
        f"Their KN back-off 5-gram scores {target:.0f} on Brown's test set; ours "
        f"{base['test_ppl']:.2f} on a nominally identical split (the first 800,000 words "
        "train, the next 200,000 valid, the rest test). Each difference we can reproduce is "
        "measured by a kn5 run that changes it alone (kn5 is deterministic: one run each):",
        "",
        table(pd.DataFrame(rows)),
        "",
        f"{together} Not measured: the paper's stream has 1,181,041 words in the same corpus, "
        "NLTK's 1,161,192; the paper counts the marks that separate texts and paragraphs as "
        "tokens (its 47,578 types include them), which may account for much of the 19,849 "
        "and would move the 800,000 and 1,000,000-word cuts (lmbench has no paragraph-mark "
        "variant yet); and its smoothing software (SRILM's back-off modified KN; ours is "
        "interpolated, checked against lmplz's own ARPA files on a PTB slice in the tests). "
        "We do not know which of these accounts for the rest.",
    ]
    return "\n".join(lines)
