"""Token statistics (C++ core through tritondiv.stats) against plain Python references."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tritondiv
from tritondiv import _core
from tritondiv.stats import (
    band_incidence,
    distinct_n,
    distinct_n_per_sample,
    resolve_threshold,
    token_counts,
    token_entropy,
    token_stats,
)
from tritondiv.tokens import TokenCSR

# ---- references: plain Python over lists of lists ---------------------------------------


def ref_counts(rows, vocab):
    c = Counter(t for r in rows for t in r)
    df = Counter(t for r in rows for t in set(r))
    counts = np.array([c[v] for v in range(vocab)], dtype=np.int64)
    dfs = np.array([df[v] for v in range(vocab)], dtype=np.int64)
    return counts, dfs, [len(r) for r in rows], [len(set(r)) for r in rows]


def ref_band(rows, vocab, lo, hi):
    counts, *_ = ref_counts(rows, vocab)
    band = [v for v in range(vocab) if lo <= counts[v] <= hi]
    index = {t: i for i, t in enumerate(band)}
    return band, [sorted({index[t] for t in r if t in index}) for r in rows]


def ngrams(r, n):
    return [tuple(r[i : i + n]) for i in range(len(r) - n + 1)]


def ref_distinct(rows, n):
    grams = [g for r in rows for g in ngrams(r, n)]
    return len(set(grams)), len(grams)


def ref_entropy(rows):
    c = np.array(list(Counter(t for r in rows for t in r).values()), dtype=np.float64)
    if c.size == 0:
        return 0.0
    p = c / c.sum()
    return float(-(p * np.log(p)).sum())


def check_all(rows, vocab, lo=2, hi=4):
    tok = TokenCSR.from_lists(rows, vocab)
    counts, df, lengths, distinct = ref_counts(rows, vocab)
    tc = token_counts(tok)
    np.testing.assert_array_equal(tc.counts, counts)
    np.testing.assert_array_equal(tc.df, df)
    np.testing.assert_array_equal(tc.lengths, lengths)
    np.testing.assert_array_equal(tc.distinct, distinct)
    assert tc.counts.dtype == np.int64 and tc.distinct.dtype == np.int32

    band, inc_rows = ref_band(rows, vocab, lo, hi)
    inc = band_incidence(tok, lo, hi)
    assert inc.n_types == len(band)
    np.testing.assert_array_equal(inc.labels, band)
    assert [inc.row(i).tolist() for i in range(len(rows))] == inc_rows

    for n in (1, 2, 3, 4):
        d, total = ref_distinct(rows, n)
        assert _core.distinct_ngrams(tok.offsets, tok.ids, vocab, n) == (d, total)
        got = distinct_n(tok, n)
        assert (math.isnan(got) and total == 0) or got == pytest.approx(d / total, rel=1e-12)
        per = distinct_n_per_sample(tok, n)
        want = [len(set(ngrams(r, n))) / (len(r) - n + 1) if len(r) >= n else np.nan for r in rows]
        np.testing.assert_allclose(per, np.array(want, dtype=np.float64), rtol=1e-12)
    assert token_entropy(tok) == pytest.approx(ref_entropy(rows), abs=1e-9)
    return tok


# ---- hand-made edge cases ------------------------------------------------------------------


def test_empty_pool():
    tok = check_all([], 10)
    st_ = token_stats(tok)
    assert st_.n_samples == 0 and st_.n_tokens == 0 and st_.vocab_used == 0
    assert math.isnan(st_.distinct[1]) and st_.entropy_nats == 0.0
    assert json.dumps(st_.to_dict())  # NaN -> None, JSON-ready


def test_empty_texts():
    check_all([[], [], []], 5)
    check_all([[], [1, 2, 1], []], 5, lo=1, hi=2)


def test_one_sample():
    check_all([[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]], 10, lo=2, hi=3)


def test_one_token_repeated():
    rows = [[7] * 50, [7] * 3]
    tok = check_all(rows, 8, lo=1, hi=100)
    assert distinct_n(tok, 1) == 1 / 53
    assert distinct_n(tok, 2) == 1 / 51
    assert token_entropy(tok) == 0.0
    assert band_incidence(tok, 1, 100).labels.tolist() == [7]
    assert band_incidence(tok, 54, 100).n_types == 0


def test_zero_bigram_key():
    # the n-gram (0, 0) packs to key 0, which the hash sets keep aside
    check_all([[0, 0, 0, 1, 0, 0], [0, 0]], 2, lo=1, hi=9)


def test_vocab_edge():
    v = 1000
    rows = [[v - 1, 0, v - 1], [v - 1]]
    tok = check_all(rows, v, lo=1, hi=3)
    assert token_counts(tok).counts[v - 1] == 3
    with pytest.raises(ValueError, match=r"ids\[2\] = 1000"):
        _core.token_counts(np.array([0, 3], np.int64), np.array([0, 5, v], dtype=np.int32), v)
    with pytest.raises(ValueError, match=r"ids\[1\] = -1"):
        _core.token_counts(np.array([0, 3], np.int64), np.array([0, -1, 2], dtype=np.int32), v)


@pytest.mark.parametrize(
    "fn",
    [
        lambda o, i, v: _core.token_counts(o, i, v),
        lambda o, i, v: _core.band_incidence(o, i, v, np.ones(v, np.int64), 1, 5),
        lambda o, i, v: _core.distinct_ngrams(o, i, v, 1),
        lambda o, i, v: _core.distinct_ngrams(o, i, v, 2),
        lambda o, i, v: _core.distinct_ngrams(o, i, v, 3),
        lambda o, i, v: _core.distinct_ngrams_per_sample(o, i, v, 2),
    ],
)
def test_out_of_range_ids_every_kernel(fn):
    off = np.array([0, 2, 4], dtype=np.int64)
    with pytest.raises(ValueError, match=r"ids\[3\] = 4"):
        fn(off, np.array([0, 1, 2, 4], dtype=np.int32), 4)


def test_first_bad_position_is_reported_with_threads(rng):
    ids = rng.integers(0, 100, 400_000).astype(np.int32)
    ids[[123_456, 300_001]] = 100
    off = np.arange(0, ids.size + 1, 100, dtype=np.int64)
    for t in (1, 2):
        tritondiv.set_num_threads(t)
        try:
            with pytest.raises(ValueError, match=r"ids\[123456\]"):
                _core.token_counts(off, ids, 100)
        finally:
            tritondiv.set_num_threads(0)


def test_bad_arrays_straight_from_core():
    off = np.array([0, 2, 3], dtype=np.int64)
    ids = np.array([1, 2, 3], dtype=np.int32)
    _core.token_counts(off, ids, 4)
    with pytest.raises(TypeError, match="offsets: expected dtype int64"):
        _core.token_counts(off.astype(np.int32), ids, 4)
    with pytest.raises(TypeError, match="ids: expected dtype int32"):
        _core.token_counts(off, ids.astype(np.int64), 4)
    with pytest.raises(TypeError, match="expected a numpy array"):
        _core.token_counts(off, [1, 2, 3], 4)
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.token_counts(off, np.array([1, 9, 2, 9, 3, 9], dtype=np.int32)[::2], 4)
    with pytest.raises(ValueError, match="1-D"):
        _core.token_counts(off, ids.reshape(1, 3), 4)
    with pytest.raises(ValueError, match="offsets"):
        _core.token_counts(np.array([0, 2, 4], dtype=np.int64), ids, 4)
    with pytest.raises(ValueError, match="offsets"):
        _core.token_counts(np.zeros(0, dtype=np.int64), ids[:0], 4)
    with pytest.raises(TypeError, match="counts: expected dtype int64"):
        _core.band_incidence(off, ids, 4, np.ones(4, np.int32), 1, 2)
    with pytest.raises(ValueError, match="counts must have vocab_size=4"):
        _core.band_incidence(off, ids, 4, np.ones(3, np.int64), 1, 2)
    with pytest.raises(ValueError, match="hi must be >= lo"):
        _core.band_incidence(off, ids, 4, np.ones(4, np.int64), 3, 2)
    with pytest.raises(ValueError, match="n must be 1, 2, 3 or 4"):
        _core.distinct_ngrams(off, ids, 4, 5)
    with pytest.raises(ValueError, match="counts must be >= 0"):
        _core.entropy_nats(np.array([1, -1], dtype=np.int64))
    with pytest.raises(TypeError, match="expected a TokenCSR"):
        token_counts((off, ids))


def test_hash_path_matches_bitmap_path(rng):
    # A small vocabulary takes the bigram bitmap; the same ids under a huge vocabulary take
    # the hash sets. Both are exact for n <= 2.
    rows = [list(rng.integers(0, 30, rng.integers(0, 40))) for _ in range(300)]
    small = TokenCSR.from_lists(rows, 30)
    big = TokenCSR.from_lists(rows, 2_000_000)
    for n in (1, 2, 3, 4):
        assert _core.distinct_ngrams(small.offsets, small.ids, 30, n) == _core.distinct_ngrams(
            big.offsets, big.ids, 2_000_000, n
        )
        assert (
            _core.distinct_ngrams(big.offsets, big.ids, 2_000_000, n)[0] == ref_distinct(rows, n)[0]
        )


def test_ngram_key_is_injective_for_short_grams():
    keys = {_core.ngram_key(np.array([a, b], np.int32)) for a in range(40) for b in range(40)}
    assert len(keys) == 1600
    assert _core.ngram_key(np.array([1, 2, 3], np.int32)) != _core.ngram_key(
        np.array([1, 2, 4], np.int32)
    )


def test_entropy_units():
    tok = TokenCSR.from_lists([[0, 1, 2, 3]], 4)
    assert token_entropy(tok) == pytest.approx(math.log(4))
    assert token_entropy(tok, unit="bits") == pytest.approx(2.0)
    assert token_entropy(np.array([5, 5, 0], dtype=np.int64), unit="bits") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unit"):
        token_entropy(tok, unit="dits")


def test_thresholds():
    assert resolve_threshold(10, 5) == 10
    assert resolve_threshold("500", 5, upper=True) == 500
    assert resolve_threshold("0.001x", 20_000) == 20
    assert resolve_threshold("0.0015x", 1000) == 2  # lo rounds up
    assert resolve_threshold("0.0015x", 1000, upper=True) == 1  # hi rounds down
    assert resolve_threshold("1e-5x", 10) == 1  # lo is at least 1
    for bad in ("ten", "0.1y", "-3", "x"):
        with pytest.raises(ValueError, match="threshold"):
            resolve_threshold(bad, 10)
    with pytest.raises(TypeError):
        resolve_threshold(1.5, 10)
    tok = TokenCSR.from_lists([[1, 1, 2]], 3)
    with pytest.raises(ValueError, match="band is empty"):
        band_incidence(tok, 5, 2)


def test_token_stats_summary():
    rows = [[1, 2, 3, 3], [3, 4], [], [5, 5, 5, 5, 5, 1]]
    tok = TokenCSR.from_lists(rows, 8)
    s = token_stats(tok, lo=2, hi=4, ns=(1, 2, 3))
    counts = ref_counts(rows, 8)[0]
    assert counts.tolist() == [0, 2, 1, 3, 1, 5, 0, 0]
    assert (s.n_below, s.n_mid, s.n_above, s.vocab_used) == (2, 2, 1, 5)
    assert s.mid_tokens == 5 and s.samples_without_types == 1
    assert s.mean_mid_types == pytest.approx((2 + 1 + 0 + 1) / 4)
    assert s.distinct[2] == pytest.approx(ref_distinct(rows, 2)[0] / ref_distinct(rows, 2)[1])
    assert s.mean_length == 3.0 and s.max_length == 6 and s.median_length == 3.0
    assert s.entropy_bits == pytest.approx(s.entropy_nats / math.log(2))
    d = s.to_dict()
    assert d["distinct"] == {
        "distinct_1": s.distinct[1],
        "distinct_2": s.distinct[2],
        "distinct_3": s.distinct[3],
    }
    assert "incidence" not in d
    json.dumps(d)


# ---- properties on random CSR inputs -------------------------------------------------------

rows_strategy = st.lists(st.lists(st.integers(0, 11), max_size=25), max_size=30)


@pytest.mark.slow
@settings(max_examples=80, deadline=None)
@given(rows=rows_strategy, lo=st.integers(1, 6), width=st.integers(0, 8))
def test_property_against_reference(rows, lo, width):
    check_all(rows, 12, lo=lo, hi=lo + width)


@settings(max_examples=40, deadline=None)
@given(rows=rows_strategy)
def test_property_invariants(rows):
    tok = TokenCSR.from_lists(rows, 12)
    tc = token_counts(tok)
    assert tc.counts.sum() == tok.n_tokens
    assert np.all(tc.df <= tc.counts) and tc.df.sum() == tc.distinct.sum()
    # bands partition the used vocabulary; incidence support is at most the df
    inc = band_incidence(tok, 2, 5, counts=tc.counts)
    assert np.array_equal(inc.support(), tc.df[inc.labels])
    # distinct-n counts never exceed the (n-1)-gram ones by more than the row count
    per = [_core.distinct_ngrams(tok.offsets, tok.ids, 12, n)[0] for n in (1, 2, 3, 4)]
    assert all(0 <= p for p in per)


def test_threads_give_identical_results(rng):
    # Zipf ids over ragged rows, large enough for many chunks and both threads.
    lengths = rng.integers(0, 600, 3000)
    ids = np.minimum(rng.zipf(1.3, int(lengths.sum())) - 1, 4999).astype(np.int32)
    off = np.zeros(lengths.size + 1, np.int64)
    np.cumsum(lengths, out=off[1:])
    tok = TokenCSR(off, ids, 5000)
    results = []
    for t in (1, 2):
        tritondiv.set_num_threads(t)
        try:
            tc = token_counts(tok)
            inc = band_incidence(tok, 3, 200, counts=tc.counts)
            d = [_core.distinct_ngrams(off, ids, 5000, n) for n in (1, 2, 3, 4)]
            per = [_core.distinct_ngrams_per_sample(off, ids, 5000, n) for n in (1, 2, 3)]
            results.append((tc, inc, d, per, _core.entropy_nats(tc.counts)))
        finally:
            tritondiv.set_num_threads(0)
    (a, b) = results
    for x, y in zip(a[0].__dict__.values(), b[0].__dict__.values(), strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a[1].offsets, b[1].offsets)
    np.testing.assert_array_equal(a[1].types, b[1].types)
    assert a[2] == b[2] and a[4] == b[4]
    for x, y in zip(a[3], b[3], strict=True):
        np.testing.assert_array_equal(x, y)
    # and against numpy: counts by bincount, bigrams by sort + diff
    np.testing.assert_array_equal(a[0].counts, np.bincount(ids, minlength=5000))
    row = np.repeat(np.arange(lengths.size), lengths)
    same = row[1:] == row[:-1]
    codes = np.sort(ids[:-1][same].astype(np.int64) * 5000 + ids[1:][same])
    n_distinct = int(codes.size and 1 + np.count_nonzero(np.diff(codes)))
    assert a[2][1] == (n_distinct, int(codes.size))


# ---- real data ---------------------------------------------------------------------------


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["gsm8k_train.jsonl.gz", "gpteacher_codegen.json.gz"])
def test_real_data_against_reference(shared_data, name):
    from tritondiv.pool import load_pool
    from tritondiv.tokens import tokenize

    pool = load_pool(shared_data / name, limit=1000)
    tok = tokenize(pool.component("response"), progress=False)
    rows = [tok.row(i).tolist() for i in range(tok.n_samples)]
    check_all(rows, tok.vocab_size, lo=3, hi=40)
    s = token_stats(tok, lo=3, hi=40)
    assert s.n_tokens == sum(len(r) for r in rows) and s.n_mid > 100


# ---- the CLI -----------------------------------------------------------------------------


def test_cli_stats(tmp_path, capsys):
    from tritondiv.cli import main
    from tritondiv.tokens import tokenize

    pool_file = tmp_path / "pool.jsonl"
    samples = [
        {
            "instruction": f"question number {i} about cats",
            "output": f"answer {i % 7} is cats " * (i % 5 + 1),
        }
        for i in range(60)
    ]
    pool_file.write_text("\n".join(json.dumps(s) for s in samples) + "\n")
    out = tmp_path / "out" / "stats.json"
    rc = main(
        [
            "stats",
            str(pool_file),
            "--component",
            "both",
            "--lo",
            "2",
            "--hi",
            "0.5x",
            "--json",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "distinct-2" in text and "instruction" in text and "response" in text
    data = json.loads(out.read_text())
    resp = data["components"]["response"]
    tok = tokenize([s["output"] for s in samples], progress=False)
    want = token_stats(tok, lo=2, hi=30).to_dict()
    assert resp == json.loads(json.dumps(want))
    assert resp["hi"] == 30 and data["pool"]["n_samples"] == 60
    # errors are one line with exit code 2
    assert main(["stats", str(pool_file), "--lo", "ten", "--no-progress"]) == 2
    assert "threshold 'ten'" in capsys.readouterr().err


def test_bigram_workspace_reuse_across_sizes(rng):
    # The bigram bitmap and its scratch buffers are reused between calls of different
    # vocabulary sizes; every call must still start from a clean bitmap.
    def ref(off, ids, vocab):
        rows = [ids[off[i] : off[i + 1]].tolist() for i in range(off.size - 1)]
        return ref_distinct(rows, 2)

    for vocab, n_rows in ((30, 400), (3000, 300), (30, 50), (3000, 20), (7, 3)):
        lengths = rng.integers(0, 60, n_rows)
        off = np.zeros(n_rows + 1, np.int64)
        np.cumsum(lengths, out=off[1:])
        ids = rng.integers(0, vocab, int(off[-1])).astype(np.int32)
        assert _core.distinct_ngrams(off, ids, vocab, 2) == ref(off, ids, vocab)
