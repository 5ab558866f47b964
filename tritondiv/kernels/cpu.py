"""Blocked CPU path of the dissimilarity kernels: BLAS sgemm per block + C++ reductions.

Every kernel walks (row block, column block) pairs; each block ``G = A·Bᵀ`` is a float32
``block × block`` buffer (numpy/OpenBLAS sgemm, multi-threaded) that the C++ core folds
into running per-row state (top-k heaps or argmax) with OpenMP over rows and the GIL
released. ``N × M`` never exists; memory is O((N + M)·d + block²).

Scores: cosine works on L2-normalized float32 copies (zero rows stay zero, so their cosine
similarity with everything, themselves included, is 0 and their dissimilarity is 1);
squared L2 ranks by ``2·x·y − |y|²`` and reports ``|x|² + |y|² − 2·x·y`` clamped at 0.

For X against itself (``topk(X)``) only the upper-triangular blocks are computed: each
off-diagonal block updates the heaps of its rows *and* (transposed) of its columns, which
halves the arithmetic of a full ``X·Xᵀ``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np

from tritondiv import _core
from tritondiv.kernels._common import DEFAULT_BLOCK

__all__ = [
    "mean_exact",
    "mean_sampled",
    "nearest_cpu",
    "nearest_scores",
    "normalize_rows",
    "pair_dissimilarity",
    "progress_bar",
    "topk_cpu",
]

_EMPTY_ID = np.iinfo(np.int64).max
_SCRATCH = threading.local()


def _scratch(nfloats: int) -> np.ndarray:
    """A per-thread float32 scratch buffer of at least ``nfloats`` (kept between calls:
    first touch of fresh memory costs ~2.3 s/GiB here, so blocks reuse it)."""
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.size < nfloats:
        buf = np.empty(nfloats, dtype=np.float32)
        _SCRATCH.buf = buf
    return buf


#: Rows whose squared norm is within this of 1 count as normalized: :func:`normalize_rows`
#: leaves them as they are (their cosines differ from exact ones by less than 1e-5).
UNIT_TOL = 1e-5
# Rows per block of the norm and normalization passes (bounded temporaries).
_NORM_BLOCK = 1 << 16


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Return float32 rows scaled to unit L2 norm; zero rows stay zero.

    When every row is normalized already (squared norm within :data:`UNIT_TOL` of 1) or
    zero, and ``x`` is C-contiguous float32, ``x`` itself is returned: a memory-mapped
    embeddings matrix is used in place, never copied. Otherwise the normalized copy is
    built block by block (no full-size float64 temporary).
    """
    n = x.shape[0]
    sq = np.empty(n, dtype=np.float64)
    for s in range(0, n, _NORM_BLOCK):
        blk = x[s : s + _NORM_BLOCK]
        sq[s : s + blk.shape[0]] = np.einsum("ij,ij->i", blk, blk, dtype=np.float64)
    unit = bool(np.all((np.abs(sq - 1.0) <= UNIT_TOL) | (sq == 0.0)))
    if unit and x.dtype == np.float32 and x.flags.c_contiguous:
        return x
    norms = np.sqrt(sq)
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0).astype(np.float32)
    out = np.empty(x.shape, dtype=np.float32)
    for s in range(0, n, _NORM_BLOCK):
        np.multiply(
            x[s : s + _NORM_BLOCK], inv[s : s + _NORM_BLOCK, None], out=out[s : s + _NORM_BLOCK]
        )
    return out


def _sqnorms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x, dtype=np.float64).astype(np.float32)


def _blocks(n: int, bs: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, bs):
        yield start, min(n, start + bs)


def _check_block(block_size: int | None) -> int:
    if block_size is None:
        return DEFAULT_BLOCK
    if not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    return int(block_size)


def progress_bar(total: int, progress: bool | None, desc: str):  # type: ignore[no-untyped-def]
    from tqdm.auto import tqdm

    from tritondiv._log import progress_enabled

    disable = not progress_enabled(progress)
    return tqdm(total=total, desc=desc, disable=disable or total <= 1, leave=False)


