"""The selection engine: build a size-``n`` dataset at a diversity level, or with a classic selector.

Everything heavy runs in the C++ core (``tritondiv._core``) with the GIL released; this
module validates and coerces inputs, and wraps the results.

Choices the paper leaves open, made here (the tests pin them):

* **Types with support 0** (ids below ``n_types`` that no sample carries) do not count:
  ``k_max`` is the number of types carried by at least one sample.
* **Pruning ties**: among types of equal current support, the one earlier in a seeded
  permutation of type ids is removed first (``seed`` of :func:`prune_types`). A type
  whose support drops to 0 during pruning still counts in ``k`` until the rule removes it
  (it is then the smallest, so it goes next).
* **Samples with no types** carry nothing that could be removed, so they belong to every
  pool ``S_k`` (including ``S_0``). Their balanced-greedy gain is 0: they are chosen only
  when no sample with a positive gain is left.
* ``S_k`` = the samples all of whose types are among the ``k`` types left after
  ``k_max - k`` removals; pools are nested, ``|S_k|`` is non-decreasing in ``k``.
* ``k(p) = floor(k_min + p * (k_max - k_min) + 0.5)`` (round half up). Since ``k >= k_min``
  and pools are nested, ``|S_k| >= n`` at every level; ``n`` larger than the whole pool
  (``|S_{k_max}|``) is a ValueError.
* **Balanced greedy ties**: equal gains are broken by a seeded permutation of the samples
  (lowest rank wins), so the lazy greedy returns exactly the plain greedy's picks. With
  ``g="min"`` and no quota, the quota is ``ceil(n / k)``.
* **k-center**: the first center is ``numpy.random.default_rng(seed).integers(N)``; each
  next center is the not-yet-chosen point farthest from its nearest center (ties: lowest
  index). Once the radius reaches 0 (duplicates), picks continue with the lowest-index
  unchosen points, so exactly ``n`` distinct indices come back and the radii stay 0.
  Cosine distance is ``1 - cos`` computed as ``||x̂ - ĉ||² / 2`` on rows normalized in
  float32 (``_unit_rows``), accumulated in float64.
* **Facility location**: row ``j`` of the graph lists the points candidate ``j`` covers
  (apricot's convention): ``f(S) = sum_i max_{j in S} G[j, i]``. Exact lazy greedy, ties
  by lowest index. For a symmetric graph the direction does not matter.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tritondiv import _core
from tritondiv.incidence import Incidence

__all__ = [
    "PruneResult",
    "SelectionResult",
    "balanced_greedy",
    "facility_location",
    "kcenter_greedy",
    "prune_types",
    "random_select",
    "select_types",
    "select_types_ladder",
    "threshold_filter",
]

_G_KINDS = {"log1p": 0, "sqrt": 1, "min": 2}
_METRICS = ("cosine", "l2")


@dataclass(frozen=True)
class PruneResult:
    """One reverse greedy pruning pass: the pool ``S_k`` of every type budget ``k``.

    Attributes
    ----------
    k_max : int
        Number of types carried by at least one sample.
    removal_order : numpy.ndarray
        ``int32[k_max]`` type ids, first removed first; the ``k`` types of budget ``k`` are
        ``removal_order[k_max - k:]``.
    removal_support : numpy.ndarray
        ``int64[k_max]`` support of each type when it was removed.
    sample_step : numpy.ndarray
        ``int64[n_samples]`` removal step of each sample (``k_max`` = never removed).
    pool_sizes : numpy.ndarray
        ``int64[k_max + 1]``: ``pool_sizes[k] = |S_k|``.
    """

    k_max: int
    removal_order: np.ndarray
    removal_support: np.ndarray
    sample_step: np.ndarray
    pool_order: np.ndarray = field(repr=False)
    pool_sizes: np.ndarray = field(repr=False)
    seed: int = 0

    @property
    def n_samples(self) -> int:
        """Number of samples of the pruned incidence."""
        return int(self.sample_step.size)

    def _check_k(self, k: int) -> int:
        k = int(k)
        if not 0 <= k <= self.k_max:
            raise ValueError(f"type budget k={k} outside [0, k_max={self.k_max}]")
        return k

    def pool(self, k: int) -> np.ndarray:
        """Indices (``int64``, ascending) of ``S_k``: samples whose types all survive ``k``."""
        k = self._check_k(k)
        return np.sort(self.pool_order[: self.pool_sizes[k]])

    def types(self, k: int) -> np.ndarray:
        """The ``k`` type ids kept at budget ``k`` (``int32``, in reverse removal order)."""
        k = self._check_k(k)
        return self.removal_order[self.k_max - k :][::-1].copy()

    def k_min(self, n: int) -> int:
        """Smallest ``k`` whose pool holds at least ``n`` samples.

        Raises
        ------
        ValueError
            If ``n`` exceeds the whole pool ``|S_{k_max}|``.
        """
        n = int(n)
        total = int(self.pool_sizes[-1])
        if n > total:
            raise ValueError(f"n={n} exceeds the pool of {total} samples; pass n <= {total}")
        return int(np.searchsorted(self.pool_sizes, n, side="left"))

    def k_at(self, level: float, n: int) -> int:
        """Type budget at diversity level ``p``: ``floor(k_min + p (k_max - k_min) + 0.5)``."""
        p = _check_level(level)
        lo = self.k_min(n)
        return math.floor(lo + p * (self.k_max - lo) + 0.5)


@dataclass(frozen=True)
class SelectionResult:
    """Indices chosen by a selector, in selection order, with its diagnostics.

    Attributes
    ----------
    method : str
        ``"types"``, ``"balanced_greedy"``, ``"kcenter"``, ``"facility_location"``,
        ``"threshold"`` or ``"random"``.
    indices : numpy.ndarray
        ``int64[n]`` chosen samples in selection order.
    gains : numpy.ndarray or None
        Marginal gain of each pick (type and facility selectors).
    type_counts : numpy.ndarray or None
        ``int64[n_types]`` samples chosen per type (type selectors).
    k, k_min, k_max, pool_size, level : int, int, int, int, float or None
        Type budget, its bounds, ``|S_k|`` and the diversity level (``select_types``).
    coverage : int or None
        Number of types carried by at least one chosen sample.
    radii : numpy.ndarray or None
        k-center covering radius after each pick (cosine distance or L2).
    objective : float or None
        Facility-location value ``f(S)`` of the selection.
    evaluations : int or None
        Gain or distance evaluations done.
    walked : int or None
        Samples examined by the threshold filter.
    seconds : float
        Wall time of the call.
    """

    method: str
    indices: np.ndarray
    gains: np.ndarray | None = None
    type_counts: np.ndarray | None = field(default=None, repr=False)
    k: int | None = None
    k_min: int | None = None
    k_max: int | None = None
    pool_size: int | None = None
    level: float | None = None
    coverage: int | None = None
    radii: np.ndarray | None = field(default=None, repr=False)
    objective: float | None = None
    evaluations: int | None = None
    walked: int | None = None
    seconds: float = 0.0

    def __len__(self) -> int:
        return int(self.indices.size)


# ---- helpers ----------------------------------------------------------------------------


def _check_incidence(incidence: Incidence) -> Incidence:
    incidence = Incidence.coerce(incidence, "incidence")  # also takes scipy.sparse matrices
    if incidence.n_samples == 0:
        raise ValueError("incidence is empty (0 samples): selection needs at least one sample")
    return incidence


def _check_n(n: int, limit: int, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    n = int(n)
    if n < 0:
        raise ValueError(f"n={n} must be >= 0")
    if n > limit:
        raise ValueError(f"n={n} exceeds {what} of {limit} samples; pass n <= {limit}")
    return n


def _check_level(level: float) -> float:
    p = float(level)
    if not (math.isfinite(p) and 0.0 <= p <= 1.0):
        raise ValueError(f"level={level!r} must lie in [0, 1] (0 = least diverse, 1 = most)")
    return p


def _seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    return int(seed) & 0xFFFFFFFFFFFFFFFF


def _g_kind(g: str) -> int:
    if g not in _G_KINDS:
        raise ValueError(f"unknown g={g!r}; pass one of {sorted(_G_KINDS)}")
    return _G_KINDS[g]


def _weights(weights: np.ndarray | Sequence[float] | None, n_samples: int) -> np.ndarray:
    if weights is None:
        return np.zeros(0, dtype=np.float64)
    w = np.ascontiguousarray(weights, dtype=np.float64)
    if w.shape != (n_samples,):
        raise ValueError(f"weights has shape {w.shape}; pass one weight per sample ({n_samples},)")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights must be finite and >= 0 (they multiply the gains)")
    return w


def _embeddings(X: np.ndarray, name: str = "X") -> np.ndarray:
    if not isinstance(X, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array (N x d), got {type(X).__name__}")
    if X.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (N x d), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {X.shape}); pass at least one row and column")
    if X.dtype not in (np.float16, np.float32, np.float64):
        raise TypeError(f"{name}: expected float16/float32/float64, got {X.dtype}")
    if not np.isfinite(X).all():
        bad = int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0])
        raise ValueError(f"{name} contains NaN/inf (first at row {bad}); pass finite embeddings")
    if X.dtype == np.float64:
        X = X.astype(np.float32)
    return np.ascontiguousarray(X)


def _unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm in float32 (the cosine preprocessing; zero rows raise)."""
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", X32, X32))
    if (norms == 0).any():
        bad = int(np.flatnonzero(norms == 0)[0])
        raise ValueError(
            f"row {bad} of X is all zeros: cosine distance is undefined; use metric='l2'"
        )
    return X32 / norms[:, None]


