"""Selection engine: C++ results against plain Python/numpy references, edge cases, properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tritondiv as td
from tritondiv.incidence import Incidence
from tritondiv.select import _unit_rows

MASK = (1 << 64) - 1
TYPE_SALT = 0x7479706573


# ---- references -------------------------------------------------------------------------


def ref_ranks(n: int, seed: int) -> list[int]:
    """The core's seeded tie order: SplitMix64 + Fisher-Yates, rank[i] = position of i."""
    state = seed & MASK

    def nxt() -> int:
        nonlocal state
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        j = (nxt() * (i + 1)) >> 64
        perm[i], perm[j] = perm[j], perm[i]
    rank = [0] * n
    for p, i in enumerate(perm):
        rank[i] = p
    return rank


def ref_prune(rows: list[list[int]], n_types: int, seed: int):
    """Plain Algorithm 1: returns (removal order, pool per k)."""
    rank = ref_ranks(n_types, seed ^ TYPE_SALT)
    alive = set(range(len(rows)))
    remaining = {t for r in rows for t in r}
    k_max = len(remaining)
    order = []
    pools = {k_max: sorted(alive)}
    while remaining:
        sup = {t: 0 for t in remaining}
        for i in alive:
            for t in rows[i]:
                sup[t] += 1
        t = min(remaining, key=lambda u: (sup[u], rank[u]))
        order.append(t)
        remaining.discard(t)
        alive = {i for i in alive if t not in rows[i]}
        pools[len(remaining)] = sorted(alive)
    return order, pools


def ref_greedy(rows, n_types, candidates, n, g="log1p", quota=None, weights=None, seed=0):
    """Plain greedy on F = sum_t g(c_t), ties by the seeded sample rank."""
    rank = ref_ranks(len(rows), seed)
    if g == "log1p":
        delta = [math.log1p(c + 1) - math.log1p(c) for c in range(n + 1)]
    elif g == "sqrt":
        delta = [math.sqrt(c + 1) - math.sqrt(c) for c in range(n + 1)]
    else:
        delta = [1.0 if c + 1 <= quota else 0.0 for c in range(n + 1)]
    cnt = [0] * n_types
    left = list(candidates)
    picks, gains = [], []
    for _ in range(n):
        best = None
        for i in left:
            s = 0.0
            for t in rows[i]:
                s += delta[cnt[t]]
            if weights is not None:
                s *= weights[i]
            key = (s, -rank[i])
            if best is None or key > best[0]:
                best = (key, i)
        (s, _), i = best
        picks.append(i)
        gains.append(s)
        left.remove(i)
        for t in rows[i]:
            cnt[t] += 1
    return picks, gains, cnt


def ref_kcenter(X, n, metric, seed):
    """Textbook Gonzalez in float64 (chosen points excluded, ties by lowest index)."""
    D = _unit_rows(X).astype(np.float64) if metric == "cosine" else X.astype(np.float64)
    first = int(np.random.default_rng(seed).integers(X.shape[0]))
    idx = [first]
    mind = ((D - D[first]) ** 2).sum(1)
    mind[first] = -np.inf
    rad = [max(mind.max(), 0.0)]
    for _ in range(n - 1):
        c = int(np.argmax(mind))
        idx.append(c)
        mind = np.minimum(mind, ((D - D[c]) ** 2).sum(1))
        mind[idx] = -np.inf
        rad.append(max(mind.max(), 0.0) if len(idx) < X.shape[0] else 0.0)
    rad = np.array(rad)
    return np.array(idx), (rad / 2 if metric == "cosine" else np.sqrt(rad))


def ref_facility(G: np.ndarray, n: int):
    """Exact (naive) greedy on f(S) = sum_i max_{j in S} G[j, i], ties by lowest index."""
    best = np.zeros(G.shape[1])
    picks, gains = [], []
    avail = np.ones(G.shape[0], bool)
    for _ in range(n):
        gain = (np.maximum(G, best) - best).sum(1)
        gain[~avail] = -1
        j = int(np.argmax(gain))
        picks.append(j)
        gains.append(gain[j])
        avail[j] = False
        best = np.maximum(best, G[j])
    return picks, float(best.sum())


