"""Brown's protocol table: why our kn5 differs from Bengio et al.'s 321, difference by difference,
each measured where a run can measure it and named as unexplained where none can."""

from __future__ import annotations

import pandas as pd

from ..suites import BROWN_PAPER_VOCAB, REPRODUCTION
from .markdown import table
from .reproduction import our_match
from .runs import Runs

PAPER_ROW = "KN back-off 5-gram"
PAPER_TEST_WORDS = 181_041  # Bengio et al. 2003, section 4.1
WITHOUT_EOS = "test_ppl_eos_excluded"


def _paper_vocab_run(runs: Runs) -> dict | None:
    """The newest Brown kn5 run at the paper's vocabulary size (the reproduce suite's)."""
    wanted = {k.split(".", 1)[1]: int(v) for k, v in BROWN_PAPER_VOCAB.items()}
    found = [
        r
        for r in runs.ok(REPRODUCTION)
        if (r["corpus"], r["model"], r["mode"]) == ("brown", "kn5", "stream")
        and (r.get("extra") or {}).get("vocab") == wanted
    ]
    return found[-1] if found else None


def protocol_table(runs: Runs, published: pd.DataFrame) -> str:
    paper = published[(published.corpus == "brown") & (published.model == PAPER_ROW)]
    ours = our_match(runs, "brown", "kn5", "stream")
    if paper.empty or ours is None:
        return ""
    target = float(paper.test_ppl.iloc[0])
    base = ours.first
    vocab = _paper_vocab_run(runs)
    rerun = "not measured: this run predates the figure (`lmbench run --suite reproduce`)"

    def row(difference: str, how: str, ppl: float | None, missing: str = rerun) -> dict:
        return {
            "difference from the paper": difference,
            "measured by": how if ppl else missing,
            "our kn5 test ppl": ppl,
            "/ as run": ppl / base["test_ppl"] if ppl else None,
            f"paper ({target:.0f}) / ours": target / ppl if ppl else None,
        }

    rows = [
        row(
            f"none: our protocol (|V| = {base['vocab_size']:,}, <eos> predicted, "
            f"{base['eval_tokens']:,} test tokens)",
            f"the {base.get('suite')} suite's kn5",
            base["test_ppl"],
        ),
        row(
            "<eos> not predicted (the paper gives sentence ends no special status)",
            "approximated: the same scores averaged over the word tokens only (the model still "
            "gives <eos> its probability mass)",
            (base.get("extra") or {}).get(WITHOUT_EOS),
        ),
        row(
            f"the paper's |V| = 16,383 (ours: {base['vocab_size']:,}): its size, not its "
            "rule (frequency <= 3 merged gives us the smaller one)",
            "kn5 with `vocab.min_count=3 vocab.max_size=16383`",
            vocab and vocab["test_ppl"],
            "not run yet: `lmbench run --suite reproduce`",
        ),
        row(
            "both",
            "that run's word tokens only",
            vocab and (vocab.get("extra") or {}).get(WITHOUT_EOS),
            "not run yet: `lmbench run --suite reproduce`",
        ),
    ]
    both = rows[-1]["our kn5 test ppl"]
    if both:
        together = (
            f"Both measured differences together bring ours to {both:.2f}; a factor of "
            f"{target / both:.2f} remains unexplained."
        )
    else:
        together = "Not every difference is measured yet (see the table)."
    lines = [
        "### Brown: why our kn5 is not Bengio et al.'s",
        "",
        f"Their KN back-off 5-gram scores {target:.0f} on Brown's test set; ours "
        f"{base['test_ppl']:.2f} on a nominally identical split (the first 800,000 words "
        "train, the next 200,000 valid, the rest test). Each difference we can reproduce, "
        "measured by a run or approximated as its row says (kn5 is deterministic: one run "
        "each):",
        "",
        table(pd.DataFrame(rows)),
        "",
        f"{together} Not measured: the test text (ours "
        f"{base['eval_tokens']:,} tokens with <eos>, the paper's {PAPER_TEST_WORDS:,} words in "
        "the same corpus: its tokenization splits about 20,000 more words, so its word stream "
        "and its cuts differ from NLTK's), and its smoothing software (SRILM's modified KN; "
        "ours is checked against lmplz's own ARPA files on a PTB slice in the tests). We do "
        "not know which of these accounts for the rest.",
    ]
    return "\n".join(lines)