def _coverage(type_counts: np.ndarray) -> int:
    return int(np.count_nonzero(type_counts))


def _progress(iterable, total: int, desc: str, progress: bool | None):
    from tritondiv._log import progress_enabled

    if not progress_enabled(progress):
        return iterable
    from tqdm.auto import tqdm  # type: ignore[import-untyped]

    return tqdm(iterable, total=total, desc=desc)


# ---- type selection ---------------------------------------------------------------------


def prune_types(incidence: Incidence, seed: int = 0) -> PruneResult:
    """Reverse greedy pruning (the paper's Algorithm 1), one pass for every budget ``k``.

    Repeatedly removes the type of smallest support in what remains (ties by a seeded
    permutation of type ids) together with every sample carrying it.

    Parameters
    ----------
    incidence : Incidence
        Sample -> types incidence.
    seed : int
        Seed of the tie order.

    Returns
    -------
    PruneResult
        Removal order and the nested pools (``.pool(k)``, ``.pool_sizes``, ``.k_min(n)``).
    """
    inc = _check_incidence(incidence)
    k_max, removal_order, removal_support, sample_step, pool_order, pool_sizes = _core.prune_types(
        inc.offsets, inc.types, inc.n_types, _seed(seed)
    )
    return PruneResult(
        k_max=int(k_max),
        removal_order=removal_order,
        removal_support=removal_support,
        sample_step=sample_step,
        pool_order=pool_order,
        pool_sizes=pool_sizes,
        seed=int(seed),
    )