def ref_threshold(X, n, tau, order):
    Xn = _unit_rows(X).astype(np.float64)
    kept = []
    for i in order:
        if all(Xn[i] @ Xn[k] <= tau for k in kept):
            kept.append(int(i))
            if len(kept) == n:
                break
    return kept


def rows_of(inc: Incidence) -> list[list[int]]:
    return [inc.row(i).tolist() for i in range(inc.n_samples)]


def random_rows(rng, n_samples, n_types, max_len, empty_frac=0.1):
    rows = []
    for _ in range(n_samples):
        if rng.random() < empty_frac:
            rows.append([])
        else:
            k = int(rng.integers(1, max_len + 1))
            # Zipf-ish type popularity
            rows.append(sorted(set(rng.zipf(1.5, size=k).clip(1, n_types) - 1)))
    return rows


# ---- pruning ----------------------------------------------------------------------------


EDGE_ROWS = {
    "ties": [[0], [1], [2], [3], [0, 1], [2, 3]],
    "duplicates": [[0, 1], [0, 1], [0, 1], [2], [2], [1, 2]],
    "no_types": [[], [0], [], [1, 2], [2]],
    "type_everywhere": [[0, 1], [0, 2], [0], [0, 3, 1], [0, 2]],
    "one_sample": [[5]],
    "all_empty": [[], [], []],
}


@pytest.mark.parametrize("name", sorted(EDGE_ROWS))
@pytest.mark.parametrize("seed", [0, 7])
def test_prune_matches_reference(name, seed):
    rows = EDGE_ROWS[name]
    inc = Incidence.from_lists(rows, n_types=7)
    pr = td.prune_types(inc, seed=seed)
    order, pools = ref_prune(rows, 7, seed)
    assert pr.removal_order.tolist() == order
    assert pr.k_max == len(order)
    for k in range(pr.k_max + 1):
        assert pr.pool(k).tolist() == pools[k]
        assert pr.pool_sizes[k] == len(pools[k])
        assert set(pr.types(k).tolist()) == set(order[len(order) - k :])


def test_prune_random_matches_reference(rng):
    for trial in range(5):
        rows = random_rows(rng, 60, 25, 5)
        inc = Incidence.from_lists(rows, n_types=25)
        pr = td.prune_types(inc, seed=trial)
        order, pools = ref_prune(rows, 25, trial)
        assert pr.removal_order.tolist() == order
        assert all(pr.pool(k).tolist() == pools[k] for k in range(pr.k_max + 1))


def test_samples_without_types_in_every_pool():
    inc = Incidence.from_lists([[], [0], [1], []], n_types=2)
    pr = td.prune_types(inc)
    assert pr.pool(0).tolist() == [0, 3]
    assert pr.k_min(2) == 0
    assert pr.k_min(4) == 2
    with pytest.raises(ValueError, match="n=5 exceeds the pool of 4"):
        pr.k_min(5)


def test_k_max_ignores_uncarried_types():
    inc = Incidence.from_lists([[1], [3], [1, 3]], n_types=10)
    pr = td.prune_types(inc)
    assert pr.k_max == 2
    assert sorted(pr.removal_order.tolist()) == [1, 3]


# ---- balanced greedy and select_types ---------------------------------------------------


@pytest.mark.parametrize("name", sorted(set(EDGE_ROWS) - {"all_empty", "one_sample"}))
@pytest.mark.parametrize("g", ["log1p", "sqrt", "min"])
def test_balanced_greedy_matches_reference(name, g):
    rows = EDGE_ROWS[name]
    inc = Incidence.from_lists(rows, n_types=7)
    n = len(rows) - 1
    quota = 2.0 if g == "min" else None
    res = td.balanced_greedy(inc, n, g=g, quota=quota, seed=3)
    picks, gains, cnt = ref_greedy(rows, 7, range(len(rows)), n, g=g, quota=quota, seed=3)
    assert res.indices.tolist() == picks
    np.testing.assert_array_equal(res.gains, gains)
    assert res.type_counts.tolist() == cnt


