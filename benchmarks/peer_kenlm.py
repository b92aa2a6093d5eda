"""lmbench's count models beside KenLM, measured in one run: `python benchmarks/peer_kenlm.py`.

Needs KenLM's `lmplz` (and `build_binary`) on PATH and the `kenlm` Python module; lmbench does
not ship or build them. Every timing is a fresh process, the tools alternate, and medians of
`--repeats` are reported with their ratios; results go to results/peers/<host>-<date>/.

Measured:
- estimation: PTB train text -> scorable kn5 (ours) and -> ARPA file (ours, lmplz -o 5 -S 100M):
  wall time and peak RSS of the process;
- scoring: per-token log-probabilities of PTB train+valid+test (1.09 M tokens), ours vs KenLM's
  `full_scores` on the same kn5 model (KenLM's binary probing format);
- growth: our kn5 estimate on 10% vs 100% of WikiText-2 train;
- NLTK's KneserNeyInterpolated per-token scoring cost beside ours (a speed-only peer);
- decoder queries: one word per call, state carried, over the first 10,000 PTB test tokens
  (sentence mode): our kn5's `query` against KenLM's `BaseScore` with its State on the same
  model (ours, written as ARPA and loaded by KenLM), alternating passes; the answers compared.
  Needs only the `kenlm` module: `python benchmarks/peer_kenlm.py --only queries`.
- scale (`--only scale`, needs only lmplz): kn5 to an ARPA file on corpora of `--sizes` tokens
  sampled from WikiText-2's kn5 (`lmbench synthesize`), ours under `--set memory=CAP` beside
  `lmplz -S CAP` for each of `--caps`: wall time, peak RSS, and the n-gram counts of both files.
- memory (`--only memory`, needs only lmplz): WikiText-2's train text to a kn5 ARPA file, ours
  under `--set memory=CAP` beside `lmplz -S CAP` for each of `--caps` (100M,1G), and both by
  default (80% of physical memory; ours in memory): peak RSS of each fresh process, and its time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from peer_results import corpus_folder, save_peer_results

from lmbench.measure import Stopwatch, environment

PYTHON = sys.executable
ESTIMATE = """
import sys
from lmbench.corpora import load_corpus
from lmbench.models.base import Budget
from lmbench.models.registry import resolve
corpus = load_corpus(sys.argv[1], sys.argv[2])
train = corpus.segments("train", "sentence")
tokens = int(sys.argv[4]) if len(sys.argv) > 4 else None
model = resolve("kn5").build(corpus.vocab.size)
model.fit(train, Budget(tokens=tokens))
if sys.argv[3] != "-":
    model.export_arpa(sys.argv[3], corpus.vocab.itos)
else:  # scorable means scored: the first query builds the lookup index
    model.log_prob(corpus.segments("test", "sentence").head(20))
