"""The pipeline on Ray: 1 vs 2 workers on one machine, per stage, against the local engine.

Pool: ``--samples`` recombined real samples built as bench/bench_pool.py builds its pools
(an instruction of one shared file paired with a response of another, seeded), written as
8 alpaca jsonl shards so the file path is measured too.

Stages timed:

* local engine: ``load_pool`` (all shards), ``tokenize`` of the response, ``token_stats``
  (lo=10, hi=500; distinct-1 and -2);
* Ray, for each worker count (a fresh local session of that many CPUs; tokenizer and
  OpenMP threads pinned to 1 per worker so workers are the only parallelism):
  ``texts_tokenize`` (read shards + tokenize, materialized), ``count`` (per-block counts +
  int64 reduction), ``band`` (band incidence against global counts), ``gather``; then, on
  the first ``--embed-samples`` samples, ``embed`` (Ray Data map_batches of the MiniLM
  embedder) and the two-pass keyphrase ``tag`` stage, against the local
  ``embed_pool``/``tag_pool``;
* selection on ``--embeddings`` rows of the shared response embeddings: k-center (n=200)
  and facility location (n=1000, k=10) on one machine vs two rounds on 4 partitions.

Results are checked equal to the local engine before a time is printed (embeddings: the
largest difference is printed). On one machine this measures Ray's overhead, not a
speed-up: the point is the per-sample cost of each stage, from which a many-machine
estimate is made (written with the figures).

    .venv/bin/python -P bench/bench_ray.py --samples 300000     # 1 and 2 workers
    .venv/bin/python -P bench/bench_ray.py --quick              # 5k samples, smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import OUT, SHARED, LoadProbe, add_common_arguments, write_section  # noqa: E402

LO, HI = 10, 500
SHARDS = 8


def build_pool(n_samples: int, folder: Path, seed: int = 0) -> int:
    """bench_pool.py's pool of ``n_samples`` (cached under bench/out), cut into SHARDS files."""
    import bench_pool

    whole = OUT / "pool" / f"pool_{n_samples}_seed{seed}.jsonl"
    if not whole.is_file():
        bench_pool.build_pool(n_samples, whole, seed)
    lines = whole.read_text(encoding="utf-8").splitlines(keepends=True)
    bounds = np.linspace(0, len(lines), SHARDS + 1).astype(int)
    for s in range(SHARDS):
        (folder / f"part-{s:02d}.jsonl").write_text(
            "".join(lines[bounds[s] : bounds[s + 1]]), encoding="utf-8"
        )
    return len(lines)


