"""The strategies: names, the features they need, and one function per strategy.

The strategies are data: :data:`REGISTRY` maps each name to a :class:`Strategy`
(its type family, its component, its pick), after apricot's optimizers registry; each
public function below runs its entry. One :class:`Selection` per level is the result of
a selection, and a dataset's manifest is made from it.

Six **type strategies** — ``{instruction,response}-{macro,meso,micro}`` — build an
incidence (:mod:`tritondiv.families`) and select with the engine
(:func:`tritondiv.select.select_types_ladder`: reverse greedy pruning, then balanced
greedy at ``k(p) = floor(k_min + p·(k_max − k_min) + 0.5)``).

Four **embedding baselines** — ``kcenter``, ``facility-location``, ``threshold``,
``random`` — work on the embeddings of one component (``component``). Their *level*:
at level ``p`` they select ``n`` samples from the candidate pool ``S_k(p)`` that the
reverse greedy pruning of that component's **macro topics** leaves at
``k(p)`` topics (the same rounding) — the same nested pools the macro
strategy samples from. Level 1 is the plain baseline over the whole pool; level 0 is the
baseline restricted to the fewest topics that still hold ``n`` samples. Their coverage is
measured on those macro topics (it is at most ``k(p)``, but — unlike the type
strategies — it is not guaranteed to be non-decreasing in ``p``).

- ``kcenter``: k-center greedy (max-min cosine distance) on the candidates.
- ``facility-location``: lazy greedy over the kNN similarity graph of the whole pool
  (``knn`` neighbours, built once), restricted to the candidates.
- ``threshold``: DEITA-style filter — walk the candidates in a seeded random order, keep
  one if its max cosine similarity to the kept set is ``<= tau``; when fewer than ``n``
  pass (small candidate pools of near-duplicates), ``tau`` is relaxed in steps of 0.02
  until ``n`` pass (the manifest records ``tau_used``).
- ``random``: a seeded uniform sample of the candidates.

One **quality strategy**, ``deita`` (DEITA's score-first, diversity-aware selection, Liu et
al. 2024), needs per-sample quality scores (the option ``quality``: an array, a ``.npy``
or a numeric field of the records): it walks the candidates by descending quality and
keeps a sample when its cosine similarity to its nearest kept sample is ``<= tau``, until
``n`` are kept. Its level sets ``tau`` instead of the candidate pool (see
:func:`deita_filter`): level 0 is the top ``n`` by quality, level 1 the most diverse filter
that still fills ``n``. Its candidates are the whole pool at every level (``k = k_max``;
coverage measured on the component's macro topics, as the baselines'); the manifest
records the level's ``tau_used``.

Quality scores are also **gain weights** of ``facility-location`` (row ``j`` of the graph,
what candidate ``j`` covers, is scaled by ``q_j``: ``f(S) = sum_i max_{j in S} q_j G[j, i]``)
and of the type strategies with ``sampler="greedy"`` (the balanced greedy's gain of each
sample is multiplied by its score, :func:`tritondiv.select.balanced_greedy`); weights must
be ``>= 0``. The other strategies refuse quality scores (a ValueError naming those that
accept them). A manifest records the scores' use and fingerprint (``quality``: use, source,
sha256 of the float64 scores, pool and dataset mean), never the scores.

The paper's protocol, as options (:class:`FeatureOptions`, each recorded in the manifests):

- **Levels**: the paper's 7, ``p = 0, 1/6, ..., 1`` (:func:`parse_levels` of ``7``); each
  manifest records ``k``, ``k_min`` and ``k_max`` of its level.
- ``sampler`` (type strategies): ``"greedy"``, the balanced greedy over ``S_k(p)``, or
  ``"uniform"``, the paper's sampler (:func:`tritondiv.select.uniform_types`: round-robin
  over the ``k`` types of ``S_k``).
- ``typeless``, ``length_band`` and ``stratify="source"``: the candidate rows and the
  source strata, :mod:`tritondiv.sampling`.

Every manifest also records the micro tokenizer (:func:`tritondiv.tokens.tokenizer_identity`),
``sources`` (samples per source file name) and ``mean_response_tokens``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tritondiv.baselines import (
    _pick_deita,
    _pick_facility,
    _pick_kcenter,
    _pick_random,
    _pick_threshold,
    deita_filter,
)
from tritondiv.families import COMPONENTS, TYPE_FAMILIES, coverage
from tritondiv.feature_store import FeatureOptions, Features, make_tagger
from tritondiv.sampling import (
    Candidates,
    Combined,
    Part,
    candidate_rows,
    check_candidates,
    combine_parts,
    source_quotas,
    source_strata,
    stratum_pruning,
)

__all__ = [
    "BASELINE_STRATEGIES",
    "COMPONENTS",
    "QUALITY_STRATEGIES",
    "REGISTRY",
    "STRATEGIES",
    "TYPE_STRATEGIES",
    "FeatureOptions",
    "Features",
    "Selection",
    "Strategy",
    "check_quality_use",
    "deita",
    "deita_filter",
    "facility_location",
    "get_strategy",
    "instruction_macro",
    "instruction_meso",
    "instruction_micro",
    "kcenter",
    "level_budget",
    "make_tagger",
    "parse_levels",
    "parse_strategies",
    "random_baseline",
    "response_macro",
    "response_meso",
    "response_micro",
    "run_strategy",
    "source_quotas",
    "strategy_spec",
    "threshold",
]

TYPE_STRATEGIES: tuple[str, ...] = TYPE_FAMILIES
BASELINE_STRATEGIES: tuple[str, ...] = ("kcenter", "facility-location", "threshold", "random")
#: Strategies that need quality scores (the option ``quality``).
QUALITY_STRATEGIES: tuple[str, ...] = ("deita",)
STRATEGIES: tuple[str, ...] = TYPE_STRATEGIES + BASELINE_STRATEGIES + QUALITY_STRATEGIES

# Selection fields left out of a manifest when they do not apply (None).
_OPTIONAL_FIELDS = (
    "tags",
    "component",
    "candidates",
    "knn",
    "tau",
    "tau_used",
    "sampler",
    "typeless",
    "length_band",
    "stratify",
    "tokenizer",
    "sources",
    "mean_response_tokens",
    "quality",
    "engine",
    "timings",
)


@dataclass
class Selection:
    """One dataset chosen by a strategy at one level: the result of a selection.

    The fields are, in order, those of the dataset's manifest
    (:meth:`manifest_fields` is :func:`dataclasses.asdict` of it, less the indices' type
    and the fields that do not apply); :func:`tritondiv.ladder.select_dataset` and
    :func:`~tritondiv.ladder.run_ladder` fill ``level_index``, ``pool``, ``metrics`` and
    ``timings``.
    """

    strategy: str
    level: float
    indices: np.ndarray
    k: int
    k_min: int
    k_max: int
    n_types: int
    coverage: int
    type_family: str
    size: int = 0
    seed: int = 0
    level_index: int | None = None
    pool: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    coverage_fraction: float = 0.0
    #: meso strategies: what tag normalization left
    tags: dict[str, Any] | None = None
    #: embedding baselines: their component and candidate pool size
    component: str | None = None
    candidates: int | None = None
    knn: int | None = None
    tau: float | None = None
    tau_used: float | None = None
    #: type strategies: the sampler (greedy or uniform)
    sampler: str | None = None
    #: samples of the family's incidence with no type, the rule and how many it excluded
    typeless: dict[str, Any] | None = None
    #: the response length band and how many samples of the pool it excluded
    length_band: dict[str, Any] | None = None
    #: stratification: by what, and per stratum its quota, candidates and type budgets
    stratify: dict[str, Any] | None = None
    #: the micro tokenizer (:func:`tritondiv.tokens.tokenizer_identity`)
    tokenizer: dict[str, Any] | None = None
    #: samples per source file (file name: count), in the dataset
    sources: dict[str, int] | None = None
    #: mean response length in micro-tokenizer tokens
    mean_response_tokens: float | None = None
    #: quality scores: their use (order or weights), source, sha256, pool and dataset mean
    quality: dict[str, Any] | None = None
    #: embedding baselines run elsewhere (``--engine ray``): where, and what it reached
    engine: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    timings: dict[str, float] | None = None

    def __post_init__(self) -> None:
        self.indices = np.asarray(self.indices, dtype=np.int64)
        if not self.size:
            self.size = int(self.indices.size)
        self.coverage_fraction = (self.coverage / self.n_types) if self.n_types else 0.0

    @property
    def info(self) -> dict[str, Any]:
        """The strategy-specific fields that apply (tags; component, candidates, tau...)."""
        return {
            k: getattr(self, k)
            for k in _OPTIONAL_FIELDS
            if k != "timings" and getattr(self, k) is not None
        }

    def manifest_fields(self) -> dict[str, Any]:
        """The manifest of this dataset: :func:`dataclasses.asdict`, less what does not apply."""
        out = {k: v for k, v in asdict(self).items() if not (k in _OPTIONAL_FIELDS and v is None)}
        for k in ("ids", "indices", "metrics", "timings"):  # the long ones last
            if k in out:
                out[k] = out.pop(k)
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-ready selection fields (no indices, ids, pool, options or metrics)."""
        return {
            "k": int(self.k),
            "k_min": int(self.k_min),
            "k_max": int(self.k_max),
            "n_types": int(self.n_types),
            "coverage": int(self.coverage),
            "coverage_fraction": self.coverage_fraction,
            "type_family": self.type_family,
            **self.info,
        }


