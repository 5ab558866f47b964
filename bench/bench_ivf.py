"""Benchmark of the approximate kNN graph (tritondiv IVF) against faiss IVF and HNSW.

What runs (cosine, k = 20, self excluded, every row is a query):

* tritondiv ``ivf_topk`` (the search behind ``knn_graph(method="ivf")``) for several
  ``nprobe`` at one ``n_lists``; the quantizer training is timed;
* faiss ``IndexIVFFlat`` (inner product on normalized rows) with the same ``n_lists``,
  trained on the same number of rows and k-means iterations, for several ``nprobe``;
  time = train + add (once) + the search at that ``nprobe``;
* faiss ``IndexHNSWFlat`` (M = 32, efConstruction 40) for several ``efSearch``; add +
  search timed;
* optionally exact ``tritondiv.topk`` (``--exact``), for the crossover of ``method="auto"``.

Recall@k is tie-aware, on a seeded sample of query rows: a returned neighbour is a hit when
its cosine similarity reaches the exact k-th similarity of that row (float32 numpy
reference against all rows). The real embeddings hold large groups of near-duplicate rows,
among which "the" exact ids are only a tie-break.

Data: the real response embeddings (78,806 × 384), or ``--tile T`` copies of them with
Gaussian noise (``--noise`` per coordinate, rows renormalized) for a larger synthetic set.

Usage: ``python -P bench/bench_ivf.py [--n N] [--tile T] [--nprobe 8,16,32] [--exact]``.
Prints one JSON object per measurement and a markdown table at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from typing import Any

import numpy as np

EMB = os.environ.get("TRITONDIV_EMBEDDINGS", "../shared/data/embeddings/minilm_response.f16.npy")


def load(n: int | None, tile: int, noise: float, seed: int) -> np.ndarray:
    x = np.load(EMB).astype(np.float32)
    if tile > 1:
        rng = np.random.default_rng(seed)
        parts = [x]
        for _ in range(tile - 1):
            y = x + rng.standard_normal(x.shape, dtype=np.float32) * noise
            parts.append(y)
        x = np.concatenate(parts)
    if n is not None:
        x = x[:n]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x)


def reference(x: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Exact k-th similarity of each sampled row (self excluded)."""
    kth = np.empty(rows.size, dtype=np.float64)
    for s in range(0, rows.size, 256):
        r = rows[s : s + 256]
        sim = x[r] @ x.T
        sim[np.arange(r.size), r] = -np.inf
        kth[s : s + 256] = -np.partition(-sim, k - 1, axis=1)[:, k - 1]
    return kth


def recall(x: np.ndarray, rows: np.ndarray, kth: np.ndarray, idx: np.ndarray) -> float:
    got = np.einsum("ij,ikj->ik", x[rows], x[idx[rows]])
    ok = (got >= kth[:, None] - 1e-5) & (idx[rows] != rows[:, None]) & (idx[rows] >= 0)
    return float(ok.sum()) / ok.size


