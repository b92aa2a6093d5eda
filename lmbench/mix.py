"""Linear interpolation of two finished runs from their saved per-token log-probabilities.

The papers' combined rows (Bengio et al.'s MLP + trigram, Mikolov's RNN + KN5) mix two models'
probabilities token by token: p = w p_a + (1 - w) p_b, the weight tuned on valid (EM, as SRILM's
compute-best-mix), the result reported on test. A mix is recorded like any run (family `mix`),
its cost the sum of its components'.

A MixSpec whose second part is `cache` interpolates one run with a unigram cache of the
evaluation stream (`lmbench.cache`): the cache's size and weight are tuned on valid.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import cache as unigram_cache
from .corpora import load_corpus
from .evaluate import scored
from .measure import environment, this_machine
from .records import (
    NEURAL_FAMILIES,
    RECORDS_FILE,
    RunRecord,
    append_record,
    config_hash,
    is_full_data,
    latest_by_config,
    machine_id,
    make_run_id,
    read_records,
    restore,
    save_log_probs,
    save_sentence_nll,
)

EM_STEPS = 200
EM_TOLERANCE = 1e-7


@dataclass(frozen=True)
class MixSpec:
    corpus: str
    first: str  # spec names of the two component runs of this suite
    second: str
    mode: str = "stream"
    seed: int = 0  # the neural component's seed (a count model has one run, whatever the seed)

    @property
    def name(self) -> str:
        return f"{self.first}+{self.second}"


def _part(run) -> tuple:
    """What a planned run is as a mix part: a count model's one run serves every seed."""
    seed = run.spec.seed if run.model.model_class.iterative else None
    return run.spec.corpus, run.spec.mode, run.spec.model, seed


def per_seed(mixes: tuple[MixSpec, ...], planned: list) -> tuple[MixSpec, ...]:
    """Each mix once per seed its parts are planned with (a neural part's seeds; a mix of two
    count models once)."""
    parts = [_part(p) for p in planned]
    out = []
    for mix in mixes:
        seeds = {
            seed
            for corpus, mode, model, seed in parts
            if (corpus, mode) == (mix.corpus, mix.mode)
            and model in (mix.first, mix.second)
            and seed is not None
        }
        out += [replace(mix, seed=seed) for seed in sorted(seeds or {0})]
    return tuple(out)


def using(mixes: tuple[MixSpec, ...], planned: list) -> tuple[MixSpec, ...]:
    """The mixes with a part among `planned` (the runs `--only` reruns): made again after them."""
    parts = {_part(p) for p in planned}
    return tuple(
        mix
        for mix in mixes
        if any(
            (mix.corpus, mix.mode, name, seed) in parts
            for name in (mix.first, mix.second)
            for seed in (mix.seed, None)
        )
    )


def best_weight(first: np.ndarray, second: np.ndarray) -> float:
    """The weight of `first` that maximises the mixture's likelihood (EM, from 0.5)."""
    weight = 0.5
    for _ in range(EM_STEPS):
        a, b = np.log(weight) + first, np.log1p(-weight) + second
        posterior = np.exp(a - np.logaddexp(a, b)).mean()
        done = abs(posterior - weight) < EM_TOLERANCE
        weight = float(np.clip(posterior, 1e-6, 1 - 1e-6))
        if done:
            break
    return weight


def mix_log_probs(first: np.ndarray, second: np.ndarray, weight: float) -> np.ndarray:
    return np.logaddexp(math.log(weight) + first, math.log1p(-weight) + second)


def _component(records: list[dict], spec: MixSpec, model: str) -> dict | None:
    """The newest ok full-data run of `model` on the mix's corpus and mode (of its seed, for a
    neural model)."""
    matches = [
        r
        for r in records
        if (r["corpus"], r["mode"], r["model"], r["status"])
        == (spec.corpus, spec.mode, model, "ok")
        and is_full_data(r)
        and (r["family"] not in NEURAL_FAMILIES or (r.get("seed") or 0) == spec.seed)
    ]
    return matches[-1] if matches else None


def _load(out_dir: Path, record: dict, split: str) -> np.ndarray:
    path = out_dir / ((record.get("logprobs") or {}).get(split) or "")
    if not path.is_file():
        raise FileNotFoundError(
            f"log-probabilities of run {record['run_id']} ({split}) are not on this machine: "
            f"rerun that model here (they are not committed)"
        )
    return np.load(path).astype(np.float64)


def _parts(records: list[dict], spec: MixSpec) -> list[dict | None]:
    """The component runs (a cache is not a run: only the first part)."""
    names = (spec.first,) if spec.second == unigram_cache.CACHE else (spec.first, spec.second)
    return [_component(records, spec, m) for m in names]


def mix_config_hash(spec: MixSpec, records: list[dict]) -> str:
    """A mix's config hash: its components' hashes (their names where a component is missing)."""
    parts = _parts(records, spec)
    hashes = [p["config_hash"] if p else m for p, m in zip(parts, (spec.first, spec.second))]
    payload = {"mix": hashes, "mode": spec.mode}
    if spec.second == unigram_cache.CACHE:
        payload["mix"] = [*hashes, unigram_cache.CACHE]
        payload["cache_sizes"] = list(unigram_cache.CACHE_SIZES)
    # seed 0 as before seeds: earlier mixes keep their hashes; a mix of count models and a
    # cache is deterministic: one mix, whatever the seed
    if spec.seed and any(p is None or p["family"] in NEURAL_FAMILIES for p in parts):
        payload["seed"] = spec.seed
    return config_hash(payload)