def _greedy(
    inc: Incidence,
    candidates: np.ndarray,
    n: int,
    g: str,
    quota: float | None,
    epsilon: float | None,
    weights: np.ndarray,
    seed: int,
    k_hint: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    kind = _g_kind(g)
    if quota is not None and g != "min":
        raise ValueError(f"quota={quota!r} only applies to g='min' (got g={g!r})")
    if g == "min":
        q = float(quota) if quota is not None else float(math.ceil(n / max(k_hint, 1)))
        if not q >= 1:
            raise ValueError(f"quota={quota!r} must be >= 1")
    else:
        q = 0.0
    eps = 0.0
    if epsilon is not None:
        eps = float(epsilon)
        if not 0.0 < eps < 1.0:
            raise ValueError(f"epsilon={epsilon!r} must lie in (0, 1) (stochastic greedy), or None")
    return _core.balanced_greedy(
        inc.offsets, inc.types, inc.n_types, candidates, n, kind, q, weights, eps, _seed(seed)
    )


def balanced_greedy(
    incidence: Incidence,
    n: int,
    *,
    candidates: np.ndarray | Sequence[int] | None = None,
    g: str = "log1p",
    quota: float | None = None,
    epsilon: float | None = None,
    weights: np.ndarray | None = None,
    seed: int = 0,
) -> SelectionResult:
    """Choose ``n`` samples maximizing ``F(D) = sum_t g(c_t(D))`` (the paper's Algorithm 2).

    Parameters
    ----------
    incidence : Incidence
        Sample -> types incidence.
    n : int
        Number of samples to choose.
    candidates : array of int, optional
        Sample ids to choose from (default: all samples).
    g : {"log1p", "sqrt", "min"}
        Concave function of a type's count; ``"min"`` is ``min(c, quota)``.
    quota : float, optional
        Cap of ``g="min"`` (default ``ceil(n / types among the candidates)``).
    epsilon : float, optional
        Stochastic greedy with this ``epsilon`` instead of the exact lazy greedy.
    weights : array of float, optional
        Non-negative per-sample weights (a quality score) multiplying the gains.
    seed : int
        Seed of the tie order (and of stochastic greedy's draws).

    Returns
    -------
    SelectionResult
        ``indices`` in selection order, ``gains``, ``type_counts``, ``coverage``.
    """
    t0 = time.perf_counter()
    inc = _check_incidence(incidence)
    if candidates is None:
        cand = np.arange(inc.n_samples, dtype=np.int64)
    else:
        cand = np.ascontiguousarray(candidates, dtype=np.int64)
        if cand.ndim != 1:
            raise ValueError(f"candidates must be 1-D, got shape {cand.shape}")
    n = _check_n(n, cand.size, "the candidate pool")
    w = _weights(weights, inc.n_samples)
    k_hint = 0
    if g == "min" and quota is None:
        k_hint = int(np.count_nonzero(np.bincount(inc.subset(cand).types, minlength=inc.n_types)))
    idx, gains, counts, evals = _greedy(inc, cand, n, g, quota, epsilon, w, seed, k_hint)
    return SelectionResult(
        method="balanced_greedy",
        indices=idx,
        gains=gains,
        type_counts=counts,
        pool_size=int(cand.size),
        coverage=_coverage(counts),
        evaluations=int(evals),
        seconds=time.perf_counter() - t0,
    )


def _select_at(
    inc: Incidence,
    pr: PruneResult,
    n: int,
    level: float,
    g: str,
    quota: float | None,
    epsilon: float | None,
    w: np.ndarray,
    seed: int,
) -> SelectionResult:
    t0 = time.perf_counter()
    p = _check_level(level)
    k_min = pr.k_min(n)
    k = pr.k_at(p, n)
    pool = pr.pool(k)
    idx, gains, counts, evals = _greedy(inc, pool, n, g, quota, epsilon, w, seed, k)
    return SelectionResult(
        method="types",
        indices=idx,
        gains=gains,
        type_counts=counts,
        k=k,
        k_min=k_min,
        k_max=pr.k_max,
        pool_size=int(pool.size),
        level=p,
        coverage=_coverage(counts),
        evaluations=int(evals),
        seconds=time.perf_counter() - t0,
    )


def select_types(
    incidence: Incidence,
    n: int,
    level: float,
    *,
    g: str = "log1p",
    quota: float | None = None,
    epsilon: float | None = None,
    weights: np.ndarray | None = None,
    seed: int = 0,
) -> SelectionResult:
    """Build a size-``n`` dataset at diversity level ``level`` (pruning + balanced greedy).

    Parameters
    ----------
    incidence : Incidence
        Sample -> types incidence.
    n : int
        Dataset size.
    level : float
        Diversity level ``p`` in ``[0, 1]``: ``k = round(k_min + p (k_max - k_min))``.
    g, quota, epsilon, weights, seed
        As in :func:`balanced_greedy`; ``seed`` also orders pruning ties.

    Returns
    -------
    SelectionResult
        With ``k``, ``k_min``, ``k_max``, ``pool_size`` (``|S_k|``), ``coverage``.

    Notes
    -----
    ``k`` and the candidate pools ``S_k`` are non-decreasing (nested) in ``level`` by
    construction. The coverage (types present in the dataset) follows them on real pools,
    but is not guaranteed to: the greedy maximizes evenness, ``sum_t g(c_t)``, and may
    prefer one sample adding to several covered types over one bringing a new type (six
    samples ``[], [], [], {0, 2, 5}, {1, 4}, {0, 2, 3}``, ``n = 2``: 5 types covered at
    ``k = 5``, 4 at ``k = 6``).
    """
    t0 = time.perf_counter()
    inc = _check_incidence(incidence)
    _check_level(level)
    _g_kind(g)
    n = _check_n(n, inc.n_samples, "the pool")
    w = _weights(weights, inc.n_samples)
    pr = prune_types(inc, seed=seed)
    res = _select_at(inc, pr, n, level, g, quota, epsilon, w, seed)
    object.__setattr__(res, "seconds", time.perf_counter() - t0)
    return res


def select_types_ladder(
    incidence: Incidence,
    n: int,
    levels: Sequence[float] = (0.0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1.0),
    *,
    g: str = "log1p",
    quota: float | None = None,
    epsilon: float | None = None,
    weights: np.ndarray | None = None,
    seed: int = 0,
    progress: bool | None = None,
    desc: str = "select",
) -> list[SelectionResult]:
    """Datasets at several diversity levels from one pruning pass.

    Parameters
    ----------
    incidence, n, g, quota, epsilon, weights, seed
        As in :func:`select_types`.
    levels : sequence of float
        Diversity levels (default the paper's 7: 0, 1/6, ..., 1).
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).
    desc : str
        What the bar says before ``<count> levels`` (e.g. ``"select response-micro"``).

    Returns
    -------
    list of SelectionResult
        One per level, in the order given.
    """
    inc = _check_incidence(incidence)
    levels = [_check_level(p) for p in levels]
    _g_kind(g)
    n = _check_n(n, inc.n_samples, "the pool")
    w = _weights(weights, inc.n_samples)
    pr = prune_types(inc, seed=seed)
    # Levels are independent greedy runs over nested pools: run them on the core's threads
    # (the C++ releases the GIL); each result is deterministic, so the order of completion
    # does not matter.
    workers = max(1, min(len(levels), int(_core.num_threads())))
    if workers == 1:
        return [
            _select_at(inc, pr, n, p, g, quota, epsilon, w, seed)
            for p in _progress(levels, len(levels), f"{desc} {len(levels)} levels", progress)
        ]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(_select_at, inc, pr, n, p, g, quota, epsilon, w, seed) for p in levels
        ]
        return [
            f.result()
            for f in _progress(futures, len(futures), f"{desc} {len(levels)} levels", progress)
        ]