def level_budget(k_min: int, k_max: int, level: float) -> int:
    """``k(p) = floor(k_min + p·(k_max − k_min) + 0.5)`` (the engine's type budget)."""
    return math.floor(k_min + float(level) * (k_max - k_min) + 0.5)


def parse_levels(levels: int | str | Sequence[float]) -> list[float]:
    """Levels from a count (``7`` → ``0, 1/6, …, 1``), a comma list, or a sequence of floats."""
    if isinstance(levels, str):
        text = levels.strip()
        if "," in text or "." in text:
            try:
                values = [float(v) for v in text.split(",") if v.strip()]
            except ValueError:
                raise ValueError(
                    f"levels {levels!r}: pass a count (e.g. 7) or a comma list of floats in [0, 1]"
                ) from None
            return parse_levels(values)
        try:
            return parse_levels(int(text))
        except ValueError:
            raise ValueError(
                f"levels {levels!r}: pass a count (e.g. 7) or a comma list of floats in [0, 1]"
            ) from None
    if isinstance(levels, (int, np.integer)):
        count = int(levels)
        if count < 1:
            raise ValueError(f"levels: need at least 1 level, got {count}")
        if count == 1:
            return [1.0]
        return [i / (count - 1) for i in range(count)]
    values = [float(v) for v in levels]
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise ValueError(f"levels {values}: every level must lie in [0, 1]")
    return values


