"""The selection options of the paper's protocol against plain-Python references on hand-made
pools: the sampler (greedy | uniform), the typeless rule, the response length band and the
source stratification; then the length band on a real slice."""

from __future__ import annotations

import gzip
import json
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tritondiv.pool.model import Pool
from tritondiv.strategies import (
    BASELINE_STRATEGIES,
    FeatureOptions,
    Features,
    parse_levels,
    run_strategy,
    source_quotas,
)

LEVELS = parse_levels(7)
SOURCES = {"a.jsonl": 50, "b.jsonl": 30, "c.jsonl": 10}
TYPE_WORD = re.compile(r"^t\d+$")


def _texts() -> tuple[list[str], list[str], list[str]]:
    """90 samples: ``common`` in every response (above the band), one type word ``t<j>`` in
    9 of every 10 (about 10 occurrences each: mid-band), none in the 10th, and 0 to 6
    unique filler words (below the band) so that response lengths vary from 1 to 8 words."""
    responses, instructions, sources = [], [], []
    names = [name for name, count in SOURCES.items() for _ in range(count)]
    for i in range(90):
        words = ["common"]
        if i % 10 != 9:
            words.append(f"t{i % 9}")
        words += [f"w{i}x{j}" for j in range((i * 5) % 7)]
        responses.append(" ".join(words))
        instructions.append(f"q{i % 4} ask{i % 13} please")
        sources.append(names[(i * 37) % 90])  # sources interleaved over the pool
    return instructions, responses, sources


def _pool(tmp: Path) -> tuple[Pool, dict[str, str]]:
    ins, res, src = _texts()
    recs = [{"instruction": a, "response": b} for a, b in zip(ins, res, strict=True)]
    pool = Pool([f"s{i}" for i in range(90)], ins, res, src, recs)
    rng = np.random.default_rng(0)
    emb = {}
    for comp in ("instruction", "response"):
        X = rng.standard_normal((90, 8)).astype(np.float32)
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        emb[comp] = str(tmp / f"{comp}.npy")
        np.save(emb[comp], X)
    return pool, emb


def _features(tmp: Path, **kw) -> Features:
    pool, emb = _pool(tmp)
    opts = FeatureOptions(
        embeddings_instruction=emb["instruction"],
        embeddings_response=emb["response"],
        tokenizer="whitespace",
        tagger="column:tags",
        lo=2,
        hi=40,
        topics=6,
        cache=False,
        progress=False,
        **kw,
    )
    return Features(pool, opts, seed=0)


def _typed(responses: list[str]) -> set[int]:
    return {i for i, r in enumerate(responses) if any(TYPE_WORD.match(w) for w in r.split())}


@pytest.mark.parametrize("sampler", ["greedy", "uniform"])
def test_typeless_samples_are_not_candidates_by_default(tmp_path: Path, sampler: str) -> None:
    _, res, _ = _texts()
    typed = _typed(res)
    feats = _features(tmp_path, sampler=sampler)
    sels = run_strategy("response-micro", feats, 30, LEVELS)
    for sel in sels:
        assert sel.size == 30 and len(set(sel.indices.tolist())) == 30
        assert set(sel.indices.tolist()) <= typed
        assert sel.typeless == {"rule": "exclude", "count": 90 - len(typed), "excluded": 9}
        assert sel.sampler == sampler
    ks = [s.k for s in sels]
    assert ks == sorted(ks) and ks[-1] == 9  # nested budgets, all 9 types at level 1
    # n above the typed samples: the error names the rule and the way out
    with pytest.raises(ValueError, match="typeless"):
        run_strategy("response-micro", _features(tmp_path, sampler=sampler), 82, [0.0])
    inc = run_strategy("response-micro", _features(tmp_path, typeless="include"), 82, [1.0])[0]
    assert inc.typeless == {"rule": "include", "count": 9, "excluded": 0} and inc.size == 82


def test_include_keeps_the_engine_on_the_whole_pool(tmp_path: Path) -> None:
    from tritondiv.select import select_types_ladder, uniform_types_ladder

    feats = _features(tmp_path, typeless="include")
    inc = feats.incidence("response-micro")
    got = run_strategy("response-micro", feats, 20, LEVELS)
    ref = select_types_ladder(inc, 20, LEVELS, seed=0)
    assert all(np.array_equal(a.indices, b.indices) for a, b in zip(got, ref, strict=True))
    feats = _features(tmp_path, typeless="include", sampler="uniform")
    got = run_strategy("response-micro", feats, 20, LEVELS)
    ref = uniform_types_ladder(feats.incidence("response-micro"), 20, LEVELS, seed=0)
    assert all(np.array_equal(a.indices, b.indices) for a, b in zip(got, ref, strict=True))