# ---- embedding selectors ----------------------------------------------------------------


def kcenter_greedy(X: np.ndarray, n: int, metric: str = "cosine", seed: int = 0) -> SelectionResult:
    """Exact k-center greedy (Gonzalez): each pick is the point farthest from the chosen set.

    Parameters
    ----------
    X : numpy.ndarray
        ``N x d`` float32 or float16 embeddings (float64 is converted to float32).
    n : int
        Number of centers, ``1 <= n <= N``.
    metric : {"cosine", "l2"}
        ``1 - cos`` (rows normalized in float32) or Euclidean distance.
    seed : int
        First center ``= numpy.random.default_rng(seed).integers(N)``.

    Returns
    -------
    SelectionResult
        ``indices`` and ``radii[j]`` = covering radius of the first ``j + 1`` centers.
    """
    t0 = time.perf_counter()
    if metric not in _METRICS:
        raise ValueError(f"unknown metric={metric!r}; pass one of {list(_METRICS)}")
    X = _embeddings(X)
    N = X.shape[0]
    n = _check_n(n, N, "the number of rows of X")
    if n == 0:
        raise ValueError("n=0: k-center needs n >= 1")
    first = int(np.random.default_rng(_seed(seed)).integers(N))
    data = _unit_rows(X) if metric == "cosine" else X
    idx, sq, evals = _core.kcenter_greedy(data, n, first)
    radii = sq / 2.0 if metric == "cosine" else np.sqrt(sq)
    return SelectionResult(
        method="kcenter",
        indices=idx,
        radii=radii,
        evaluations=int(evals),
        seconds=time.perf_counter() - t0,
    )


