"""Token statistics: tritondiv (C++/OpenMP) against the fastest numpy formulation of the same
outputs and against collections.Counter, side by side in one run.

Outputs compared: occurrence counts and document frequency per token id, lengths and
distinct ids per sample, the mid band (lo=10, hi=500) and the sample -> mid-band-type
incidence, distinct-1/2 over the whole set, entropy. Every engine's outputs are checked
equal to tritondiv's before any time is reported.

Shapes: (a) the tokenized real pool of ../shared/data (every file, instruction and
response, all-MiniLM-L6-v2 tokenizer), (b) a synthetic Zipf(1.1) pool of 1,000,000
samples x 256 tokens over a 32,000-token vocabulary (ranks mapped to ids by a seeded
permutation). Also the machine's memory bandwidth (a warm 1 GiB copy) against the
counting pass.

    .venv/bin/python -P bench/bench_token_stats.py            # full run, writes RESULTS.md
    .venv/bin/python -P bench/bench_token_stats.py --samples 100000 --no-write
    .venv/bin/python -P bench/bench_token_stats.py --quick    # smoke run, a few seconds
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

import tritondiv
from tritondiv import _core
from tritondiv.stats import band_incidence, token_stats
from tritondiv.tokens import TokenCSR

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    POOL_FILES,
    SHARED,
    LoadProbe,
    add_common_arguments,
    median_time,
    write_section,
)

LO, HI = 10, 500


# ---- the three engines: each returns the same tuple of outputs --------------------------


def run_tritondiv(tok: TokenCSR):
    s = token_stats(tok, lo=LO, hi=HI, ns=(1, 2))
    inc = s.incidence
    return {
        "n_mid": s.n_mid,
        "inc_offsets": inc.offsets,
        "inc_types": inc.types,
        "band": inc.labels,
        "distinct_1": s.distinct[1],
        "distinct_2": s.distinct[2],
        "entropy": s.entropy_nats,
    }


def run_tritondiv_counts(tok: TokenCSR):
    return _core.token_counts(tok.offsets, tok.ids, tok.vocab_size)


def run_numpy(tok: TokenCSR, rectangular: bool):
    """The fastest numpy formulation we found: sort each sample's ids (a row-wise sort for
    equal-length samples, one sort of (sample, id) keys for ragged ones), then diffs;
    bigrams by one sort of int64 pair codes + diff (np.unique is much slower here)."""
    ids, off, V = tok.ids, tok.offsets, tok.vocab_size
    n, nnz = tok.n_samples, tok.n_tokens
    counts = np.bincount(ids, minlength=V)
    lengths = np.diff(off)
    if rectangular:
        L = int(lengths[0])
        s = np.sort(ids.reshape(n, L), axis=1)
        first = np.ones_like(s, dtype=bool)
        np.not_equal(s[:, 1:], s[:, :-1], out=first[:, 1:])
        sorted_ids, first = s.ravel(), first.ravel()
    else:
        row = np.repeat(np.arange(n, dtype=np.int64), lengths)
        keys = row * V + ids
        keys.sort()
        sorted_ids = (keys % V).astype(np.int32)
        first = np.ones(nnz, dtype=bool)
        np.not_equal(keys[1:], keys[:-1], out=first[1:])
        del keys
    firsts = sorted_ids[first]
    df = np.bincount(firsts, minlength=V)
    # distinct per row: first-occurrence flags summed per row
    if rectangular:
        distinct = first.reshape(n, -1).sum(axis=1)
    else:
        csum = np.concatenate(([0], np.cumsum(first, dtype=np.int64)))
        distinct = csum[off[1:]] - csum[off[:-1]]
        del csum
    mid = (counts >= LO) & (counts <= HI)
    band = np.flatnonzero(mid).astype(np.int32)
    index = np.full(V, -1, dtype=np.int32)
    index[band] = np.arange(band.size, dtype=np.int32)
    keep = first & mid[sorted_ids]
    types = index[sorted_ids[keep]]
    if rectangular:
        inc_offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(keep.reshape(n, -1).sum(axis=1), out=inc_offsets[1:])
    else:
        inc_offsets = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))[off]
    del keep, first, sorted_ids
    # bigrams within samples
    if rectangular:
        m = ids.reshape(n, -1)
        codes = (m[:, :-1].astype(np.int64) * V + m[:, 1:]).ravel()
    else:
        row_of = np.repeat(np.arange(n, dtype=np.int64), lengths)
        same = row_of[1:] == row_of[:-1]
        codes = ids[:-1][same].astype(np.int64) * V + ids[1:][same]
    total2 = codes.size
    codes.sort()
    d2 = int(codes.size and 1 + np.count_nonzero(codes[1:] != codes[:-1]))
    used = counts[counts > 0]
    p = used / nnz if nnz else used.astype(np.float64)
    return {
        "n_mid": int(band.size),
        "inc_offsets": inc_offsets,
        "inc_types": types,
        "band": band,
        "distinct_1": used.size / nnz,
        "distinct_2": d2 / total2,
        "entropy": float(-(p * np.log(p)).sum()),
        "_counts": counts,
        "_df": df,
        "_distinct": distinct,
    }


def run_counter(tok: TokenCSR, n_rows: int):
    """collections.Counter / set formulation on the first n_rows samples."""
    rows = [tok.row(i).tolist() for i in range(n_rows)]
    t = time.perf_counter()
    counts = Counter()
    df = Counter()
    bigrams = set()
    for r in rows:
        counts.update(r)
        df.update(set(r))
        bigrams.update(itertools.pairwise(r))
    band = sorted(t for t, c in counts.items() if LO <= c <= HI)
    index = {t: i for i, t in enumerate(band)}
    inc = [sorted({index[t] for t in r if t in index}) for r in rows]
    total = sum(counts.values())
    ent = -sum(c / total * math.log(c / total) for c in counts.values()) if total else 0.0
    elapsed = time.perf_counter() - t
    return elapsed, (counts, df, len(bigrams), inc, ent)


def check_same(a: dict, b: dict, what: str) -> None:
    for k in ("n_mid", "inc_offsets", "inc_types", "band"):
        if not np.array_equal(np.asarray(a[k]), np.asarray(b[k])):
            raise AssertionError(f"{what}: {k} differs")
    for k in ("distinct_1", "distinct_2", "entropy"):
        if not math.isclose(a[k], b[k], rel_tol=1e-9):
            raise AssertionError(f"{what}: {k} differs ({a[k]} vs {b[k]})")


# ---- inputs ---------------------------------------------------------------------------


def zipf_pool(n: int, length: int, vocab: int, seed: int = 0) -> TokenCSR:
    rng = np.random.default_rng(seed)
    p = np.arange(1, vocab + 1, dtype=np.float64) ** -1.1
    cdf = np.cumsum(p / p.sum())
    ids = np.empty(n * length, dtype=np.int32)
    perm = rng.permutation(vocab).astype(np.int32)
    step = 1 << 24
    for s in range(0, ids.size, step):
        u = rng.random(min(step, ids.size - s))
        ids[s : s + u.size] = perm[np.minimum(np.searchsorted(cdf, u), vocab - 1)]
    off = np.arange(0, n * length + 1, length, dtype=np.int64)
    return TokenCSR(off, ids, vocab)


def real_pool(component: str) -> TokenCSR | None:
    if not SHARED.is_dir():
        return None
    from tritondiv.pool import load_pool
    from tritondiv.tokens import tokenize_pool

    pool = load_pool([SHARED / f for f in POOL_FILES], allow_empty=True)
    return tokenize_pool(pool, component, progress=True)


def memory_bandwidth(nbytes: int = 1 << 30, repeats: int = 5) -> float:
    """Warm copy of a 1 GiB array; returns GB/s counting the bytes read (the copy also writes
    as many)."""
    src = np.ones(nbytes // 8, dtype=np.int64)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # first touch outside the timing
    return nbytes / median_time(lambda: np.copyto(dst, src), repeats).wall / 1e9


# ---- main -----------------------------------------------------------------------------


def bench_case(
    name: str, tok: TokenCSR, rectangular: bool, repeats: int, counter_rows: int, lines: list
):
    print(
        f"\n== {name}: {tok.n_samples:,} samples, {tok.n_tokens:,} tokens, vocab {tok.vocab_size:,}",
        flush=True,
    )
    run_tritondiv(tok)  # warm-up (first touch of the output buffers)
    t_td, c_td, out_td = median_time(lambda: run_tritondiv(tok), repeats)
    t_cnt, c_cnt, (counts, df, _lengths, distinct) = median_time(
        lambda: run_tritondiv_counts(tok), repeats
    )
    t_np, c_np, out_np = median_time(lambda: run_numpy(tok, rectangular), max(1, repeats // 2))
    check_same(out_td, out_np, f"{name}: numpy")
    np.testing.assert_array_equal(out_np["_counts"], counts)
    np.testing.assert_array_equal(out_np["_df"], df)
    np.testing.assert_array_equal(out_np["_distinct"], distinct)
    rows = min(counter_rows, tok.n_samples)
    t_ct, (c_counts, c_df, c_d2, c_inc, _ent) = run_counter(tok, rows)
    sub = TokenCSR(tok.offsets[: rows + 1], tok.ids[: tok.offsets[rows]], tok.vocab_size)
    sub_counts, sub_df, *_ = run_tritondiv_counts(sub)
    assert (
        all(sub_counts[t] == c for t, c in c_counts.items())
        and sum(c_counts.values()) == sub.n_tokens
    )
    assert all(sub_df[t] == c for t, c in c_df.items())
    assert c_d2 == _core.distinct_ngrams(sub.offsets, sub.ids, sub.vocab_size, 2)[0]
    sub_inc = band_incidence(sub, LO, HI, counts=sub_counts)
    assert all(sub_inc.row(i).tolist() == c_inc[i] for i in range(rows))
    scale = tok.n_tokens / max(sub.n_tokens, 1)
    t_ct_full = t_ct * scale
    gb = tok.ids.nbytes / 1e9
    print(f"tritondiv token_stats (all outputs)   {t_td:8.3f} s  (CPU {c_td:.3f} s, all threads)")
    print(
        f"  of which the counting pass          {t_cnt:8.3f} s  (CPU {c_cnt:.3f} s; {gb / t_cnt:.1f} GB/s of ids read)"
    )
    print(
        f"numpy (fastest formulation)           {t_np:8.3f} s  (CPU {c_np:.3f} s; {t_np / t_td:.1f}x tritondiv)"
    )
    extra = f" (measured on {rows:,} samples x{scale:.1f})" if rows < tok.n_samples else ""
    print(
        f"collections.Counter                   {t_ct_full:8.3f} s  ({t_ct_full / t_td:.1f}x){extra}"
    )
    lines.append(
        f"| {name} | {tok.n_samples:,} x {tok.n_tokens / max(tok.n_samples, 1):.0f} avg "
        f"({tok.n_tokens / 1e6:.1f}M tokens) | {t_td:.3f} (CPU {c_td:.2f}) | {t_cnt:.3f} (CPU {c_cnt:.2f}) | "
        f"{t_np:.2f} ({t_np / t_td:.1f}x) | "
        f"{t_ct_full:.1f} ({t_ct_full / t_td:.0f}x){'*' if extra else ''} |"
    )
    return t_td, t_cnt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=32_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--counter-rows", type=int, default=20_000)
    ap.add_argument("--no-real", action="store_true")
    add_common_arguments(ap)
    args = ap.parse_args()
    if args.quick:
        args.samples, args.length, args.repeats = min(args.samples, 20_000), 64, 1
        args.counter_rows, args.no_real, args.no_write = 2_000, True, True
    load = LoadProbe()
    print(
        f"threads: {tritondiv.num_threads()} (OpenMP {tritondiv.openmp_enabled()}); numpy is single-threaded"
    )
    lines = [
        "| pool | samples x tokens | tritondiv all, wall s (CPU s, both threads) | tritondiv counting pass, wall s (CPU s) | numpy, wall s (ratio) | Counter, wall s (ratio) |",
        "|---|---|---|---|---|---|",
    ]
    if not args.no_real and SHARED.is_dir():
        for comp in ("instruction", "response"):
            tok = real_pool(comp)
            if tok is not None:
                bench_case(
                    f"real {comp} (../shared/data, all 6 files)",
                    tok,
                    False,
                    args.repeats,
                    10**9,
                    lines,
                )
    print("\ngenerating the synthetic Zipf(1.1) pool ...", flush=True)
    tok = zipf_pool(args.samples, args.length, args.vocab)
    _, t_cnt = bench_case(
        f"synthetic Zipf(1.1), vocab {args.vocab:,}",
        tok,
        True,
        args.repeats,
        args.counter_rows,
        lines,
    )
    bw = memory_bandwidth(1 << 26 if args.quick else 1 << 30)
    gb = tok.ids.nbytes / 1e9
    print(f"\nmemory bandwidth (warm copy): {bw:.1f} GB/s read (+ as much written)")
    print(
        f"counting pass reads ids at {gb / t_cnt:.1f} GB/s = {gb / t_cnt / bw:.0%} of the copy's read rate"
    )
    print(load.stop().describe())
    if args.no_write:
        return 0
    section = "\n".join(
        [
            f"Synthetic {args.samples:,} x {args.length} over {args.vocab:,} ids, lo={LO}, hi={HI}; "
            f"medians of {args.repeats} runs, numpy of {max(1, args.repeats // 2)}. "
            f"tritondiv on {tritondiv.num_threads()} threads; numpy and Counter single-threaded. "
            "Every engine's outputs (counts, df, distinct per sample, band, incidence, "
            "distinct-1/2, entropy) were checked equal before timing was reported. "
            '"all" = counts + df + lengths + distinct per sample + band + incidence + '
            "distinct-1/2 + entropy (`tritondiv.token_stats`).",
            "",
            *lines,
            "",
            "\\* Counter measured on the first "
            f"{min(args.counter_rows, args.samples):,} samples and scaled by tokens.",
            "",
            f"Memory bandwidth: a warm 1 GiB `np.copyto` reads at {bw:.1f} GB/s (and writes as much); "
            f"the counting pass (counts + df + lengths + distinct per sample) reads the "
            f"{gb:.2f} GB of ids at {gb / t_cnt:.1f} GB/s, {gb / t_cnt / bw:.0%} of that.",
        ]
    )
    write_section("## Token statistics", section, load=load)
    print("wrote the Token statistics section of bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
