"""Approximate k-nearest neighbours by an inverted file (IVF) on the blocked CPU kernels.

A spherical k-means coarse quantizer (:func:`tritondiv.kernels.kmeans`) splits the rows into
``n_lists`` lists (each row joins the list of its most similar center). For each list, its
rows (the queries) are searched against the union of the members of the ``nprobe`` lists
whose centers are most similar to the list's own center (the list itself first): one dense
``queries × candidates`` block of BLAS sgemm per list, folded by the same fused top-k merge
(``_core.topk_merge_block``) as the exact path. Probing per list rather than per query is
what keeps every block a dense matmul.

With ``nprobe = n_lists`` every list searches every row, so the result is the exact top-k
up to float32 rounding: candidates are visited in ascending row id and the merge breaks equal
scores by the smaller id, but a list's sgemm blocks have other shapes than the exact path's,
and BLAS rounds a dot product differently depending on its place in a block (by up to
~5e-7 for unit rows of d = 384). So similarities agree within rounding, and neighbours whose
similarities are that close to the k-th (near-duplicate rows; exact duplicates score
1 ± 2e-7) may be exchanged for one another.

The result does not depend on the number of worker threads: when threadpoolctl is
importable every list is scored by single-threaded sgemm in blocks of the same shape,
whichever thread (or the serial loop) runs it, so the same call gives bit-identical results
on one machine and BLAS build.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np

from tritondiv import _core
from tritondiv.kernels._common import have_threadpoolctl, single_thread_blas
from tritondiv.kernels.cpu import (
    _EMPTY_ID,
    _blocks,
    _check_block,
    _scratch,
    _sqnorms,
    normalize_rows,
    progress_bar,
)

__all__ = [
    "IVFInfo",
    "default_n_lists",
    "default_nprobe",
    "ivf_topk",
    "train_sample_size",
]

# Rows of the k-means training sample per list (faiss warns below 39 and caps at 256; a
# coarse quantizer needs no more).
TRAIN_PER_LIST = 32
# Lloyd iterations of the coarse quantizer (recall@20 on 20k real rows: 0.967 after 10, 0.967
# after 5, 0.965 after 3).
TRAIN_ITERS = 5


def _worker_count() -> int:
    """Worker threads of the list loop: the core's thread count when BLAS can be held to one
    thread per call (threadpoolctl importable), else 1 (a serial loop, multi-threaded BLAS)."""
    if not have_threadpoolctl():
        return 1
    return max(1, int(_core.num_threads()))


def default_n_lists(n: int) -> int:
    """``n_lists`` when not given: ``round(4·√N)``, at least 1 and at most ``N``."""
    return max(1, min(n, round(4.0 * math.sqrt(n))))


def default_nprobe(n_lists: int) -> int:
    """``nprobe`` when not given: ``max(1, round(n_lists / 16))``, at most ``n_lists``."""
    return max(1, min(n_lists, round(n_lists / 16)))


def train_sample_size(n: int, n_lists: int) -> int:
    """Rows the coarse quantizer trains on: ``min(N, 32·n_lists)`` (a seeded uniform sample)."""
    return min(n, TRAIN_PER_LIST * n_lists)


@dataclass(frozen=True)
class IVFInfo:
    """What an IVF search did (for reports and benchmarks).

    Attributes
    ----------
    n_lists, nprobe : int
        Lists of the quantizer and lists probed per list (a minimum: more are probed for a
        list whose probed lists hold fewer than ``k + 1`` rows).
    train_rows : int
        Rows the quantizer was trained on.
    candidates : int
        Σ over rows of the candidates each row was scored against (the exact search scores
        ``N·(N − 1)``); ``candidates / N²`` is the fraction of the exact work done.
    seconds : tuple of float
        Wall time of (quantizer training, assignment of every row, search).
    """

    n_lists: int
    nprobe: int
    train_rows: int
    candidates: int
    seconds: tuple[float, float, float] = (0.0, 0.0, 0.0)


def ivf_topk(
    x: np.ndarray,
    k: int,
    metric: str,
    *,
    n_lists: int | None = None,
    nprobe: int | None = None,
    seed: int = 0,
    device: str = "auto",
    block_size: int | None = None,
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, IVFInfo]:
    """Approximate self top-k of float32 ``x`` (n, d), self excluded by index.

    ``1 <= k <= n − 1``. Returns dissimilarities ascending (float32, n × k), their row ids
    (int64; ties by the smaller id) and an :class:`IVFInfo`. ``device`` only chooses where
    the quantizer trains; the search runs on the CPU.
    """
    from tritondiv.kernels import nearest
    from tritondiv.kernels.kmeans import kmeans

    n = x.shape[0]
    bs = _check_block(block_size)
    L = default_n_lists(n) if n_lists is None else min(int(n_lists), n)
    P = default_nprobe(L) if nprobe is None else min(int(nprobe), L)

    import time

    t0 = time.perf_counter()
    xs = normalize_rows(x)
    # Coarse quantizer: spherical k-means on a seeded uniform sample, then every row to its
    # most similar center.
    m = train_sample_size(n, L)
    rng = np.random.default_rng(seed)
    sample = xs if m == n else xs[np.sort(rng.choice(n, size=m, replace=False))]
    km = kmeans(
        sample,
        L,
        seed=seed,
        iters=TRAIN_ITERS,
        init="random",
        device=device,
        block_size=block_size,
        progress=False,
    )
    centers = km.centers
    t1 = time.perf_counter()
    if m == n:
        lists = km.labels
    else:
        _, lists = nearest(xs, centers, device="cpu", block_size=block_size)
    sim = centers @ centers.T
    order = np.argsort(lists, kind="stable")  # rows grouped by list, ascending ids inside
    sizes = np.bincount(lists, minlength=L)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    # Probe order of each list: itself first, then by decreasing center similarity (ties:
    # smaller id).
    np.fill_diagonal(sim, np.inf)
    probe_order = np.argsort(-sim, axis=1, kind="stable")
    t2 = time.perf_counter()

    if metric == "cosine":
        a = xs
        alpha = 1.0
        bias_all = None
        xn = None
    else:
        a = x
        alpha = 2.0
        xn = _sqnorms(x)
        bias_all = -xn
    # heaps of every row, finalized (sorted) once at the end
    vals_all = np.empty((n, k), dtype=np.float32)
    ids_all = np.empty((n, k), dtype=np.int64)
    nonempty = np.flatnonzero(sizes)

    def search_list(li: int) -> int:
        q = order[starts[li] : starts[li + 1]]
        # probe lists: at least P non-empty ones, and enough for k + 1 rows
        chosen: list[np.ndarray] = []
        rows_seen = 0
        for pj in probe_order[li]:
            if sizes[pj] == 0:
                continue
            chosen.append(order[starts[pj] : starts[pj + 1]])
            rows_seen += int(sizes[pj])
            if len(chosen) >= P and rows_seen > k:
                break
        cand = np.sort(np.concatenate(chosen)) if len(chosen) > 1 else chosen[0]
        nq, nc = q.shape[0], cand.shape[0]
        self_pos = np.searchsorted(cand, q)
        qa = a[q]
        ca = a[cand]
        cbias = None if bias_all is None else np.ascontiguousarray(bias_all[cand])
        vals = np.full((nq, k), -np.inf, dtype=np.float32)
        ids = np.full((nq, k), _EMPTY_ID, dtype=np.int64)
        buf = _scratch(min(rb, nq) * min(cb, nc))
        for r0, r1 in _blocks(nq, rb):
            sp = self_pos[r0:r1]
            for c0, c1 in _blocks(nc, cb):
                g = buf[: (r1 - r0) * (c1 - c0)].reshape(r1 - r0, c1 - c0)
                np.matmul(qa[r0:r1], ca[c0:c1].T, out=g)
                hit = np.flatnonzero((sp >= c0) & (sp < c1))
                g[hit, sp[hit] - c0] = -np.inf  # the row itself, excluded by index
                _core.topk_merge_block(
                    g,
                    r0,
                    c0,
                    alpha,
                    None if cbias is None else cbias[c0:c1],
                    None,
                    False,
                    False,
                    vals,
                    ids,
                )
        # every list has >= k candidates besides each query, so no slot stays empty
        vals_all[q] = vals
        ids_all[q] = cand[ids]
        return nq * (nc - 1)

    workers = _worker_count()
    # Lists are small: one single-threaded sgemm per block and one list per worker thread
    # scale far better than a multi-threaded sgemm per (small) block. The block shape and
    # the single BLAS thread depend only on whether BLAS can be held to one thread, never
    # on the worker count: sgemm rounds by block shape and thread split, so this is what
    # keeps the result bit-identical for any number of workers.
    one_blas_thread = have_threadpoolctl()
    rb, cb = (min(bs, 1024), min(bs, 2048)) if one_blas_thread else (bs, bs)
    total_cand = 0
    with progress_bar(int(nonempty.size), progress, "ivf") as bar:
        if workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            with single_thread_blas(), ThreadPoolExecutor(workers) as pool:
                # biggest lists first, so no worker is left with a long tail
                by_cost = nonempty[np.argsort(-sizes[nonempty], kind="stable")]
                for c in pool.map(search_list, by_cost.tolist()):
                    total_cand += c
                    bar.update(1)
        else:
            with single_thread_blas() if one_blas_thread else contextlib.nullcontext():
                for li in nonempty.tolist():
                    total_cand += search_list(li)
                    bar.update(1)
    _core.topk_finalize(vals_all, ids_all)
    if metric == "cosine":
        dist = (1.0 - vals_all).astype(np.float32, copy=False)
    else:
        assert xn is not None
        dist = np.maximum(xn[:, None] - vals_all, 0.0).astype(np.float32, copy=False)
    t3 = time.perf_counter()
    info = IVFInfo(
        n_lists=L,
        nprobe=P,
        train_rows=m,
        candidates=int(total_cand),
        seconds=(t1 - t0, t2 - t1, t3 - t2),
    )
    return dist, ids_all, info
