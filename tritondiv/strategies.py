"""The strategies: names, the features they need, and one function per strategy.

Six **type strategies** — ``{instruction,response}-{macro,meso,micro}`` — build an
incidence (:mod:`tritondiv.types`) and select with the engine
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
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tritondiv.incidence import Incidence
from tritondiv.types import coverage, default_topics, macro_types, resolve_band

__all__ = [
    "BASELINE_STRATEGIES",
    "COMPONENTS",
    "STRATEGIES",
    "TYPE_STRATEGIES",
    "FeatureOptions",
    "Features",
    "Selection",
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
    "threshold",
]

COMPONENTS: tuple[str, ...] = ("instruction", "response")
TYPE_STRATEGIES: tuple[str, ...] = (
    "instruction-macro",
    "instruction-meso",
    "instruction-micro",
    "response-macro",
    "response-meso",
    "response-micro",
)
BASELINE_STRATEGIES: tuple[str, ...] = ("kcenter", "facility-location", "threshold", "random")
STRATEGIES: tuple[str, ...] = TYPE_STRATEGIES + BASELINE_STRATEGIES


@dataclass
class FeatureOptions:
    """Every option that shapes the features and the selection (recorded in manifests).

    Attributes
    ----------
    embeddings_instruction, embeddings_response : str or None
        Precomputed ``.npy`` embeddings per component (row count must match the pool);
        ``None`` embeds with ``embedding_model``.
    embedding_model : str or None
        Local sentence-transformers model directory (``None``: the packaged MiniLM).
    tokenizer : str or None
        Tokenizer of the model to be fine-tuned (``None``: the project default).
    tagger : str
        ``keyphrase`` (offline default), ``column:FIELD`` or ``llm:PATH`` (a model
        directory, or a ``.gguf`` file inside one).
    tag_max_words : int or None
        Keyphrase tagger: candidate phrases from the first ``tag_max_words`` words of a
        text (``None``: the tagger's default, 128).
    lo, hi : str or int
        Micro band thresholds: occurrence counts, or ``"Fx"`` = F times the pool size
        (see :func:`tritondiv.types.resolve_band`).
    topics : int or None
        Macro ``K`` (default ``round(sqrt(N))``).
    topic_method : str
        ``kmeans`` or ``hdbscan``.
    component : str
        Component of the embedding baselines.
    knn : int
        Neighbours of the facility-location graph.
    tau : float
        Cosine-similarity threshold of the ``threshold`` baseline.
    g : str
        Concave function of the balanced greedy (``log1p``, ...).
    cache : bool
        Use the on-disk feature cache.
    progress : bool
        Show progress bars.
    """

    embeddings_instruction: str | None = None
    embeddings_response: str | None = None
    embedding_model: str | None = None
    tokenizer: str | None = None
    tagger: str = "keyphrase"
    tag_max_words: int | None = None
    lo: str | int = 10
    hi: str | int = 500
    topics: int | None = None
    topic_method: str = "kmeans"
    component: str = "response"
    knn: int = 20
    tau: float = 0.9
    g: str = "log1p"
    cache: bool = True
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Selection:
    """One dataset chosen by a strategy at one level."""

    strategy: str
    level: float
    indices: np.ndarray
    k: int
    k_min: int
    k_max: int
    n_types: int
    coverage: int
    type_family: str
    info: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready fields for the manifest (everything but the indices)."""
        return {
            "k": int(self.k),
            "k_min": int(self.k_min),
            "k_max": int(self.k_max),
            "n_types": int(self.n_types),
            "coverage": int(self.coverage),
            "coverage_fraction": (self.coverage / self.n_types) if self.n_types else 0.0,
            "type_family": self.type_family,
            **self.info,
        }


def make_tagger(
    spec: str,
    *,
    embedding_model: str | None = None,
    progress: bool = True,
    max_words: int | None = None,
) -> Any:
    """Build a tagger from ``keyphrase``, ``column:FIELD`` or ``llm:PATH``.

    ``max_words``: the keyphrase tagger draws candidate phrases from the first
    ``max_words`` words of each text (its default when ``None``).
    """
    from pathlib import Path

    from tritondiv import features as F

    if spec == "keyphrase":
        kwargs: dict[str, Any] = {} if max_words is None else {"max_words": int(max_words)}
        return F.KeyphraseTagger(model=embedding_model, progress=progress, **kwargs)
    if spec.startswith("column:") and len(spec) > len("column:"):
        return F.ColumnTagger(spec.split(":", 1)[1])
    if spec.startswith("llm:") and len(spec) > len("llm:"):
        path = Path(spec.split(":", 1)[1])
        if path.is_file() and path.suffix == ".gguf":
            return F.LLMTagger(str(path.parent), gguf_file=path.name, progress=progress)
        if path.is_dir():
            return F.LLMTagger(str(path), progress=progress)
        raise ValueError(
            f"tagger {spec!r}: {path} is neither a model directory nor a .gguf file: pass "
            "llm:DIR or llm:FILE.gguf"
        )
    raise ValueError(f"tagger {spec!r} is unknown: pass keyphrase, column:FIELD or llm:PATH")


class Features:
    """Lazily computed, in-memory cached features and incidences of one pool.

    Every feature is computed at most once per instance (the featurizers also cache on
    disk), so a ladder over many strategies and levels featurizes each component once.
    ``timings`` records the seconds spent per stage.
    """

    def __init__(self, pool: Any, options: FeatureOptions | None = None, *, seed: int = 0) -> None:
        self.pool = pool
        self.options = options or FeatureOptions()
        self.seed = int(seed)
        self.timings: dict[str, float] = {}
        self._cache: dict[tuple[str, ...], Any] = {}
        if self.options.component not in COMPONENTS:
            raise ValueError(
                f"component must be one of {COMPONENTS}, got {self.options.component!r}"
            )

    @property
    def n_samples(self) -> int:
        return len(self.pool)

    def _timed(self, key: tuple[str, ...], stage: str, fn: Callable[[], Any]) -> Any:
        if key not in self._cache:
            t0 = time.perf_counter()
            self._cache[key] = fn()
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - t0
        return self._cache[key]

    def has(self, *key: str) -> bool:
        return tuple(key) in self._cache

    # ---- raw features -----------------------------------------------------------------
    def embeddings(self, component: str) -> np.ndarray:
        """``float32[N, d]`` L2-normalized embeddings of a component."""
        _check_component(component)

        def compute() -> np.ndarray:
            from tritondiv.features import embed_pool

            pre = getattr(self.options, f"embeddings_{component}")
            X = embed_pool(
                self.pool,
                component,
                self.options.embedding_model,
                precomputed=pre,
                cache=self.options.cache,
                progress=self.options.progress,
            )
            return np.ascontiguousarray(X, dtype=np.float32)

        return self._timed(("emb", component), f"embed-{component}", compute)

    def tokens(self, component: str) -> Any:
        """The component's token ids (:class:`tritondiv.tokens.TokenCSR`)."""
        _check_component(component)

        def compute() -> Any:
            from tritondiv.tokens import tokenize_pool

            return tokenize_pool(
                self.pool,
                component,
                self.tokenizer(),
                cache=self.options.cache,
                progress=self.options.progress,
            )

        return self._timed(("tok", component), f"tokenize-{component}", compute)

    def tokenizer(self) -> Any:
        def compute() -> Any:
            from tritondiv.tokens import load_tokenizer

            return load_tokenizer(self.options.tokenizer)

        return self._timed(("tokenizer",), "load-tokenizer", compute)

    def tags(self, component: str) -> list[list[str]]:
        """Raw tags per sample of a component (the configured tagger)."""
        _check_component(component)

        def compute() -> list[list[str]]:
            from tritondiv.features import tag_pool

            tagger = make_tagger(
                self.options.tagger,
                embedding_model=self.options.embedding_model,
                progress=self.options.progress,
                max_words=self.options.tag_max_words,
            )
            return tag_pool(self.pool, component, tagger, cache=self.options.cache)

        return self._timed(("tags", component), f"tag-{component}", compute)

    def band(self, component: str) -> tuple[int, int]:
        """Absolute micro band ``(lo, hi)`` for this pool."""
        return resolve_band(self.options.lo, self.options.hi, self.n_samples)

    # ---- types ------------------------------------------------------------------------
    def incidence(self, family: str) -> Incidence:
        """The incidence of a type family ``<component>-<macro|meso|micro>``."""
        if family not in TYPE_STRATEGIES:
            raise ValueError(f"type family must be one of {TYPE_STRATEGIES}, got {family!r}")
        component, level = family.split("-")
        if level == "macro":
            X = self.embeddings(component)
            return self._timed(
                ("inc", family),
                f"types-{family}",
                lambda: macro_types(
                    X,
                    self.options.topics,
                    method=self.options.topic_method,
                    seed=self.seed,
                    progress=self.options.progress,
                ),
            )
        if level == "meso":
            tags = self.tags(component)

            def meso() -> Incidence:
                from tritondiv.types import meso_types

                inc, report = meso_types(tags)
                self._cache[("tagreport", component)] = report
                return inc

            return self._timed(("inc", family), f"types-{family}", meso)
        tokens = self.tokens(component)
        lo, hi = self.band(component)
        from tritondiv.types import micro_types

        return self._timed(("inc", family), f"types-{family}", lambda: micro_types(tokens, lo, hi))

    def tag_report(self, component: str) -> Any:
        """The :class:`~tritondiv.features.TagReport` of a component's meso types, once built."""
        return self._cache.get(("tagreport", component))

    def n_topics(self) -> int:
        return self.options.topics or default_topics(self.n_samples)

    def pruning(self, family: str) -> Any:
        """The reverse greedy pruning of a type family (computed once)."""
        inc = self.incidence(family)

        def compute() -> Any:
            from tritondiv.select import prune_types

            return prune_types(inc, seed=self.seed)

        return self._timed(("prune", family), f"prune-{family}", compute)

    def knn(self, component: str) -> Any:
        """The kNN cosine-similarity graph (scipy CSR) of a component's embeddings."""
        X = self.embeddings(component)

        def compute() -> Any:
            from tritondiv.kernels import knn_graph

            return knn_graph(X, self.options.knn, symmetrize=True, progress=self.options.progress)

        return self._timed(("knn", component), f"knn-{component}", compute)


def _check_component(component: str) -> None:
    if component not in COMPONENTS:
        raise ValueError(f"component must be one of {COMPONENTS}, got {component!r}")


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
    """``all`` (the six type strategies), ``baselines``, ``everything`` or a comma list."""
    if isinstance(spec, str):
        if spec == "all":
            return list(TYPE_STRATEGIES)
        if spec == "baselines":
            return list(BASELINE_STRATEGIES)
        if spec == "everything":
            return list(STRATEGIES)
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


# ---- the type strategies ------------------------------------------------------------
def _type_strategy(
    family: str, features: Features, n: int, levels: Sequence[float], seed: int
) -> list[Selection]:
    from tritondiv.select import select_types_ladder

    inc = features.incidence(family)
    _check_size(n, inc.n_samples, family)
    t0 = time.perf_counter()
    results = select_types_ladder(
        inc, n, list(levels), g=features.options.g, seed=seed, progress=features.options.progress
    )
    features.timings[f"select-{family}"] = (
        features.timings.get(f"select-{family}", 0.0) + time.perf_counter() - t0
    )
    info: dict[str, Any] = {}
    report = features.tag_report(family.split("-")[0]) if family.endswith("-meso") else None
    if report is not None:
        # what tag normalization left (the paper reports about 4 tags per sample)
        info["tags"] = {
            "tags_per_sample": float(report.tags_per_sample_mean),
            "raw_tags_per_sample": float(report.raw_tags_per_sample_mean),
            "kept_tags": int(report.kept_tags),
            "untagged": int(report.untagged),
        }
    out = []
    for level, res in zip(levels, results, strict=True):
        idx = np.asarray(res.indices, dtype=np.int64)
        assert res.k is not None and res.k_min is not None and res.k_max is not None
        out.append(
            Selection(
                strategy=family,
                level=float(level),
                indices=idx,
                k=int(res.k),
                k_min=int(res.k_min),
                k_max=int(res.k_max),
                n_types=int(inc.n_types),
                coverage=coverage(inc, idx),
                type_family=family,
                info=dict(info),
            )
        )
    return out


def _check_size(n: int, n_samples: int, what: str) -> None:
    if n < 1:
        raise ValueError(f"size must be >= 1, got {n}")
    if n > n_samples:
        raise ValueError(
            f"{what}: size {n} is larger than the pool ({n_samples} samples): pass a smaller "
            "--size or a larger pool"
        )


def instruction_macro(
    features: Features, n: int, levels: Sequence[float], seed: int = 0
) -> list[Selection]:
    """Instruction topics (spherical k-means of instruction embeddings), balanced."""
    return _type_strategy("instruction-macro", features, n, levels, seed)


def instruction_meso(
    features: Features, n: int, levels: Sequence[float], seed: int = 0
) -> list[Selection]:
    """Normalized instruction tags, balanced."""
    return _type_strategy("instruction-meso", features, n, levels, seed)


def instruction_micro(
    features: Features, n: int, levels: Sequence[float], seed: int = 0
) -> list[Selection]:
    """Mid-band instruction tokens, balanced."""
    return _type_strategy("instruction-micro", features, n, levels, seed)


def response_macro(
    features: Features, n: int, levels: Sequence[float], seed: int = 0
) -> list[Selection]:
    """Response topics (spherical k-means of response embeddings), balanced."""
    return _type_strategy("response-macro", features, n, levels, seed)


def response_meso(
    features: Features, n: int, levels: Sequence[float], seed: int = 0
) -> list[Selection]:
    """Normalized response tags, balanced."""
    return _type_strategy("response-meso", features, n, levels, seed)


def response_micro(
    features: Features, n: int, levels: Sequence[float], seed: int = 0
) -> list[Selection]:
    """Mid-band response tokens, balanced (the paper's strongest strategy)."""
    return _type_strategy("response-micro", features, n, levels, seed)


# ---- the embedding baselines ----------------------------------------------------------
def _baseline(
    name: str,
    pick: Callable[[Features, np.ndarray, int, int], tuple[np.ndarray, dict[str, Any]]],
    features: Features,
    n: int,
    levels: Sequence[float],
    seed: int,
) -> list[Selection]:
    component = features.options.component
    family = f"{component}-macro"
    inc = features.incidence(family)
    _check_size(n, inc.n_samples, name)
    pruning = features.pruning(family)
    k_min, k_max = int(pruning.k_min(n)), int(pruning.k_max)
    out = []
    for level in levels:
        k = int(pruning.k_at(level, n))
        candidates = np.sort(np.asarray(pruning.pool(k), dtype=np.int64))
        t0 = time.perf_counter()
        idx, info = pick(features, candidates, n, seed)
        features.timings[f"select-{name}"] = (
            features.timings.get(f"select-{name}", 0.0) + time.perf_counter() - t0
        )
        idx = np.asarray(idx, dtype=np.int64)
        out.append(
            Selection(
                strategy=name,
                level=float(level),
                indices=idx,
                k=k,
                k_min=k_min,
                k_max=k_max,
                n_types=int(inc.n_types),
                coverage=coverage(inc, idx),
                type_family=family,
                info={"component": component, "candidates": int(candidates.size), **info},
            )
        )
    return out


def _as_indices(result: Any) -> np.ndarray:
    return np.asarray(getattr(result, "indices", result), dtype=np.int64)


TAU_STEP = 0.02


def _pick_kcenter(
    features: Features, cand: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, dict]:
    from tritondiv.select import kcenter_greedy

    X = features.embeddings(features.options.component)
    local = _as_indices(
        kcenter_greedy(np.ascontiguousarray(X[cand]), n, metric="cosine", seed=seed)
    )
    return cand[local], {}


def _pick_facility(
    features: Features, cand: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, dict]:
    from tritondiv.select import facility_location as fl

    graph = features.knn(features.options.component)
    sub = graph[cand][:, cand].tocsr() if cand.size != graph.shape[0] else graph
    local = _as_indices(fl(sub, n))
    return cand[local], {"knn": int(features.options.knn)}


def _pick_threshold(
    features: Features, cand: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, dict]:
    from tritondiv.select import threshold_filter

    X = np.ascontiguousarray(features.embeddings(features.options.component)[cand])
    order = np.random.default_rng(seed).permutation(cand.size).astype(np.int64)
    tau = float(features.options.tau)
    # When fewer than n candidates pass at tau (small candidate pools hold near-duplicates),
    # the threshold is relaxed in steps of TAU_STEP until n pass (recorded as tau_used).
    while True:
        try:
            res = threshold_filter(X, n, tau, order=order)
            break
        except ValueError:
            if tau > 1.0:
                raise
            tau = round(tau + TAU_STEP, 6)
    return cand[_as_indices(res)], {"tau": float(features.options.tau), "tau_used": tau}


def _pick_random(
    features: Features, cand: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, dict]:
    from tritondiv.select import random_select

    local = _as_indices(random_select(cand.size, n, seed=seed))
    return cand[local], {}


def kcenter(features: Features, n: int, levels: Sequence[float], seed: int = 0) -> list[Selection]:
    """k-center greedy on the component's embeddings, within the macro candidate pools."""
    return _baseline("kcenter", _pick_kcenter, features, n, levels, seed)


def facility_location(
    features: Features, n: int, levels: Sequence[float], seed: int = 0
) -> list[Selection]:
    """Facility location on the kNN graph, within the macro candidate pools."""
    return _baseline("facility-location", _pick_facility, features, n, levels, seed)


def threshold(
    features: Features, n: int, levels: Sequence[float], seed: int = 0
) -> list[Selection]:
    """DEITA-style similarity-threshold filter, within the macro candidate pools."""
    return _baseline("threshold", _pick_threshold, features, n, levels, seed)


def random_baseline(
    features: Features, n: int, levels: Sequence[float], seed: int = 0
) -> list[Selection]:
    """Uniform random sample, within the macro candidate pools."""
    return _baseline("random", _pick_random, features, n, levels, seed)


_REGISTRY: dict[str, Callable[..., list[Selection]]] = {
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
}


def get_strategy(name: str) -> Callable[..., list[Selection]]:
    """The function of a strategy name."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown strategy {name!r}: choose from {', '.join(STRATEGIES)}"
        ) from None


def run_strategy(
    name: str, features: Features, n: int, levels: Sequence[float], seed: int = 0
) -> list[Selection]:
    """Select ``n`` samples at each level with strategy ``name`` (levels share one pruning)."""
    return get_strategy(name)(features, int(n), [float(p) for p in levels], seed)