def test_balanced_greedy_random_weights_and_candidates(rng):
    for trial in range(4):
        rows = random_rows(rng, 80, 30, 6)
        inc = Incidence.from_lists(rows, n_types=30)
        cand = np.sort(rng.choice(80, 50, replace=False))
        w = rng.random(80) if trial % 2 else None
        res = td.balanced_greedy(inc, 20, candidates=cand, weights=w, seed=trial)
        picks, gains, _ = ref_greedy(rows, 30, cand.tolist(), 20, weights=w, seed=trial)
        assert res.indices.tolist() == picks
        np.testing.assert_array_equal(res.gains, gains)


def test_select_types_matches_prune_plus_greedy(rng):
    rows = random_rows(rng, 120, 40, 5)
    inc = Incidence.from_lists(rows, n_types=40)
    order, pools = ref_prune(rows, 40, 5)
    k_max = len(order)
    k_min = min(k for k, p in pools.items() if len(p) >= 30)
    for level in (0.0, 0.4, 1.0):
        res = td.select_types(inc, 30, level, seed=5)
        k = math.floor(k_min + level * (k_max - k_min) + 0.5)
        assert (res.k, res.k_min, res.k_max, res.pool_size) == (k, k_min, k_max, len(pools[k]))
        picks, _, cnt = ref_greedy(rows, 40, pools[k], 30, seed=5)
        assert res.indices.tolist() == picks
        assert res.coverage == sum(c > 0 for c in cnt)


def test_ladder_equals_single_levels(rng):
    inc = Incidence.from_lists(random_rows(rng, 200, 50, 6), n_types=50)
    levels = [0, 1 / 6, 0.5, 1]
    ladder = td.select_types_ladder(inc, 40, levels, seed=2, progress=False)
    for p, res in zip(levels, ladder, strict=True):
        single = td.select_types(inc, 40, p, seed=2)
        np.testing.assert_array_equal(res.indices, single.indices)
        assert res.k == single.k and res.level == p


def test_stochastic_greedy_exact_size_and_deterministic(rng):
    inc = Incidence.from_lists(random_rows(rng, 300, 60, 6), n_types=60)
    a = td.balanced_greedy(inc, 50, epsilon=0.1, seed=4)
    b = td.balanced_greedy(inc, 50, epsilon=0.1, seed=4)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert np.unique(a.indices).size == 50
    exact = td.balanced_greedy(inc, 50, seed=4)
    assert exact.gains.sum() >= a.gains.sum() * 0.9


def test_budget_equals_pool():
    inc = Incidence.from_lists([[0], [0], [1], []], n_types=2)
    res = td.select_types(inc, 4, 1.0)
    assert sorted(res.indices.tolist()) == [0, 1, 2, 3]
    assert res.gains[-1] == 0.0  # the type-less sample comes last


def test_type_selection_errors():
    inc = Incidence.from_lists([[0], [1]], n_types=2)
    with pytest.raises(ValueError, match="empty"):
        td.select_types(Incidence.from_lists([], n_types=0), 1, 0.5)
    with pytest.raises(ValueError, match="n=3 exceeds the pool of 2"):
        td.select_types(inc, 3, 0.5)
    with pytest.raises(ValueError, match=r"level=1.5 must lie in \[0, 1\]"):
        td.select_types(inc, 1, 1.5)
    with pytest.raises(ValueError, match="unknown g='exp'"):
        td.select_types(inc, 1, 0.5, g="exp")
    with pytest.raises(ValueError, match="quota"):
        td.select_types(inc, 1, 0.5, quota=2)
    with pytest.raises(ValueError, match="weights"):
        td.select_types(inc, 1, 0.5, weights=np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="weights has shape"):
        td.select_types(inc, 1, 0.5, weights=np.ones(3))
    with pytest.raises(TypeError, match="Incidence"):
        td.select_types([[0]], 1, 0.5)


# ---- properties ---------------------------------------------------------------------------

incidences = st.builds(
    lambda rows, extra: Incidence.from_lists(
        rows, n_types=max([t for r in rows for t in r], default=0) + 1 + extra
    ),
    st.lists(st.lists(st.integers(0, 14), max_size=4), min_size=1, max_size=40),
    st.integers(0, 2),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inc=incidences, frac=st.floats(0.05, 1.0), seed=st.integers(0, 2**32))
