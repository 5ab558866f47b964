"""The IVF (approximate) kNN graph against exact search and plain numpy references."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tritondiv as td
from tritondiv.kernels import ivf
from tritondiv.kernels.ivf import default_n_lists, default_nprobe, ivf_topk

# Recall@20 floor at the default n_lists / nprobe on the first 20,000 real response
# embeddings (measured: 0.96-0.97).
RECALL_FLOOR_20K = 0.95


def _real(shared_data: Path, n: int) -> np.ndarray:
    x = np.load(shared_data / "embeddings" / "minilm_response.f16.npy", mmap_mode="r")
    return np.ascontiguousarray(x[:n]).astype(np.float32)


def _tie_aware_recall(x: np.ndarray, rows: np.ndarray, idx: np.ndarray, k: int) -> float:
    """Recall@k of ``idx`` for ``rows``: a returned neighbour is a hit when its cosine
    similarity reaches the exact k-th similarity (numpy reference, float64). Real data has
    large groups of (near-)duplicate rows, among which "the" exact ids are a tie-break."""
    xn = x.astype(np.float64)
    xn /= np.linalg.norm(xn, axis=1, keepdims=True)
    hits = 0
    for s in range(0, rows.size, 500):
        r = rows[s : s + 500]
        sim = xn[r] @ xn.T
        sim[np.arange(r.size), r] = -np.inf
        kth = -np.partition(-sim, k - 1, axis=1)[:, k - 1]
        got = np.take_along_axis(sim, idx[r], axis=1)
        hits += int(np.sum(got >= kth[:, None] - 1e-6))
    return hits / (rows.size * k)


# Tolerance of the comparisons between two search paths (exact blocked topk vs IVF, which
# scores the same pairs in sgemm blocks of other shapes). BLAS rounds a float32 dot product
# by its place in a block; for unit rows of d = 384 the rounding error of one dot product is
# at most d·2⁻²⁴ ≈ 2.3e-5 in the worst case and ~√d·2⁻²⁴ ≈ 1.2e-6 in scale; measured on 3,000
# real rows (k = 20, n_lists 1/9/60): the two paths' dissimilarities differ by at most
# 4.8e-7 (cosine) and 9.5e-7 (sqeuclidean, twice the scale), and 190-270 of the 60,000 edges
# are exchanged for a near-tie within 4.8e-7 of the k-th. 1e-5 leaves a 10x margin.
PATH_TOL = 1e-5


def _same_graph(a, b, atol: float = 0.0) -> None:  # type: ignore[no-untyped-def]
    """Same edges; same weights (bit for bit unless ``atol``). For results of one path (the
    same sgemm block shapes); two paths are compared by :func:`_same_topk`."""
    assert a.shape == b.shape
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.data, b.data, rtol=0, atol=atol)


def _same_topk(
    d_ref: np.ndarray, i_ref: np.ndarray, d_got: np.ndarray, i_got: np.ndarray, tol: float
) -> None:
    """Two top-k results (dissimilarities ascending, ids) of one search agree up to float32
    rounding: per row the sorted dissimilarities agree within ``tol`` position by position,
    neighbours listed by both have dissimilarities within ``tol``, a neighbour listed by one
    side only lies within ``tol`` of the row's k-th dissimilarity (a near-tie), and each list
    is ascending."""
    assert d_ref.shape == i_ref.shape == d_got.shape == i_got.shape
    np.testing.assert_allclose(d_got, d_ref, rtol=0, atol=tol)
    # ascending (ids need not ascend among equal dissimilarities: two scores one float32
    # step apart can give the same 1 − s)
    assert np.all(np.diff(d_ref, axis=1) >= 0) and np.all(np.diff(d_got, axis=1) >= 0)
    match = i_ref[:, :, None] == i_got[:, None, :]  # n x k x k
    kth = np.maximum(d_ref[:, -1], d_got[:, -1])[:, None]
    for d, only in ((d_ref, ~match.any(axis=2)), (d_got, ~match.any(axis=1))):
        r, c = np.nonzero(only & (d < kth - tol))
        assert r.size == 0, f"rows {r[:3]}: neighbours at {c[:3]} listed by one side only"
    r, p, q = np.nonzero(match)
    np.testing.assert_allclose(d_got[r, q], d_ref[r, p], rtol=0, atol=tol)


@pytest.mark.parametrize("metric", ["cosine", "sqeuclidean"])
@pytest.mark.parametrize("n_lists", [1, 9, 60])
def test_nprobe_all_lists_is_the_exact_graph(shared_data: Path, metric: str, n_lists: int) -> None:
    # the un-symmetrized lists: the exact ones up to float32 near-ties
    x = _real(shared_data, 3000)
    d_ref, i_ref = td.topk(x, None, 20, metric=metric, device="cpu")
    d_got, i_got, info = ivf_topk(x, 20, metric, n_lists=n_lists, nprobe=n_lists, device="cpu")
    assert info.candidates == 3000 * 2999  # every pair scored
    _same_topk(d_ref, i_ref, d_got, i_got, PATH_TOL)


def test_same_topk_rejects_a_wrong_neighbour_or_weight(shared_data: Path) -> None:
    x = _real(shared_data, 1000)
    d, i = td.topk(x, None, 10, device="cpu")
    _same_topk(d, i, d, i, PATH_TOL)
    row = int(np.argmax(d[:, 9] - d[:, 0]))  # a row whose first neighbour is no near-tie
    far = int(np.argmax(d[:, 0]))  # a row far from everything: in no one's top 10
    bad = i.copy()
    bad[row, 0] = far
    with pytest.raises(AssertionError, match="one side only"):
        _same_topk(d, i, d, bad, PATH_TOL)
    worse = d.copy()
    worse[row, 0] += 10 * PATH_TOL  # still the smallest of its row
    with pytest.raises(AssertionError):
        _same_topk(d, i, worse, i, PATH_TOL)


def test_recall_on_real_20k_at_default_nprobe(shared_data: Path) -> None:
    x = _real(shared_data, 20_000)
    k = 20
    _, idx, info = ivf_topk(x, k, "cosine", device="cpu")
    assert info.n_lists == default_n_lists(20_000) == 566
    assert info.nprobe == default_nprobe(566) == 35
    assert info.candidates < 0.3 * 20_000 * 19_999  # far less than exact work
    rows = np.random.default_rng(0).choice(20_000, size=2000, replace=False)
    recall = _tie_aware_recall(x, rows, idx, k)
    assert recall >= RECALL_FLOOR_20K, recall


def test_rows_are_valid_topk_lists(shared_data: Path) -> None:
    x = _real(shared_data, 2000)
    k = 15
    dist, idx, _ = ivf_topk(x, k, "cosine", n_lists=40, nprobe=2, device="cpu")
    assert dist.shape == idx.shape == (2000, k)
    assert np.all(idx >= 0) and np.all(idx < 2000)
    assert not np.any(idx == np.arange(2000)[:, None])  # self excluded
    assert all(np.unique(r).size == k for r in idx)  # k distinct neighbours per row
    assert np.all(np.diff(dist, axis=1) >= 0)  # ascending
    # the reported dissimilarities are the true ones of the reported ids
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    true = 1.0 - np.einsum("ij,ikj->ik", xn, xn[idx])
    np.testing.assert_allclose(dist, true, atol=1e-5)


def test_fewer_rows_than_lists_and_k_above_n() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 8)).astype(np.float32)
    exact = td.knn_graph(x, 50, device="cpu", clamp=False)
    approx = td.knn_graph(x, 50, device="cpu", clamp=False, method="ivf", n_lists=100, nprobe=1)
    _same_graph(exact, approx, atol=1e-6)
    assert np.all(np.diff(approx.indptr) == 5)
    one = td.knn_graph(x[:1], 5, method="ivf")
    assert one.shape == (1, 1) and one.nnz == 0


def test_every_row_gets_k_neighbours_even_with_one_probe() -> None:
    # 40 lists over 200 rows: lists of ~5 rows, so k = 12 needs more than one list
    rng = np.random.default_rng(4)
    x = rng.standard_normal((200, 16)).astype(np.float32)
    dist, idx, info = ivf_topk(x, 12, "cosine", n_lists=40, nprobe=1, device="cpu")
    assert info.nprobe == 1
    assert np.all(idx >= 0) and np.all(np.isfinite(dist))
    assert all(np.unique(r).size == 12 for r in idx)


def test_duplicates_are_found_and_ties_break_by_index() -> None:
    rng = np.random.default_rng(5)
    base = rng.standard_normal((100, 12)).astype(np.float32)
    x = np.concatenate([base, base, base])  # row i == row i+100 == row i+200
    g = td.knn_graph(x, 4, device="cpu", method="ivf", n_lists=10, nprobe=1)
    gd = g.toarray()
    for i in range(300):
        twins = [j for j in (i % 100, i % 100 + 100, i % 100 + 200) if j != i]
        np.testing.assert_allclose(gd[i, twins], 1.0, atol=1e-6)
    # twins score 1 ± 2e-7 by their place in an sgemm block: against the exact path, which
    # twin comes first is a float32 near-tie
    d_ref, i_ref = td.topk(x, None, 4, device="cpu")
    d_got, i_got, _ = ivf_topk(x, 4, "cosine", n_lists=10, nprobe=10, device="cpu")
    _same_topk(d_ref, i_ref, d_got, i_got, PATH_TOL)
    # small integers: every score is exact in float32, so twins tie exactly, the smaller
    # index wins, and the two paths agree bit for bit
    xi = np.tile(rng.integers(-3, 4, size=(100, 12)), (3, 1)).astype(np.float32)
    d_ref, i_ref = td.topk(xi, None, 4, metric="sqeuclidean", device="cpu")
    d_got, i_got, _ = ivf_topk(xi, 4, "sqeuclidean", n_lists=10, nprobe=10, device="cpu")
    np.testing.assert_array_equal(i_got, i_ref)
    np.testing.assert_array_equal(d_got, d_ref)
    rows = np.arange(300)
    twins = np.sort(np.stack([(rows + 100) % 300, (rows + 200) % 300], axis=1), axis=1)
    np.testing.assert_array_equal(i_ref[:, :2], twins)
    assert np.all(d_ref[:, :2] == 0)


def test_deterministic_and_independent_of_worker_threads(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = _real(shared_data, 4000)
    kw = {"device": "cpu", "method": "ivf", "n_lists": 64, "nprobe": 4, "seed": 7}
    a = td.knn_graph(x, 10, **kw)
    b = td.knn_graph(x, 10, **kw)
    _same_graph(a, b)
    monkeypatch.setattr(ivf, "_worker_count", lambda: 1)
    _same_graph(a, td.knn_graph(x, 10, **kw))
    other = td.knn_graph(x, 10, **{**kw, "seed": 8})
    assert other.shape == a.shape  # another quantizer: a valid graph, usually not identical


def test_auto_is_exact_on_small_inputs(shared_data: Path) -> None:
    x = _real(shared_data, 1500)
    _same_graph(td.knn_graph(x, 10, device="cpu"), td.knn_graph(x, 10, device="cpu", method="auto"))


def test_bad_arguments() -> None:
    x = np.ones((10, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="method"):
        td.knn_graph(x, 3, method="hnsw")
    with pytest.raises(ValueError, match="nprobe"):
        td.knn_graph(x, 3, method="ivf", nprobe=0)
    with pytest.raises(ValueError, match="n_lists"):
        td.knn_graph(x, 3, method="ivf", n_lists=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seed"):
        td.knn_graph(x, 3, method="ivf", seed="0")  # type: ignore[arg-type]
