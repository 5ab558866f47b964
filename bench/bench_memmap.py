"""Features larger than memory: the memory-mapped token cache against the in-memory CSR,
side by side in one run.

(a) A synthetic CSR of ``--tokens`` int32 ids (default 500,000,000: 2 GB) over a 4,096-id
vocabulary is streamed into the cache format (:class:`tritondiv.tokens.TokenWriter`). Two
child processes then compute ``token_stats`` (counts, df, band, incidence, distinct-1/2,
entropy) on it:

* *memmap*: ``open_token_entry`` (read-only ``np.load(mmap_mode="r")``), under an
  ``RLIMIT_DATA`` of the child's own size after its imports plus ``--limit-mib`` (default
  512 MiB, a quarter of the ids): it cannot allocate the ids (``np.load`` without mmap is
  checked to fail there), so the run shows the statistics need no copy of them;
* *in memory*: ``np.load`` of both arrays, no limit.

Each child reports its median wall time over ``--repeats``, ``VmHWM`` (peak resident
memory, *including* the mapped file's pages that were read: they are page cache, dropped
under memory pressure, not the process's own memory) and the peak of ``RssAnon`` (its own,
anonymous memory, sampled every 5 ms). Both children check their statistics equal.

(b) Tokenization of a real pool (the shared T0 file's responses, SmolLM2 tokenizer):
``tokenize_pool`` into the memory-mapped cache against ``tokenize`` into memory
(``cache=False``), medians of ``--repeats``, and ``token_stats`` on each result.

    .venv/bin/python -P bench/bench_memmap.py              # full run, writes RESULTS.md
    .venv/bin/python -P bench/bench_memmap.py --quick      # smoke run, a few seconds
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    OUT,
    SHARED,
    LoadProbe,
    add_common_arguments,
    median_time,
    write_section,
)

VOCAB = 4096

_CHILD = r"""
import json, resource, statistics, sys, threading, time
import numpy as np
from tritondiv.stats import token_stats
from tritondiv.tokens import TokenCSR, open_token_entry

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0

peak_anon = [0]
stop = threading.Event()
def sample():
    while not stop.is_set():
        peak_anon[0] = max(peak_anon[0], status("RssAnon"))
        time.sleep(0.005)

entry, mode, limit_mib, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
token_stats(TokenCSR.from_lists([[1, 2, 3], [2]], 8), lo=1, hi=5)  # start the core's threads
threading.Thread(target=sample, daemon=True).start()
refused = None
t0 = time.perf_counter()
if mode == "memmap":
    limit = status("VmData") + limit_mib * 2**20
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    try:
        np.load(entry + "/ids.npy")
        refused = False
    except MemoryError:
        refused = True
    csr = open_token_entry(entry)
else:
    meta = json.load(open(entry + "/meta.json"))
    csr = TokenCSR(np.load(entry + "/offsets.npy"), np.load(entry + "/ids.npy"), meta["vocab_size"])
t_open = time.perf_counter() - t0
walls = []
for _ in range(repeats):
    w = time.perf_counter()
    st = token_stats(csr, lo=10, hi=500, ns=(1, 2))
    walls.append(time.perf_counter() - w)
stop.set()
print(json.dumps({
    "open_s": t_open, "stats_s": statistics.median(walls), "hwm": status("VmHWM"),
    "anon_peak": max(peak_anon[0], status("RssAnon")), "rss_file": status("RssFile"),
    "refused": refused, "stats": st.to_dict(),
}))
"""


_EMBED_CHILD = r"""
import json, sys, threading, time
import numpy as np

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0

from tritondiv.features.embed import _load_precomputed
from tritondiv.kernels import kmeans
path, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
kmeans(np.eye(8, dtype=np.float32), 2, device="cpu")  # imports, threads
peak = [0]
stop = threading.Event()
def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], status("RssAnon"))
        time.sleep(0.005)
