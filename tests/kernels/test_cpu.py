"""CPU path of the dissimilarity kernels against numpy/torch references and faiss.

References: float64 numpy/torch dissimilarity matrices on small hand-made inputs (ties,
duplicates, zero vectors, N = 1, d = 1, sizes not multiples of the block), faiss exact
search (IndexFlatIP) and faiss.Kmeans on a bounded slice of the real MiniLM embeddings.

Tie rule under test: among equal dissimilarities the smaller index wins. Against faiss
(which orders ties its own way) neighbour sets are compared up to ties: the sorted
similarities agree, and every neighbour one tool has and the other lacks sits at the
k-th similarity.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tritondiv as td
from tritondiv.kernels import MeanDissimilarity

METRICS = ["cosine", "sqeuclidean"]


def ref_dis(x: np.ndarray, y: np.ndarray, metric: str) -> np.ndarray:
    """Float64 dissimilarity matrix; zero rows have cosine similarity 0 with everything."""
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    if metric == "cosine":
        nx = np.linalg.norm(x, axis=1)
        ny = np.linalg.norm(y, axis=1)
        xh = x / np.where(nx > 0, nx, 1.0)[:, None]
        yh = y / np.where(ny > 0, ny, 1.0)[:, None]
        return 1.0 - xh @ yh.T
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)


def ref_topk(dis: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference top-k with the stated tie rule: by value, then by smaller index."""
    order = np.lexsort((np.broadcast_to(np.arange(dis.shape[1]), dis.shape), dis), axis=1)
    idx = order[:, :k]
    return np.take_along_axis(dis, idx, 1), idx


def tol_for(metric: str, ref: np.ndarray) -> float:
    return 1e-5 if metric == "cosine" else 1e-5 * max(1.0, float(np.abs(ref).max()))