def peak_rss_mib() -> float:
    """VmHWM of this process (the driver), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(fn: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def run_local(folder: Path) -> tuple[dict[str, float], Any, Any]:
    import tritondiv as td

    sec: dict[str, float] = {}
    sec["load_pool"], pool = timed(lambda: td.load_pool(folder))
    tok = td.load_tokenizer()
    sec["tokenize"], csr = timed(lambda: td.tokenize(pool.response, tok, progress=False))
    sec["token_stats"], stats = timed(lambda: td.token_stats(csr, lo=LO, hi=HI))
    return sec, td.token_counts(csr), stats


def run_ray(
    folder: Path,
    workers: int,
    repeats: int,
    embed_pool: Any = None,
    reference: tuple[Any, Any] = (None, None),
) -> tuple[dict[str, float], Any]:
    import ray

    from tritondiv.distributed import token_stats_ray

    t = time.perf_counter()
    ray.init(
        num_cpus=workers,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": {"RAYON_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}},
    )
    init = time.perf_counter() - t
    sec: dict[str, float] = {"ray_init": init}
    try:
        for r in range(repeats):
            # the first run also starts the workers and imports tritondiv in them (cold);
            # later runs are warm, the steady state of a long job
            total, res = timed(
                lambda: token_stats_ray(folder, "response", lo=LO, hi=HI, num_blocks=2 * workers)
            )
            label = "cold" if r == 0 else "warm"
            sec[f"{label}_total"] = total
            sec.update({f"{label}_{k}": v for k, v in res.seconds.items()})
        if embed_pool is not None:
            sec.update(_ray_embed_tag(embed_pool, workers, reference))
    finally:
        ray.shutdown()
    return sec, res


def _local_embed_tag(pool: Any) -> tuple[dict[str, float], Any, Any]:
    from tritondiv.feature_store import make_tagger
    from tritondiv.features import embed_pool, embed_texts, tag_pool

    embed_texts(["warm up"], progress=False)  # the model is loaded once, outside the timing
    sec: dict[str, float] = {}
    sec["embed"], emb = timed(lambda: embed_pool(pool, "response", cache=False, progress=False))
    tagger = make_tagger("keyphrase", progress=False)
    sec["tag"], tags = timed(lambda: tag_pool(pool, "response", tagger, cache=False))
    return sec, emb, tags


def _ray_embed_tag(pool: Any, workers: int, reference: tuple[Any, Any]) -> dict[str, float]:
    from tritondiv.distributed.features import embed_ray, keyphrase_tags_ray
    from tritondiv.feature_store import make_tagger

    sec: dict[str, float] = {}
    blocks = 2 * workers
    # load the model in the workers outside the timing (a long job pays it once)
    sec["embed_warmup"], _ = timed(
        lambda: embed_ray(["warm up"] * blocks, "response", num_blocks=blocks)
    )
    sec["embed"], emb = timed(lambda: embed_ray(pool, "response", num_blocks=blocks))
    tagger = make_tagger("keyphrase", progress=False)
    sec["tag"], tags = timed(
        lambda: keyphrase_tags_ray(pool, "response", tagger, doc_embeddings=emb, num_blocks=blocks)
    )
    ref_emb, ref_tags = reference
    sec["embed_max_abs_diff"] = float(np.abs(emb - ref_emb).max())
    sec["tags_differing"] = float(sum(a != b for a, b in zip(tags.tags, ref_tags, strict=True)))
    sec.update({f"tag_{k}": v for k, v in tags.seconds.items()})
    return sec


def run_selection(n_rows: int, workers: int) -> dict[str, float]:
    import ray

    import tritondiv as td
    from tritondiv.distributed import (
        covering_radius,
        facility_location_greedi,
        facility_objective,
        kcenter_greedy_distributed,
    )

    X = np.load(SHARED / "embeddings" / "minilm_response.f16.npy", mmap_mode="r")
    rows = np.sort(np.random.default_rng(7).choice(X.shape[0], n_rows, replace=False))
    X = np.ascontiguousarray(X[rows])
    out: dict[str, float] = {}
    out["kcenter_single_s"], kc = timed(lambda: td.kcenter_greedy(X, 200, seed=0))
    out["knn_graph_single_s"], G = timed(
        lambda: td.knn_graph(X, 10, symmetrize=True, device="cpu", progress=False)
    )
    out["fl_single_s"], fl = timed(lambda: td.facility_location(G, 1000))
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        out["kcenter_ray_s"], kd = timed(lambda: kcenter_greedy_distributed(X, 200, 4, seed=0))
        out["greedi_ray_s"], gd = timed(lambda: facility_location_greedi(X, 1000, 4, seed=0))
    finally:
        ray.shutdown()
    out["kcenter_radius_single"] = covering_radius(X, kc.indices)
    out["kcenter_radius_ray"] = float(kd.radius)
    out["kcenter_radius_ratio"] = float(kd.radius) / covering_radius(X, kc.indices)
    out["greedi_objective_ratio"] = facility_objective(G, gd.indices) / float(fl.objective)
    return out


def run_local_all(folder: Path, embed_samples: int) -> dict[str, Any]:
    import tritondiv as td

    sec: dict[str, float] = {}
    sec["load_pool"], pool = timed(lambda: td.load_pool(folder))
    tok = td.load_tokenizer()
    sec["tokenize"], csr = timed(lambda: td.tokenize(pool.response, tok, progress=False))
    sec["token_stats"], stats = timed(lambda: td.token_stats(csr, lo=LO, hi=HI))
    text_bytes = sum(len(t.encode("utf-8")) for t in pool.response)
    out: dict[str, Any] = {
        "sec": sec,
        "counts": td.token_counts(csr),
        "stats": stats,
        "n_tokens": int(np.asarray(csr.offsets)[-1]),
        "nnz": int(stats.incidence.nnz),
        "vocab": len(td.token_counts(csr).counts),
        "text_bytes": text_bytes,
        "embed_pool": None,
        "reference": (None, None),
    }
    if embed_samples:
        sub = pool.subset(np.arange(min(embed_samples, len(pool))))
        esec, emb, tags = _local_embed_tag(sub)
        sec.update(esec)
        out["embed_pool"], out["reference"] = sub, (emb, tags)
    return out


def _us(seconds: float, n: int) -> str:
    return f"{1e6 * seconds / n:,.0f} µs"


def report_text(rep: dict[str, Any], args: argparse.Namespace) -> str:
    n, k = rep["samples"], rep["embed_samples"]
    loc = rep["local"]
    workers = [int(x) for x in args.workers.split(",")]
    head = ["stage (per sample)", "local engine"] + [
        f"Ray, {w} worker{'s' if w > 1 else ''} (warm; wall)" for w in workers
    ]
    rows = [
        "| " + " | ".join(head) + " |",
        "|---" + "|---:" * (len(head) - 1) + "|",
    ]

    def ray_cell(w: int, key: str, count: int) -> str:
        r = rep[f"ray_{w}"]
        label = "warm" if f"warm_{key}" in r else "cold"
        v = r.get(f"{label}_{key}", r.get(key))
        return "—" if v is None else _us(v, count) + ("" if label == "warm" else " (cold)")

    rows.append(
        f"| read + tokenize | {_us(loc['load_pool'] + loc['tokenize'], n)} | "
        + " | ".join(ray_cell(w, "texts_tokenize", n) for w in workers)
        + " |"
    )
    for key, label in (("count", "count (+ reduce)"), ("band", "band incidence"),
                       ("gather", "gather")):  # fmt: skip
        rows.append(
            f"| {label} | {_us(loc['token_stats'], n) if key == 'count' else '—'} | "
            + " | ".join(ray_cell(w, key, n) for w in workers)
            + " |"
        )
    if k:
        for key, label in (("embed", "embed (MiniLM)"), ("tag", "keyphrase tags")):
            rows.append(
                f"| {label}, first {k:,} samples | {_us(loc[key], k)} | "
                + " | ".join(_us(rep[f"ray_{w}"][key], k) for w in workers)
                + " |"
            )
    lines = [
        f"Pool: {n:,} samples (bench_pool.py's recombined real pool, 8 shards); responses "
        f"{rep['n_tokens'] / n:.0f} tokens and {rep['text_bytes'] / n:,.0f} B on average; "
        f"{rep['nnz'] / n:.1f} band types per sample. Local engine: load_pool "
        f"{loc['load_pool']:.1f} s, tokenize {loc['tokenize']:.1f} s, token_stats "
        f"{loc['token_stats']:.1f} s; driver peak RSS {rep['peak_rss_mib']:,.0f} MiB.",
        "",
        *rows,
        "",
    ]
    for w in workers:
        r = rep[f"ray_{w}"]
        parts = [f"ray.init {r['ray_init']:.1f} s", f"cold token run {r['cold_total']:.1f} s"]
        if "warm_total" in r:
            parts.append(f"warm run {r['warm_total']:.1f} s")
        if k:
            parts.append(f"model load in the workers {r['embed_warmup']:.1f} s (untimed above)")
            parts.append(
                f"embeddings max |Ray − local| {r['embed_max_abs_diff']:.1e}, tags differing "
                f"{int(r['tags_differing'])} of {k:,}"
            )
        lines.append(f"- {w} worker(s): " + "; ".join(parts) + ".")
    lines.append(
        "- Token counts, document frequencies and the band incidence are checked equal to the "
        "local engine's (bit for bit) before any time is printed."
    )
    sel = rep.get("selection")
    if sel:
        lines += [
            "",
            f"Two-round selection on {args.embeddings:,} real response embeddings, 4 partitions: "
            f"k-center (n=200) radius {sel['kcenter_radius_ray']:.4f} vs "
            f"{sel['kcenter_radius_single']:.4f} single-machine "
            f"(**ratio {sel['kcenter_radius_ratio']:.3f}**; the bound is 4); GreeDi facility "
            f"location (n=1000, k=10) **{sel['greedi_objective_ratio']:.4f}** of the "
            f"single-machine objective on the same full graph. Times: k-center "
            f"{sel['kcenter_single_s']:.1f} s single / {sel['kcenter_ray_s']:.1f} s Ray; "
            f"facility location {sel['knn_graph_single_s'] + sel['fl_single_s']:.1f} s single "
            f"(graph + greedy) / {sel['greedi_ray_s']:.1f} s Ray.",
        ]
    lines += ["", estimate_text(rep, workers)]
    return "\n".join(lines)


def estimate_text(rep: dict[str, Any], workers: list[int]) -> str:
    """The 100M estimate on 8 nodes x 16 cores from the measured per-sample costs."""
    N, cores, nodes = 100_000_000, 128, 8
    n, k = rep["samples"], rep["embed_samples"]
    w = max(workers)
    r = rep[f"ray_{w}"]
    label = "warm" if "warm_total" in r else "cold"

    # worker-seconds per sample: wall x workers (the workers were the parallelism)
    def core_us(key: str, count: int) -> float:
        return 1e6 * r[f"{label}_{key}" if f"{label}_{key}" in r else key] * w / count

    tok, cnt, band = (core_us(s, n) for s in ("texts_tokenize", "count", "band"))
    tok_b = rep["n_tokens"] / n * 4
    lines = [
        f"**Estimate for 100M samples on {nodes} nodes × 16 cores ({cores} workers)**, from the "
        f"{w}-worker per-sample costs above (core-µs = wall × workers; this machine's cores "
        "were shared, so these are upper bounds):",
        "",
        "| stage | core-µs / sample | wall at 100M | bytes moved (whole pool) | memory per worker |",
        "|---|---:|---:|---:|---|",
        f"| read + tokenize | {tok:,.0f} | {tok * N / cores / 60e6:,.0f} min | texts read "
        f"{rep['text_bytes'] / n * N / 1e9:,.0f} GB from the files; tokens kept in the object "
        f"store {tok_b * N / 1e9:,.0f} GB ({tok_b * N / nodes / 1e9:,.0f} GB per node) | one "
        f"block: 50k samples ≈ {50_000 * (rep['text_bytes'] / n + tok_b) / 2**20:,.0f} MiB |",
        f"| count + reduce | {cnt:,.0f} | {cnt * N / cores / 60e6:,.1f} min | 2 × 8 B × "
        f"{rep['vocab']:,} ids per block ({2 * 8 * rep['vocab'] / 2**20:.1f} MiB; 2,000 blocks "
        f"≈ {2000 * 2 * 8 * rep['vocab'] / 1e9:.0f} GB to the driver, summed as they arrive) "
        f"| two int64 vectors ({2 * 8 * rep['vocab'] / 2**20:.1f} MiB) |",
        f"| band incidence + gather | {band:,.0f} | {band * N / cores / 60e6:,.1f} min | "
        f"{rep['nnz'] / n * 4 + 8:.0f} B per sample to the driver: "
        f"{(rep['nnz'] / n * 4 + 8) * N / 1e9:,.0f} GB | the global counts (broadcast) |",
    ]
    if k:
        emb, tag = core_us("embed", k), core_us("tag", k)
        lines += [
            f"| embed (MiniLM, CPU) | {emb:,.0f} | {emb * N / cores / 3600e6:,.0f} h | "
            f"384 × 4 B = 1.5 KB per sample: {1536 * N / 1e9:,.0f} GB | model ≈ 90 MB + "
            "torch ≈ 0.5 GB |",
            f"| keyphrase tags (2 passes) | {tag:,.0f} | {tag * N / cores / 3600e6:,.0f} h | "
            "phrase counts per block to the driver, the shared-phrase set broadcast back; "
            "≈ 4 tags per sample gathered | the block's phrase embeddings |",
        ]
    lines += [
        "",
        "The embedding stages dominate (on CPU); on GPU workers they are the stage to move "
        "first. The driver holds the gathered incidence and the selection: the incidence and, "
        "for GreeDi, the candidates' kNN rows (at 100M the graph must be approximate, IVF), so "
        "its memory is the bound past a few hundred million samples.",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=300_000)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--embeddings", type=int, default=10_000, help="rows for selection (0: skip)")
    ap.add_argument("--embed-samples", type=int, default=300, help="samples embedded and tagged")
    ap.add_argument("--repeats", type=int, default=2, help="runs per session (1 cold, rest warm)")
    ap.add_argument("--json", type=Path, help="also write the numbers to this file")
    add_common_arguments(ap)
    args = ap.parse_args()
    if args.quick:
        args.samples, args.embeddings, args.embed_samples, args.repeats = 5000, 2000, 50, 1
        args.no_write = True
    if not SHARED.is_dir():
        print(f"shared data folder {SHARED} is absent", file=sys.stderr)
        return 2
    probe = LoadProbe()
    rep: dict[str, Any] = {"samples": args.samples, "embed_samples": args.embed_samples}
    with tempfile.TemporaryDirectory(prefix="tritondiv-bench-ray-") as tmp:
        folder = Path(tmp)
        rep["samples"] = build_pool(args.samples, folder)
        loc = run_local_all(folder, args.embed_samples)
        rep["local"] = loc["sec"]
        rep.update({k: loc[k] for k in ("n_tokens", "nnz", "vocab", "text_bytes")})
        print("local engine: " + ", ".join(f"{k} {v:.2f}s" for k, v in loc["sec"].items()))
        for w in (int(x) for x in args.workers.split(",")):
            rsec, res = run_ray(folder, w, args.repeats, loc["embed_pool"], loc["reference"])
            counts, stats = loc["counts"], loc["stats"]
            assert np.array_equal(res.counts, counts.counts) and np.array_equal(res.df, counts.df)
            assert np.array_equal(res.incidence.offsets, stats.incidence.offsets)
            assert np.array_equal(res.incidence.types, stats.incidence.types)
            assert res.token_stats() == stats
            rep[f"ray_{w}"] = rsec
            print(f"ray, {w} worker(s): " + ", ".join(f"{k} {v:.3g}" for k, v in rsec.items()))
    if args.embeddings:
        rep["selection"] = run_selection(
            args.embeddings, max(int(x) for x in args.workers.split(","))
        )
        print("selection:", ", ".join(f"{k} {v:.4g}" for k, v in rep["selection"].items()))
    rep["peak_rss_mib"] = peak_rss_mib()
    probe.stop()
    if args.json:
        args.json.write_text(json.dumps(rep, indent=2, default=str))
    text = report_text(rep, args)
    print(text)
    print(probe.describe())
    if not args.no_write:
        write_section(
            "### Ray: one machine, 1 and 2 workers (issue 13)",
            text,
            load=probe,
            within="## Figures of 2026-12-01 (second session), measured on a shared machine",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