def test_exclude_is_the_engine_on_the_typed_rows(tmp_path: Path) -> None:
    """Restricting before pruning: the same selection as the engine run on the typed rows
    alone, mapped back to pool indices."""
    from tritondiv.select import select_types_ladder

    feats = _features(tmp_path)
    inc = feats.incidence("response-micro")
    rows = np.array(sorted(_typed(_texts()[1])), dtype=np.int64)
    ref = select_types_ladder(inc.subset(rows), 25, LEVELS, seed=0)
    got = run_strategy("response-micro", feats, 25, LEVELS)
    for a, b in zip(got, ref, strict=True):
        assert a.indices.tolist() == rows[b.indices].tolist()
        assert (a.k, a.k_min, a.k_max) == (b.k, b.k_min, b.k_max)


def test_uniform_sampler_spreads_evenly_over_the_kept_types(tmp_path: Path) -> None:
    _, res, _ = _texts()
    type_of = {i: w for i, r in enumerate(res) for w in r.split() if TYPE_WORD.match(w)}
    for sel in run_strategy("response-micro", _features(tmp_path, sampler="uniform"), 27, LEVELS):
        counts: dict[str, int] = {}
        for i in sel.indices.tolist():
            counts[type_of[i]] = counts.get(type_of[i], 0) + 1
        assert len(counts) == sel.k  # every kept type drawn
        assert max(counts.values()) - min(counts.values()) <= 1, (sel.level, counts)


@pytest.mark.parametrize("name", ["response-micro", "instruction-micro", *BASELINE_STRATEGIES])
def test_every_sample_lies_in_the_length_band(tmp_path: Path, name: str) -> None:
    _, res, _ = _texts()
    lengths = [len(r.split()) for r in res]
    in_band = {i for i, n in enumerate(lengths) if 3 <= n <= 6}
    feats = _features(tmp_path, length_band="3:6", typeless="include")
    sels = run_strategy(name, feats, 20, LEVELS)
    for sel in sels:
        assert sel.size == 20 and set(sel.indices.tolist()) <= in_band
        assert sel.length_band == {"band": [3, 6], "excluded": 90 - len(in_band)}
        assert sel.mean_response_tokens == pytest.approx(np.mean([lengths[i] for i in sel.indices]))
    ks = [s.k for s in sels]
    assert ks == sorted(ks)
    if name in BASELINE_STRATEGIES:
        cands = [s.candidates for s in sels]
        assert cands == sorted(cands) and cands[-1] == len(in_band)


def test_length_band_and_typeless_together(tmp_path: Path) -> None:
    _, res, _ = _texts()
    typed = _typed(res)
    ok = {i for i in typed if 3 <= len(res[i].split()) <= 6}
    for sel in run_strategy("response-micro", _features(tmp_path, length_band="3:6"), 15, LEVELS):
        assert set(sel.indices.tolist()) <= ok
        excluded_typeless = sum(
            1 for i in range(90) if i not in typed and 3 <= len(res[i].split()) <= 6
        )
        assert sel.typeless["excluded"] == excluded_typeless
    with pytest.raises(ValueError, match="length band 3:6"):
        run_strategy("response-micro", _features(tmp_path, length_band="3:6"), len(ok) + 1, [0.0])


def _largest_remainder(counts: list[int], n: int) -> list[int]:
    total = sum(counts)
    exact = [Fraction(n * c, total) for c in counts]
    base = [int(e) for e in exact]
    order = sorted(range(len(counts)), key=lambda i: (-(exact[i] - base[i]), i))
    for i in order[: n - sum(base)]:
        base[i] += 1
    return base


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=8), st.data())
def test_source_quotas_are_largest_remainder(counts: list[int], data: st.DataObject) -> None:
    if sum(counts) == 0:
        with pytest.raises(ValueError):
            source_quotas(counts, 1)
        return
    n = data.draw(st.integers(0, sum(counts)))
    q = source_quotas(counts, n).tolist()
    assert q == _largest_remainder(counts, n) and sum(q) == n
    assert all(abs(qi - n * c / sum(counts)) < 1 for qi, c in zip(q, counts, strict=True))
    assert all(qi <= c for qi, c in zip(q, counts, strict=True))