def facility_location(graph, n: int) -> SelectionResult:
    """Facility location ``f(S) = sum_i max_{j in S} G[j, i]``: exact lazy greedy.

    Parameters
    ----------
    graph : scipy.sparse matrix or numpy.ndarray
        Non-negative similarities; row ``j`` lists what candidate ``j`` covers (apricot's
        convention). Sparse input (a kNN graph) is used as CSR (repeated entries are summed,
        as scipy reads them); a dense ``ndarray`` runs the dense variant (small ``N``).
    n : int
        Number of picks, at most the number of rows.

    Returns
    -------
    SelectionResult
        ``indices``, ``gains`` and ``objective`` (= sum of gains).
    """
    import scipy.sparse as sp  # type: ignore[import-untyped]

    t0 = time.perf_counter()
    if sp.issparse(graph):
        G = graph.tocsr()
        if not G.has_canonical_format:
            # scipy reads repeated (row, col) entries as their sum; make that explicit so
            # each (candidate, point) pair is counted once
            G = G.copy()
            G.sum_duplicates()
        rows, cols = G.shape
        n = _check_n(n, rows, "the number of rows (candidates) of graph")
        indptr = np.ascontiguousarray(G.indptr, dtype=np.int64)
        indices = np.ascontiguousarray(G.indices, dtype=np.int32)
        data = np.ascontiguousarray(G.data, dtype=np.float64)
        idx, gains, obj, evals = _core.facility_location_csr(indptr, indices, data, cols, n)
    elif isinstance(graph, np.ndarray):
        if graph.ndim != 2:
            raise ValueError(f"graph: expected a 2-D similarity matrix, got shape {graph.shape}")
        n = _check_n(n, graph.shape[0], "the number of rows (candidates) of graph")
        G = np.ascontiguousarray(graph, dtype=np.float64)
        idx, gains, obj, evals = _core.facility_location_dense(G, n)
    else:
        raise TypeError(
            f"graph: expected a scipy.sparse matrix or a numpy array, got {type(graph).__name__}"
        )
    return SelectionResult(
        method="facility_location",
        indices=idx,
        gains=gains,
        objective=float(obj),
        evaluations=int(evals),
        seconds=time.perf_counter() - t0,
    )


def threshold_filter(
    X: np.ndarray, n: int, tau: float, order: np.ndarray | Sequence[int] | None = None
) -> SelectionResult:
    """DEITA-style filter: walk ``order``, keep a sample if its max cosine to the kept set <= ``tau``.

    Parameters
    ----------
    X : numpy.ndarray
        ``N x d`` embeddings (cosine on float32-normalized rows, float64 accumulation).
    n : int
        Samples to keep.
    tau : float
        Similarity threshold (DEITA uses 0.9).
    order : array of int, optional
        Walk order (e.g. ``argsort(-score)``); default ``0..N-1``. No repeats.

    Returns
    -------
    SelectionResult
        ``indices`` in walk order and ``walked`` (samples examined).

    Raises
    ------
    ValueError
        If fewer than ``n`` samples can be kept at ``tau``.
    """
    t0 = time.perf_counter()
    X = _embeddings(X)
    N = X.shape[0]
    tau = float(tau)
    if not math.isfinite(tau):
        raise ValueError(f"tau={tau!r} must be a finite cosine similarity, e.g. 0.9")
    if order is None:
        o = np.arange(N, dtype=np.int64)
    else:
        o = np.ascontiguousarray(order, dtype=np.int64)
        if o.ndim != 1:
            raise ValueError(f"order must be 1-D, got shape {o.shape}")
        if o.size and (o.min() < 0 or o.max() >= N):
            raise ValueError(f"order has ids outside [0, {N}); pass row indices of X")
        s = np.sort(o)
        if s.size > 1 and (np.diff(s) == 0).any():
            raise ValueError("order repeats a sample; pass each row index at most once")
    n = _check_n(n, o.size, "the samples in order")
    idx, walked = _core.threshold_filter(_unit_rows(X), n, tau, o)
    if idx.size < n:
        raise ValueError(
            f"threshold_filter kept only {idx.size} of n={n} samples at tau={tau} (walked all "
            f"{walked}); pass a larger tau (max cosine allowed) or a smaller n"
        )
    return SelectionResult(
        method="threshold",
        indices=idx,
        walked=int(walked),
        seconds=time.perf_counter() - t0,
    )