def nearest_scores(
    a: np.ndarray,
    b: np.ndarray,
    alpha: float,
    bias: np.ndarray | None,
    block_size: int | None = None,
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Row max and argmax of ``alpha·a·bᵀ + bias[j]`` (float32), blocked; ties: smaller id."""
    bs = _check_block(block_size)
    n, m = a.shape[0], b.shape[0]
    best = np.full(n, -np.inf, dtype=np.float32)
    arg = np.full(n, -1, dtype=np.int64)
    buf = _scratch(min(bs, n) * min(bs, m))
    nb = -(-n // bs) * -(-m // bs)
    with progress_bar(nb, progress, "nearest") as bar:
        for r0, r1 in _blocks(n, bs):
            for c0, c1 in _blocks(m, bs):
                g = buf[: (r1 - r0) * (c1 - c0)].reshape(r1 - r0, c1 - c0)
                np.matmul(a[r0:r1], b[c0:c1].T, out=g)
                _core.argmax_merge_rows(
                    g, r0, c0, alpha, None if bias is None else bias[c0:c1], best, arg
                )
                bar.update(1)
    return best, arg


def nearest_cpu(
    x: np.ndarray,
    y: np.ndarray,
    metric: str,
    block_size: int | None = None,
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Row min dissimilarity of float32 ``x`` (n, d) to ``y`` (m, d) and its argmin."""
    if metric == "cosine":
        # Rank by x·ŷ (scaling a row of x does not change its argmax), so x is never copied;
        # cos = x·ŷ / |x| afterwards (zero rows: every score is 0, cos 0, argmax 0).
        best, arg = nearest_scores(x, normalize_rows(y), 1.0, None, block_size, progress)
        norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
        cos = np.divide(best, norms, out=np.zeros_like(norms), where=norms > 0)
        dist = (1.0 - cos).astype(np.float32)
    else:
        best, arg = nearest_scores(x, y, 2.0, -_sqnorms(y), block_size, progress)
        dist = np.maximum(_sqnorms(x) - best, 0.0).astype(np.float32)
    return dist, arg


def topk_cpu(
    x: np.ndarray,
    y: np.ndarray | None,
    k: int,
    metric: str,
    exclude_self: bool,
    block_size: int | None = None,
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` least dissimilar rows of ``y`` (``x`` itself when None) for each row of x.

    Returns dissimilarities ascending (float32, n × k) and their ids (int64); ties are
    broken by the smaller id. ``y is None`` uses the symmetric upper-triangular schedule.
    """
    bs = _check_block(block_size)
    sym = y is None
    n = x.shape[0]
    if metric == "cosine":
        a = normalize_rows(x)
        b = a if sym else normalize_rows(y)  # type: ignore[arg-type]
        alpha = 1.0
        xn = yn = None
        col_bias_all = row_bias_all = None
    else:
        a = x
        b = x if y is None else y
        alpha = 2.0
        xn = _sqnorms(a)
        yn = xn if sym else _sqnorms(b)  # type: ignore[arg-type]
        col_bias_all = -yn
        row_bias_all = -xn
    assert b is not None
    m = b.shape[0]
    vals = np.full((n, k), -np.inf, dtype=np.float32)
    ids = np.full((n, k), _EMPTY_ID, dtype=np.int64)
    buf = _scratch(min(bs, n) * min(bs, m))
    nrb, ncb = -(-n // bs), -(-m // bs)
    total = nrb * (nrb + 1) // 2 if sym else nrb * ncb
    with progress_bar(total, progress, "topk") as bar:
        for r0, r1 in _blocks(n, bs):
            for c0, c1 in _blocks(m, bs):
                if sym and c0 < r0:
                    continue
                g = buf[: (r1 - r0) * (c1 - c0)].reshape(r1 - r0, c1 - c0)
                np.matmul(a[r0:r1], b[c0:c1].T, out=g)
                off_diag = sym and c0 != r0
                _core.topk_merge_block(
                    g,
                    r0,
                    c0,
                    alpha,
                    None if col_bias_all is None else col_bias_all[c0:c1],
                    None if row_bias_all is None or not off_diag else row_bias_all[r0:r1],
                    exclude_self and (not sym or c0 == r0),
                    off_diag,
                    vals,
                    ids,
                )
                bar.update(1)
    _core.topk_finalize(vals, ids)
    empty = ids < 0
    if metric == "cosine":
        out = 1.0 - vals
    else:
        assert xn is not None
        out = np.maximum(xn[:, None] - vals, 0.0)
    out = out.astype(np.float32, copy=False)
    out[empty] = np.inf
    return out, ids


def pair_dissimilarity(
    x: np.ndarray, i: np.ndarray, j: np.ndarray, metric: str, chunk: int = 1 << 16
) -> np.ndarray:
    """Dissimilarity of the pairs ``(x[i[p]], x[j[p]])`` as float64, in bounded chunks."""
    out = np.empty(i.shape[0], dtype=np.float64)
    for s in range(0, i.shape[0], chunk):
        a = x[i[s : s + chunk]].astype(np.float64)
        b = x[j[s : s + chunk]].astype(np.float64)
        if metric == "cosine":
            na = np.sqrt(np.einsum("ij,ij->i", a, a))
            nb = np.sqrt(np.einsum("ij,ij->i", b, b))
            den = na * nb
            dots = np.einsum("ij,ij->i", a, b)
            cos = np.divide(dots, den, out=np.zeros_like(dots), where=den > 0)
            out[s : s + chunk] = 1.0 - cos
        else:
            diff = a - b
            out[s : s + chunk] = np.einsum("ij,ij->i", diff, diff)
    return out


def mean_exact(x: np.ndarray, metric: str, chunk: int = 1 << 15) -> float:
    """Exact mean dissimilarity over ordered pairs i != j, in O(n·d) (float64 sums).

    cosine: ``1 − (|Σ x̂|² − Σ |x̂_i|²) / (n(n−1))`` with ``x̂`` the normalized rows
    (zero rows: ``x̂ = 0``); squared L2: ``(2n Σ|x_i|² − 2|Σ x_i|²) / (n(n−1))``.
    Both are algebraically the mean over every pair, so no N × N pass is needed.
    """
    n, d = x.shape
    total = np.zeros(d, dtype=np.float64)
    sq = 0.0
    for s in range(0, n, chunk):
        blk = x[s : s + chunk].astype(np.float64)
        if metric == "cosine":
            norms = np.sqrt(np.einsum("ij,ij->i", blk, blk))
            inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
            blk *= inv[:, None]
        total += blk.sum(axis=0)
        sq += float(np.einsum("ij,ij->", blk, blk))
    pairs = float(n) * (n - 1)
    if metric == "cosine":
        return float(1.0 - (float(total @ total) - sq) / pairs)
    return float(max((2.0 * n * sq - 2.0 * float(total @ total)) / pairs, 0.0))


def mean_sampled(x: np.ndarray, metric: str, sample: int, seed: int) -> tuple[float, float]:
    """Mean and standard error of ``sample`` uniform ordered pairs i != j (seeded)."""
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, size=sample)
    j = rng.integers(0, n - 1, size=sample)
    j += j >= i
    dis = pair_dissimilarity(x, i, j, metric)
    mean = float(dis.mean())
    se = float(dis.std(ddof=1) / np.sqrt(sample)) if sample > 1 else float("inf")
    return mean, se
