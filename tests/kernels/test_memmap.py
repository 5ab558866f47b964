"""Memory-mapped float32 embeddings through the kernel entry points: used in place (no
copy of the matrix), the same results as the in-memory array, block-wise normalization
and finiteness checks with blocks that do not divide ``n``."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from tritondiv.kernels import _common, cpu, kmeans, knn_graph, nearest, topk
from tritondiv.kernels._common import to_float32
from tritondiv.kernels.cpu import normalize_rows


def _unit_file(tmp_path: Path, n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x[3] = 0.0  # a zero row stays zero
    np.save(tmp_path / "x.npy", x)
    return np.load(tmp_path / "x.npy", mmap_mode="r")


def test_normalized_memmap_is_used_in_place(tmp_path: Path) -> None:
    X = _unit_file(tmp_path, 500, 24)
    assert not X.flags.writeable
    x = to_float32(X, "X")
    assert np.shares_memory(x, X)
    assert normalize_rows(x) is x
    mem = np.array(X)  # the in-memory reference
    v1, i1 = topk(X, None, 7, device="cpu")
    v2, i2 = topk(mem, None, 7, device="cpu")
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(v1, v2)
    g1, g2 = knn_graph(X, 5, device="cpu"), knn_graph(mem, 5, device="cpu")
    np.testing.assert_array_equal(g1.indices, g2.indices)
    np.testing.assert_array_equal(g1.data, g2.data)
    k1, k2 = kmeans(X, 6, device="cpu", seed=1), kmeans(mem, 6, device="cpu", seed=1)
    np.testing.assert_array_equal(k1.labels, k2.labels)
    d1, n1 = nearest(X, k1.centers, device="cpu")
    d2, n2 = nearest(mem, k1.centers, device="cpu")
    np.testing.assert_array_equal(n1, n2)
    np.testing.assert_array_equal(d1, d2)
    iv = knn_graph(X, 5, device="cpu", method="ivf", n_lists=4, nprobe=4)
    np.testing.assert_array_equal(iv.indices, g1.indices)  # all lists probed: exact


def test_rows_off_unit_norm_are_normalized_block_wise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "_NORM_BLOCK", 7)  # 50 rows: blocks of 7, the last of 1
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 9)).astype(np.float32)
    x[10] = 0.0
    x[:20] /= np.linalg.norm(x[:20], axis=1, keepdims=True).clip(1e-30)  # some unit already
    got = normalize_rows(x)
    assert got is not x and not np.shares_memory(got, x)
    ref = x.astype(np.float64)
    norms = np.linalg.norm(ref, axis=1, keepdims=True)
    ref = np.divide(ref, norms, out=np.zeros_like(ref), where=norms > 0)
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-7)
    assert not got[10].any()
    assert normalize_rows(got) is got  # normalized now: used as it is
    # float16 rows are converted (a copy, by necessity)
    assert normalize_rows(got.astype(np.float16)).dtype == np.float32


def test_finite_check_is_block_wise() -> None:
    x = np.ones((10, 3), np.float32)
    assert _common._all_finite(x, block=3)
    x[9, 2] = np.nan  # in the last, short block
    assert not _common._all_finite(x, block=3)
    with pytest.raises(ValueError, match="NaN or infinite"):
        to_float32(x, "X")


def test_kmeans_allocates_less_than_the_matrix(tmp_path: Path) -> None:
    """60,000 x 128 unit rows mapped read-only: every temporary of k-means (the k-means++
    sample, score blocks, per-row bounds) together stays well below the matrix itself
    (measured: half of it), so nothing copies it whole."""
    X = _unit_file(tmp_path, 60_000, 128)
    tracemalloc.start()
    try:
        kmeans(X, 20, device="cpu", iters=3, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.75 * X.nbytes