def random_select(n_samples: int, n: int, seed: int = 0) -> SelectionResult:
    """``n`` distinct samples drawn uniformly (the baseline), in draw order.

    Parameters
    ----------
    n_samples : int
        Pool size.
    n : int
        Samples to draw.
    seed : int
        ``numpy.random.default_rng(seed)``.

    Returns
    -------
    SelectionResult
    """
    t0 = time.perf_counter()
    n_samples = int(n_samples)
    if n_samples < 0:
        raise ValueError(f"n_samples={n_samples} must be >= 0")
    n = _check_n(n, n_samples, "the pool")
    rng = np.random.default_rng(_seed(seed))
    idx = rng.choice(n_samples, size=n, replace=False).astype(np.int64)
    return SelectionResult(method="random", indices=idx, seconds=time.perf_counter() - t0)


# ---- the uniform sampler (the paper's "uniform" over the k types of S_k) ------------------


def _skip_taken(
    lists: np.ndarray, ptr: np.ndarray, end: np.ndarray, which: np.ndarray, taken: np.ndarray
) -> None:
    """Move ``ptr[which]`` to each list's next untaken entry (or its end), 32 entries a step."""
    width = 32
    step = np.arange(width, dtype=np.int64)
    last = lists.size - 1
    while which.size:
        base = ptr[which]
        offs = base[:, None] + step[None, :]
        inside = offs < end[which][:, None]
        ok = inside & ~taken[lists[np.minimum(offs, last)]]
        found = ok.any(axis=1)
        ptr[which[found]] = base[found] + ok[found].argmax(axis=1)
        more = ~found & inside[:, -1]  # the window held only taken entries: look further
        done = ~found & ~more
        ptr[which[done]] = end[which[done]]
        ptr[which[more]] = base[more] + width
        which = which[more]


