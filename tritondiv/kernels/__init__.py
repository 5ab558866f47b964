"""Pairwise dissimilarity kernels: nearest, top-k, mean, kNN graph, spherical k-means.

Every function takes ``X`` (``N × d``) and, where it applies, ``Y`` (``M × d``) as numpy
arrays or torch tensors of float32, float16 or bfloat16 (bfloat16 as torch tensors, or
numpy arrays from ``ml_dtypes``); float64 is accepted and cast to float32. Arithmetic
accumulates in float32. Nothing ever materializes ``N × M``: both sides are tiled.

Metrics
-------
``"cosine"``
    ``1 − cos(x, y)`` in ``[0, 2]``. A zero vector has cosine similarity 0 with every
    vector, itself and other zero vectors included, so its dissimilarity is 1.
``"sqeuclidean"``
    ``|x − y|²`` (computed as ``|x|² + |y|² − 2·x·y``, clamped at 0).

Devices
-------
``device="auto"`` runs the Triton kernels when a CUDA GPU is available (or the input is
a CUDA tensor), else the blocked CPU path (BLAS sgemm per block + C++/OpenMP reductions).
``device="cpu"`` and ``device="triton"`` force one path; ``"triton"`` on CPU tensors needs
``TRITON_INTERPRET=1`` in the environment before triton is imported (tests only: slow).

Ties
----
Among equal dissimilarities the smaller index wins (nearest, top-k, kNN graph), on both
paths and for any thread count.

Importing this module does not import torch or triton.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from tritondiv.kernels._common import DEFAULT_BLOCK, check_metric, resolve_device, to_float32
from tritondiv.kernels.graph import knn_graph
from tritondiv.kernels.kmeans import KMeansResult, kmeans

__all__ = [
    "DEFAULT_BLOCK",
    "KMeansResult",
    "MeanDissimilarity",
    "kmeans",
    "knn_graph",
    "mean_dissimilarity",
    "nearest",
    "topk",
]

TOPK_MAX_TRITON = 64


class MeanDissimilarity(NamedTuple):
    """Result of :func:`mean_dissimilarity`.

    Attributes
    ----------
    mean : float
        The mean dissimilarity over ordered pairs ``i != j`` (exact or estimated).
    stderr : float
        Standard error of the estimate: ``0.0`` when exact; for a sample of ``s`` uniform
        pairs, ``std(ddof=1) / sqrt(s)`` (a 95% interval is ``mean ± 1.96·stderr``).
    pairs : int
        Number of pairs the value is computed from (``N(N−1)`` when exact).
    exact : bool
        Whether ``mean`` is exact.
    """

    mean: float
    stderr: float
    pairs: int
    exact: bool


def nearest(
    X: Any,
    Y: Any,
    *,
    metric: str = "cosine",
    device: str = "auto",
    block_size: int | None = None,
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``X``, the smallest dissimilarity to a row of ``Y`` and its index.

    Parameters
    ----------
    X : array (N, d)
        Query rows (float32/float16/bfloat16; numpy or torch).
    Y : array (M, d)
        Candidate rows (e.g. cluster centers), ``M >= 1``.
    metric : {"cosine", "sqeuclidean"}
        Dissimilarity (see the module docstring).
    device : {"auto", "cpu", "triton"}
        Which path runs (see the module docstring).
    block_size : int, optional
        Rows/columns of one tile on the CPU path (default 4096: at most a 64 MiB float32 block,
        kept as a per-thread scratch buffer between calls).
    progress : bool, optional
        Show a progress bar (default: only when stderr is a terminal).

    Returns
    -------
    dist : numpy.ndarray, float32 (N,)
        ``min_j d(X[i], Y[j])``.
    idx : numpy.ndarray, int64 (N,)
        The argmin; ties go to the smallest ``j``.
    """
    check_metric(metric)
    path = resolve_device(device, X, Y)
    if path == "triton":
        from tritondiv.kernels import triton_kernels as tk

        return tk.nearest_triton(X, Y, metric=metric)
    from tritondiv.kernels.cpu import nearest_cpu

    x = to_float32(X, "X")
    y = to_float32(Y, "Y", allow_empty=False)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"X has d={x.shape[1]} but Y has d={y.shape[1]}; they must match")
    return nearest_cpu(x, y, metric, block_size, progress)


