"""Triton dissimilarity kernels under ``TRITON_INTERPRET=1``, against torch references.

The interpreter must be on before triton is imported (``triton.jit`` reads the variable
when a kernel is defined), so the conftest of this folder sets it and this file imports
``tritondiv.kernels.triton_kernels`` fresh, then checks the kernels really are
interpreted. Small shapes, sizes never a multiple of the tile, d = 1 and d = 384.

Tolerances (absolute, on dissimilarities): float32 1e-5 (cosine) / 1e-4 relative
(squared L2); float16 inputs 2e-3; bfloat16 inputs 1e-2 (the reference uses the same
rounded inputs in float64, so only accumulation order and the kernel's float32 norms
differ for fp32; fp16/bf16 products are exact in float32, so the loose bounds cover
the float32 norms of rounded inputs).
"""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def _load_interpreted():
    triton = pytest.importorskip("triton")
    from triton.runtime.interpreter import InterpretedFunction

    if not isinstance(triton.language.standard.max, InterpretedFunction):
        # triton was imported earlier in this session without the interpreter: re-import it
        for name in [m for m in sys.modules if m == "triton" or m.startswith("triton.")]:
            del sys.modules[name]
    sys.modules.pop("tritondiv.kernels.triton_kernels", None)
    return importlib.import_module("tritondiv.kernels.triton_kernels")


tk = _load_interpreted()

TOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}


def test_kernels_are_interpreted():
    from triton.runtime.interpreter import InterpretedFunction

    assert tk.interpreted()
    for kern in (tk._nearest_kernel, tk._topk_kernel, tk._mean_kernel):
        assert isinstance(kern, InterpretedFunction)


def _ref(x: torch.Tensor, y: torch.Tensor, metric: str) -> np.ndarray:
    """Float64 torch reference of the dissimilarity matrix (zero rows: cosine sim 0)."""
    x, y = x.double(), y.double()
    if metric == "cosine":
        xn = torch.nn.functional.normalize(x, dim=1)  # zero rows stay zero
        yn = torch.nn.functional.normalize(y, dim=1)
        return (1.0 - xn @ yn.T).numpy()
    return (torch.cdist(x, y) ** 2).numpy()


def _tol(metric: str, dtype: torch.dtype, scale: float) -> float:
    t = TOL[dtype]
    return t if metric == "cosine" else t * max(scale, 1.0) * 10


def _data(n: int, m: int, d: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = torch.randn(m, d, generator=g)
    if n > 3:
        x[1] = x[0]  # duplicate rows
        x[2] = 0.0  # zero vector
    if m > 3:
        y[2] = y[1]
        y[3] = 0.0
    return x, y


SHAPES = [(37, 45, 19), (1, 20, 5), (20, 1, 3), (33, 17, 1), (9, 70, 384)]


@pytest.mark.parametrize("metric", ["cosine", "sqeuclidean"])
@pytest.mark.parametrize(("n", "m", "d"), SHAPES)
def test_nearest_matches_torch(metric, n, m, d):
    x, y = _data(n, m, d)
    val, idx = tk.nearest_triton(x, y, metric=metric, block_n=32)
    ref = _ref(x, y, metric)
    tol = _tol(metric, torch.float32, float(np.abs(ref).max()))
    np.testing.assert_allclose(val, ref.min(axis=1), atol=tol, rtol=1e-5)
    # the chosen index attains the minimum (ties: any minimizer within tolerance)
    np.testing.assert_allclose(ref[np.arange(n), idx], ref.min(axis=1), atol=tol, rtol=1e-5)
    assert idx.dtype == np.int64 and val.dtype == np.float32


def test_nearest_ties_pick_smaller_index():
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [2.0, 0.0]])
    x = torch.tensor([[3.0, 0.0], [0.0, 0.0]])
    val, idx = tk.nearest_triton(x, y, metric="cosine", block_n=16)
    assert idx.tolist() == [0, 0]  # rows 0, 2, 3 tie for x[0]; a zero row ties with all
    np.testing.assert_allclose(val, [0.0, 1.0], atol=1e-6)


@pytest.mark.parametrize("metric", ["cosine", "sqeuclidean"])
@pytest.mark.parametrize(("n", "m", "d", "k"), [(37, 45, 19, 7), (1, 20, 5, 20), (9, 70, 384, 17)])
def test_topk_matches_torch(metric, n, m, d, k):
    x, y = _data(n, m, d)
    val, idx = tk.topk_triton(x, y, k, metric=metric, block_n=32)
    ref = _ref(x, y, metric)
    tol = _tol(metric, torch.float32, float(np.abs(ref).max()))
    np.testing.assert_allclose(val, np.sort(ref, axis=1)[:, :k], atol=tol, rtol=1e-5)
    np.testing.assert_allclose(np.take_along_axis(ref, idx, 1), val, atol=tol, rtol=1e-5)
    assert (np.diff(val, axis=1) >= 0).all()
    assert all(len(set(r)) == k for r in idx.tolist())