"""


def timed(cmd: list[str]) -> tuple[float, int, float]:
    """Wall seconds, peak RSS bytes and CPU seconds (user + system: above the wall time, the
    process used several cores) of one fresh process."""
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: nothing to drain meanwhile
        watch = Stopwatch().start()
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = watch.stop()
        if status != 0:
            errors.seek(0)
            said = errors.read().decode(errors="replace").strip()[-2_000:]
            code = os.waitstatus_to_exitcode(status)
            raise RuntimeError(f"{cmd[0]} exited with {code}: {' '.join(cmd)}\n{said}")
    return seconds, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


def alternate(commands: dict[str, list[str]], repeats: int) -> dict[str, dict]:
    runs: dict[str, list[tuple[float, int, float]]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, cmd in commands.items():
            runs[name].append(timed(cmd))
    return {
        name: {
            "median_s": statistics.median(s for s, _, _ in r),
            "runs_s": [s for s, _, _ in r],
            "peak_rss_mb": max(m for _, m, _ in r) / 2**20,
            "median_cpu_s": statistics.median(c for _, _, c in r),
        }
        for name, r in runs.items()
    }


def ptb_text(data_dir: str, folder: Path) -> tuple[Path, list[list[str]]]:
    """PTB train as lmplz reads it: `<unk>` rewritten to a plain word (lmplz reserves <unk>)."""
    from lmbench.corpora.readers import read_lines

    path = folder / "ptb.train.lmplz.txt"
    lines = read_lines(Path(data_dir) / "ptb" / "ptb.train.txt")
    path.write_text(
        "".join(" ".join("UNK" if w == "<unk>" else w for w in line) + "\n" for line in lines)
    )
    return path, lines


def scoring(data_dir: str, arpa: Path, folder: Path, repeats: int) -> dict:
    import kenlm
    import numpy as np

    from lmbench.corpora import load_corpus
    from lmbench.models.base import Budget
    from lmbench.models.registry import resolve
    from lmbench.protocol import Segments

    binary = folder / "kn5.probing"
    subprocess.run(
        ["build_binary", "probing", str(arpa), str(binary)], check=True, capture_output=True
    )
    lm = kenlm.Model(str(binary))
    corpus = load_corpus("ptb", data_dir)
    model = resolve("kn5").build(corpus.vocab.size)
    model.fit(corpus.segments("train", "sentence"), Budget())
    parts = [corpus.segments(s, "sentence") for s in ("train", "valid", "test")]
    ids = np.concatenate([p.ids for p in parts])
    offsets = np.cumsum([0] + [p.ids.size for p in parts[:-1]])
    starts = np.concatenate([p.starts[:-1] + o for p, o in zip(parts, offsets)] + [[ids.size]])
    text = Segments(ids, starts)
    itos = corpus.vocab.itos
    sentences = [
        " ".join("UNK" if itos[t] == "<unk>" else itos[t] for t in seg[1:-1])
        for seg in np.split(ids, starts[1:-1])
    ]
    tokens = text.n_predicted
    ours, theirs = [], []
    for _ in range(repeats):
        watch = Stopwatch().start()
        ours_lp = model.log_prob(text)
        ours.append(watch.stop())
        watch.start()
        theirs_lp = [p for s in sentences for p, _, _ in lm.full_scores(s)]
        theirs.append(watch.stop())
    assert len(theirs_lp) == ours_lp.size == tokens
    agree = float(np.max(np.abs(ours_lp / np.log(10) - np.array(theirs_lp))))
    return {
        "tokens": tokens,
        "ours_tokens_per_s": tokens / statistics.median(ours),
        "kenlm_full_scores_tokens_per_s": tokens / statistics.median(theirs),
        "ratio_ours_to_kenlm": statistics.median(theirs) / statistics.median(ours),
        "max_abs_log10_difference": agree,
    }


def queries(data_dir: str, folder: Path, repeats: int, count: int = 10_000) -> dict:
    """Microseconds per decoder query, ours and KenLM's, on one model (ours, via ARPA)."""
    import kenlm
    import numpy as np

    from lmbench.corpora import load_corpus
    from lmbench.latency import first_segments, query_pass
    from lmbench.models.base import Budget
    from lmbench.models.ngram.arpa import arpa_words
    from lmbench.models.registry import resolve

    corpus = load_corpus("ptb", data_dir)
    model = resolve("kn5").build(corpus.vocab.size)
    model.fit(corpus.segments("train", "sentence"), Budget())
    arpa = model.export_arpa(folder / "ours.arpa", corpus.vocab.itos)
    lm = kenlm.Model(str(arpa))  # KenLM's default structure for an ARPA file: probing
    rows = first_segments(corpus.segments("test", "sentence"), count)
    names = arpa_words(corpus.vocab.itos)
    sentences = [[names[t] for t in row[1:]] for row in rows]  # each ends with </s>

    def kenlm_pass() -> list[float]:
        state, out, scores = kenlm.State(), kenlm.State(), []
        for words in sentences:
            lm.BeginSentenceWrite(state)
            for word in words:
                scores.append(lm.BaseScore(state, word, out))
                state, out = out, state
        return scores

    def ours_pass() -> list[float]:
        return query_pass(model, rows)

    seconds = {"ours": [], "kenlm": []}
    answers = {}
    for round_ in range(repeats + 1):  # round 0 warms both (our lookups' memoryviews, caches)
        order = [("ours", ours_pass), ("kenlm", kenlm_pass)]
        for name, run in order if round_ % 2 else order[::-1]:
            watch = Stopwatch().start()
            answers[name] = run()
            if round_:
                seconds[name].append(watch.stop())
    n = len(answers["ours"])
    assert n == len(answers["kenlm"]) >= count
    us = {name: 1e6 * statistics.median(s) / n for name, s in seconds.items()}
    difference = np.abs(np.array(answers["ours"]) / np.log(10) - np.array(answers["kenlm"]))
    return {
        "queries": n,
        "ours_us_per_query": us["ours"],
        "kenlm_base_score_us_per_query": us["kenlm"],
        "ratio_ours_to_kenlm": us["ours"] / us["kenlm"],
        "max_abs_log10_difference": float(difference.max()),
        "runs_s": seconds,
    }