def topk(
    X: Any,
    Y: Any = None,
    k: int = 10,
    *,
    metric: str = "cosine",
    exclude_self: bool | None = None,
    device: str = "auto",
    block_size: int | None = None,
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``X``, its ``k`` most similar rows of ``Y`` (least dissimilar first).

    Parameters
    ----------
    X : array (N, d)
        Query rows.
    Y : array (M, d), optional
        Candidate rows; ``None`` means ``X`` against itself (self-matches excluded by
        default, and the CPU path computes only the upper triangle of ``X·Xᵀ``).
    k : int
        Neighbours per row, ``1 <= k <= M`` (``M − 1`` when self-matches are excluded);
        ``k <= 64`` on the Triton path.
    metric : {"cosine", "sqeuclidean"}
        Dissimilarity.
    exclude_self : bool, optional
        Skip the pair ``(i, i)`` (by index, so exact duplicates at other indices are still
        neighbours). Default: True when ``Y is None``, else False (pass True when ``Y`` is
        ``X`` under another name).
    device : {"auto", "cpu", "triton"}
        Which path runs.
    block_size : int, optional
        Tile rows/columns on the CPU path (default 4096).
    progress : bool, optional
        Show a progress bar (default: only when stderr is a terminal).

    Returns
    -------
    values : numpy.ndarray, float32 (N, k)
        Dissimilarities, ascending per row (``1 − cos`` or squared L2).
    idx : numpy.ndarray, int64 (N, k)
        Row indices into ``Y`` (or ``X``); equal dissimilarities are ordered by index.
    """
    check_metric(metric)
    if exclude_self is None:
        exclude_self = Y is None
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    k = int(k)
    path = resolve_device(device, X, Y)
    if path == "triton":
        if k > TOPK_MAX_TRITON:
            raise ValueError(f"k={k} > {TOPK_MAX_TRITON} is not supported on the Triton path")
        from tritondiv.kernels import triton_kernels as tk

        return tk.topk_triton(X, X if Y is None else Y, k, metric=metric, exclude_self=exclude_self)
    from tritondiv.kernels.cpu import topk_cpu

    x = to_float32(X, "X")
    y = None if Y is None else to_float32(Y, "Y")
    m = x.shape[0] if y is None else y.shape[0]
    if y is not None and x.shape[1] != y.shape[1]:
        raise ValueError(f"X has d={x.shape[1]} but Y has d={y.shape[1]}; they must match")
    if exclude_self and y is not None and y.shape[0] != x.shape[0]:
        raise ValueError(
            f"exclude_self=True needs Y with as many rows as X ({x.shape[0]}), got {y.shape[0]}"
        )
    available = m - 1 if exclude_self else m
    if k > available:
        raise ValueError(
            f"k={k} exceeds the {available} candidates per row "
            f"({m} rows{', self excluded' if exclude_self else ''}); pass k <= {available}"
        )
    return topk_cpu(x, y, k, metric, exclude_self, block_size, progress)


def mean_dissimilarity(
    X: Any,
    *,
    metric: str = "cosine",
    sample: int | None = None,
    seed: int = 0,
    device: str = "auto",
) -> MeanDissimilarity:
    """Mean pairwise dissimilarity within ``X`` over ordered pairs ``i != j``.

    Parameters
    ----------
    X : array (N, d)
        Rows, ``N >= 2``.
    metric : {"cosine", "sqeuclidean"}
        Dissimilarity.
    sample : int, optional
        ``None``: exact. Otherwise the number of uniform random pairs ``(i, j != i)``
        (seeded) of an unbiased estimator; the result carries its standard error.
    seed : int
        Seed of the pair sample.
    device : {"auto", "cpu", "triton"}
        Exact mean only: the Triton path runs a tiled fused reduction over all pairs;
        the CPU path uses the algebraic identity (both metrics are quadratic forms:
        ``Σ_{i≠j} x̂_i·x̂_j = |Σ x̂|² − Σ|x̂_i|²``), exact in O(N·d) with float64 sums.

    Returns
    -------
    MeanDissimilarity
        ``(mean, stderr, pairs, exact)``; ``float(result.mean)`` is the metric.
    """
    check_metric(metric)
    if sample is not None and (
        not isinstance(sample, (int, np.integer)) or isinstance(sample, bool) or sample < 2
    ):
        raise ValueError(f"sample must be None or an int >= 2, got {sample!r}")
    path = resolve_device(device, X) if sample is None else "cpu"
    if path == "triton":
        from tritondiv.kernels import triton_kernels as tk

        n = int(X.shape[0])
        if n < 2:
            raise ValueError(f"mean_dissimilarity needs at least 2 rows, got {n}")
        return MeanDissimilarity(tk.mean_triton(X, metric=metric), 0.0, n * (n - 1), True)
    from tritondiv.kernels.cpu import mean_exact, mean_sampled

    x = to_float32(X, "X")
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"mean_dissimilarity needs at least 2 rows, got {n}")
    if sample is None:
        return MeanDissimilarity(mean_exact(x, metric), 0.0, n * (n - 1), True)
    mean, se = mean_sampled(x, metric, int(sample), seed)
    return MeanDissimilarity(mean, se, int(sample), False)
