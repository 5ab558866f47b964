"""The picks of the embedding baselines: k-center, facility location, the DEITA-style
threshold, random, and DEITA's score-first filter (``deita``).

Each ``_pick_<name>(features, cand, n, seed[, level, memo])`` chooses ``n`` of the candidate
rows ``cand`` and returns ``(indices, info)``; :mod:`tritondiv.strategies` registers them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tritondiv.feature_store import Features


def _as_indices(result: Any) -> np.ndarray:
    return np.asarray(getattr(result, "indices", result), dtype=np.int64)


TAU_STEP = 0.02


def _pick_kcenter(
    features: Features, cand: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    from tritondiv.select import kcenter_greedy

    X = features.embeddings(features.options.component)
    local = _as_indices(
        kcenter_greedy(np.ascontiguousarray(X[cand]), n, metric="cosine", seed=seed)
    )
    return cand[local], {}


def _pick_facility(
    features: Features, cand: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    from tritondiv.select import facility_location as fl

    graph = features.knn(features.options.component)
    sub = graph[cand][:, cand].tocsr() if cand.size != graph.shape[0] else graph
    quality = features.quality()
    if quality is not None:
        import scipy.sparse as sp  # type: ignore[import-untyped]

        # quality as gain weights: what candidate j covers (row j) counts q_j times
        sub = (sp.diags(quality[cand]) @ sub).tocsr()
    local = _as_indices(fl(sub, n))
    return cand[local], {"knn": int(features.options.knn)}


def _pick_threshold(
    features: Features, cand: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
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
) -> tuple[np.ndarray, dict[str, Any]]:
    from tritondiv.select import random_select

    local = _as_indices(random_select(cand.size, n, seed=seed))
    return cand[local], {}


#: Bisection steps of the level-1 ``tau`` of ``deita`` (:func:`_deita_bisect`): the tau
#: found is within ``2 / 2**DEITA_STEPS`` (1.2e-4) above a tau that does not fill ``n``.
DEITA_STEPS = 14


def _deita_keep(X: np.ndarray, n: int, order: np.ndarray, tau: float) -> np.ndarray | None:
    """Rows kept by DEITA's filter at ``tau`` (the first ``n`` in walk order), or ``None``
    when fewer than ``n`` pass. ``tau >= 1`` rejects nothing: the first ``n`` of ``order``."""
    from tritondiv.select import threshold_filter

    if tau >= 1.0:
        return np.asarray(order[:n], dtype=np.int64)
    try:
        return _as_indices(threshold_filter(X, n, tau, order=order))
    except ValueError:
        return None


def _deita_bisect(X: np.ndarray, n: int, order: np.ndarray, lo: float) -> float:
    """The bisection's smallest ``tau`` in ``[lo, 1]`` at which the filter fills ``n``:
    ``lo`` when it fills there, else ``DEITA_STEPS`` halvings of ``[lo, 1]`` keeping
    "fills at hi" (``tau = 1`` always fills)."""
    if _deita_keep(X, n, order, lo) is not None:
        return float(lo)
    hi = 1.0
    for _ in range(DEITA_STEPS):
        mid = (lo + hi) / 2.0
        if _deita_keep(X, n, order, mid) is not None:
            hi = mid
        else:
            lo = mid
    return hi


def deita_filter(
    X: np.ndarray, quality: np.ndarray, n: int, level: float, tau_min: float | None = None
) -> tuple[np.ndarray, float, float]:
    """DEITA's score-first, diversity-aware filter at a diversity level.

    The samples are walked by descending ``quality`` (ties: lower row first); a sample is
    kept when its cosine similarity to every kept sample is ``<= tau`` (DEITA rejects one
    with a similarity ``> threshold`` to any kept sample), until ``n`` are kept.
    ``tau(level) = 1 - level (1 - tau_min)``: level 0 is ``tau = 1``, the top ``n`` by
    quality; level 1 is ``tau_min``, the smallest tau found by bisection at which the filter
    still keeps ``n`` (:func:`_deita_bisect` over ``[-1, 1]``, :data:`DEITA_STEPS` halvings;
    each step runs the filter, which walks the whole pool when it fails, so level 1 costs
    about 15 filters and the other levels one more once it is known). The number kept is not
    monotone in ``tau`` in general, so a level whose ``tau`` does not fill ``n`` uses the
    bisection's smallest filling tau above it (``tau_used``).

    Follows DEITA (``hkust-nlp/deita``, ``IterativeFilter.filter`` with ``batch_size=1``):
    the order, the first sample always kept, the ``> threshold`` rejection on normalized
    embeddings, the stop at ``n``. Differs: the scores are one number per sample given by
    the user (DEITA multiplies its complexity and quality scorers' outputs, summed over
    turns); ties of equal score keep row order (DEITA's pandas ``sort_values`` is not
    stable); the embeddings are the component's (DEITA mean-pools its scorer LLM's
    states); the threshold comes from the level (DEITA fixes it, 0.9) and is lowered no
    further than ``n`` can be filled (DEITA may return fewer than ``n``).

    Parameters
    ----------
    X : numpy.ndarray
        ``float32[N, d]`` embeddings (cosine on float32-normalized rows).
    quality : numpy.ndarray
        ``float[N]`` scores, higher first.
    n : int
        Samples to keep, ``1 <= n <= N``.
    level : float
        Diversity level in ``[0, 1]``.
    tau_min : float, optional
        The level-1 threshold, when known (the ladder computes it once per stratum).

    Returns
    -------
    (indices, tau_used, tau_min)
        Rows of ``X`` in walk order, the threshold used and the level-1 threshold.
    """
    order = np.argsort(-np.asarray(quality, dtype=np.float64), kind="stable").astype(np.int64)
    X = np.ascontiguousarray(X, dtype=np.float32)
    if tau_min is None:
        tau_min = _deita_bisect(X, n, order, -1.0) if level > 0 else 1.0
    tau = 1.0 - float(level) * (1.0 - tau_min)
    keep = _deita_keep(X, n, order, tau)
    if keep is None:
        tau = _deita_bisect(X, n, order, tau)
        keep = _deita_keep(X, n, order, tau)
        assert keep is not None
    return keep, float(tau), float(tau_min)


def _pick_deita(
    features: Features, cand: np.ndarray, n: int, seed: int, level: float, memo: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    quality = features.quality()
    assert quality is not None  # checked by check_quality_use
    X = features.embeddings(features.options.component)[cand]
    local, tau, tau_min = deita_filter(X, quality[cand], n, level, memo.get("tau_min"))
    if level > 0:
        memo["tau_min"] = tau_min
    return cand[local], {"tau_used": tau}