def nltk_cost(data_dir: str, train_tokens: int = 20_000, scored: int = 300) -> dict:
    from nltk.lm import KneserNeyInterpolated
    from nltk.lm.preprocessing import padded_everygram_pipeline

    from lmbench.corpora import load_corpus
    from lmbench.corpora.readers import read_lines
    from lmbench.models.base import Budget
    from lmbench.models.registry import resolve

    lines = read_lines(Path(data_dir) / "ptb" / "ptb.train.txt")
    head, count = [], 0
    for line in lines:
        head.append(line)
        count += len(line) + 1
        if count >= train_tokens:
            break
    grams, vocab = padded_everygram_pipeline(3, head)
    peer = KneserNeyInterpolated(3)
    peer.fit(grams, vocab)
    test = [
        w
        for line in read_lines(Path(data_dir) / "ptb" / "ptb.test.txt")[:40]
        for w in (*line, "</s>")
    ][:scored]
    watch = Stopwatch().start()
    for i in range(2, len(test)):
        peer.score(test[i], test[i - 2 : i])
    nltk_per_token = watch.stop() / (len(test) - 2)
    corpus = load_corpus("ptb", data_dir)
    model = resolve("kn3").build(corpus.vocab.size)
    model.fit(corpus.segments("train", "sentence").head(train_tokens), Budget())
    window = corpus.segments("test", "stream")
    watch.start()
    model.log_prob(window)
    ours_per_token = watch.stop() / window.n_predicted
    return {
        "nltk_train_tokens": count,
        "nltk_ms_per_token": 1e3 * nltk_per_token,
        "ours_ms_per_token": 1e3 * ours_per_token,
        "ratio_nltk_to_ours": nltk_per_token / ours_per_token,
    }


def arpa_counts(path: Path) -> list[int]:
    """The `ngram n=count` header of an ARPA file."""
    counts = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("ngram "):
                counts.append(int(line.split("=")[1]))
            elif line.startswith("\\1-grams:"):
                return counts
    return counts


def lmplz_to_arpa(text: Path, arpa: Path, cap: str | None, folder: Path) -> list[str]:
    """`lmplz -o 5 -S CAP`; no `cap`: its default (80% of physical memory)."""
    memory = ["-S", cap] if cap else []
    return [
        "lmplz",
        "-o",
        "5",
        *memory,
        "-T",
        str(folder),
        "--text",
        str(text),
        "--arpa",
        str(arpa),
    ]


def ours_to_arpa(corpus: str, arpa: Path, cap: str | None, data_dir: str = "") -> list[str]:
    """`lmbench export-arpa` of kn5, sentence mode as lmplz; no `cap`: the default (in memory
    when the estimate fits 80% of physical memory, as lmplz's default -S)."""
    memory = ["--set", f"memory={cap}"] if cap else []
    where = ["--data-dir", data_dir] if data_dir else []
    return [PYTHON, "-m", "lmbench.cli", "export-arpa", "--corpus", corpus, "--model", "kn5"] + [
        *memory,
        *where,
        "--mode",
        "sentence",
        "--out",
        str(arpa),
    ]