def data(n: int, m: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = rng.standard_normal((m, d)).astype(np.float32)
    if n > 4:
        x[1] = x[0]
        x[4] = 0.0
    if m > 4:
        y[3] = y[2]
        y[4] = 0.0
    return x, y


# ---- nearest ---------------------------------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize(("n", "m", "d", "bs"), [(53, 29, 11, 8), (1, 7, 1, 3), (40, 1, 384, 16)])
def test_nearest_matches_reference(metric, n, m, d, bs):
    x, y = data(n, m, d)
    dist, idx = td.nearest(x, y, metric=metric, device="cpu", block_size=bs)
    ref = ref_dis(x, y, metric)
    tol = tol_for(metric, ref)
    np.testing.assert_allclose(dist, ref.min(axis=1), atol=tol)
    np.testing.assert_allclose(ref[np.arange(n), idx], ref.min(axis=1), atol=tol)
    assert dist.dtype == np.float32 and idx.dtype == np.int64


def test_nearest_matches_torch_cdist():
    torch = pytest.importorskip("torch")
    x, y = data(64, 33, 17, seed=4)
    dist, _idx = td.nearest(x, y, metric="sqeuclidean", device="cpu", block_size=10)
    ref = torch.cdist(torch.from_numpy(x).double(), torch.from_numpy(y).double()) ** 2
    vals, _ = ref.min(dim=1)
    np.testing.assert_allclose(dist, vals.numpy(), rtol=1e-5, atol=1e-4)


def test_nearest_ties_and_zero_vectors():
    y = np.array([[1, 0], [0, 1], [1, 0], [2, 0]], dtype=np.float32)
    x = np.array([[3, 0], [0, 0], [0, 5]], dtype=np.float32)
    dist, idx = td.nearest(x, y, device="cpu", block_size=1)
    assert idx.tolist() == [0, 0, 1]  # ties (rows 0, 2, 3; a zero row ties with all) -> 0
    np.testing.assert_allclose(dist, [0.0, 1.0, 0.0], atol=1e-7)


def test_nearest_empty_x_and_dtypes():
    x, y = data(10, 6, 5)
    d0, i0 = td.nearest(x[:0], y, device="cpu")
    assert d0.shape == (0,) and i0.shape == (0,)
    d16, _ = td.nearest(x.astype(np.float16), y.astype(np.float16), device="cpu")
    ref = ref_dis(x.astype(np.float16), y.astype(np.float16), "cosine").min(axis=1)
    np.testing.assert_allclose(d16, ref, atol=1e-5)
    torch = pytest.importorskip("torch")
    xb = torch.from_numpy(x).bfloat16()
    yb = torch.from_numpy(y).bfloat16()
    db, _ = td.nearest(xb, yb, device="cpu")
    refb = ref_dis(xb.float().numpy(), yb.float().numpy(), "cosine").min(axis=1)
    np.testing.assert_allclose(db, refb, atol=1e-5)


# ---- top-k -----------------------------------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("bs", [5, 16, 4096])
def test_topk_symmetric_matches_reference(metric, bs):
    x, _ = data(47, 1, 9, seed=2)
    x[7] = x[0]
    x[30] = x[0]
    vals, idx = td.topk(x, k=6, metric=metric, device="cpu", block_size=bs)
    ref = ref_dis(x, x, metric)
    np.fill_diagonal(ref, np.inf)
    rv, _ri = ref_topk(ref, 6)
    tol = tol_for(metric, ref[np.isfinite(ref)])
    np.testing.assert_allclose(vals, rv, atol=tol)
    np.testing.assert_allclose(np.take_along_axis(ref, idx, 1), vals, atol=tol)
    assert not (idx == np.arange(47)[:, None]).any()
    # exact duplicates: row 0's first neighbours are its copies 1, 7, 30 in index order
    assert idx[0, :3].tolist() == [1, 7, 30]
    assert idx[1, :3].tolist() == [0, 7, 30]


@pytest.mark.parametrize("metric", METRICS)
def test_topk_against_y(metric):
    x, y = data(31, 58, 13, seed=5)
    vals, idx = td.topk(x, y, 9, metric=metric, device="cpu", block_size=12)
    ref = ref_dis(x, y, metric)
    rv, _ = ref_topk(ref, 9)
    tol = tol_for(metric, ref)
    np.testing.assert_allclose(vals, rv, atol=tol)
    np.testing.assert_allclose(np.take_along_axis(ref, idx, 1), vals, atol=tol)


def test_topk_exact_tie_rule_on_integer_grid():
    # integer coordinates: squared distances are exact in float32, so ties are exact
    rng = np.random.default_rng(8)
    x = rng.integers(-2, 3, size=(60, 3)).astype(np.float32)
    vals, idx = td.topk(x, k=10, metric="sqeuclidean", device="cpu", block_size=7)
    ref = ref_dis(x, x, "sqeuclidean")
    np.fill_diagonal(ref, np.inf)
    rv, ri = ref_topk(ref, 10)
    np.testing.assert_array_equal(vals, rv)
    np.testing.assert_array_equal(idx, ri)


def test_topk_zero_vectors_cosine():
    x = np.zeros((5, 3), dtype=np.float32)
    x[0] = [1, 0, 0]
    vals, idx = td.topk(x, k=3, device="cpu", block_size=2)
    np.testing.assert_allclose(vals[1], [1.0, 1.0, 1.0])
    assert idx[1].tolist() == [0, 2, 3]
    assert idx[0].tolist() == [1, 2, 3]


def test_topk_limits():
    x, _ = data(5, 1, 3)
    _vals, idx = td.topk(x, k=4, device="cpu")  # k = N - 1: every other row
    assert sorted(idx[2].tolist()) == [0, 1, 3, 4]
    with pytest.raises(ValueError, match="exceeds the 4 candidates"):
        td.topk(x, k=5, device="cpu")
    with pytest.raises(ValueError, match="exceeds the 0 candidates"):
        td.topk(x[:1], k=1, device="cpu")
    with pytest.raises(ValueError, match="positive int"):
        td.topk(x, k=0, device="cpu")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(2, 40),
    d=st.integers(1, 6),
    bs=st.integers(1, 50),
    seed=st.integers(0, 10_000),
    metric=st.sampled_from(METRICS),
)
def test_property_topk_sorted_and_consistent_with_nearest(n, d, bs, seed, metric):
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, size=(n, d)).astype(np.float32)  # many exact ties
    k = min(n - 1, 5)
    vals, idx = td.topk(x, k=k, metric=metric, device="cpu", block_size=bs)
    assert (np.diff(vals, axis=1) >= 0).all()
    ref = ref_dis(x, x, metric)
    np.fill_diagonal(ref, np.inf)
    _, ri = ref_topk(ref, k)
    if metric == "sqeuclidean":  # exact arithmetic on small integers: identical ids
        np.testing.assert_array_equal(idx, ri)
    np.testing.assert_allclose(np.take_along_axis(ref, idx, 1), vals, atol=1e-5)
    # k = 1 against the other rows is the nearest neighbour
    v1, _i1 = td.topk(x, k=1, metric=metric, device="cpu", block_size=bs)
    np.testing.assert_allclose(v1[:, 0], ref.min(axis=1), atol=1e-5)