def parse_strategies(spec: str | Sequence[str]) -> list[str]:
    """``all`` (the six type strategies), ``baselines``, ``everything`` or a comma list.

    ``everything`` is every strategy that runs without quality scores (the type strategies
    and the baselines); ``deita`` is named explicitly (it needs the option ``quality``).
    """
    if isinstance(spec, str):
        if spec == "all":
            return list(TYPE_STRATEGIES)
        if spec == "baselines":
            return list(BASELINE_STRATEGIES)
        if spec == "everything":
            return list(TYPE_STRATEGIES + BASELINE_STRATEGIES)
        names = [s.strip() for s in spec.split(",") if s.strip()]
    else:
        names = list(spec)
    unknown = [s for s in names if s not in STRATEGIES]
    if unknown or not names:
        raise ValueError(
            f"unknown strategy {unknown or spec!r}: choose from {', '.join(STRATEGIES)} "
            "(or all, baselines, everything)"
        )
    return list(dict.fromkeys(names))


# ---- the registry ---------------------------------------------------------------------
#: ``pick(features, candidates, n, seed) -> (indices, info)`` of an embedding baseline.
Pick = Callable[[Features, np.ndarray, int, int], tuple[np.ndarray, dict[str, Any]]]
#: ``pick(features, candidates, n, seed, level, memo) -> (indices, info)``: a pick whose
#: level is its own parameter (the candidates are the whole stratum at every level);
#: ``memo`` is one dict per stratum, shared by the levels.
LevelPick = Callable[
    [Features, np.ndarray, int, int, float, dict[str, Any]], tuple[np.ndarray, dict[str, Any]]
]
#: How a strategy uses quality scores: it needs them as its walk order, takes them as
#: gain weights, or refuses them.
QUALITY_USES: tuple[str, ...] = ("order", "weights", "none")


