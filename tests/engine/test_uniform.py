"""The uniform sampler (round-robin over the k types of S_k) against a plain-Python reference
of the same rule, with its properties: exact size, even spread, determinism, nested pools."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tritondiv.incidence import Incidence
from tritondiv.select import (
    _uniform_draw,
    prune_types,
    select_types,
    uniform_types,
    uniform_types_ladder,
)

# ---- the reference ----------------------------------------------------------------------


def ref_uniform(inc: Incidence, k: int, n: int, seed: int, pr=None) -> tuple[list[int], list[int]]:
    """The rule in plain Python, one turn at a time, with the same seeded draws.

    Draws from ``default_rng(seed)``, in order: ``permutation(k)`` of ``pr.types(k)`` (the
    round-robin order), ``random(nnz of S_k)`` (one key per (sample, type) entry, samples
    ascending), then, only if the round robin runs dry, ``permutation`` of the untaken
    samples of ``S_k`` (ascending). Returns (indices, drawing type or -1 for the fill).
    """
    pr = pr if pr is not None else prune_types(inc, seed=seed)
    rng = np.random.default_rng(seed)
    order = [int(t) for t in pr.types(k)[rng.permutation(k)]]
    pool = [int(i) for i in pr.pool(k)]
    rows = [[int(t) for t in inc.row(i)] for i in pool]
    keys = rng.random(sum(len(r) for r in rows))
    lists: dict[int, list[tuple[float, int, int]]] = {t: [] for t in order}
    e = 0
    for local, r in enumerate(rows):
        for t in r:
            lists[t].append((float(keys[e]), e, local))
            e += 1
    queue = {t: [s for _, _, s in sorted(v)] for t, v in lists.items()}
    taken: set[int] = set()
    picks: list[int] = []
    drawn: list[int] = []
    ptr = dict.fromkeys(order, 0)
    while len(picks) < n:
        moved = False
        for t in order:
            if len(picks) == n:
                break
            q = queue[t]
            while ptr[t] < len(q) and q[ptr[t]] in taken:
                ptr[t] += 1
            if ptr[t] < len(q):
                picks.append(q[ptr[t]])
                drawn.append(t)
                taken.add(q[ptr[t]])
                ptr[t] += 1
                moved = True
        if not moved:
            break
    if len(picks) < n:
        rest = [s for s in range(len(pool)) if s not in taken]
        perm = rng.permutation(len(rest))
        for i in perm[: n - len(picks)]:
            picks.append(rest[int(i)])
            drawn.append(-1)
    return [pool[s] for s in picks], drawn


def check_even_prefixes(inc: Incidence, pool: np.ndarray, idx: np.ndarray, drawn: np.ndarray):
    """After every prefix of the draw, the types that still have an untaken sample of the
    pool have drawn the same number of samples, give or take one."""
    in_pool = np.zeros(inc.n_samples, dtype=bool)
    in_pool[pool] = True
    left = np.bincount(inc.subset(pool).types, minlength=inc.n_types)  # untaken per type
    credits = np.zeros(inc.n_types, dtype=np.int64)
    kept = np.flatnonzero(left > 0)
    for i, t in zip(idx.tolist(), drawn.tolist(), strict=True):
        if t >= 0:
            credits[t] += 1
        left[inc.row(i)] -= 1
        live = kept[left[kept] > 0]
        if live.size:
            assert credits[live].max() - credits[live].min() <= 1


# ---- hand-made cases --------------------------------------------------------------------

ROWS = [[0], [0], [0], [0], [1], [1], [1], [2], [2], [0, 1], [1, 2], [], [], [0, 2]]


def test_hand_case_matches_reference_and_spreads_evenly():
    inc = Incidence.from_lists(ROWS)
    pr = prune_types(inc, seed=3)
    for k in range(pr.k_max + 1):
        for n in range(int(pr.pool_sizes[k]) + 1):
            res = uniform_types(inc, n, k=k, seed=3, pruning=pr)
            want, _ = ref_uniform(inc, k, n, 3, pr)
            assert res.indices.tolist() == want
            assert len(res) == n and len(set(want)) == n
            assert set(want) <= set(pr.pool(k).tolist())
            assert res.k == k and res.pool_size == int(pr.pool_sizes[k]) and res.level is None
            np.testing.assert_array_equal(
                res.type_counts, np.bincount(inc.subset(res.indices).types, minlength=3)
            )
            assert res.coverage == int(np.count_nonzero(res.type_counts))
            idx, drawn = _uniform_draw(inc, pr, k, n, 3)
            np.testing.assert_array_equal(idx, res.indices)
            check_even_prefixes(inc, pr.pool(k), idx, drawn)


def test_disjoint_types_get_equal_shares():
    # one type per sample (like macro topics): 4 types of supports 10, 8, 6, 20
    labels = [0] * 10 + [1] * 8 + [2] * 6 + [3] * 20
    inc = Incidence.from_lists([[t] for t in labels])
    for n in range(0, 25):  # 24 = 4 types x 6 (the smallest support): nobody runs dry
        res = uniform_types(inc, n, level=1.0, seed=11)
        counts = res.type_counts
        assert counts.sum() == n and counts.max() - counts.min() <= 1
    # past that, the small types are used up and the others keep drawing evenly
    res = uniform_types(inc, 40, level=1.0, seed=11)
    assert res.type_counts.tolist() == [10, 8, 6, 16]
    res = uniform_types(inc, 44, level=1.0, seed=11)
    assert res.type_counts.tolist() == [10, 8, 6, 20]


def test_round_robin_order_and_skip():
    # types 0 and 1 share sample 0: a type whose next sample is taken takes its following one
    inc = Incidence.from_lists([[0, 1], [0], [1], [1]])
    pr = prune_types(inc)
    for seed in range(20):
        idx, drawn = _uniform_draw(inc, pr, 2, 4, seed)
        assert sorted(idx.tolist()) == [0, 1, 2, 3]
        # the first two picks are one per type, in the seeded order, and distinct
        assert sorted(drawn[:2].tolist()) == [0, 1] and idx[0] != idx[1]
        want, want_drawn = ref_uniform(inc, 2, 4, seed, pr)
        assert idx.tolist() == want and drawn.tolist() == want_drawn


def test_repeated_entries_count_once():
    # the plain constructor does not de-duplicate a row: a type listed twice is one type
    rows = [[0, 0], [1], [0, 1, 1], [2, 2], [0]]
    offsets = np.cumsum([0] + [len(r) for r in rows])
    inc = Incidence(offsets, np.array([t for r in rows for t in r], np.int32), 3)
    pr = prune_types(inc)
    for seed in range(30):
        for n in range(6):
            idx, drawn = _uniform_draw(inc, pr, 3, n, seed)
            want, want_drawn = ref_uniform(inc, 3, n, seed, pr)
            assert idx.tolist() == want and drawn.tolist() == want_drawn
            assert len(set(want)) == n


def test_fill_from_samples_without_types():
    inc = Incidence.from_lists([[0], [0], [], [1], [], [], [1, 0]])
    pr = prune_types(inc)
    res = uniform_types(inc, 3, k=0, seed=5, pruning=pr)  # S_0: the samples with no type
    assert sorted(res.indices.tolist()) == [2, 4, 5] and res.coverage == 0
    res = uniform_types(inc, 6, k=2, seed=5, pruning=pr)
    typed = {0, 1, 3, 6}
    assert set(res.indices[:4].tolist()) == typed  # the round robin first, then the fill
    assert set(res.indices[4:].tolist()) <= {2, 4, 5}
    assert res.indices.tolist() == ref_uniform(inc, 2, 6, 5, pr)[0]


def test_determinism_and_seeds():
    rng = np.random.default_rng(0)
    rows = [rng.choice(30, size=rng.integers(0, 4), replace=False).tolist() for _ in range(400)]
    inc = Incidence.from_lists(rows, n_types=30)
    a = uniform_types(inc, 150, level=0.5, seed=7)
    b = uniform_types(inc, 150, level=0.5, seed=7)
    np.testing.assert_array_equal(a.indices, b.indices)
    c = uniform_types(inc, 150, level=0.5, seed=8)
    assert a.indices.tolist() != c.indices.tolist()
    # the pruning pass can be given; with the same seed it is the same draw
    d = uniform_types(inc, 150, level=0.5, seed=7, pruning=prune_types(inc, seed=7))
    np.testing.assert_array_equal(a.indices, d.indices)


def test_levels_nested_pools_like_select_types():
    rng = np.random.default_rng(1)
    rows = [rng.choice(25, size=rng.integers(1, 4), replace=False).tolist() for _ in range(300)]
    inc = Incidence.from_lists(rows, n_types=25)
    levels = (0.0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1.0)
    ladder = uniform_types_ladder(inc, 60, levels, seed=4)
    assert [r.level for r in ladder] == list(levels)
    ks = [r.k for r in ladder]
    assert ks == sorted(ks) and ks[0] == ladder[0].k_min and ks[-1] == ladder[0].k_max
    assert [r.pool_size for r in ladder] == sorted(r.pool_size for r in ladder)
    pr = prune_types(inc, seed=4)
    for p, r in zip(levels, ladder, strict=True):
        g = select_types(inc, 60, p, seed=4)
        assert (r.k, r.k_min, r.k_max, r.pool_size) == (g.k, g.k_min, g.k_max, g.pool_size)
        one = uniform_types(inc, 60, p, seed=4)
        np.testing.assert_array_equal(one.indices, r.indices)
        assert r.method == "uniform" and len(r) == 60
        assert set(r.indices.tolist()) <= set(pr.pool(r.k).tolist())
        assert r.coverage <= r.k


def test_errors():
    inc = Incidence.from_lists(ROWS)
    pr = prune_types(inc)
    with pytest.raises(ValueError, match="exactly one of level"):
        uniform_types(inc, 3)
    with pytest.raises(ValueError, match="exactly one of level"):
        uniform_types(inc, 3, 0.5, k=2)
    with pytest.raises(ValueError, match=r"exceeds \|S_k\|=2 samples at k=0; pass k >= k_min"):
        uniform_types(inc, 3, k=0)
    with pytest.raises(ValueError, match="exceeds the pool of 14"):
        uniform_types(inc, 15, level=1.0)
    with pytest.raises(ValueError, match="exceeds the pool of 14"):
        uniform_types_ladder(inc, 15)
    with pytest.raises(ValueError, match=r"outside \[0, k_max=3\]"):
        uniform_types(inc, 1, k=4)
    with pytest.raises(ValueError, match="level"):
        uniform_types(inc, 1, 1.5)
    with pytest.raises(ValueError, match="level"):
        uniform_types_ladder(inc, 1, [0.0, -0.1])
    with pytest.raises(TypeError, match="k must be an int"):
        uniform_types(inc, 1, k=1.0)
    with pytest.raises(TypeError, match="n must be an int"):
        uniform_types(inc, 1.0, level=0.0)
    with pytest.raises(TypeError, match="expected a PruneResult"):
        uniform_types(inc, 1, level=0.0, pruning="nope")
    other = prune_types(Incidence.from_lists([[0], [1]]))
    with pytest.raises(ValueError, match="2 samples, this one has 14"):
        uniform_types(inc, 1, level=0.0, pruning=other)
    with pytest.raises(TypeError, match="Incidence"):
        uniform_types([[0]], 1, level=0.0)
    assert len(uniform_types(inc, 0, level=0.3, pruning=pr)) == 0


# ---- hypothesis: the implementation is the reference's rule ------------------------------


@st.composite
def incidences(draw):
    n_types = draw(st.integers(1, 7))
    rows = draw(
        st.lists(
            st.lists(st.integers(0, n_types - 1), max_size=4, unique=True), min_size=1, max_size=30
        )
    )
    return Incidence.from_lists(rows, n_types=n_types)


@settings(
    max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(incidences(), st.data(), st.integers(0, 2**32 - 1))
def test_matches_reference(inc, data, seed):
    pr = prune_types(inc, seed=seed)
    k = data.draw(st.integers(0, pr.k_max))
    n = data.draw(st.integers(0, int(pr.pool_sizes[k])))
    idx, drawn = _uniform_draw(inc, pr, k, n, seed)
    want, want_drawn = ref_uniform(inc, k, n, seed, pr)
    assert idx.tolist() == want and drawn.tolist() == want_drawn
    assert idx.dtype == np.int64 and len(set(want)) == n
    check_even_prefixes(inc, pr.pool(k), idx, drawn)
    res = uniform_types(inc, n, k=k, seed=seed, pruning=pr)
    assert res.indices.tolist() == want


@pytest.mark.shared_data
def test_real_labels_spread(shared_data):
    """T0 prompt templates as types (one per sample): equal shares at every level."""
    import gzip
    import json

    templates = []
    with gzip.open(shared_data / "t0_50k.jsonl.gz", "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= 6000:
                break
            templates.append(json.loads(line)["template"])
    names = {t: j for j, t in enumerate(dict.fromkeys(templates))}
    inc = Incidence.from_lists([[names[t]] for t in templates], n_types=len(names))
    for r in uniform_types_ladder(inc, 1500, seed=2):
        assert len(r) == 1500 and len(set(r.indices.tolist())) == 1500
        kept = prune_types(inc, seed=2).types(r.k)
        counts = r.type_counts[kept]
        support = inc.support()[kept]
        # every type draws min(its support, the common share), the share differing by one
        share = counts[counts < support]
        assert share.size == 0 or share.max() - share.min() <= 1
        assert (counts[counts == support] <= (share.max() if share.size else counts.max())).all()


def test_long_lists_match_reference():
    # few types with long lists, most of each list taken by the others: the skips run over
    # many entries (more than one look-ahead window) before an untaken sample
    rng = np.random.default_rng(9)
    rows = [rng.choice(6, size=rng.integers(1, 4), replace=False).tolist() for _ in range(500)]
    # and types that nearly all samples carry: late in the draw their lists are long runs
    # of samples the others took
    rows += [np.flatnonzero(rng.random(6) < 0.95).tolist() for _ in range(400)]
    rows += [[0]] * 3 + [[]] * 4
    inc = Incidence.from_lists(rows, n_types=7)
    pr = prune_types(inc, seed=1)
    for k in (1, 3, pr.k_max):
        for n in (1, 37, int(pr.pool_sizes[k]) // 2, int(pr.pool_sizes[k])):
            for seed in (0, 1):
                idx, drawn = _uniform_draw(inc, pr, k, n, seed)
                want, want_drawn = ref_uniform(inc, k, n, seed, pr)
                assert idx.tolist() == want and drawn.tolist() == want_drawn
                check_even_prefixes(inc, pr.pool(k), idx, drawn)
