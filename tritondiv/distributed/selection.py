"""Selection past one machine: two-round partitioned greedy on Ray, seeded.

Both selectors split the rows into ``partitions`` parts by a seeded permutation, run the
single-machine selector on every part as a Ray task (round 1), then run it once more on the
union of the parts' picks (round 2):

* :func:`kcenter_greedy_distributed` — composable k-center (Malkomes et al., 2015):
  Gonzalez per part, then Gonzalez on the union of the part centers. The result covers
  ``X`` within 4 × the optimal radius, so within 4 × the single-machine greedy radius.
* :func:`facility_location_greedi` — GreeDi (Mirzasoleiman et al., 2013): lazy greedy on
  each part's own kNN graph, then lazy greedy over the union of the picks *against the
  whole pool* (the candidates' rows of the full symmetric kNN graph, built row block by
  row block on the cluster), so round 2 maximizes the same objective the single-machine
  engine does.

The type ladder needs the whole incidence at once; :func:`select_types_ladder_ray` runs it
on the driver, on the incidence gathered by :func:`~tritondiv.distributed.token_stats_ray`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tritondiv.distributed._ray import ensure_ray
from tritondiv.incidence import Incidence

__all__ = [
    "PartitionedSelection",
    "covering_radius",
    "facility_location_greedi",
    "facility_objective",
    "kcenter_greedy_distributed",
    "partition_rows",
    "select_types_ladder_ray",
]

_METRICS = {"cosine": "cosine", "l2": "sqeuclidean"}


@dataclass(frozen=True)
class PartitionedSelection:
    """A two-round partitioned selection.

    Attributes
    ----------
    method : str
        ``"kcenter_distributed"`` or ``"facility_location_greedi"``.
    indices : numpy.ndarray
        ``int64[n]`` chosen rows of the whole pool, in round-2 selection order.
    candidates : numpy.ndarray
        ``int64[m]`` the union of the round-1 picks (sorted), ``n <= m <= partitions * n``.
    partitions : int
        Parts the rows were split into.
    seed : int
        Seed of the partition and of the selectors.
    radius : float or None
        k-center: the covering radius of ``indices`` over the whole pool (cosine distance
        or L2, as the metric).
    objective : float or None
        Facility location: ``f(S) = sum_i max_{j in S} G[j, i]`` on the full graph.
    seconds : dict of str to float
        Wall time of each stage (``round1``, ``graph``, ``round2``, ``radius``).
    """

    method: str
    indices: np.ndarray
    candidates: np.ndarray = field(repr=False)
    partitions: int
    seed: int
    radius: float | None = None
    objective: float | None = None
    seconds: dict[str, float] = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return int(self.indices.size)


# ---- helpers ------------------------------------------------------------------------------


def _owned(a: np.ndarray, dtype: Any = None) -> np.ndarray:
    """A fresh C-contiguous copy with the canonical dtype object.

    Arrays that come out of Ray's object store carry an equal but not identical dtype
    object, which the core's strict dtype check rejects; a copy into ``np.empty`` fixes it.
    """
    out = np.empty(a.shape, dtype=np.dtype(dtype if dtype is not None else a.dtype.str))
    out[...] = a
    return out


def _check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name}={value} must be >= {low}")
    return int(value)


def _check_X(X: Any) -> np.ndarray:
    if not isinstance(X, np.ndarray):
        raise TypeError(f"X: expected a numpy array (N x d), got {type(X).__name__}")
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X: expected a non-empty 2-D array (N x d), got shape {X.shape}")
    if X.dtype not in (np.float16, np.float32, np.float64):
        raise TypeError(f"X: expected float16/float32/float64, got {X.dtype}")
    return np.ascontiguousarray(X)


def partition_rows(n_rows: int, partitions: int, seed: int = 0) -> list[np.ndarray]:
    """Split ``0..n_rows-1`` into ``partitions`` parts of near-equal size, seeded.

    Parameters
    ----------
    n_rows : int
    partitions : int
        ``1 <= partitions <= n_rows``.
    seed : int
        ``numpy.random.default_rng(seed).permutation(n_rows)`` is cut into consecutive runs.

    Returns
    -------
    list of numpy.ndarray
        ``int64`` row ids of each part, increasing within a part.
    """
    n_rows = _check_int(n_rows, "n_rows", 1)
    partitions = _check_int(partitions, "partitions", 1)
    if partitions > n_rows:
        raise ValueError(f"partitions={partitions} exceeds the {n_rows} rows; pass fewer")
    perm = np.random.default_rng(_check_int(seed, "seed", 0)).permutation(n_rows)
    return [np.sort(part).astype(np.int64) for part in np.array_split(perm, partitions)]


_REMOTES: dict[tuple[str, int], Any] = {}


def _remote(ray: Any, fn: Any, max_retries: int) -> Any:
    key = (fn.__name__, max_retries)
    if key not in _REMOTES:
        _REMOTES[key] = ray.remote(max_retries=max_retries)(fn)
    return _REMOTES[key]


# ---- k-center -----------------------------------------------------------------------------


def _kcenter_part(X: np.ndarray, rows: np.ndarray, n: int, metric: str, seed: int) -> np.ndarray:
    from tritondiv.select import kcenter_greedy

    local = kcenter_greedy(_owned(X[rows]), min(n, rows.size), metric=metric, seed=seed)
    return rows[local.indices]


def _radius_part(X: np.ndarray, rows: np.ndarray, centers: np.ndarray, metric: str) -> float:
    from tritondiv.kernels import nearest

    dist, _ = nearest(
        _owned(X[rows]), _owned(centers), metric=_METRICS[metric], device="cpu", progress=False
    )
    worst = float(np.max(dist.astype(np.float64)))
    return float(np.sqrt(max(worst, 0.0))) if metric == "l2" else worst


def covering_radius(
    X: np.ndarray, indices: np.ndarray | Sequence[int], metric: str = "cosine"
) -> float:
    """``max_i min_{j in S} d(X[i], X[j])``: how far the worst-covered row is from ``S``.

    Parameters
    ----------
    X : numpy.ndarray
        ``N x d`` rows.
    indices : array of int
        The centers ``S`` (rows of ``X``).
    metric : {"cosine", "l2"}
        ``1 - cos`` or Euclidean distance (as in :func:`tritondiv.kcenter_greedy`).

    Returns
    -------
    float
    """
    if metric not in _METRICS:
        raise ValueError(f"unknown metric={metric!r}; pass one of {list(_METRICS)}")
    X = _check_X(X)
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size == 0:
        raise ValueError("indices is empty: the covering radius needs at least one center")
    return _radius_part(X, np.arange(X.shape[0], dtype=np.int64), X[idx], metric)


def kcenter_greedy_distributed(
    X: np.ndarray,
    n: int,
    partitions: int,
    seed: int = 0,
    *,
    metric: str = "cosine",
    address: str | None = None,
    max_retries: int = 3,
) -> PartitionedSelection:
    """Composable k-center: Gonzalez on each part (Ray tasks), then on the parts' centers.

    Parameters
    ----------
    X : numpy.ndarray
        ``N x d`` float16/32/64 embeddings.
    n : int
        Centers to choose, ``1 <= n <= N``.
    partitions : int
        Parts (one Ray task each), ``1 <= partitions <= N``.
    seed : int, default 0
        Seeds the partition; part ``p`` runs ``kcenter_greedy(..., seed=seed + p)`` and
        round 2 ``seed`` (so one part gives the single-machine centers).
    metric : {"cosine", "l2"}
        As in :func:`tritondiv.kcenter_greedy`.
    address : str, optional
        Ray cluster to connect to when no session is running.
    max_retries : int, default 3
        Times a task whose worker died is rerun.

    Returns
    -------
    PartitionedSelection
        With ``radius``: the covering radius of the result over all of ``X`` (computed by
        the cluster, part by part).
    """
    if metric not in _METRICS:
        raise ValueError(f"unknown metric={metric!r}; pass one of {list(_METRICS)}")
    X = _check_X(X)
    N = X.shape[0]
    n = _check_int(n, "n", 1)
    if n > N:
        raise ValueError(f"n={n} exceeds the {N} rows of X; pass n <= {N}")
    seed = _check_int(seed, "seed", 0)
    max_retries = _check_int(max_retries, "max_retries", 0)
    parts = partition_rows(N, partitions, seed)
    ray = ensure_ray(address)
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    x_ref = ray.put(X)
    task = _remote(ray, _kcenter_part, max_retries)
    picks = ray.get([task.remote(x_ref, rows, n, metric, seed + p) for p, rows in enumerate(parts)])
    cand = np.unique(np.concatenate(picks))
    seconds["round1"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    from tritondiv.select import kcenter_greedy

    final = kcenter_greedy(np.ascontiguousarray(X[cand]), n, metric=metric, seed=seed)
    indices = cand[final.indices]
    seconds["round2"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    radius_task = _remote(ray, _radius_part, max_retries)
    c_ref = ray.put(np.ascontiguousarray(X[indices]))
    radius = max(ray.get([radius_task.remote(x_ref, rows, c_ref, metric) for rows in parts]))
    seconds["radius"] = time.perf_counter() - t0
    return PartitionedSelection(
        method="kcenter_distributed",
        indices=indices,
        candidates=cand,
        partitions=len(parts),
        seed=seed,
        radius=float(radius),
        seconds=seconds,
    )


# ---- facility location (GreeDi) -------------------------------------------------------------


def facility_objective(graph: Any, indices: np.ndarray | Sequence[int]) -> float:
    """``f(S) = sum_i max_{j in S} G[j, i]`` (row ``j`` = what candidate ``j`` covers).

    Parameters
    ----------
    graph : scipy.sparse matrix or numpy.ndarray
        Non-negative similarities (e.g. :func:`tritondiv.knn_graph`).
    indices : array of int
        The chosen rows ``S``.

    Returns
    -------
    float
        Summed in float64.
    """
    import scipy.sparse as sp

    idx = np.asarray(indices, dtype=np.int64)
    if idx.size == 0:
        return 0.0
    if sp.issparse(graph):
        rows = graph.tocsr()[idx]
        best = rows.max(axis=0).toarray().ravel()
    elif isinstance(graph, np.ndarray):
        best = graph[idx].max(axis=0)
    else:
        raise TypeError(
            f"graph: expected a scipy.sparse matrix or a numpy array, got {type(graph).__name__}"
        )
    return float(np.asarray(best, dtype=np.float64).sum())


def _fl_part(X: np.ndarray | None, graph: Any, rows: np.ndarray, n: int, k: int) -> np.ndarray:
    from tritondiv.select import facility_location

    if graph is not None:
        local = graph.tocsr()[rows][:, rows].tocsr()
    else:
        from tritondiv.kernels import knn_graph

        assert X is not None
        local = knn_graph(_owned(X[rows]), k, symmetrize=True, device="cpu", progress=False)
    return rows[facility_location(local, min(n, rows.size)).indices]


def _knn_rows_part(
    X: np.ndarray, rows: np.ndarray, cand: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Entries of the symmetric kNN graph in candidate rows, from one block of rows.

    Returns ``(cand_pos, col, sim)`` twice: candidates' own neighbours (the block's rows
    that are candidates) and the block rows that list a candidate among their neighbours.
    """
    from tritondiv.kernels import topk

    N = X.shape[0]
    kk = min(k + 1, N)
    dist, idx = topk(_owned(X[rows]), X, kk, metric="cosine", device="cpu", progress=False)
    self_hit = idx == rows[:, None]
    # drop the row itself (by index); a row whose own index fell out (ties with exact
    # duplicates at smaller indices) drops its last neighbour instead
    missing = ~self_hit.any(axis=1)
    self_hit[missing, kk - 1] = True
    keep = ~self_hit
    nbr = idx[keep].reshape(rows.size, kk - 1)
    sim = np.maximum(1.0 - dist[keep].astype(np.float64), 0.0).astype(np.float32)
    sim = sim.reshape(rows.size, kk - 1)
    src = np.repeat(rows, kk - 1).reshape(rows.size, kk - 1)
    pos_of = np.full(N, -1, dtype=np.int64)
    pos_of[cand] = np.arange(cand.size, dtype=np.int64)
    own = pos_of[rows] >= 0
    a_pos = np.repeat(pos_of[rows][own], kk - 1)
    a_col = nbr[own].ravel()
    a_sim = sim[own].ravel()
    listed = pos_of[nbr] >= 0
    b_pos = pos_of[nbr[listed]]
    b_col = src[listed]
    b_sim = sim[listed]
    return a_pos, a_col, a_sim, b_pos, b_col, b_sim