def memory(data_dir: str, folder: Path, repeats: int, caps: list[str]) -> dict:
    """WikiText-2's train text to a kn5 ARPA file: peak RSS (and time) of lmplz under each -S
    of `caps`, of ours under the same memory= caps, and of ours by default, alternating."""
    text = folder / "wikitext2.train.lmplz.txt"  # lmplz reserves <unk>: the word is renamed
    with open(text, "wb") as out:
        source = Path(data_dir) / "wikitext-2" / "wiki.train.tokens"
        subprocess.run(["sed", "s/<unk>/UNK/g", str(source)], stdout=out, check=True)
    commands = {}
    for cap in caps:
        commands[f"lmplz -S {cap}"] = lmplz_to_arpa(text, folder / "lmplz.arpa", cap, folder)
        commands[f"ours memory={cap}"] = ours_to_arpa(
            "wikitext2", folder / "ours.arpa", cap, data_dir
        )
    commands["lmplz default"] = lmplz_to_arpa(text, folder / "lmplz.arpa", None, folder)
    commands["ours default"] = ours_to_arpa("wikitext2", folder / "ours.arpa", None, data_dir)
    measured = alternate(commands, repeats)
    peak = {name: m["peak_rss_mb"] for name, m in measured.items()}
    return {
        "corpus": "wikitext2",
        "measured": measured,
        "peak_ratios": {
            **{
                f"ours/lmplz at {cap}": peak[f"ours memory={cap}"] / peak[f"lmplz -S {cap}"]
                for cap in caps
            },
            **{
                f"ours default/lmplz -S {cap}": peak["ours default"] / peak[f"lmplz -S {cap}"]
                for cap in caps
            },
            "ours default/lmplz default": peak["ours default"] / peak["lmplz default"],
        },
        "ngram_counts": {
            "ours": arpa_counts(folder / "ours.arpa"),
            "lmplz": arpa_counts(folder / "lmplz.arpa"),
        },
    }