base = status("RssAnon")
threading.Thread(target=sample, daemon=True).start()
t0 = time.perf_counter()
if mode == "memmap":
    X = _load_precomputed(path, n)  # the tritondiv path: mapped, checked block-wise
else:  # what it did before: a normalized float32 copy in memory
    X = np.array(np.load(path, mmap_mode="r"), dtype=np.float32, order="C", copy=True)
    assert np.isfinite(X).all()
    X /= np.linalg.norm(X, axis=1, keepdims=True)
t_load = time.perf_counter() - t0
t0 = time.perf_counter()
km = kmeans(X, 64, device="cpu", iters=5, seed=0)
t_km = time.perf_counter() - t0
stop.set()
print(json.dumps({"load_s": t_load, "kmeans_s": t_km, "anon_peak": max(peak[0], status("RssAnon")) - base,
                  "mapped": isinstance(X, np.memmap), "labels": np.bincount(km.labels, minlength=64).tolist()}))
"""


def bench_embeddings(n: int, d: int) -> list[str]:
    """A normalized float32 ``.npy`` of ``n x d`` through the precomputed-embeddings path
    and k-means, mapped (now) against the normalized copy (before), in two children."""
    rng = np.random.default_rng(0)
    folder = Path(tempfile.mkdtemp(prefix="memmap-embed-", dir=OUT))
    path = folder / "emb.npy"
    try:
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
        for s in range(0, n, 1 << 16):
            blk = rng.standard_normal((min(1 << 16, n - s), d)).astype(np.float32)
            out[s : s + blk.shape[0]] = blk / np.linalg.norm(blk, axis=1, keepdims=True)
        out.flush()
        del out
        res = {}
        for mode in ("memmap", "copy"):
            r = subprocess.run(
                [sys.executable, "-c", _EMBED_CHILD, str(path), mode, str(n)],
                cwd="/",
                capture_output=True,
                text=True,
            )
            if r.returncode != 0:
                raise SystemExit(f"embed {mode} child failed:\n{r.stderr[-3000:]}")
            res[mode] = json.loads(r.stdout)
            print(mode, {k: v for k, v in res[mode].items() if k != "labels"}, flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    size = n * d * 4
    mib = 2**20
    same = res["memmap"]["labels"] == res["copy"]["labels"]
    m, c = res["memmap"], res["copy"]
    return [
        f"A normalized float32 `.npy` of {n:,} x {d} ({size / mib:.0f} MiB) given as "
        "precomputed embeddings, then spherical k-means (K=64, 5 iterations), each path in "
        f"its own child process; cluster sizes equal: {same}.",
        "",
        "| path | load s | k-means s | private memory added (peak RssAnon) MiB | mapped |",
        "|---|---|---|---|---|",
        f"| now: `embed_pool(precomputed=...)` (mmap, block-wise checks) | {m['load_s']:.2f} | "
        f"{m['kmeans_s']:.2f} | {m['anon_peak'] / mib:.0f} | {m['mapped']} |",
        f"| before: the old loader's normalized float32 copy (with today's kernels) | {c['load_s']:.2f} | {c['kmeans_s']:.2f} | "
        f"{c['anon_peak'] / mib:.0f} | {c['mapped']} |",
    ]


def write_synthetic(entry: Path, n_tokens: int, seed: int = 0) -> float:
    """Stream ``n_tokens`` random ids (texts of 0..399 tokens) into a cache entry; seconds."""
    from tritondiv.tokens import TokenWriter

    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    done = 0
    with TokenWriter(entry) as w:
        while done < n_tokens:
            lengths = rng.integers(0, 400, size=1 << 16)
            ends = np.minimum(np.cumsum(lengths), n_tokens - done)
            lengths = np.diff(ends, prepend=0)
            total = int(ends[-1])
            w.append(lengths, rng.integers(0, VOCAB, size=total, dtype=np.int32))
            done += total
        w.finish(VOCAB)
    return time.perf_counter() - t0


def run_child(entry: Path, mode: str, limit_mib: int, repeats: int) -> dict:
    env = dict(os.environ)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(entry), mode, str(limit_mib), str(repeats)],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"{mode} child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout)


def interleaved(entry: Path, repeats: int) -> tuple[float, float]:
    """Median ``token_stats`` seconds of the mapped and the in-memory CSR, runs alternating."""
    import statistics

    from tritondiv.stats import token_stats
    from tritondiv.tokens import TokenCSR, open_token_entry

    a = open_token_entry(entry)
    b = TokenCSR(np.array(a.offsets), np.array(a.ids), a.vocab_size)
    times: dict[str, list[float]] = {"map": [], "mem": []}
    for i in range(max(repeats, 3) + 1):
        for name, csr in (("map", a), ("mem", b)):
            t0 = time.perf_counter()
            token_stats(csr, lo=10, hi=500, ns=(1, 2))
            if i:  # the first round is a warm-up
                times[name].append(time.perf_counter() - t0)
    return statistics.median(times["map"]), statistics.median(times["mem"])


def real_tokenize(repeats: int, limit: int | None) -> list[str]:
    from tritondiv.pool import load_pool
    from tritondiv.stats import token_stats
    from tritondiv.tokens import load_tokenizer, tokenize, tokenize_pool

    path = SHARED / "t0_50k.jsonl.gz"
    if not path.is_file():
        return [f"(b) skipped: {path} is missing"]
    pool = load_pool(path, limit=limit, allow_empty=True)
    tok = load_tokenizer()
    caches: list[str] = []

    def mapped():  # type: ignore[no-untyped-def]
        caches.append(tempfile.mkdtemp(prefix="tritondiv-bench-cache-", dir=OUT))
        os.environ["TRITONDIV_CACHE"] = caches[-1]
        return tokenize_pool(pool, "response", tok, progress=False)

    def in_memory():  # type: ignore[no-untyped-def]
        return tokenize(pool.response, tok, progress=False)

    t_map = median_time(mapped, repeats, warmup=1)
    t_mem = median_time(in_memory, repeats, warmup=1)
    a, b = t_map.out, t_mem.out
    assert np.array_equal(a.offsets, b.offsets) and np.array_equal(a.ids, b.ids)
    s_map = median_time(lambda: token_stats(a, lo=10, hi=500), max(repeats, 3), warmup=1)
    s_mem = median_time(lambda: token_stats(b, lo=10, hi=500), max(repeats, 3), warmup=1)
    assert s_map.out.to_dict() == s_mem.out.to_dict()
    for c in caches:
        shutil.rmtree(c, ignore_errors=True)
    n = len(pool)
    return [
        f"(b) {n:,} real responses (t0_50k, SmolLM2 tokenizer), {a.n_tokens:,} tokens "
        f"({a.ids.nbytes / 1e6:.0f} MB of ids); medians of {repeats} (statistics of "
        f"{max(repeats, 3)}); equal CSR and statistics checked:",
        "",
        "| step | memmap cache, wall s | in memory, wall s | ratio memmap / memory |",
        "|---|---|---|---|",
        f"| tokenize (`tokenize_pool` into the cache vs `tokenize`) | {t_map.wall:.2f} | "
        f"{t_mem.wall:.2f} | {t_map.wall / t_mem.wall:.2f} |",
        f"| `token_stats` | {s_map.wall:.3f} | {s_mem.wall:.3f} | {s_map.wall / s_mem.wall:.2f} |",
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=float, default=5e8, help="synthetic ids (default 5e8)")
    ap.add_argument("--limit-mib", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pool-limit", type=int, default=None, help="real responses (all)")
    ap.add_argument("--keep", action="store_true", help="keep the synthetic entry")
    ap.add_argument("--embed-rows", type=int, default=400_000)
    ap.add_argument(
        "--only", choices=("tokens", "embeddings"), default=None, help="run one part only"
    )
    add_common_arguments(ap)
    args = ap.parse_args()
    if args.quick:
        args.tokens, args.limit_mib, args.repeats = 2e7, 40, 1
        args.pool_limit, args.no_write = 2000, True
    n_tokens = int(args.tokens)
    load = LoadProbe()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.only != "tokens":
        emb = bench_embeddings(20_000 if args.quick else args.embed_rows, 384)
        print("\n".join(emb))
        if not args.no_write:
            write_section(
                "## Features larger than memory (memory-mapped embeddings)",
                "\n".join(emb),
                load=load.stop(),
            )
        if args.only == "embeddings":
            return 0
        load = LoadProbe()
    folder = Path(tempfile.mkdtemp(prefix="memmap-", dir=OUT))
    entry = folder / "entry"
    try:
        t_write = write_synthetic(entry, n_tokens)
        size = os.path.getsize(entry / "ids.npy") + os.path.getsize(entry / "offsets.npy")
        print(f"(a) wrote {size / 1e9:.2f} GB in {t_write:.1f} s", flush=True)
        mm = run_child(entry, "memmap", args.limit_mib, args.repeats)
        print("memmap:", {k: v for k, v in mm.items() if k != "stats"}, flush=True)
        mem = run_child(entry, "memory", args.limit_mib, args.repeats)
        print("memory:", {k: v for k, v in mem.items() if k != "stats"}, flush=True)
        if mm["stats"] != mem["stats"]:
            raise SystemExit("the memmap and in-memory statistics differ")
        inter = interleaved(entry, args.repeats)
        print("interleaved:", inter, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    gib = 2**30
    lines = [
        f"(a) synthetic CSR: {n_tokens:,} int32 ids over {VOCAB:,} ids + offsets = "
        f"{size / gib:.2f} GiB on disk, streamed into the cache format in {t_write:.1f} s "
        f"({size / gib / t_write:.2f} GiB/s); `token_stats(lo=10, hi=500, ns=(1, 2))`, "
        f"median of {args.repeats}, in two child processes; equal statistics checked. The "
        "file was just written, so both read it from the page cache (warm).",
        "",
        "| path | limit on private memory | open s | token_stats s | VmHWM GiB | "
        "peak RssAnon GiB | np.load of the ids |",
        "|---|---|---|---|---|---|---|",
        f"| memmap (`open_token_entry`) | RLIMIT_DATA = own size + {args.limit_mib} MiB | "
        f"{mm['open_s']:.3f} | {mm['stats_s']:.2f} | {mm['hwm'] / gib:.2f} | "
        f"{mm['anon_peak'] / gib:.3f} | "
        f"{'refused (MemoryError)' if mm['refused'] else 'NOT refused'} |",
        f"| in memory (`np.load`) | none | {mem['open_s']:.3f} | {mem['stats_s']:.2f} | "
        f"{mem['hwm'] / gib:.2f} | {mem['anon_peak'] / gib:.3f} | - |",
        "",
        f"Ratio memmap / in memory, token_stats: {mm['stats_s'] / mem['stats_s']:.2f}. "
        "VmHWM counts the mapped pages read (page cache, reclaimable: the memmap child "
        "ends with RssFile "
        f"{mm['rss_file'] / gib:.2f} GiB); its own memory (RssAnon) stays at "
        f"{mm['anon_peak'] / size:.1%} of the CSR.",
        "",
        "The same two CSRs in one process, `token_stats` runs alternating memmap / in "
        f"memory (medians of {max(args.repeats, 3)}, after one untimed run of each: the "
        "separate children above each met a different share of the machine's load): "
        f"memmap {inter[0]:.2f} s, in memory {inter[1]:.2f} s, ratio "
        f"{inter[0] / inter[1]:.2f}.",
        "",
    ]
    print("\n(b) real tokenization ...", flush=True)
    lines += real_tokenize(args.repeats, args.pool_limit)
    print("\n".join(lines))
    print(load.stop().describe())
    if args.no_write:
        return 0
    write_section(
        "## Features larger than memory (memory-mapped tokens)", "\n".join(lines), load=load
    )
    print("wrote the memory-mapped tokens section of bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