def test_properties_of_the_ladder(inc, frac, seed):
    n = max(1, int(frac * inc.n_samples))
    pr = td.prune_types(inc, seed=seed)
    # nested pools, sizes non-decreasing, S_kmax = everything
    prev = set()
    for k in range(pr.k_max + 1):
        cur = set(pr.pool(k).tolist())
        assert prev <= cur
        prev = cur
    assert pr.pool_sizes[-1] == inc.n_samples
    ladder = td.select_types_ladder(inc, n, [0, 0.25, 0.5, 0.75, 1], seed=seed, progress=False)
    ks = [r.k for r in ladder]
    assert ks == sorted(ks)
    # (coverage itself is not monotone in general: see the select_types notes and
    # test_coverage_can_drop_on_a_tiny_pool; on real pools it is, see the seeded test below)
    for r in ladder:
        assert r.indices.size == n and np.unique(r.indices).size == n
        assert set(r.indices.tolist()) <= set(pr.pool(r.k).tolist())
        assert r.pool_size >= n
        assert r.coverage <= r.k
    again = td.select_types(inc, n, 0.5, seed=seed)
    np.testing.assert_array_equal(again.indices, ladder[2].indices)


def _on_one_and_two_threads(fn):
    """``[fn() with 1 thread, fn() with 2 threads]``, restoring the thread count."""
    before = td.num_threads()
    try:
        out = []
        for t in (1, 2):
            td.set_num_threads(t)
            out.append(fn())
        return out
    finally:
        td.set_num_threads(before)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inc=incidences, frac=st.floats(0.05, 1.0), seed=st.integers(0, 2**32), data=st.data())
