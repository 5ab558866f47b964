"""kNN similarity graphs (scipy CSR) for facility location and other graph selectors."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["knn_graph"]


def knn_graph(
    X: Any,
    k: int,
    *,
    metric: str = "cosine",
    symmetrize: bool = False,
    clamp: bool = True,
    bandwidth: float | None = None,
    device: str = "auto",
    block_size: int | None = None,
    progress: bool | None = None,
) -> Any:
    """The k-nearest-neighbour graph of ``X`` as a sparse matrix of similarities.

    Row ``i`` holds its ``k`` nearest rows (self excluded by index; exact duplicates at
    other indices are neighbours with similarity 1; ties by smaller index).

    Parameters
    ----------
    X : array (N, d)
        Rows (float32/float16/bfloat16, numpy or torch).
    k : int
        Neighbours per row; clamped to ``N − 1`` (a one-row input gives an empty graph).
    metric : {"cosine", "sqeuclidean"}
        ``"cosine"``: the similarity is the cosine similarity ``1 − d`` in ``[−1, 1]``.
        ``"sqeuclidean"``: the similarity is the Gaussian kernel ``exp(−d / h)`` of the
        squared distance ``d``, in ``(0, 1]``, with bandwidth ``h``.
    symmetrize : bool
        When True, return ``max(G, Gᵀ)`` (an edge kept if either end lists the other).
    clamp : bool
        Cosine only. When True (default), negative similarities are clamped to 0 and
        dropped, so every stored entry is > 0 and rows may hold fewer than ``k`` entries
        (facility location needs non-negative similarities). When False, negative
        similarities are kept as they are. Neighbours with similarity exactly 0 (e.g.
        zero vectors) are dropped in both cases: a sparse matrix cannot tell them apart
        from absent entries.
    bandwidth : float, optional
        ``h`` of the Gaussian kernel for ``"sqeuclidean"``; default: the median of the
        positive kNN squared distances (1.0 when there are none).
    device, block_size, progress
        As in :func:`tritondiv.kernels.topk`.

    Returns
    -------
    scipy.sparse.csr_matrix, float32 (N, N)
        Similarities, column indices sorted within each row.
    """
    import scipy.sparse as sp

    from tritondiv.kernels import topk
    from tritondiv.kernels._common import check_metric

    check_metric(metric)
    n = int(X.shape[0])
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    k = min(int(k), max(n - 1, 0))
    if k == 0:
        return sp.csr_matrix((n, n), dtype=np.float32)
    dist, idx = topk(
        X, None, k, metric=metric, device=device, block_size=block_size, progress=progress
    )
    if metric == "cosine":
        sim = 1.0 - dist.astype(np.float64)
        if clamp:
            sim = np.maximum(sim, 0.0)
    else:
        if bandwidth is None:
            pos = dist[dist > 0]
            h = float(np.median(pos)) if pos.size else 1.0
        else:
            if not bandwidth > 0:
                raise ValueError(f"bandwidth must be > 0, got {bandwidth!r}")
            h = float(bandwidth)
        sim = np.exp(-dist.astype(np.float64) / h)
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    g = sp.csr_matrix(
        (sim.astype(np.float32).ravel(), (rows, idx.ravel())), shape=(n, n), dtype=np.float32
    )
    g.eliminate_zeros()
    if symmetrize:
        g = g.maximum(g.T).tocsr()
    g.sort_indices()
    return g
