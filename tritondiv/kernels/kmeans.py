"""Spherical k-means (cosine) with k-means++ initialization, on the nearest kernel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["KMeansResult", "kmeans"]


@dataclass(frozen=True)
class KMeansResult:
    """Result of :func:`kmeans`.

    Attributes
    ----------
    labels : numpy.ndarray, int64 (N,)
        Cluster of each row: its most similar center (ties: smaller center id).
    centers : numpy.ndarray, float32 (n_clusters, d)
        Unit-norm centers (normalized means of their members).
    objective : float
        ``Σ_i (1 − cos(x_i, centers[labels[i]]))`` for the returned labels and centers
        (lower is better).
    iterations : int
        Center updates performed (<= ``iters``; fewer when the labels stop changing).
    converged : bool
        Whether the labels stopped changing before ``iters`` updates.
    reseeded : int
        Empty clusters reseeded over the run.
    """

    labels: np.ndarray
    centers: np.ndarray
    objective: float
    iterations: int
    converged: bool
    reseeded: int


def _kmeanspp(xs: np.ndarray, k: int, rng: np.random.Generator, trials: int) -> np.ndarray:
    """Greedy k-means++ on normalized rows ``xs`` (D² sampling, ``D² = 2(1 − cos)``).

    Each step draws ``trials`` candidates by D² sampling and keeps the one that lowers the
    total potential most (the scikit-learn variant; ``trials = 1`` is plain k-means++).
    """
    n = xs.shape[0]
    chosen = np.empty(k, dtype=np.int64)
    chosen[0] = rng.integers(n)
    # D² in float32 (one n-vector per step), prefix sums and potentials in float64
    d2 = np.maximum(2.0 - 2.0 * (xs @ xs[chosen[0]]), 0.0).astype(np.float32)
    cs = np.empty(n, dtype=np.float64)
    for c in range(1, k):
        np.cumsum(d2, dtype=np.float64, out=cs)
        total = cs[-1]
        if total <= 0:  # every row coincides with a center: take unused rows in order
            unused = np.setdiff1d(np.arange(n), chosen[:c])
            chosen[c] = unused[0] if unused.size else rng.integers(n)
            continue
        cand = np.minimum(np.searchsorted(cs, rng.random(trials) * total, side="right"), n - 1)
        cd2 = 2.0 - 2.0 * (xs @ xs[cand].T)  # n x trials, float32
        np.maximum(cd2, 0.0, out=cd2)
        np.minimum(cd2, d2[:, None], out=cd2)
        best = int(np.argmin(cd2.sum(axis=0, dtype=np.float64)))
        chosen[c] = cand[best]
        d2 = np.ascontiguousarray(cd2[:, best])
    return xs[chosen].copy()


def kmeans(
    X: Any,
    n_clusters: int,
    *,
    seed: int = 0,
    iters: int = 25,
    init: str = "k-means++",
    init_sample: int | None = None,
    device: str = "auto",
    block_size: int | None = None,
    progress: bool | None = None,
) -> KMeansResult:
    """Spherical k-means: cluster rows by cosine similarity.

    Rows are L2-normalized (zero rows stay zero: cosine 0 with every center, so they join
    center 0 and add 1 each to the objective). Lloyd iterations: assign every row to its
    most similar center (the :func:`~tritondiv.kernels.nearest` kernel), then set each
    center to the normalized mean of its members; stop after ``iters`` updates or when no
    label changes. The returned labels are the assignment to the returned centers.

    Initialization ``"k-means++"`` (default): greedy k-means++ (D² sampling with
    ``D² = 2(1 − cos)``, ``2 + ln k`` candidates per step, the one lowering the potential most)
    over a seeded uniform subsample of ``init_sample`` rows (default
    ``min(N, max(8192, 8·n_clusters))``, which keeps the k passes in cache);
    ``"random"``: ``n_clusters`` distinct random rows.

    Empty clusters: after an update, each empty cluster is reseeded with one of the rows
    farthest from their current center (largest ``1 − cos``; distinct rows, ties by
    smaller index). If ``X`` has fewer distinct rows than ``n_clusters`` some clusters
    may stay empty.

    Parameters
    ----------
    X : array (N, d)
        Rows (float32/float16/bfloat16; numpy or torch).
    n_clusters : int
        ``1 <= n_clusters <= N``.
    seed : int
        Seed of the initialization (the rest is deterministic).
    iters : int
        Maximum center updates (>= 0).
    init : {"k-means++", "random"}
        Initialization.
    init_sample : int, optional
        Rows sampled for k-means++.
    device, block_size, progress
        As in :func:`tritondiv.kernels.nearest` (the assignment step).

    Returns
    -------
    KMeansResult
    """
    from tritondiv.kernels._common import resolve_device, to_float32
    from tritondiv.kernels.cpu import normalize_rows, progress_bar

    x = to_float32(X, "X", allow_empty=False)
    n = x.shape[0]
    if not isinstance(n_clusters, (int, np.integer)) or not 1 <= n_clusters <= n:
        raise ValueError(f"n_clusters must be an int in [1, N={n}], got {n_clusters!r}")
    if not isinstance(iters, (int, np.integer)) or iters < 0:
        raise ValueError(f"iters must be an int >= 0, got {iters!r}")
    if init not in ("k-means++", "random"):
        raise ValueError(f"init={init!r} is not supported; use 'k-means++' or 'random'")
    k = int(n_clusters)
    path = resolve_device(device, X)
    xs = normalize_rows(x)
    rng = np.random.default_rng(seed)

    if init == "random":
        centers = xs[np.sort(rng.choice(n, size=k, replace=False))].copy()
    else:
        m = min(n, max(8192, 8 * k)) if init_sample is None else int(init_sample)
        if not k <= m <= n:
            raise ValueError(f"init_sample must be in [n_clusters={k}, N={n}], got {m}")
        sub = xs if m == n else xs[np.sort(rng.choice(n, size=m, replace=False))]
        centers = _kmeanspp(np.ascontiguousarray(sub), k, rng, 2 + int(np.log(k)))

    def assign(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if path == "triton":
            from tritondiv.kernels import triton_kernels as tk

            dist, lab = tk.nearest_triton(xs, c, metric="cosine")
            return 1.0 - dist, lab
        from tritondiv.kernels.cpu import nearest_scores

        return nearest_scores(xs, c, 1.0, None, block_size)

    import scipy.sparse as sp

    best, labels = assign(centers)
    iterations = 0
    converged = False
    reseeded = 0
    with progress_bar(iters, progress, "kmeans") as bar:
        for _ in range(iters):
            onehot = sp.csr_matrix(
                (np.ones(n, dtype=np.float32), (labels, np.arange(n))), shape=(k, n)
            )
            sums = np.asarray(onehot @ xs, dtype=np.float32)
            counts = np.bincount(labels, minlength=k)
            new = normalize_rows(sums)
            dead = (np.linalg.norm(sums, axis=1) == 0) & (counts > 0)
            new[dead] = centers[dead]  # members cancel out exactly: keep the old center
            empty = np.flatnonzero(counts == 0)
            if empty.size:
                far = np.argsort(-(1.0 - best.astype(np.float64)), kind="stable")
                far = far[np.linalg.norm(xs[far], axis=1) > 0][: empty.size]
                new[empty[: far.size]] = xs[far]
                reseeded += int(min(empty.size, far.size))
            centers = new
            iterations += 1
            best, new_labels = assign(centers)
            bar.update(1)
            if np.array_equal(new_labels, labels) and not empty.size:
                labels = new_labels
                converged = True
                break
            labels = new_labels
    objective = float(np.sum(1.0 - best.astype(np.float64)))
    return KMeansResult(
        labels=labels.astype(np.int64, copy=False),
        centers=centers.astype(np.float32, copy=False),
        objective=objective,
        iterations=iterations,
        converged=converged,
        reseeded=reseeded,
    )