def test_results_identical_with_one_and_two_threads():
    # 2100 rows with 2048-row blocks: blocks of >= 2^22 scores take the OpenMP path
    rng = np.random.default_rng(9)
    x = rng.integers(-2, 3, size=(2100, 6)).astype(np.float32)  # many exact ties
    try:
        td.set_num_threads(1)
        a = td.topk(x, k=12, device="cpu", block_size=2048)
        na = td.nearest(x, x[:2048], device="cpu", block_size=2048)
        td.set_num_threads(2)
        b = td.topk(x, k=12, device="cpu", block_size=2048)
        nb = td.nearest(x, x[:2048], device="cpu", block_size=2048)
    finally:
        td.set_num_threads(0)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(na[1], nb[1])


def test_core_merge_rejects_overlapping_ranges():
    from tritondiv import _core

    g = np.zeros((4, 4), dtype=np.float32)
    vals = np.full((8, 2), -np.inf, dtype=np.float32)
    ids = np.full((8, 2), np.iinfo(np.int64).max, dtype=np.int64)
    with pytest.raises(ValueError, match="must not overlap"):
        _core.topk_merge_block(g, 0, 2, 1.0, None, None, False, True, vals, ids)
    with pytest.raises(ValueError, match="outside"):
        _core.topk_merge_block(g, 6, 0, 1.0, None, None, False, False, vals, ids)
    with pytest.raises(TypeError, match="float32"):
        _core.topk_merge_block(g.astype(np.float64), 0, 4, 1.0, None, None, False, True, vals, ids)


# ---- mean --------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize(("n", "d"), [(2, 1), (57, 14)])
def test_mean_exact(metric, n, d):
    x, _ = data(n, 1, d, seed=12)
    res = td.mean_dissimilarity(x, metric=metric, device="cpu")
    ref = ref_dis(x, x, metric)
    np.fill_diagonal(ref, 0.0)
    assert isinstance(res, MeanDissimilarity)
    assert res.exact and res.stderr == 0.0 and res.pairs == n * (n - 1)
    assert res.mean == pytest.approx(ref.sum() / (n * (n - 1)), rel=1e-9, abs=1e-12)


def test_mean_zero_vectors_and_duplicates():
    x = np.array([[0, 0], [0, 0], [1, 0], [1, 0]], dtype=np.float32)
    # pairs (ordered, i != j): zero-zero 2 (d=1), zero-other 8 (d=1), dup pair 2 (d=0)
    assert td.mean_dissimilarity(x, device="cpu").mean == pytest.approx(10 / 12)
    assert td.mean_dissimilarity(x, metric="sqeuclidean", device="cpu").mean == pytest.approx(
        8 / 12
    )


@pytest.mark.parametrize("metric", METRICS)
def test_mean_sampled_estimator(metric):
    x, _ = data(400, 1, 8, seed=13)
    exact = td.mean_dissimilarity(x, metric=metric, device="cpu").mean
    est = td.mean_dissimilarity(x, metric=metric, sample=20_000, seed=3)
    assert not est.exact and est.pairs == 20_000 and est.stderr > 0
    assert abs(est.mean - exact) < 5 * est.stderr
    again = td.mean_dissimilarity(x, metric=metric, sample=20_000, seed=3)
    assert again == est  # seeded
    small = td.mean_dissimilarity(x, metric=metric, sample=500, seed=3)
    assert small.stderr > est.stderr