def _disjoint_rest(
    lists: np.ndarray,
    ptr: np.ndarray,
    end: np.ndarray,
    active: np.ndarray,
    taken: np.ndarray,
    need: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The rest of the round robin at once, if no untaken sample is in two types' lists.

    Then no type ever finds its next sample taken by another, so the draw is each type's
    untaken list in order, interleaved round by round: sort by (position in the list,
    type rank). Returns (samples, type ranks) of the next ``need`` picks, or None when two
    types still share an untaken sample (the rounds go on one by one).
    """
    lengths = end[active] - ptr[active]
    total = int(lengths.sum())
    starts = np.repeat(ptr[active] - np.cumsum(lengths) + lengths, lengths)
    ent = lists[starts + np.arange(total, dtype=np.int64)]
    typ = np.repeat(active, lengths)  # non-decreasing: active is sorted by rank
    keep = ~taken[ent]
    ent, typ = ent[keep], typ[keep]
    by_sample = np.lexsort((np.arange(ent.size), ent))  # each sample's entries, in list order
    e_s, t_s = ent[by_sample], typ[by_sample]
    same = e_s[1:] == e_s[:-1]
    if (same & (t_s[1:] != t_s[:-1])).any():
        return None
    first = np.ones(ent.size, dtype=bool)  # a repeated (sample, type) entry counts once
    first[by_sample[1:][same]] = False
    ent, typ = ent[first], typ[first]
    pos = np.arange(ent.size, dtype=np.int64) - np.searchsorted(typ, typ, side="left")
    take = np.lexsort((typ, pos))[:need]
    return ent[take], typ[take]


def _uniform_draw(
    inc: Incidence, pr: PruneResult, k: int, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Round-robin draw of ``n`` samples of ``S_k``; returns (indices, drawing type or -1).

    The randomness, in this order from ``numpy.random.default_rng(seed)``:
    ``rng.permutation(k)`` orders the ``k`` kept types (``pr.types(k)``) for the round
    robin; ``rng.random(nnz)`` gives one key per (sample, type) entry of ``S_k`` (samples
    ascending, each row's stored order), and each type lists its samples by increasing key
    (a uniform permutation per type); if the round robin runs dry before ``n`` picks,
    ``rng.permutation`` of ``S_k``'s untaken samples (ascending) gives the fill.

    The rule: in each round every type, in round-robin order, takes the first sample of
    its list that is not yet taken (earlier rounds and earlier types of this round); a
    type with no such sample left is exhausted and drops out. Rounds continue until
    ``n`` are taken or every type is exhausted. Each round is a few numpy operations
    over the types still in play; within-round conflicts (two types' next samples equal)
    are settled by letting the earlier type keep it and moving the later one on, until
    no two types hold the same sample, which is the sequential rule's outcome. At rounds
    0, 1, 2, 4, ... the rest is finished at once when no untaken sample is left in two
    types' lists (``_disjoint_rest``; always the case for one type per sample).
    """
    rng = np.random.default_rng(_seed(seed))
    kept = pr.types(k)
    order = kept[rng.permutation(k)].astype(np.int32)
    pool = pr.pool(k)
    sub = inc.subset(pool)
    keys = rng.random(sub.nnz)
    m = int(pool.size)
    picks: list[np.ndarray] = []
    drawn: list[np.ndarray] = []
    taken = np.zeros(m, dtype=bool)
    free = np.iinfo(np.int64).max
    owner = np.full(m, free, dtype=np.int64)  # scratch: first holder of a sample in a round
    count = 0
    if n and k and sub.nnz:
        rank_of = np.full(inc.n_types, -1, dtype=np.int64)
        rank_of[order] = np.arange(k, dtype=np.int64)
        entry_rank = rank_of[sub.types]
        if (entry_rank < 0).any():  # pragma: no cover - S_k holds only kept types
            raise AssertionError("a sample of S_k carries a pruned type")
        entry_sample = np.repeat(np.arange(m, dtype=np.int64), sub.row_lengths())
        by = np.lexsort((keys, entry_rank))  # by type rank, then key (stable: entry order)
        lists = entry_sample[by]
        bounds = np.searchsorted(entry_rank[by], np.arange(k + 1, dtype=np.int64))
        ptr, end = bounds[:-1].copy(), bounds[1:]
        active = np.flatnonzero(ptr < end)  # ranks still in play, ascending
        rounds, check_at = 0, 0
        while count < n and active.size:
            if rounds == check_at:  # rounds 0, 1, 2, 4, 8, ...: O(log rounds) checks
                check_at = max(1, 2 * check_at)
                rest = _disjoint_rest(lists, ptr, end, active, taken, n - count)
                if rest is not None:  # no sample left in two types' lists: finish at once
                    picks.append(rest[0])
                    drawn.append(order[rest[1]])
                    taken[rest[0]] = True
                    count += int(rest[0].size)
                    break
            rounds += 1
            while active.size:
                cand = lists[ptr[active]]
                stale = taken[cand]
                if stale.any():  # taken in an earlier round: move on to the next untaken
                    _skip_taken(lists, ptr, end, active[stale], taken)
                    active = active[ptr[active] < end[active]]
                    continue
                # the earliest type (lowest rank = lowest position) holding each sample keeps it
                at = np.arange(cand.size, dtype=np.int64)
                np.minimum.at(owner, cand, at)
                lose = owner[cand] != at
                owner[cand] = free
                if not lose.any():
                    break
                ptr[active[lose]] += 1
                active = active[ptr[active] < end[active]]
            if not active.size:
                break
            cand = lists[ptr[active]]
            take = min(int(cand.size), n - count)
            picks.append(cand[:take])
            drawn.append(order[active[:take]])
            taken[cand[:take]] = True
            count += take
            ptr[active] += 1
            active = active[ptr[active] < end[active]]
    if count < n:
        untaken = np.flatnonzero(~taken)
        fill = untaken[rng.permutation(untaken.size)[: n - count]]
        picks.append(fill)
        drawn.append(np.full(fill.size, -1, dtype=np.int32))
    local = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
    by_type = np.concatenate(drawn) if drawn else np.zeros(0, dtype=np.int32)
    return pool[local].astype(np.int64), by_type.astype(np.int32)


def _check_pruning(pruning: PruneResult | None, inc: Incidence, seed: int) -> PruneResult:
    if pruning is None:
        return prune_types(inc, seed=seed)
    if not isinstance(pruning, PruneResult):
        raise TypeError(
            f"pruning: expected a PruneResult (from prune_types), got {type(pruning).__name__}"
        )
    if pruning.n_samples != inc.n_samples:
        raise ValueError(
            f"pruning is of an incidence of {pruning.n_samples} samples, this one has "
            f"{inc.n_samples}; pass prune_types(incidence) of this incidence"
        )
    return pruning


def _uniform_at(
    inc: Incidence, pr: PruneResult, n: int, level: float | None, k: int | None, seed: int
) -> SelectionResult:
    t0 = time.perf_counter()
    k_min = pr.k_min(n)
    if (level is None) == (k is None):
        raise ValueError(
            "uniform_types: pass exactly one of level (in [0, 1]) or k (a type budget)"
        )
    p: float | None = None
    if level is not None:
        p = _check_level(level)
        budget = pr.k_at(p, n)
    else:
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise TypeError(f"k must be an int, got {type(k).__name__}")
        budget = pr._check_k(int(k))
        if int(pr.pool_sizes[budget]) < n:
            raise ValueError(
                f"n={n} exceeds |S_k|={int(pr.pool_sizes[budget])} samples at k={budget}; "
                f"pass k >= k_min={k_min} (the smallest budget whose pool holds n samples)"
            )
    idx, _ = _uniform_draw(inc, pr, budget, n, seed)
    counts = np.bincount(inc.subset(idx).types, minlength=inc.n_types).astype(np.int64)
    return SelectionResult(
        method="uniform",
        indices=idx,
        type_counts=counts,
        k=budget,
        k_min=k_min,
        k_max=pr.k_max,
        pool_size=int(pr.pool_sizes[budget]),
        level=p,
        coverage=_coverage(counts),
        seconds=time.perf_counter() - t0,
    )


def uniform_types(
    incidence: Incidence,
    n: int,
    level: float | None = None,
    *,
    k: int | None = None,
    seed: int = 0,
    pruning: PruneResult | None = None,
) -> SelectionResult:
    """Build a size-``n`` dataset spread evenly over the ``k`` types of ``S_k`` (uniform sampler).

    The pools are :func:`select_types`' (reverse greedy pruning, the same ``seed`` for its
    ties); instead of the balanced greedy, the ``n`` samples are drawn round-robin over the
    ``k`` types in a seeded order, each type taking a uniformly random sample carrying it
    that is not taken yet, until ``n`` are taken. Every type so draws the same number of
    samples, give or take one, until it has none left; if all run dry first, the rest is
    drawn uniformly from ``S_k``'s remaining samples (those with no type). The exact draw
    and its randomness are pinned in ``_uniform_draw``.

    Parameters
    ----------
    incidence : Incidence
        Sample -> types incidence.
    n : int
        Dataset size.
    level : float, optional
        Diversity level ``p`` in ``[0, 1]``: ``k = round(k_min + p (k_max - k_min))``.
    k : int, optional
        The type budget itself (instead of ``level``); ``|S_k|`` must hold ``n`` samples.
    seed : int
        Seed of the pruning ties (when ``pruning`` is not given) and of the draw.
    pruning : PruneResult, optional
        A :func:`prune_types` pass of this incidence to reuse.

    Returns
    -------
    SelectionResult
        ``method="uniform"``, ``indices`` in draw order, ``type_counts`` (samples chosen
        per type), ``k``, ``k_min``, ``k_max``, ``pool_size`` (``|S_k|``), ``level`` (None
        when ``k`` was given), ``coverage``.

    Raises
    ------
    ValueError
        Neither or both of ``level`` and ``k``; ``n`` larger than the pool, or than
        ``|S_k|`` for the ``k`` given; ``level`` outside ``[0, 1]``.
    """
    t0 = time.perf_counter()
    inc = _check_incidence(incidence)
    n = _check_n(n, inc.n_samples, "the pool")
    if (level is None) == (k is None):
        raise ValueError(
            "uniform_types: pass exactly one of level (in [0, 1]) or k (a type budget)"
        )
    if level is not None:
        _check_level(level)
    pr = _check_pruning(pruning, inc, seed)
    res = _uniform_at(inc, pr, n, level, k, seed)
    object.__setattr__(res, "seconds", time.perf_counter() - t0)
    return res


def uniform_types_ladder(
    incidence: Incidence,
    n: int,
    levels: Sequence[float] = (0.0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1.0),
    *,
    seed: int = 0,
    pruning: PruneResult | None = None,
    progress: bool | None = None,
) -> list[SelectionResult]:
    """Uniform-sampler datasets at several diversity levels from one pruning pass.

    Parameters
    ----------
    incidence, n, seed, pruning
        As in :func:`uniform_types`.
    levels : sequence of float
        Diversity levels (default the paper's 7: 0, 1/6, ..., 1).
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).

    Returns
    -------
    list of SelectionResult
        One per level, in the order given (each equal to ``uniform_types`` at that level).
    """
    inc = _check_incidence(incidence)
    levels = [_check_level(p) for p in levels]
    n = _check_n(n, inc.n_samples, "the pool")
    pr = _check_pruning(pruning, inc, seed)
    return [
        _uniform_at(inc, pr, n, p, None, seed)
        for p in _progress(levels, len(levels), "levels", progress)
    ]


__all__ += ["uniform_types", "uniform_types_ladder"]


# ---- ``tritondiv.select(...)``: this module is also the high-level call ------------------
import types as _types  # noqa: E402
from typing import TYPE_CHECKING as _TYPE_CHECKING  # noqa: E402
from typing import Any as _Any  # noqa: E402

if _TYPE_CHECKING:  # pragma: no cover
    from tritondiv.api import Selected


class CallableSelect(_types.ModuleType):
    """The type of :mod:`tritondiv.select`: the engine's module, callable as
    :func:`tritondiv.api.select_from` (``tritondiv.select(data, strategy, size=...)``)."""

    def __call__(
        self,
        data: _Any,
        strategy: str,
        *,
        size: int,
        level: float = 1.0,
        seed: int = 0,
        embeddings: _Any = None,
        quality: _Any = None,
        incidences: _Any = None,
        metrics: bool = False,
        **options: _Any,
    ) -> Selected:
        """:func:`tritondiv.api.select_from`: ``size`` samples of ``data`` at ``level``."""
        from tritondiv.api import select_from

        return select_from(
            data,
            strategy,
            size=size,
            level=level,
            seed=seed,
            embeddings=embeddings,
            quality=quality,
            incidences=incidences,
            metrics=metrics,
            **options,
        )


sys.modules[__name__].__class__ = CallableSelect