@pytest.mark.parametrize(
    ("name", "sampler"),
    [("response-micro", "greedy"), ("response-micro", "uniform"), ("random", "greedy"),
     ("kcenter", "greedy")],
)  # fmt: skip
def test_stratify_source_keeps_the_pool_mix(tmp_path: Path, name: str, sampler: str) -> None:
    _, res, src = _texts()
    cand = sorted(_typed(res)) if name == "response-micro" else list(range(90))
    mix = {s: sum(1 for i in cand if src[i] == s) for s in SOURCES}
    n = 31
    quotas = dict(zip(mix, _largest_remainder(list(mix.values()), n), strict=True))
    feats = _features(tmp_path, stratify="source", sampler=sampler)
    sels = run_strategy(name, feats, n, LEVELS)
    for sel in sels:
        assert sel.size == n and len(set(sel.indices.tolist())) == n
        got = {s: sum(1 for i in sel.indices if src[i] == s) for s in SOURCES}
        assert got == quotas and sel.sources == quotas
        for s in SOURCES:  # within one sample of the pool's proportion
            assert abs(got[s] - n * mix[s] / len(cand)) < 1
        strata = {x["source"]: x for x in sel.stratify["strata"]}
        assert {s: x["quota"] for s, x in strata.items()} == quotas
        assert {s: x["candidates"] for s, x in strata.items()} == mix
        assert sel.k <= sel.k_max and sel.k_min <= sel.k
    assert [s.k for s in sels] == sorted(s.k for s in sels)
    again = run_strategy(name, _features(tmp_path, stratify="source", sampler=sampler), n, LEVELS)
    assert all(np.array_equal(a.indices, b.indices) for a, b in zip(sels, again, strict=True))


def test_stratify_needs_a_source_column(tmp_path: Path) -> None:
    class _NoSource:
        def __init__(self, pool: Pool) -> None:
            self.ids, self.instruction, self.response = pool.ids, pool.instruction, pool.response
            self.fingerprint = "nosource"

        def __len__(self) -> int:
            return len(self.ids)

        def component(self, name: str) -> list[str]:
            return getattr(self, name)

    feats = _features(tmp_path, stratify="source")
    feats.pool = _NoSource(feats.pool)
    with pytest.raises(ValueError, match="source column"):
        run_strategy("response-micro", feats, 10, [0.0])


def test_manifest_records_the_protocol(tmp_path: Path) -> None:
    _, res, src = _texts()
    feats = _features(tmp_path, length_band="2:", stratify="source")
    sel = run_strategy("response-micro", feats, 12, [0.0])[0]
    man = sel.manifest_fields()
    assert man["tokenizer"]["name"] == "whitespace"
    assert man["sampler"] == "greedy" and man["options"]["sampler"] == "greedy"
    assert man["options"]["length_band"] == "2:" and man["length_band"]["band"] == [2, None]
    assert man["options"]["stratify"] == "source" and man["stratify"]["by"] == "source"
    counts: dict[str, int] = {}
    for i in sel.indices:
        counts[src[i]] = counts.get(src[i], 0) + 1
    assert man["sources"] == dict(sorted(counts.items()))
    assert man["mean_response_tokens"] == pytest.approx(
        sum(len(res[i].split()) for i in sel.indices) / 12
    )
    # a baseline records no sampler, and its typeless rule is "include"
    base = run_strategy("random", _features(tmp_path), 12, [0.0])[0].manifest_fields()
    assert "sampler" not in base and base["typeless"]["rule"] == "include"
    assert "length_band" not in base and "stratify" not in base


# ---- real data -----------------------------------------------------------------------
def _gpteacher_slice(shared_data: Path, tmp: Path) -> list[str]:
    paths = []
    for name, stop in (("gpteacher_codegen", 2000), ("gpteacher_roleplay", 1500)):
        with gzip.open(shared_data / f"{name}.json.gz", "rt", encoding="utf-8") as fh:
            rows = [r for r in json.load(fh) if r.get("response")][:stop]
        path = tmp / f"{name}.json"
        path.write_text(json.dumps(rows), encoding="utf-8")
        paths.append(str(path))
    return paths


def test_length_band_holds_the_mean_length_on_real_data(shared_data: Path, tmp_path: Path) -> None:
    from tritondiv.pool import load_pool

    pool = load_pool(_gpteacher_slice(shared_data, tmp_path), skip_bad=True, allow_empty=True)
    opts = FeatureOptions(length_band="120:150", cache=False, progress=False, hi="0.1x")
    feats = Features(pool, opts, seed=0)
    lengths = feats.response_lengths()
    sels = run_strategy("response-micro", feats, 400, LEVELS)
    means = [s.mean_response_tokens for s in sels]
    assert all(120 <= lengths[i] <= 150 for s in sels for i in s.indices)
    assert max(means) <= 1.10 * min(means), means
    assert sels[0].tokenizer["name"] == "smollm2"
    # without the band the pool's lengths are far wider than the band
    assert lengths.max() > 150 and lengths.min() < 120