def scale(
    data_dir: str, folder: Path, repeats: int, sizes: list[str], caps: list[str], root: Path
) -> dict:
    """kn5 to an ARPA file at scale, ours (`lmbench export-arpa --set memory=CAP`) beside
    `lmplz -o 5 -S CAP`, alternating, on corpora sampled from WikiText-2's kn5
    (`lmbench synthesize`, made once under `root` and reused: never timed)."""
    results = {}
    for size in sizes:
        corpus = root / f"wikitext2-kn5-{size}-seed0"
        if not (corpus / "synthesized.json").exists():
            subprocess.run(
                [PYTHON, "-m", "lmbench.cli", "synthesize", "--tokens", size]
                + ["--out", str(corpus), "--data-dir", data_dir],
                check=True,
            )
        text = corpus / "train.lmplz.txt"  # lmplz reserves <unk>: the word is renamed for it
        if not text.exists():
            with open(text, "wb") as out:
                subprocess.run(
                    ["sed", "s/<unk>/UNK/g", str(corpus / "train.txt")], stdout=out, check=True
                )
        row: dict = {"corpus": str(corpus), "train_bytes": (corpus / "train.txt").stat().st_size}
        for cap in caps:
            ours, theirs = folder / "ours.arpa", folder / "lmplz.arpa"
            measured = alternate(
                {
                    "lmplz": lmplz_to_arpa(text, theirs, cap, folder),
                    "ours": ours_to_arpa(str(corpus), ours, cap),
                },
                repeats,
            )
            counts = {"ours": arpa_counts(ours), "lmplz": arpa_counts(theirs)}
            row[cap] = {
                **measured,
                "ratio_ours_over_lmplz": measured["ours"]["median_s"]
                / measured["lmplz"]["median_s"],
                "ngram_counts": counts,
                # lmplz adds its own <unk> unigram beside the renamed word
                "same_ngrams_orders_2_up": counts["ours"][1:] == counts["lmplz"][1:],
            }
            print(json.dumps({size: {cap: row[cap]}}), file=sys.stderr)
        results[size] = row
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("LMBENCH_DATA"),
        help="offline corpus mirror (default: $LMBENCH_DATA, else PTB and WikiText-2 are "
        "downloaded into lmbench's cache)",
    )
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--only",
        choices=["queries", "scale", "memory"],
        help="queries: only the decoder-query comparison (needs the kenlm module, not lmplz); "
        "scale: only kn5 at --sizes tokens under --caps, beside lmplz; memory: only kn5 on "
        "WikiText-2 under --caps (default 100M,1G) and by default, beside lmplz",
    )
    parser.add_argument("--sizes", default="10M,100M", help="scale: train tokens (10M,100M)")
    parser.add_argument(
        "--caps", default=None, help="scale, memory: memory caps, -S for lmplz (2G,4G; 100M,1G)"
    )
    parser.add_argument(
        "--scale-dir",
        default=str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lmbench"),
        help="scale: where the synthesized corpora are made once and kept",
    )
    args = parser.parse_args()
    if args.only in ("scale", "memory") and shutil.which("lmplz") is None:
        print("lmplz is not on PATH: build KenLM and add its bin/ to PATH", file=sys.stderr)
        return 2
    args.data_dir = corpus_folder(args.data_dir, ("ptb", "wikitext2"))
    if args.only == "memory":
        with tempfile.TemporaryDirectory() as tmp:
            caps = (args.caps or "100M,1G").split(",")
            result = memory(args.data_dir, Path(tmp), args.repeats, caps)
        save_peer_results("kenlm-memory", {"env": environment(), "memory": result}, args.out)
        return 0
    if args.only == "scale":
        with tempfile.TemporaryDirectory() as tmp:
            result = scale(
                args.data_dir,
                Path(tmp),
                args.repeats,
                args.sizes.split(","),
                (args.caps or "2G,4G").split(","),
                Path(args.scale_dir) / "synthetic",
            )
        name = "kenlm-scale-" + args.sizes.replace(",", "-")
        save_peer_results(name, {"env": environment(), "scale": result}, args.out)
        return 0
    try:
        import kenlm  # noqa: F401
    except ImportError:
        print("the kenlm Python module is not installed: pip install kenlm", file=sys.stderr)
        return 2
    if args.only == "queries":
        with tempfile.TemporaryDirectory() as tmp:
            result = queries(args.data_dir, Path(tmp), args.repeats)
        save_peer_results("kenlm-queries", {"env": environment(), "queries": result}, args.out)
        return 0
    for tool in ("lmplz", "build_binary"):
        if shutil.which(tool) is None:
            print(
                f"{tool} is not on PATH: build KenLM (github.com/kpu/kenlm) and add its bin/ to PATH",
                file=sys.stderr,
            )
            return 2
    results: dict = {"env": environment(), "repeats": args.repeats}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        text, _ = ptb_text(args.data_dir, folder)
        lmplz_arpa = folder / "lmplz.arpa"
        estimate = [PYTHON, "-c", ESTIMATE, "ptb", args.data_dir]
        results["estimation"] = alternate(
            {
                "lmplz_to_arpa": [
                    "lmplz",
                    "-o",
                    "5",
                    "-S",
                    "100M",
                    "--text",
                    str(text),
                    "--arpa",
                    str(lmplz_arpa),
                ],
                "ours_to_model": [*estimate, "-"],
                "ours_to_arpa": [*estimate, str(folder / "ours.arpa")],
            },
            args.repeats,
        )
        e = results["estimation"]
        results["estimation_ratios"] = {
            "ours_model_over_lmplz": e["ours_to_model"]["median_s"]
            / e["lmplz_to_arpa"]["median_s"],
            "ours_arpa_over_lmplz": e["ours_to_arpa"]["median_s"] / e["lmplz_to_arpa"]["median_s"],
        }
        growth = alternate(
            {
                "wikitext2_10pct": [
                    PYTHON,
                    "-c",
                    ESTIMATE,
                    "wikitext2",
                    args.data_dir,
                    "-",
                    "208863",
                ],
                "wikitext2_100pct": [PYTHON, "-c", ESTIMATE, "wikitext2", args.data_dir, "-"],
            },
            args.repeats,
        )
        results["growth"] = {
            **growth,
            "ratio_100_over_10": growth["wikitext2_100pct"]["median_s"]
            / growth["wikitext2_10pct"]["median_s"],
        }
        results["scoring"] = scoring(args.data_dir, lmplz_arpa, folder, args.repeats)
        results["queries"] = queries(args.data_dir, folder, args.repeats)
    results["nltk_kn3"] = nltk_cost(args.data_dir)
    save_peer_results("kenlm", results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