def drop_self(ids: np.ndarray, k: int) -> np.ndarray:
    """k ids per row from a (k + 1)-search, the row itself removed (or the last one)."""
    n = ids.shape[0]
    out = np.empty((n, k), dtype=np.int64)
    for i in range(n):
        r = ids[i]
        r = r[r != i]
        out[i] = r[:k] if r.size >= k else np.pad(r, (0, k - r.size), constant_values=-1)
    return out


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def emit(rows: list[dict[str, Any]], row: dict[str, Any]) -> None:
    row["uptime"] = uptime()
    rows.append(row)
    print(json.dumps(row), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=None, help="first N rows (default: all)")
    ap.add_argument("--tile", type=int, default=1, help="copies of the real set (synthetic)")
    ap.add_argument("--noise", type=float, default=0.01, help="noise per coordinate (tiles)")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--n-lists", type=int, default=None, help="default: tritondiv's rule")
    ap.add_argument("--nprobe", default="8,16,32,64", help="tritondiv nprobe values")
    ap.add_argument("--faiss-nprobe", default="4,8,16,32", help="faiss IVF nprobe values")
    ap.add_argument("--ef", default="", help="faiss HNSW efSearch values (empty: skip HNSW)")
    ap.add_argument("--queries", type=int, default=2000, help="rows the recall is measured on")
    ap.add_argument("--exact", action="store_true", help="also time exact tritondiv.topk")
    ap.add_argument("--skip-faiss", action="store_true")
    args = ap.parse_args()

    from tritondiv.kernels import topk
    from tritondiv.kernels.ivf import TRAIN_ITERS, default_n_lists, ivf_topk, train_sample_size

    x = load(args.n, args.tile, args.noise, 0)
    n, d = x.shape
    k = args.k
    L = args.n_lists or default_n_lists(n)
    rows_q = np.sort(np.random.default_rng(1).choice(n, size=min(args.queries, n), replace=False))
    kth = reference(x, rows_q, k)
    out: list[dict[str, Any]] = []
    base = {"n": n, "d": d, "k": k, "n_lists": L}

    if args.exact:
        t = time.perf_counter()
        _, ei = topk(x, None, k, device="cpu")
        emit(
            out,
            {
                **base,
                "tool": "tritondiv exact topk",
                "time": time.perf_counter() - t,
                "recall": recall(x, rows_q, kth, ei),
            },
        )

    for p in [int(v) for v in args.nprobe.split(",") if v]:
        t = time.perf_counter()
        _, idx, info = ivf_topk(x, k, "cosine", n_lists=L, nprobe=p, device="cpu")
        emit(
            out,
            {
                **base,
                "tool": "tritondiv ivf",
                "nprobe": p,
                "time": time.perf_counter() - t,
                "recall": recall(x, rows_q, kth, idx),
                "scanned": info.candidates / (n * (n - 1)),
                "phases_s": [round(v, 2) for v in info.seconds],
            },
        )

    if args.skip_faiss:
        return table(out)
    import faiss

    m = train_sample_size(n, L)
    fps = [int(v) for v in args.faiss_nprobe.split(",") if v]
    if fps:
        t = time.perf_counter()
        q = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(q, d, L, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = TRAIN_ITERS
        index.cp.max_points_per_centroid = max(1, m // L)
        sample = x[np.sort(np.random.default_rng(0).choice(n, size=m, replace=False))]
        index.train(sample)
        t_train = time.perf_counter() - t
        index.add(x)
        build = time.perf_counter() - t
        list_sizes = np.array([index.invlists.list_size(i) for i in range(L)], dtype=np.int64)
    for p in fps:
        index.nprobe = p
        t = time.perf_counter()
        _, fi = index.search(x, k + 1)
        search = time.perf_counter() - t
        ids = drop_self(fi, k)
        _, probed = index.quantizer.search(x, p)
        scanned = float(list_sizes[probed].sum()) / (n * (n - 1))
        emit(
            out,
            {
                **base,
                "tool": "faiss IndexIVFFlat",
                "scanned": scanned,
                "nprobe": p,
                "time": build + search,
                "train_s": round(t_train, 2),
                "add_s": round(build - t_train, 2),
                "search_s": round(search, 2),
                "recall": recall(x, rows_q, kth, ids),
            },
        )

    efs = [int(v) for v in args.ef.split(",") if v]
    if efs:
        t = time.perf_counter()
        h = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        h.hnsw.efConstruction = 40
        h.add(x)
        build = time.perf_counter() - t
        for ef in efs:
            h.hnsw.efSearch = ef
            t = time.perf_counter()
            _, fi = h.search(x, k + 1)
            ids = drop_self(fi, k)
            s = time.perf_counter() - t
            emit(
                out,
                {
                    **base,
                    "tool": "faiss IndexHNSWFlat M32",
                    "efSearch": ef,
                    "time": build + s,
                    "build": build,
                    "recall": recall(x, rows_q, kth, ids),
                },
            )
    table(out)


def table(rows: list[dict[str, Any]]) -> None:
    print("\n| tool | N | n_lists | nprobe / efSearch | time s | recall@k | scanned |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        knob = r.get("nprobe", r.get("efSearch", ""))
        sc = f"{r['scanned']:.3f}" if "scanned" in r else ""
        print(
            f"| {r['tool']} | {r['n']:,} | {r['n_lists']} | {knob} | {r['time']:.2f} | "
            f"{r['recall']:.4f} | {sc} |"
        )


if __name__ == "__main__":
    main()