@dataclass(frozen=True)
class Strategy:
    """A strategy as data: the type family it balances or measures, and how it picks.

    ``family`` and ``component`` are ``None`` for the embedding baselines: they work on
    the component :attr:`FeatureOptions.component` and measure its macro topics.
    ``pick`` is ``None`` for a type strategy (the engine's balanced greedy,
    :func:`tritondiv.select.select_types_ladder`); a baseline's ``pick`` chooses ``n`` of
    the candidate pool at each level. ``level_pick`` (``deita``) chooses ``n`` of the
    whole candidate stratum with the level as its own parameter. ``quality`` says how it
    uses quality scores (:data:`QUALITY_USES`).
    """

    name: str
    family: str | None
    component: str | None
    pick: Pick | None
    doc: str = ""
    level_pick: LevelPick | None = None
    quality: str = "none"

    def resolve(self, options: FeatureOptions) -> tuple[str, str]:
        """``(component, family)`` of this strategy under ``options``."""
        component = self.component or options.component
        return component, self.family or f"{component}-macro"

    def run(
        self, features: Features, n: int, levels: Sequence[float], seed: int | None = None
    ) -> list[Selection]:
        """One :class:`Selection` per level (the levels share one pruning pass)."""
        seed = features.seed if seed is None else int(seed)
        levels = [float(p) for p in levels]
        check_quality_use(self, features)
        if self.pick is None and self.level_pick is None:
            return _run_types(self, features, int(n), levels, seed)
        return _run_baseline(self, features, int(n), levels, seed)


def _quality_takers() -> str:
    order = [s.name for s in REGISTRY.values() if s.quality == "order"]
    weights = [s.name for s in REGISTRY.values() if s.quality == "weights"]
    return (
        f"{', '.join(order)} (walk order) and {', '.join(weights)} (gain weights; the type "
        "strategies with sampler greedy)"
    )


def check_quality_use(strategy: Strategy, features: Features) -> np.ndarray | None:
    """The features' quality scores, checked against how ``strategy`` uses them: needed
    (``deita``), non-negative gain weights, or refused (a ValueError naming the takers)."""
    q = features.quality()
    if strategy.quality == "order" and q is None:
        raise ValueError(
            f"strategy {strategy.name} needs quality scores: pass quality= (an array, a .npy "
            "path or a numeric field of the records; --quality NPY|FIELD)"
        )
    if q is None:
        return None
    weights = strategy.quality == "weights"
    if weights and features.options.sampler != "greedy" and strategy.pick is None:
        raise ValueError(
            f"strategy {strategy.name} with sampler={features.options.sampler!r} does not use "
            f"quality scores: quality is accepted by {_quality_takers()}"
        )
    if strategy.quality == "none":
        raise ValueError(
            f"strategy {strategy.name} does not use quality scores: quality is accepted by "
            f"{_quality_takers()}; drop quality or choose one of them"
        )
    if weights and float(q.min()) < 0:
        raise ValueError(
            f"strategy {strategy.name} weights its gains by the quality scores, which must "
            f"then be >= 0 (the smallest is {float(q.min()):g}); shift or rescale them"
        )
    return q


