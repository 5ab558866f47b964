"""Micro-benchmarks of the hot calls on small seeded inputs (pytest-benchmark).

Not part of ``make test`` (``testpaths`` is ``tests/``): run them with ``make bench-micro``
or ``.venv/bin/pytest bench/test_micro.py`` (add ``--benchmark-disable`` to only check
the results, ``--benchmark-json out.json`` to keep the figures). Each one checks its output
against a plain numpy reference before it is timed, so a fast wrong answer fails.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import tritondiv as td

pytest.importorskip("pytest_benchmark")


@pytest.fixture(scope="module")
def tokens() -> td.TokenCSR:
    rng = np.random.default_rng(0)
    n, length, vocab = 20_000, 64, 8_000
    p = np.arange(1, vocab + 1, dtype=np.float64) ** -1.1
    ids = rng.choice(vocab, size=n * length, p=p / p.sum()).astype(np.int32)
    return td.TokenCSR(np.arange(0, n * length + 1, length, dtype=np.int64), ids, vocab)


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    x = np.random.default_rng(1).standard_normal((20_000, 64)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_token_stats(benchmark, tokens: td.TokenCSR) -> None:
    s = benchmark(td.token_stats, tokens, lo=10, hi=500, ns=(1, 2))
    counts = np.bincount(tokens.ids, minlength=tokens.vocab_size)
    assert s.n_mid == int(np.count_nonzero((counts >= 10) & (counts <= 500)))
    assert s.distinct[1] == pytest.approx(np.count_nonzero(counts) / tokens.n_tokens)


def test_facility_location_knn(benchmark, points: np.ndarray) -> None:
    n, k = points.shape[0], 10
    sims = points[:2_000] @ points.T  # a kNN-10 graph of the first 2,000 points
    nbr = np.argpartition(-sims, k, axis=1)[:, :k]
    rows = np.repeat(np.arange(2_000), k)
    vals = np.clip(np.take_along_axis(sims, nbr, axis=1).ravel(), 0, None).astype(np.float64)
    g = sp.csr_matrix((vals, (rows, nbr.ravel())), shape=(2_000, n))[:, :2_000]
    g = g.maximum(g.T).tocsr()
    r = benchmark(td.facility_location, g, 200)
    picked = np.asarray(r.indices)
    assert len(set(picked.tolist())) == 200
    assert r.objective == pytest.approx(float(g[picked].max(axis=0).toarray().sum()))


def test_kcenter(benchmark, points: np.ndarray) -> None:
    r = benchmark(td.kcenter_greedy, points, 100, metric="cosine", seed=0)
    d = 1.0 - points.astype(np.float64) @ points[np.asarray(r.indices)].astype(np.float64).T
    assert float(d.min(axis=1).max()) == pytest.approx(float(r.radii[-1]), abs=1e-5)


def test_nearest_cpu(benchmark, points: np.ndarray) -> None:
    centers = points[:256].copy()
    dist, idx = benchmark(td.nearest, points, centers, device="cpu")
    ref = 1.0 - points @ centers.T
    np.testing.assert_allclose(dist, ref.min(axis=1), atol=1e-5)
    assert np.mean(idx == ref.argmin(axis=1)) > 0.999  # ties may pick another center