def test_mean_errors():
    with pytest.raises(ValueError, match="at least 2 rows"):
        td.mean_dissimilarity(np.ones((1, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="sample must be"):
        td.mean_dissimilarity(np.ones((4, 3), dtype=np.float32), sample=1)


# ---- kNN graph ---------------------------------------------------------------------------


def test_knn_graph_cosine_clamp_and_symmetrize():
    import scipy.sparse as sp

    x, _ = data(40, 1, 3, seed=14)
    g = td.knn_graph(x, 5, device="cpu")
    assert sp.isspmatrix_csr(g) and g.shape == (40, 40) and g.dtype == np.float32
    assert (g.diagonal() == 0).all()
    assert (g.data > 0).all() and (np.diff(g.indptr) <= 5).all()
    vals, idx = td.topk(x, k=5, device="cpu")
    dense = g.toarray()
    for i in range(40):
        for v, j in zip(vals[i], idx[i], strict=True):
            assert dense[i, j] == pytest.approx(max(1.0 - v, 0.0), abs=1e-6)
    raw = td.knn_graph(x, 20, clamp=False, device="cpu")
    assert (raw.data < 0).any()  # d = 3 random: some of the 20 nearest are negative
    s = td.knn_graph(x, 5, symmetrize=True, device="cpu")
    assert abs(s - s.T).max() == 0
    assert (s.toarray() >= dense - 1e-7).all()


def test_knn_graph_sqeuclidean_gaussian_and_small_inputs():
    x, _ = data(30, 1, 4, seed=15)
    g = td.knn_graph(x, 4, metric="sqeuclidean", bandwidth=2.0, device="cpu")
    vals, idx = td.topk(x, k=4, metric="sqeuclidean", device="cpu")
    np.testing.assert_allclose(g[0, idx[0]].toarray().ravel(), np.exp(-vals[0] / 2.0), rtol=1e-6)
    assert td.knn_graph(x[:1], 4).nnz == 0  # one row: no neighbours
    assert td.knn_graph(x[:3], 10, metric="sqeuclidean").nnz == 6  # k clamped to N - 1


# ---- k-means -----------------------------------------------------------------------------


def test_kmeans_basic_properties():
    rng = np.random.default_rng(16)
    centers = rng.standard_normal((4, 8)).astype(np.float32)
    x = (np.repeat(centers, 50, axis=0) + 0.05 * rng.standard_normal((200, 8))).astype(np.float32)
    r = td.kmeans(x, 4, seed=1, iters=20, device="cpu")
    assert r.labels.dtype == np.int64 and r.centers.dtype == np.float32
    assert r.centers.shape == (4, 8)
    np.testing.assert_allclose(np.linalg.norm(r.centers, axis=1), 1.0, atol=1e-5)
    assert sorted(np.bincount(r.labels, minlength=4).tolist()) == [50, 50, 50, 50]
    assert r.converged and r.iterations < 20
    dis = ref_dis(x, r.centers, "cosine")
    assert r.objective == pytest.approx(dis[np.arange(200), r.labels].sum(), rel=1e-5)
    np.testing.assert_array_equal(r.labels, dis.argmin(axis=1))
    again = td.kmeans(x, 4, seed=1, iters=20, device="cpu")
    np.testing.assert_array_equal(again.labels, r.labels)


def test_kmeans_reseeds_empty_clusters():
    # 3 tight groups, 6 clusters, random init on duplicates forces empty clusters
    x = np.repeat(np.eye(3, dtype=np.float32), 10, axis=0)
    x = np.vstack([x, np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=np.float32)])
    r = td.kmeans(x, 6, seed=0, iters=10, init="random", device="cpu")
    assert r.reseeded > 0
    assert len(np.unique(r.labels)) == 6  # the 6 distinct rows end in 6 clusters
    assert r.objective == pytest.approx(0.0, abs=1e-5)


def test_kmeans_errors():
    x = np.ones((3, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="n_clusters"):
        td.kmeans(x, 4)
    with pytest.raises(ValueError, match="init="):
        td.kmeans(x, 2, init="bogus")


# ---- input checks and import cost ---------------------------------------------------------


def test_input_errors():
    x = np.ones((3, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="metric="):
        td.nearest(x, x, metric="l1")
    with pytest.raises(ValueError, match="device="):
        td.nearest(x, x, device="tpu")
    with pytest.raises(TypeError, match="float32/float16/bfloat16"):
        td.nearest(x.astype(np.int32), x, device="cpu")
    with pytest.raises(ValueError, match="NaN"):
        td.nearest(np.full((2, 2), np.nan, dtype=np.float32), x, device="cpu")
    with pytest.raises(ValueError, match="must match"):
        td.topk(x, np.ones((3, 3), dtype=np.float32), 1, device="cpu")
    with pytest.raises(ValueError, match="2-D"):
        td.nearest(np.ones(3, dtype=np.float32), x, device="cpu")
    with pytest.raises(ValueError, match="block_size"):
        td.nearest(x, x, device="cpu", block_size=0)


def test_import_is_cheap():
    code = (
        "import sys, tritondiv.kernels, tritondiv as td, numpy as np;"
        "td.nearest(np.ones((2, 2), np.float32), np.ones((1, 2), np.float32));"
        "print('torch' in sys.modules, 'triton' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    )
    assert out.stdout.split() == ["False", "False"]


# ---- real data: faiss exact search and faiss.Kmeans ---------------------------------------


def _real(shared_data, n: int) -> np.ndarray:
    path = shared_data / "embeddings" / "minilm_response.f16.npy"
    return np.ascontiguousarray(np.load(path, mmap_mode="r")[:n])


@pytest.mark.shared_data
@pytest.mark.peers
def test_topk_matches_faiss_on_real_embeddings(shared_data):
    faiss = pytest.importorskip("faiss")
    x16 = _real(shared_data, 5000)
    k = 20
    vals, idx = td.topk(x16, k=k, device="cpu", block_size=1024)
    x = x16.astype(np.float32)
    faiss.normalize_L2(x)  # the fp16 rows are unit norm only to ~1e-4; cosine = IP of these
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    fs, fi = index.search(x, k + 1)
    # drop self (faiss returns it, or a duplicate of it, among the first); keep k others
    f_sim = np.empty((5000, k), dtype=np.float32)
    f_ids = np.empty((5000, k), dtype=np.int64)
    for i in range(5000):
        keep = fi[i] != i
        f_sim[i] = fs[i][keep][:k]
        f_ids[i] = fi[i][keep][:k]
    sim = 1.0 - vals
    np.testing.assert_allclose(sim, f_sim, atol=2e-5)
    kth = np.minimum(sim[:, -1], f_sim[:, -1])
    n_diff = 0
    for i in range(5000):
        a, b = set(idx[i].tolist()), set(f_ids[i].tolist())
        if a != b:
            n_diff += 1
            only = np.array(sorted(a ^ b))
            s_only = x[only] @ x[i]
            # everything one tool has and the other lacks is a tie at the k-th similarity
            np.testing.assert_allclose(s_only, kth[i], atol=2e-5)
    assert n_diff < 5000  # sanity: most rows agree exactly


@pytest.mark.shared_data
def test_topk_tie_rule_on_real_embeddings(shared_data):
    x = _real(shared_data, 1500).astype(np.float32)
    vals, idx = td.topk(x, k=10, device="cpu", block_size=512)
    ref = ref_dis(x, x, "cosine")
    np.fill_diagonal(ref, np.inf)
    rv, ri = ref_topk(ref, 10)
    np.testing.assert_allclose(vals, rv, atol=1e-5)
    # same ids wherever the float64 reference has no near-tie at the boundary
    gap = np.sort(ref, axis=1)[:, 10] - rv[:, -1]
    clear = gap > 1e-5
    np.testing.assert_array_equal(np.sort(idx[clear], 1), np.sort(ri[clear], 1))


@pytest.mark.shared_data
@pytest.mark.peers
def test_kmeans_objective_close_to_faiss(shared_data):
    faiss = pytest.importorskip("faiss")
    x = _real(shared_data, 6000).astype(np.float32)
    k, iters = 60, 10
    ours = td.kmeans(x, k, seed=0, iters=iters, device="cpu")
    km = faiss.Kmeans(x.shape[1], k, niter=iters, spherical=True, seed=1234, verbose=False)
    km.train(x)
    # faiss objective in our units: sum of (1 - cos) to the nearest of its final centers
    f_dist, _ = td.nearest(x, km.centroids, device="cpu")
    faiss_obj = float(f_dist.astype(np.float64).sum())
    assert ours.objective <= 1.01 * faiss_obj
    assert ours.iterations <= iters


@pytest.mark.gpu
def test_gpu_triton_matches_cpu():  # pragma: no cover - needs a GPU
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (this machine has none)")
    x, y = data(3000, 1000, 384)
    v1, _ = td.nearest(torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda(), device="triton")
    v2, _ = td.nearest(x, y, device="cpu")
    np.testing.assert_allclose(v1, v2, atol=1e-5)
    t1, _ = td.topk(torch.from_numpy(x).cuda().half(), k=20, device="triton")
    t2, _ = td.topk(x.astype(np.float16), k=20, device="cpu")
    np.testing.assert_allclose(t1, t2, atol=2e-3)