def _quality_info(strategy: Strategy, features: Features, idx: np.ndarray) -> dict[str, Any] | None:
    """What a manifest records about the quality scores (a fingerprint, not the scores)."""
    q = features.quality()
    if q is None:
        return None
    import hashlib

    data = np.ascontiguousarray(q, dtype="<f8").tobytes()
    return {
        "use": strategy.quality,
        "source": "array" if features.options.quality is None else features.options.quality,
        "sha256": hashlib.sha256(data).hexdigest(),
        "pool_mean": float(q.mean()),
        "mean": float(q[idx].mean()) if idx.size else 0.0,
    }


def _add_time(features: Features, stage: str, t0: float) -> None:
    features.timings[stage] = features.timings.get(stage, 0.0) + time.perf_counter() - t0


def _selection(
    strategy: Strategy,
    features: Features,
    level: float,
    combined: Combined,
    *,
    family: str,
    seed: int,
    cand: Candidates,
    **extra: Any,
) -> Selection:
    """The :class:`Selection` of one level's combined dataset."""
    inc = features.incidence(family)
    idx = np.asarray(combined.indices, dtype=np.int64)
    ids = features.pool.ids
    src = getattr(features.pool, "source", None)
    sources: dict[str, int] | None = None
    if src is not None:
        sources = {}
        for i in idx:
            name = Path(str(src[i])).name
            sources[name] = sources.get(name, 0) + 1
        sources = dict(sorted(sources.items()))
    lengths = features.response_lengths()
    return Selection(
        strategy=strategy.name,
        level=float(level),
        indices=idx,
        k=int(combined.k),
        k_min=int(combined.k_min),
        k_max=int(combined.k_max),
        n_types=int(inc.n_types),
        coverage=coverage(inc, idx),
        type_family=family,
        size=int(idx.size),
        seed=int(seed),
        options=features.options.to_dict(),
        ids=[str(ids[i]) for i in idx],
        typeless=dict(cand.typeless),
        length_band=None if cand.length_band is None else dict(cand.length_band),
        tokenizer=features.tokenizer_identity(),
        sources=sources,
        mean_response_tokens=float(lengths[idx].mean()) if idx.size else 0.0,
        stratify=combined.stratify,
        quality=_quality_info(strategy, features, idx),
        **extra,
    )


def _run_types(
    strategy: Strategy, features: Features, n: int, levels: list[float], seed: int
) -> list[Selection]:
    from tritondiv.select import select_types_ladder, uniform_types_ladder

    component, family = strategy.resolve(features.options)
    inc = features.incidence(family)
    cand = candidate_rows(features, family, type_strategy=True)
    check_candidates(n, cand, inc.n_samples, family)
    strata = source_strata(features, cand, n, seed)
    sampler = features.options.sampler
    quality = features.quality()
    t0 = time.perf_counter()
    per_stratum: list[list[Part]] = []
    for st in strata:
        sub = inc if st.rows is None else inc.subset(st.rows)
        where = family if st.source is None else f"{family} {Path(st.source).name}"
        pr = None
        if sampler == "uniform" or st.source is not None:
            pr = stratum_pruning(features, family, st.rows, seed)
        if sampler == "uniform":
            results = uniform_types_ladder(
                sub, st.quota, levels, seed=seed, pruning=pr, progress=features.progress
            )
        else:
            results = select_types_ladder(
                sub,
                st.quota,
                levels,
                g=features.options.g,
                weights=None if quality is None else quality[st.to_pool(np.arange(sub.n_samples))],
                seed=seed,
                progress=features.progress,
                desc=f"select {where}",
            )
        parts = []
        for res in results:
            assert res.k is not None and res.k_min is not None and res.k_max is not None
            parts.append(Part(st.to_pool(res.indices), res.k, res.k_min, res.k_max, 0, pruning=pr))
        per_stratum.append(parts)
    _add_time(features, f"select-{family}", t0)
    tags = None
    report = features.tag_report(component) if family.endswith("-meso") else None
    if report is not None:
        # what tag normalization left (the paper reports about 4 tags per sample)
        tags = {
            "tags_per_sample": float(report.tags_per_sample_mean),
            "raw_tags_per_sample": float(report.raw_tags_per_sample_mean),
            "kept_tags": int(report.kept_tags),
            "untagged": int(report.untagged),
        }
    out = []
    for i, level in enumerate(levels):
        combined = combine_parts([ps[i] for ps in per_stratum], strata)
        out.append(
            _selection(
                strategy,
                features,
                level,
                combined,
                family=family,
                seed=seed,
                cand=cand,
                tags=None if tags is None else dict(tags),
                sampler=sampler,
            )
        )
    return out


