"""The three type families: each maps every sample of a component to a set of types
(an :class:`Incidence`). ``tritondiv.types`` re-exports this module.

=========  ==========================================================================
level      type of a sample
=========  ==========================================================================
macro      its topic: one spherical k-means cluster of the component's embeddings
           (``K`` an option, default ``round(sqrt(N))``); HDBSCAN (scikit-learn) as an
           option for small pools — its noise points carry no type.
meso       its normalized tags (a tagger, then tag normalization, see
           :mod:`tritondiv.features`).
micro      its mid-band tokens: token ids whose occurrence count over the pool's
           component lies in ``[lo, hi]`` (defaults 10/500; ``"Fx"`` = F times the pool
           size, see :func:`resolve_band`, owned by :mod:`tritondiv.stats`).
=========  ==========================================================================
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tritondiv.incidence import Incidence
from tritondiv.stats import parse_band_value, resolve_band

__all__ = [
    "COMPONENTS",
    "LEVELS",
    "TOPIC_METHODS",
    "TYPE_FAMILIES",
    "coverage",
    "default_topics",
    "macro_types",
    "meso_types",
    "micro_types",
    "parse_band_value",
    "parse_family",
    "resolve_band",
]

TOPIC_METHODS: tuple[str, ...] = ("kmeans", "hdbscan")
#: The two texts of a sample.
COMPONENTS: tuple[str, ...] = ("instruction", "response")
#: The three levels of the taxonomy.
LEVELS: tuple[str, ...] = ("macro", "meso", "micro")
#: Every type family ``<component>-<level>``.
TYPE_FAMILIES: tuple[str, ...] = tuple(f"{c}-{lv}" for c in COMPONENTS for lv in LEVELS)


def parse_family(family: str) -> tuple[str, str]:
    """``"response-micro"`` -> ``("response", "micro")``; ``ValueError`` for an unknown name."""
    if family not in TYPE_FAMILIES:
        raise ValueError(f"type family must be one of {TYPE_FAMILIES}, got {family!r}")
    component, level = family.split("-")
    return component, level


def default_topics(n_samples: int) -> int:
    """Default number of macro topics: ``round(sqrt(N))``, at least 1 (and at most ``N``)."""
    if n_samples <= 0:
        return 1
    return int(max(1, min(n_samples, round(math.sqrt(n_samples)))))


def macro_types(
    embeddings: np.ndarray,
    n_topics: int | None = None,
    *,
    method: str = "kmeans",
    seed: int = 0,
    iters: int | None = None,
    min_cluster_size: int | None = None,
    progress: bool | None = None,
) -> Incidence:
    """Macro types: one topic id per sample, from the component's embeddings.

    Parameters
    ----------
    embeddings : numpy.ndarray
        ``float32[N, d]`` embeddings (L2-normalized for spherical k-means).
    n_topics : int, optional
        ``K`` for k-means; default :func:`default_topics` (``round(sqrt(N))``). Ignored by
        HDBSCAN, which finds its own number of clusters.
    method : {"kmeans", "hdbscan"}
        ``"kmeans"``: spherical k-means++ (:func:`tritondiv.kernels.kmeans`), every sample
        gets a topic. ``"hdbscan"``: :class:`sklearn.cluster.HDBSCAN` (cosine on the
        normalized vectors, i.e. euclidean), for small pools; noise samples get no type.
    seed : int
        Seed of the k-means++ initialization.
    iters : int, optional
        k-means iterations (the kernel's default when ``None``).
    min_cluster_size : int, optional
        HDBSCAN's ``min_cluster_size`` (default ``max(5, N // 200)``).

    Returns
    -------
    Incidence
        One type per sample (none for HDBSCAN noise); ``labels`` are the topic ids.
    """
    X = np.asarray(embeddings)
    if X.ndim != 2:
        raise ValueError(f"macro_types: embeddings must be 2-D [N, d], got shape {X.shape}")
    n = X.shape[0]
    if method not in TOPIC_METHODS:
        raise ValueError(f"macro_types: method must be one of {TOPIC_METHODS}, got {method!r}")
    if n == 0:
        return Incidence(np.zeros(1, np.int64), np.zeros(0, np.int32), 0)
    X = np.ascontiguousarray(X, dtype=np.float32)
    if method == "kmeans":
        k = default_topics(n) if n_topics is None else int(n_topics)
        if k < 1:
            raise ValueError(f"macro_types: n_topics must be >= 1, got {n_topics}")
        k = min(k, n)
        from tritondiv.kernels import kmeans

        kwargs: dict[str, Any] = {"seed": seed, "progress": progress}
        if iters is not None:
            kwargs["iters"] = iters
        result = kmeans(X, k, **kwargs)
        labels = np.asarray(result.labels, dtype=np.int64)
        n_types = k
    else:
        from sklearn.cluster import HDBSCAN  # type: ignore[import-untyped]

        mcs = max(5, n // 200) if min_cluster_size is None else int(min_cluster_size)
        labels = HDBSCAN(min_cluster_size=max(2, mcs), copy=True).fit(X).labels_.astype(np.int64)
        n_types = int(labels.max()) + 1 if (labels >= 0).any() else 0
    inc = Incidence.from_labels(labels, n_types=n_types)
    return Incidence(inc.offsets, inc.types, inc.n_types, np.arange(n_types, dtype=np.int64))


def meso_types(
    tags_per_sample: Sequence[Sequence[str]], **normalize_kwargs: Any
) -> tuple[Incidence, Any]:
    """Meso types: normalized tags (see :func:`tritondiv.features.normalize_tags`).

    Returns
    -------
    (Incidence, TagReport)
        The incidence (``labels`` = tag strings) and the normalization report.
    """
    from tritondiv.features import normalize_tags

    return normalize_tags(tags_per_sample, **normalize_kwargs)


def micro_types(tokens: Any, lo: int = 10, hi: int = 500) -> Incidence:
    """Micro types: the mid-band tokens of each sample (:func:`tritondiv.stats.band_incidence`)."""
    from tritondiv.stats import band_incidence

    return band_incidence(tokens, lo=lo, hi=hi)


def coverage(incidence: Incidence, indices: np.ndarray | Sequence[int]) -> int:
    """Number of distinct types carried by the samples ``indices``."""
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size == 0 or incidence.n_types == 0:
        return 0
    sub = incidence.subset(idx)
    if sub.nnz == 0:
        return 0
    seen = np.zeros(incidence.n_types, dtype=bool)
    seen[sub.types] = True
    return int(seen.sum())
