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
    rows_scored : int
        Rows scored against every center over the run (``N`` per assignment without
        bounds; fewer with them).
    """

    labels: np.ndarray
    centers: np.ndarray
    objective: float
    iterations: int
    converged: bool
    reseeded: int
    rows_scored: int = 0


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


# The float32 rounding error of a dot product of two vectors of norm <= 1 in d dimensions is
# at most about d·2⁻²⁴; the bounds use eps = max(2.5e-5, d·2⁻²⁴) per score, so that a
# certified assignment is also the one the float32 exhaustive argmax picks. Centers farther
# than _UNIT_TOL from unit norm (an empty cluster left at zero) switch the bounds off for a step.
_UNIT_TOL = 1e-3


def _assigned_scores(
    xs: np.ndarray, centers: np.ndarray, labels: np.ndarray, rows: np.ndarray | None = None
) -> np.ndarray:
    """``xs[i] · centers[labels[i]]`` (float32) for every row (or ``xs[rows[j]]`` with
    ``labels[j]``), in bounded chunks: rows are gathered one chunk at a time, so a
    memory-mapped ``xs`` is never copied whole."""
    m = labels.shape[0]
    out = np.empty(m, dtype=np.float32)
    step = _CHUNK
    for s in range(0, m, step):
        a = xs[s : s + step] if rows is None else xs[rows[s : s + step]]
        out[s : s + step] = np.einsum("ij,ij->i", a, centers[labels[s : s + step]])
    return out


# Rows per chunk of the gathers above (a chunk of 4096 rows of 384 float32 is 6 MiB).
_CHUNK = 1 << 12


class _BoundedAssign:
    """Assignment steps that skip rows whose label provably cannot change (Hamerly-style).

    Per row: its label ``a``, and ``lower``, a lower bound on its distance to every center
    but ``a`` (Euclidean, ``d² = |x|² + 1 − 2·x·c`` for unit centers). When the centers move
    by ``δ_j``, ``lower`` drops by the largest drift among the other "cold" centers; the
    few centers that moved most ("hot", chosen per step to minimize the work) are scored
    exactly against every row instead. The distance to ``a`` is recomputed exactly (one
    dot product per row). A row keeps its label when ``lower² − dist_a² > 4·eps`` (``eps``
    bounds the float32 rounding of one dot product), which implies the float32 exhaustive
    argmax picks the same label; every other row is re-scored against all centers (top-2,
    blocked sgemm + ``_core.topk_merge_block`` on the gathered rows).
    """

    def __init__(self, xs: np.ndarray, block_size: int | None) -> None:
        from tritondiv.kernels.cpu import _check_block

        self.xs = xs
        self.bs = _check_block(block_size)
        self.xn2 = np.einsum("ij,ij->i", xs, xs, dtype=np.float64)
        self.eps = max(2.5e-5, xs.shape[1] * 2.0**-24)
        self.rescored = 0  # rows re-scored against all centers, over the run
        self.labels = np.zeros(xs.shape[0], dtype=np.int64)
        self.lower = np.zeros(xs.shape[0], dtype=np.float64)
        self.centers = np.zeros((0, xs.shape[1]), dtype=np.float32)

    def _top2(self, rows: np.ndarray | None, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels and lower bounds (to the other centers) of ``rows`` (None: all)."""
        from tritondiv import _core
        from tritondiv.kernels.cpu import _EMPTY_ID, _blocks, _scratch

        n = self.xs.shape[0] if rows is None else rows.shape[0]
        m = centers.shape[0]
        vals = np.full((n, 2), -np.inf, dtype=np.float32)
        ids = np.full((n, 2), _EMPTY_ID, dtype=np.int64)
        buf = _scratch(min(self.bs, n) * min(self.bs, m))
        for r0, r1 in _blocks(n, self.bs):
            # the rows of one block, gathered one block at a time (never all of xs)
            a = self.xs[r0:r1] if rows is None else self.xs[rows[r0:r1]]
            for c0, c1 in _blocks(m, self.bs):
                g = buf[: (r1 - r0) * (c1 - c0)].reshape(r1 - r0, c1 - c0)
                np.matmul(a, centers[c0:c1].T, out=g)
                _core.topk_merge_block(g, r0, c0, 1.0, None, None, False, False, vals, ids)
        _core.topk_finalize(vals, ids)
        xn2 = self.xn2 if rows is None else self.xn2[rows]
        s2 = vals[:, 1].astype(np.float64) + self.eps  # -inf when there is one center
        lower = np.sqrt(np.maximum(xn2 + 1.0 - 2.0 * s2, 0.0))
        self.rescored += n
        return ids[:, 0].copy(), lower

    def first(self, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels for ``centers`` from scratch, and each row's score with its center."""
        self.labels, self.lower = self._top2(None, centers)
        self.centers = centers
        return self.labels.copy(), _assigned_scores(self.xs, centers, self.labels)

    def step(self, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels for the centers ``new`` (the previous ones are ``self.centers``), and each
        row's score with its center (as :func:`_assigned_scores`)."""
        k = new.shape[0]
        cn = np.linalg.norm(new.astype(np.float64), axis=1)
        if k < 2 or np.any(np.abs(cn - 1.0) > _UNIT_TOL):
            return self.first(new)  # not all unit centers: the bounds do not apply
        drift = np.linalg.norm(new.astype(np.float64) - self.centers, axis=1) * (1 + 1e-9)
        labels = self.labels
        eps = self.eps
        score = _assigned_scores(self.xs, new, labels)
        s_a = score.astype(np.float64) - eps
        need = self.xn2 + 1.0 - 2.0 * s_a + 4.0 * eps  # lower² must exceed this
        need = np.maximum(need, 0.0)
        order = np.argsort(-drift, kind="stable")
        ds = np.concatenate([drift[order], [0.0]])
        # hot set size h: minimize h + k·(estimated fraction of rows to re-score)
        best_h, best_cost = 0, np.inf
        h = 0
        while True:
            lb = self.lower - ds[h]
            frac = float(np.mean((lb <= 0) | (lb * lb <= need)))
            cost = h + k * frac
            if cost < best_cost:
                best_h, best_cost = h, cost
            if h >= k // 4:
                break
            h = max(1, 2 * h)
        hot = np.sort(order[:best_h])
        cold = np.ones(k, dtype=bool)
        cold[hot] = False
        cd = np.where(cold, drift, -np.inf)
        j1 = int(np.argmax(cd))
        d1 = max(float(cd[j1]), 0.0)
        cd2 = cd.copy()
        cd2[j1] = -np.inf
        d2 = max(float(cd2.max()), 0.0) if k > 1 else 0.0
        lower = self.lower - np.where(labels == j1, d2, d1)
        if hot.size:
            # distance is decreasing in the score (unit centers): the nearest hot center
            # other than the row's own is the one with the highest float32 score
            hc = new[hot]
            pos = np.minimum(np.searchsorted(hot, labels), hot.size - 1)
            own_hot = hot[pos] == labels
            top = np.empty(self.xs.shape[0], dtype=np.float32)
            step = max(1, min(1 << 14, (1 << 20) // hot.size))  # score blocks <= 4 MiB
            for s in range(0, self.xs.shape[0], step):
                sc = self.xs[s : s + step] @ hc.T  # float32
                rows = np.flatnonzero(own_hot[s : s + step])
                sc[rows, pos[s : s + step][rows]] = -np.inf
                top[s : s + step] = sc.max(axis=1)
            hot_lb = np.sqrt(np.maximum(self.xn2 + 1.0 - 2.0 * (top.astype(np.float64) + eps), 0.0))
            lower = np.minimum(lower, hot_lb)
        lower = np.maximum(lower, 0.0)
        bad = np.flatnonzero(lower * lower <= need)
        if bad.size:
            lab, low = self._top2(bad, new)
            labels = labels.copy()
            labels[bad] = lab
            lower[bad] = low
            score[bad] = _assigned_scores(self.xs, new, lab, bad)
        self.labels, self.lower, self.centers = labels, lower, new
        return labels.copy(), score


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
    bounds: bool = True,
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
    bounds : bool
        CPU path: skip the rows whose label provably cannot change (default True; see
        below). False re-scores every row against every center at every step.

    Assignment bounds (CPU path): each row keeps a lower bound on its distance to every
    center but its own; after an update, the bound drops by the largest drift of the other
    centers (the few centers that moved most are scored exactly against all rows instead),
    the distance to its own center is recomputed exactly, and only the rows whose bounds
    no longer separate (with a margin covering float32 rounding) are re-scored against all
    centers. Each step's labels are those the exhaustive step (``bounds=False``) gives for
    the same centers, except where two centers are within float32 rounding of a tie: the
    re-scored rows go through sgemm blocks of other shapes, which BLAS rounds differently, so
    such a tie (even between two bit-identical centers, e.g. twin rows reseeded into two
    empty clusters) may break the other way than the exhaustive step's smaller id. A tie
    broken the other way can steer the later steps (seen on real data: two cluster ids
    swapped, the same partition and objective), so the two runs are equal only when no such
    tie arises. The objective is ``Σ (1 − x·c)`` over the returned labels either way.

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
        from tritondiv.kernels._common import single_thread_blas

        with single_thread_blas():  # k small sgemm calls: no thread hand-off per call
            centers = _kmeanspp(np.ascontiguousarray(sub), k, rng, 2 + int(np.log(k)))

    def assign(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if path == "triton":
            from tritondiv.kernels import triton_kernels as tk

            dist, lab = tk.nearest_triton(xs, c, metric="cosine")
            return 1.0 - dist, lab
        from tritondiv.kernels.cpu import nearest_scores

        return nearest_scores(xs, c, 1.0, None, block_size)

    import scipy.sparse as sp

    bounded = bounds and path == "cpu"
    tracker = _BoundedAssign(xs, block_size) if bounded else None

    def assign_all(c: np.ndarray, first: bool) -> tuple[np.ndarray, np.ndarray]:
        # the same scores (one dot product per row) with or without bounds
        if tracker is not None:
            lab, score = tracker.first(c) if first else tracker.step(c)
            return score, lab
        if path == "triton":
            return assign(c)
        _, lab = assign(c)
        return _assigned_scores(xs, c, lab), lab

    best, labels = assign_all(centers, True)
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
            best, new_labels = assign_all(centers, False)
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
        rows_scored=n * (iterations + 1) if tracker is None else tracker.rescored,
    )