def _merge_info(infos: list[dict[str, Any]]) -> dict[str, Any]:
    """The picks' extra fields over strata (``tau_used``: the largest any stratum needed)."""
    out: dict[str, Any] = {}
    for info in infos:
        for key, value in info.items():
            out[key] = max(out[key], value) if key == "tau_used" and key in out else value
    return out


def _run_baseline(
    strategy: Strategy, features: Features, n: int, levels: list[float], seed: int
) -> list[Selection]:
    component, family = strategy.resolve(features.options)
    inc = features.incidence(family)
    cand = candidate_rows(features, family, type_strategy=False)
    check_candidates(n, cand, inc.n_samples, strategy.name)
    strata = source_strata(features, cand, n, seed)
    prunings = [features.pruning(family, st.rows) for st in strata]
    memos: list[dict[str, Any]] = [{} for _ in strata]
    # an engine's Features may run a pick elsewhere (tritondiv.distributed.engine.RayFeatures)
    pick = getattr(features, "picks", {}).get(strategy.name, strategy.pick)
    out = []
    for level in _levels_bar(levels, f"select {strategy.name} ({component})", features.progress):
        parts = []
        for st, pruning, memo in zip(strata, prunings, memos, strict=True):
            # a level pick sees the whole stratum (S_{k_max}) at every level
            k = int(pruning.k_max if strategy.level_pick else pruning.k_at(level, st.quota))
            pool_k = st.to_pool(np.sort(np.asarray(pruning.pool(k), dtype=np.int64)))
            t0 = time.perf_counter()
            if strategy.level_pick is not None:
                idx, info = strategy.level_pick(features, pool_k, st.quota, seed, level, memo)
            else:
                assert pick is not None
                idx, info = pick(features, pool_k, st.quota, seed)
            _add_time(features, f"select-{strategy.name}", t0)
            parts.append(
                Part(
                    idx,
                    k,
                    int(pruning.k_min(st.quota)),
                    int(pruning.k_max),
                    int(pool_k.size),
                    pruning=pruning,
                    info=info,
                )
            )
        combined = combine_parts(parts, strata)
        out.append(
            _selection(
                strategy,
                features,
                level,
                combined,
                family=family,
                seed=seed,
                cand=cand,
                component=component,
                candidates=combined.candidates,
                **_merge_info([p.info for p in parts]),
            )
        )
    return out


def _levels_bar(levels: list[float], desc: str, progress: bool) -> Any:
    if not progress or len(levels) <= 1:
        return levels
    from tqdm.auto import tqdm  # type: ignore[import-untyped]

    return tqdm(levels, total=len(levels), desc=f"{desc} {len(levels)} levels", leave=False)


_DOCS = {
    "macro": "topics (spherical k-means of the component's embeddings), balanced",
    "meso": "normalized tags, balanced",
    "micro": "mid-band tokens, balanced",
}

#: name -> :class:`Strategy`, in :data:`STRATEGIES` order.
REGISTRY: dict[str, Strategy] = {
    **{
        fam: Strategy(fam, fam, fam.split("-")[0], None, f"{fam.split('-')[0].title()} "
                      + _DOCS[fam.split("-")[1]], quality="weights")
        for fam in TYPE_STRATEGIES
    },
    "kcenter": Strategy(
        "kcenter", None, None, _pick_kcenter,
        "k-center greedy on the component's embeddings, within the macro candidate pools",
    ),
    "facility-location": Strategy(
        "facility-location", None, None, _pick_facility,
        "facility location on the kNN graph, within the macro candidate pools",
        quality="weights",
    ),
    "threshold": Strategy(
        "threshold", None, None, _pick_threshold,
        "DEITA-style similarity-threshold filter, within the macro candidate pools",
    ),
    "random": Strategy(
        "random", None, None, _pick_random, "uniform random sample, within the macro candidate pools"
    ),
    "deita": Strategy(
        "deita", None, None, None,
        "DEITA: by descending quality, a cosine threshold set by the level (needs quality)",
        level_pick=_pick_deita, quality="order",
    ),
}  # fmt: skip