def _candidate_graph(
    ray: Any, x_ref: Any, parts: list[np.ndarray], cand: np.ndarray, N: int, k: int, retries: int
) -> Any:
    """Rows ``cand`` of ``knn_graph(X, k, symmetrize=True)``, built block by block."""
    import scipy.sparse as sp

    task = _remote(ray, _knn_rows_part, retries)
    c_ref = ray.put(cand)
    shape = (cand.size, N)
    own = sp.csr_matrix(shape, dtype=np.float32)
    listed = sp.csr_matrix(shape, dtype=np.float32)
    for a_pos, a_col, a_sim, b_pos, b_col, b_sim in ray.get(
        [task.remote(x_ref, rows, c_ref, k) for rows in parts]
    ):
        own = own + sp.csr_matrix((a_sim, (a_pos, a_col)), shape=shape, dtype=np.float32)
        listed = listed + sp.csr_matrix((b_sim, (b_pos, b_col)), shape=shape, dtype=np.float32)
    g = own.maximum(listed).tocsr()
    g.eliminate_zeros()
    g.sort_indices()
    return g


def facility_location_greedi(
    X: np.ndarray | None,
    n: int,
    partitions: int,
    seed: int = 0,
    *,
    k: int = 10,
    graph: Any = None,
    address: str | None = None,
    max_retries: int = 3,
) -> PartitionedSelection:
    """GreeDi facility location: lazy greedy per part (Ray tasks), then on the union.

    Parameters
    ----------
    X : numpy.ndarray or None
        ``N x d`` embeddings; the graphs are cosine kNN graphs with ``k`` neighbours,
        symmetrized (as the ``facility-location`` strategy builds them). Round 1 uses each
        part's own graph; round 2 the candidates' rows of the whole pool's graph, built on
        the cluster block by block. ``None`` when ``graph`` is given.
    n : int
        Samples to choose.
    partitions : int
        Parts (one Ray task each).
    seed : int, default 0
        Seeds the partition.
    k : int, default 10
        Neighbours per row of the kNN graphs built from ``X``.
    graph : scipy.sparse matrix, optional
        The full similarity graph, when it fits on the driver: round 1 uses its part
        blocks ``G[p][:, p]``, round 2 its candidate rows ``G[U]`` (``X`` is then unused).
    address : str, optional
        Ray cluster to connect to when no session is running.
    max_retries : int, default 3
        Times a task whose worker died is rerun.

    Returns
    -------
    PartitionedSelection
        With ``objective``: ``f(S)`` on the full graph (``graph``, or the one built from X).
    """
    import scipy.sparse as sp

    if graph is None:
        if X is None:
            raise TypeError("facility_location_greedi: pass X (N x d embeddings) or graph")
        X = _check_X(X)
        N = X.shape[0]
        k = _check_int(k, "k", 1)
    else:
        if not sp.issparse(graph):
            raise TypeError(f"graph: expected a scipy.sparse matrix, got {type(graph).__name__}")
        if graph.shape[0] != graph.shape[1]:
            raise ValueError(f"graph: expected a square N x N matrix, got shape {graph.shape}")
        graph = graph.tocsr()
        N = graph.shape[0]
    n = _check_int(n, "n", 1)
    if n > N:
        raise ValueError(f"n={n} exceeds the {N} samples; pass n <= {N}")
    seed = _check_int(seed, "seed", 0)
    max_retries = _check_int(max_retries, "max_retries", 0)
    parts = partition_rows(N, partitions, seed)
    ray = ensure_ray(address)
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    x_ref = ray.put(X) if graph is None else None
    g_ref = ray.put(graph) if graph is not None else None
    task = _remote(ray, _fl_part, max_retries)
    picks = ray.get([task.remote(x_ref, g_ref, rows, n, k) for rows in parts])
    cand = np.unique(np.concatenate(picks))
    seconds["round1"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if graph is not None:
        rows_graph = graph[cand]
    else:
        rows_graph = _candidate_graph(ray, x_ref, parts, cand, N, k, max_retries)
    seconds["graph"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    from tritondiv.select import facility_location

    final = facility_location(rows_graph, n)
    indices = cand[final.indices]
    seconds["round2"] = time.perf_counter() - t0
    return PartitionedSelection(
        method="facility_location_greedi",
        indices=indices,
        candidates=cand,
        partitions=len(parts),
        seed=seed,
        objective=float(final.objective) if final.objective is not None else None,
        seconds=seconds,
    )


# ---- the type ladder (driver side) ------------------------------------------------------------


def select_types_ladder_ray(
    stats: Any,
    n: int,
    levels: Sequence[float] = (0.0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1.0),
    **kwargs: Any,
) -> list[Any]:
    """The type ladder on an incidence gathered from the cluster (runs on the driver).

    Parameters
    ----------
    stats : RayTokenStats or Incidence
        The result of :func:`~tritondiv.distributed.token_stats_ray` (its band incidence,
        in pool order) or any incidence.
    n, levels, **kwargs
        As in :func:`tritondiv.select_types_ladder` (``g``, ``quota``, ``epsilon``,
        ``weights``, ``seed``, ``progress``).

    Returns
    -------
    list of tritondiv.SelectionResult
        One per level; indices are pool sample indices.
    """
    from tritondiv.distributed.token_stats import RayTokenStats
    from tritondiv.select import select_types_ladder

    if isinstance(stats, RayTokenStats):
        inc = stats.incidence
    elif isinstance(stats, Incidence):
        inc = stats
    else:
        raise TypeError(
            f"stats: expected a RayTokenStats (from token_stats_ray) or an Incidence, got "
            f"{type(stats).__name__}"
        )
    return select_types_ladder(inc, n, levels, **kwargs)