def test_one_and_two_threads_agree(inc, frac, seed, data):
    n = max(1, int(frac * inc.n_samples))
    rows = data.draw(st.integers(2, 60))
    X = np.random.default_rng(seed).standard_normal((rows, 5)).astype(np.float32)
    X[rows // 2 :] = X[: rows - rows // 2]  # duplicates: ties everywhere
    m = data.draw(st.integers(1, rows))
    (l1, k1), (l2, k2) = _on_one_and_two_threads(
        lambda: (
            td.select_types_ladder(inc, n, [0, 0.5, 1], seed=seed, progress=False),
            td.kcenter_greedy(X, m, metric="l2", seed=seed),
        )
    )
    for a, b in zip(l1, l2, strict=True):
        np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(k1.indices, k2.indices)
    np.testing.assert_array_equal(k1.radii, k2.radii)


def test_coverage_can_drop_on_a_tiny_pool():
    # the documented counterexample (hypothesis found it): evenness over coverage
    inc = Incidence.from_lists([[], [], [], [0, 2, 5], [1, 4], [0, 2, 3]], n_types=6)
    ladder = td.select_types_ladder(inc, 2, [0.75, 1.0], seed=0, progress=False)
    assert [r.k for r in ladder] == [5, 6]
    assert [r.coverage for r in ladder] == [5, 4]


def test_coverage_non_decreasing_in_level(rng):
    for trial in range(6):
        inc = Incidence.from_lists(random_rows(rng, 400, 150, 5), n_types=150)
        ladder = td.select_types_ladder(
            inc, 60, [0, 1 / 6, 2 / 6, 0.5, 4 / 6, 5 / 6, 1], seed=trial
        )
        cov = [r.coverage for r in ladder]
        assert cov == sorted(cov), cov


def test_same_result_with_one_and_two_threads(rng):
    inc = Incidence.from_lists(random_rows(rng, 3000, 400, 8), n_types=400)
    X = rng.standard_normal((3000, 24)).astype(np.float32)
    G = sp.random(500, 500, density=0.05, format="csr", random_state=1)
    out = _on_one_and_two_threads(
        lambda: (
            td.select_types(inc, 300, 0.5).indices,
            td.kcenter_greedy(X, 200).indices,
            td.facility_location(G, 50).indices,
            td.threshold_filter(X, 200, 0.6).indices,
        )
    )
    for a, b in zip(*out, strict=True):
        np.testing.assert_array_equal(a, b)


# ---- k-center -----------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["cosine", "l2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_kcenter_matches_numpy_gonzalez(rng, metric, dtype):
    X = rng.standard_normal((400, 16)).astype(dtype)
    X[100:110] = X[5]  # duplicates
    for seed in (0, 3):
        res = td.kcenter_greedy(X, 60, metric=metric, seed=seed)
        idx, rad = ref_kcenter(X, 60, metric, seed)
        np.testing.assert_array_equal(res.indices, idx)
        np.testing.assert_allclose(res.radii, rad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    ("kind", "d"),
    [
        # clustered in a 3-d subspace: the triangle table skips most pairs and is kept
        ("clustered", 13),
        # isotropic 40-d: it skips few, and is dropped after the probe (picks 512..1024)
        ("isotropic", 40),
    ],
)
def test_kcenter_long_runs_match_numpy_gonzalez(rng, kind, d):
    # n > 1024 crosses the triangle table's block flushes (every 64 picks) and its
    # keep-or-drop probe; d not a multiple of 8 exercises the kernels' scalar tails.
    N, n = 2500, 1100
    if kind == "clustered":
        latent = rng.standard_normal((N, 3)) + 4 * rng.integers(0, 6, (N, 1))
        X = (latent @ rng.standard_normal((3, d))).astype(np.float32)
    else:
        X = rng.standard_normal((N, d)).astype(np.float32)
    X[7:12] = X[3]  # duplicates
    res = td.kcenter_greedy(X, n, metric="l2", seed=2)
    idx, rad = ref_kcenter(X, n, "l2", 2)
    np.testing.assert_array_equal(res.indices, idx)
    np.testing.assert_allclose(res.radii, rad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("d", [1, 7, 9])
def test_kcenter_small_dimensions(rng, d):
    X = rng.standard_normal((300, d)).astype(np.float32)
    for metric in ("l2", "cosine"):
        res = td.kcenter_greedy(X, 150, metric=metric, seed=4)
        idx, rad = ref_kcenter(X, 150, metric, 4)
        np.testing.assert_array_equal(res.indices, idx)
        np.testing.assert_allclose(res.radii, rad, rtol=1e-12, atol=1e-15)


def test_kcenter_continues_past_radius_zero():
    X = np.repeat(np.eye(3, dtype=np.float32), [3, 2, 2], axis=0)  # 3 distinct points
    res = td.kcenter_greedy(X, 7, metric="l2", seed=0)
    idx, _ = ref_kcenter(X, 7, "l2", 0)
    np.testing.assert_array_equal(res.indices, idx)
    assert sorted(res.indices.tolist()) == list(range(7))
    assert (res.radii[2:] == 0).all() and (res.radii[:2] > 0).all()


def test_kcenter_one_point_and_full_budget(rng):
    X = rng.standard_normal((1, 4)).astype(np.float32)
    assert td.kcenter_greedy(X, 1).indices.tolist() == [0]
    X = rng.standard_normal((30, 4)).astype(np.float32)
    res = td.kcenter_greedy(X, 30, metric="l2", seed=1)
    np.testing.assert_array_equal(res.indices, ref_kcenter(X, 30, "l2", 1)[0])


@pytest.mark.shared_data
def test_kcenter_real_embeddings(shared_data):
    X = np.load(shared_data / "embeddings" / "minilm_response.f16.npy", mmap_mode="r")[:3000]
    X = np.ascontiguousarray(X)
    res = td.kcenter_greedy(X, 150, seed=11)
    idx, rad = ref_kcenter(X, 150, "cosine", 11)
    np.testing.assert_array_equal(res.indices, idx)
    np.testing.assert_allclose(res.radii, rad, rtol=1e-12, atol=1e-15)


def test_kcenter_errors(rng):
    X = rng.standard_normal((10, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="unknown metric='manhattan'"):
        td.kcenter_greedy(X, 2, metric="manhattan")
    with pytest.raises(ValueError, match="n=11 exceeds"):
        td.kcenter_greedy(X, 11)
    bad = X.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN/inf.*row 4"):
        td.kcenter_greedy(bad, 2)
    with pytest.raises(ValueError, match="2-D"):
        td.kcenter_greedy(X[0], 2)
    Z = X.copy()
    Z[2] = 0
    with pytest.raises(ValueError, match="row 2 of X is all zeros"):
        td.kcenter_greedy(Z, 2)
    with pytest.raises(TypeError, match="float16/float32/float64"):
        td.kcenter_greedy(X.astype(np.int32), 2)


# ---- facility location --------------------------------------------------------------------


def knn_graph(X: np.ndarray, k: int) -> sp.csr_matrix:
    Xn = _unit_rows(X).astype(np.float64)
    S = Xn @ Xn.T
    nbr = np.argsort(-S, axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(X.shape[0]), k)
    vals = np.clip(S[rows, nbr.ravel()], 0, None)
    return sp.csr_matrix((vals, (rows, nbr.ravel())), shape=(X.shape[0],) * 2)


def test_facility_location_matches_exact_greedy(rng):
    X = rng.standard_normal((300, 8)).astype(np.float32)
    G = knn_graph(X, 10)  # non-symmetric: row j = what j covers
    res = td.facility_location(G, 40)
    picks, obj = ref_facility(G.toarray(), 40)
    assert res.indices.tolist() == picks
    assert res.objective == pytest.approx(obj, rel=1e-12)
    dense = td.facility_location(G.toarray(), 40)
    np.testing.assert_array_equal(dense.indices, res.indices)
    assert dense.objective == pytest.approx(obj, rel=1e-12)


def test_facility_location_ties_duplicates_and_full_budget():
    G = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    res = td.facility_location(G, 3)
    assert res.indices.tolist() == [0, 2, 1]
    np.testing.assert_allclose(res.gains, [2.0, 1.0, 0.0])
    assert td.facility_location(sp.csr_matrix(G), 3).indices.tolist() == [0, 2, 1]
    dup = sp.csr_matrix(
        (np.array([0.5, 0.25, 1.0]), np.array([1, 1, 0]), np.array([0, 2, 3])), shape=(2, 2)
    )
    assert not dup.has_canonical_format
    res = td.facility_location(dup, 2)
    assert res.indices.tolist() == [1, 0] and res.objective == pytest.approx(1.75)
    empty_rows = sp.csr_matrix((4, 4))
    assert td.facility_location(empty_rows, 2).indices.tolist() == [0, 1]


@pytest.mark.shared_data
def test_facility_location_real_embeddings(shared_data):
    X = np.load(shared_data / "embeddings" / "minilm_response.f16.npy", mmap_mode="r")[:1500]
    G = knn_graph(np.ascontiguousarray(X), 15)
    G = G.maximum(G.T).tocsr()
    res = td.facility_location(G, 100)
    picks, obj = ref_facility(G.toarray(), 100)
    assert res.objective == pytest.approx(obj, rel=1e-12)
    assert res.indices.tolist() == picks


def test_facility_location_errors():
    G = sp.csr_matrix(np.array([[1.0, -0.5], [0.2, 1.0]]))
    with pytest.raises(ValueError, match="negative"):
        td.facility_location(G, 1)
    with pytest.raises(ValueError, match="not finite"):
        td.facility_location(np.array([[1.0, np.nan], [0.0, 1.0]]), 1)
    with pytest.raises(ValueError, match="n=3 exceeds"):
        td.facility_location(np.eye(2), 3)
    with pytest.raises(TypeError, match=r"scipy\.sparse"):
        td.facility_location([[1.0]], 1)


# ---- threshold and random -------------------------------------------------------------------


def test_threshold_filter_matches_reference(rng):
    X = rng.standard_normal((900, 12)).astype(np.float32)
    X[50:60] = X[3]
    order = rng.permutation(900)
    for tau in (0.2, 0.5, 0.9):
        ref = ref_threshold(X, 10**9, tau, order)
        n = min(len(ref), 300)
        res = td.threshold_filter(X, n, tau, order=order)
        assert res.indices.tolist() == ref[:n]
    with pytest.raises(ValueError, match=r"kept only .* larger tau"):
        td.threshold_filter(X, 900, 0.2, order=order)
    with pytest.raises(ValueError, match="repeats"):
        td.threshold_filter(X, 2, 0.5, order=[1, 1])


def test_random_select():
    a = td.random_select(100, 10, seed=1)
    assert a.indices.dtype == np.int64 and np.unique(a.indices).size == 10
    np.testing.assert_array_equal(a.indices, td.random_select(100, 10, seed=1).indices)
    with pytest.raises(ValueError, match="n=11 exceeds"):
        td.random_select(10, 11)