@pytest.mark.parametrize("metric", ["cosine", "sqeuclidean"])
def test_topk_self_excluded_with_duplicates(metric):
    x, _ = _data(41, 4, 6, seed=3)
    x[5] = x[0]
    val, idx = tk.topk_triton(x, x, 5, metric=metric, exclude_self=True, block_n=16)
    assert not (idx == np.arange(41)[:, None]).any()
    # duplicates find each other at dissimilarity 0 (row 0 has duplicates 1 and 5)
    assert set(idx[0, :2].tolist()) == {1, 5}
    assert idx[1, :2].tolist() == [0, 5]  # tie between 0 and 5 broken by smaller index
    ref = _ref(x, x, metric)
    np.fill_diagonal(ref, np.inf)
    tol = _tol(metric, torch.float32, float(np.abs(ref[np.isfinite(ref)]).max()))
    np.testing.assert_allclose(val, np.sort(ref, axis=1)[:, :5], atol=tol, rtol=1e-5)


def test_topk_zero_vectors_cosine():
    x = torch.zeros(5, 3)
    x[0] = torch.tensor([1.0, 0.0, 0.0])
    val, idx = tk.topk_triton(x, x, 3, metric="cosine", exclude_self=True, block_n=16)
    # every zero row has similarity 0 (dissimilarity 1) with everything; ties by index
    np.testing.assert_allclose(val[1], [1.0, 1.0, 1.0], atol=1e-6)
    assert idx[1].tolist() == [0, 2, 3]


@pytest.mark.parametrize("metric", ["cosine", "sqeuclidean"])
@pytest.mark.parametrize(("n", "d"), [(2, 1), (45, 19), (13, 384)])
def test_mean_matches_torch(metric, n, d):
    x, _ = _data(n, 2, d, seed=7)
    got = tk.mean_triton(x, metric=metric, block_n=32)
    ref = _ref(x, x, metric)
    np.fill_diagonal(ref, 0.0)
    want = ref.sum() / (n * (n - 1))
    assert got == pytest.approx(want, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("metric", ["cosine", "sqeuclidean"])
def test_half_precision_inputs(dtype, metric):
    x, y = _data(23, 37, 40, seed=11)
    xh, yh = x.to(dtype), y.to(dtype)
    ref = _ref(xh.float(), yh.float(), metric)  # same rounded inputs, float64 math
    tol = _tol(metric, dtype, float(np.abs(ref).max()))
    val, _ = tk.nearest_triton(xh, yh, metric=metric, block_n=32)
    np.testing.assert_allclose(val, ref.min(axis=1), atol=tol, rtol=TOL[dtype])
    tv, _ = tk.topk_triton(xh, yh, 4, metric=metric, block_n=32)
    np.testing.assert_allclose(tv, np.sort(ref, axis=1)[:, :4], atol=tol, rtol=TOL[dtype])
    got = tk.mean_triton(xh, metric=metric)
    r2 = _ref(xh.float(), xh.float(), metric)
    np.fill_diagonal(r2, 0.0)
    assert got == pytest.approx(r2.sum() / (23 * 22), rel=TOL[dtype])


def test_public_dispatch_uses_triton_when_forced():
    import tritondiv as td

    x, y = _data(19, 21, 8)
    v1, i1 = td.nearest(x, y, device="triton")
    v2, i2 = td.nearest(x.numpy(), y.numpy(), device="cpu")
    np.testing.assert_allclose(v1, v2, atol=1e-5)
    np.testing.assert_array_equal(i1, i2)
    t1, j1 = td.topk(x, k=4, device="triton")
    t2, j2 = td.topk(x.numpy(), k=4, device="cpu")
    np.testing.assert_allclose(t1, t2, atol=1e-5)
    np.testing.assert_array_equal(j1, j2)
    m1 = td.mean_dissimilarity(x, device="triton")
    m2 = td.mean_dissimilarity(x.numpy(), device="cpu")
    assert m1.mean == pytest.approx(m2.mean, rel=1e-5)


def test_triton_rejects_bad_input():
    with pytest.raises(ValueError, match="k must be in"):
        tk.topk_triton(torch.ones(3, 2), torch.ones(100, 2), 65)
    with pytest.raises(ValueError, match="must match"):
        tk.nearest_triton(torch.ones(3, 2), torch.ones(3, 4))
    with pytest.raises(TypeError, match="float32/float16/bfloat16"):
        tk.nearest_triton(torch.ones(3, 2, dtype=torch.int32), torch.ones(3, 2))
    with pytest.raises(ValueError, match="power of two"):
        tk.nearest_triton(torch.ones(3, 2), torch.ones(3, 2), block_n=24)


def test_kmeans_and_knn_graph_on_the_triton_path():
    import tritondiv as td

    g = torch.Generator().manual_seed(5)
    base = torch.randn(3, 8, generator=g)
    x = (base.repeat_interleave(20, dim=0) + 0.05 * torch.randn(60, 8, generator=g)).numpy()
    r_t = td.kmeans(x, 3, seed=2, iters=5, device="triton")
    r_c = td.kmeans(x, 3, seed=2, iters=5, device="cpu")
    np.testing.assert_array_equal(r_t.labels, r_c.labels)
    assert r_t.objective == pytest.approx(r_c.objective, rel=1e-4, abs=1e-4)
    g_t = td.knn_graph(x, 4, device="triton")
    g_c = td.knn_graph(x, 4, device="cpu")
    np.testing.assert_allclose(g_t.toarray(), g_c.toarray(), atol=1e-5)