def cache_targets(record: dict, data_dir, split: str) -> np.ndarray:
    """The predicted token ids of a run's valid or test split, in the order it scored them."""
    vocab = (record.get("extra") or {}).get("vocab") or {}
    corpus = load_corpus(record["corpus"], data_dir, **vocab)
    segments = corpus.segments(split, record["mode"])
    sliced = (record.get("extra") or {}).get("eval_slice_tokens")
    return (segments.head(sliced) if sliced else segments).targets()


def _mixed(spec: MixSpec, parts: list[dict], out_dir: Path, data_dir):
    """Valid and test log-probabilities of the mix, and what was tuned on valid."""
    valid = [_load(out_dir, p, "valid") for p in parts]
    test = [_load(out_dir, p, "test") for p in parts]
    if spec.second != unigram_cache.CACHE:
        weight = best_weight(*valid)
        tuned = {"weights": {spec.first: weight, spec.second: 1 - weight}, "tuned_on": "valid (EM)"}
        return mix_log_probs(*valid, weight), mix_log_probs(*test, weight), tuned
    size, weight, valid_mix = unigram_cache.tune(
        valid[0], cache_targets(parts[0], data_dir, "valid"), fit=best_weight
    )
    test_cache = unigram_cache.cache_log_probs(cache_targets(parts[0], data_dir, "test"), size)
    tuned = {
        "weights": {spec.first: 1 - weight, unigram_cache.CACHE: weight},
        "cache_size": size,
        "cache": "unigram over the previous cache_size predicted tokens of the split, never reset",
        "tuned_on": f"valid (size from {list(unigram_cache.CACHE_SIZES)}, weight by EM)",
    }
    return valid_mix, unigram_cache.with_cache(test[0], test_cache, weight), tuned


def run_mix(
    spec: MixSpec, out_dir: Path, suite: str, records: list[dict], data_dir=None
) -> RunRecord:
    """The mix's record (`skipped` with the reason when a component is missing)."""
    parts = _parts(records, spec)
    record = RunRecord(
        config_hash=mix_config_hash(spec, records),
        suite=suite,
        corpus=spec.corpus,
        mode=spec.mode,
        model=spec.name,
        family="mix",
        device="cpu",
        seed=spec.seed,
        machine=this_machine(),
    )
    record.run_id = make_run_id(spec.corpus, spec.name, spec.mode, record.config_hash)
    missing = [m for p, m in zip(parts, (spec.first, spec.second)) if p is None]
    if missing:
        record.status = "skipped"
        record.error = f"no ok full-data run of {', '.join(missing)} on {spec.corpus} in this suite"
        return record
    first = parts[0]
    try:
        valid_lp, test_lp, tuned = _mixed(spec, parts, out_dir, data_dir)
    except FileNotFoundError as exc:
        record.status, record.error = "skipped", str(exc)
        return record
    valid_mix = scored(valid_lp, valid_lp.size, source=spec.name)
    test_mix = scored(test_lp, test_lp.size, source=spec.name)
    counts = np.load(out_dir / first["sentences"])[:, 1].astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sentences = np.stack([np.add.reduceat(-test_mix.log_probs, starts), counts], axis=1)

    def total(key):
        values = [p.get(key) for p in parts]
        return sum(values) if all(v is not None for v in values) else None

    record.status = "ok"
    record.env = environment()  # the commit that mixed (each part's record names its own)
    record.corpus_sha256, record.vocab_size = first["corpus_sha256"], first["vocab_size"]
    record.device_name = first.get("device_name")
    record.model_config = {**tuned, "components": [p["run_id"] for p in parts]}
    record.params, record.size_bytes = total("params"), total("size_bytes")
    record.train_seconds, record.train_flops = total("train_seconds"), total("train_flops")
    record.valid_ppl, record.test_ppl = valid_mix.perplexity, test_mix.perplexity
    record.test_bits_per_token = test_mix.bits_per_token
    record.eval_tokens = test_mix.tokens
    record.curve = [
        {"seconds": record.train_seconds, "tokens": None, "valid_ppl": record.valid_ppl}
    ]
    record.logprobs = save_log_probs(
        out_dir, record.run_id, valid_mix.log_probs, test_mix.log_probs
    )
    record.sentences = save_sentence_nll(out_dir, record.run_id, sentences)
    return record


def run_mixes(
    specs: tuple[MixSpec, ...], out_dir: Path, suite: str, resume: bool = False, data_dir=None
) -> list[dict]:
    """Each mix of a suite, from the runs in `out_dir`; with `resume`, ok mixes are kept."""
    jsonl = Path(out_dir) / RECORDS_FILE
    if not specs or not jsonl.exists():
        return []
    # Only this machine's runs: a mix's cost is the sum of its parts' seconds.
    here = this_machine()["id"]
    records = [r for r in read_records(jsonl) if machine_id(r) == here]
    done = latest_by_config(records) if resume else {}
    out, mixed = [], set()
    for spec in specs:
        mix_hash = mix_config_hash(spec, records)
        if mix_hash in mixed:  # two count components: one mix, whatever the seed
            continue
        mixed.add(mix_hash)
        kept = done.get(mix_hash)
        if kept and kept["status"] == "ok":  # before mixing: a kept mix writes no artifacts
            out.append(kept)
            continue
        record = run_mix(spec, Path(out_dir), suite, records, data_dir)
        append_record(jsonl, record)
        out.append(restore(json.loads(record.to_json())))
    return out