def strategy_spec(name: str) -> Strategy:
    """The :class:`Strategy` of a name."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown strategy {name!r}: choose from {', '.join(STRATEGIES)}"
        ) from None


# ---- one public function per strategy (each runs its registry entry) -----------------
class StrategyFunction(Protocol):
    """``f(features, n, levels, seed=None) -> list[Selection]``: one strategy's function."""

    def __call__(
        self, features: Features, n: int, levels: Sequence[float], seed: int | None = None
    ) -> list[Selection]: ...


def _function(name: str, py_name: str, doc: str) -> StrategyFunction:
    """The public function of strategy ``name``: it runs ``REGISTRY[name]``."""

    def run(
        features: Features, n: int, levels: Sequence[float], seed: int | None = None
    ) -> list[Selection]:
        return REGISTRY[name].run(features, n, levels, seed)

    run.__name__ = run.__qualname__ = py_name
    run.__doc__ = doc
    return run


instruction_macro = _function(
    "instruction-macro",
    "instruction_macro",
    "Instruction topics (spherical k-means of instruction embeddings), balanced.",
)
instruction_meso = _function(
    "instruction-meso", "instruction_meso", "Normalized instruction tags, balanced."
)
instruction_micro = _function(
    "instruction-micro", "instruction_micro", "Mid-band instruction tokens, balanced."
)
response_macro = _function(
    "response-macro",
    "response_macro",
    "Response topics (spherical k-means of response embeddings), balanced.",
)
response_meso = _function("response-meso", "response_meso", "Normalized response tags, balanced.")
response_micro = _function(
    "response-micro",
    "response_micro",
    "Mid-band response tokens, balanced (the paper's strongest strategy).",
)
kcenter = _function(
    "kcenter",
    "kcenter",
    "k-center greedy on the component's embeddings, within the macro candidate pools.",
)
facility_location = _function(
    "facility-location",
    "facility_location",
    "Facility location on the kNN graph, within the macro candidate pools.",
)
threshold = _function(
    "threshold",
    "threshold",
    "DEITA-style similarity-threshold filter, within the macro candidate pools.",
)
random_baseline = _function(
    "random", "random_baseline", "Uniform random sample, within the macro candidate pools."
)
deita = _function(
    "deita",
    "deita",
    "DEITA's score-first diversity filter: by descending quality, a cosine threshold set "
    "by the level (needs the quality scores).",
)

_FUNCTIONS: dict[str, StrategyFunction] = {
    "instruction-macro": instruction_macro,
    "instruction-meso": instruction_meso,
    "instruction-micro": instruction_micro,
    "response-macro": response_macro,
    "response-meso": response_meso,
    "response-micro": response_micro,
    "kcenter": kcenter,
    "facility-location": facility_location,
    "threshold": threshold,
    "random": random_baseline,
    "deita": deita,
}


def get_strategy(name: str) -> StrategyFunction:
    """The function of a strategy name (see :data:`REGISTRY` for the strategy as data)."""
    strategy_spec(name)
    return _FUNCTIONS[name]


def run_strategy(
    name: str, features: Features, n: int, levels: Sequence[float], seed: int | None = None
) -> list[Selection]:
    """Select ``n`` samples at each level with strategy ``name`` (levels share one pruning).

    ``seed`` (default: the features' seed) seeds the selection; the features' own
    computations (topics, pruning) use ``features.seed``.
    """
    return strategy_spec(name).run(features, int(n), [float(p) for p in levels], seed)
