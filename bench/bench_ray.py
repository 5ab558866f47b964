"""The pipeline on Ray: 1 vs 2 workers on one machine, per stage, against the local engine.

Pool: every sample of ../shared/data (78,806), topped up to ``--samples`` with recombined
real texts (seeded: an instruction joined to another's, a response joined to another's),
written as 8 jsonl shards (``prompt``/``completion``) so the file path is measured too.

Stages timed:

* local engine: ``load_pool`` (all shards), ``tokenize`` of the response, ``token_stats``
  (lo=10, hi=500; distinct-1 and -2);
* Ray, for each worker count (a fresh local session of that many CPUs; tokenizer and
  OpenMP threads pinned to 1 per worker so workers are the only parallelism):
  ``texts_tokenize`` (read shards + tokenize, materialized), ``count`` (per-block counts +
  int64 reduction), ``band`` (band incidence against global counts), ``gather``;
* selection on ``--embeddings`` rows of the shared response embeddings: k-center (n=200)
  and facility location (n=1000, k=10) on one machine vs two rounds on 4 partitions.

Results are checked equal to the local engine before a time is printed. On one machine
this measures Ray's overhead, not a speed-up: the point is the per-sample cost of each
stage, from which a many-machine estimate is made (printed at the end).

    .venv/bin/python -P bench/bench_ray.py                      # 100k samples, 1 and 2 workers
    .venv/bin/python -P bench/bench_ray.py --samples 20000 --embeddings 10000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("TRITONDIV_SHARED_DATA", HERE.parent.parent / "shared" / "data"))
FILES = (
    "t0_50k.jsonl.gz",
    "gpteacher_codegen.json.gz",
    "gpteacher_roleplay.json.gz",
    "gpteacher_toolformer.json.gz",
    "codealpaca_2k.json.gz",
    "gsm8k_train.jsonl.gz",
)
LO, HI = 10, 500
SHARDS = 8


def build_pool(n_samples: int, folder: Path, seed: int = 0) -> int:
    """Write ``n_samples`` real (then recombined) samples as SHARDS jsonl files; return n."""
    import tritondiv as td

    base = td.load_pool([SHARED / f for f in FILES], allow_empty=True)
    ins, res = list(base.instruction), list(base.response)
    rng = np.random.default_rng(seed)
    while len(ins) < n_samples:
        a, b = rng.integers(len(base), size=2)
        ins.append(base.instruction[a] + "\n" + base.instruction[b])
        res.append(base.response[a] + "\n" + base.response[b])
    ins, res = ins[:n_samples], res[:n_samples]
    bounds = np.linspace(0, n_samples, SHARDS + 1).astype(int)
    for s in range(SHARDS):
        with open(folder / f"part-{s:02d}.jsonl", "w", encoding="utf-8") as fh:
            for i in range(bounds[s], bounds[s + 1]):
                fh.write(json.dumps({"prompt": ins[i], "completion": res[i]}) + "\n")
    return n_samples


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


def run_ray(folder: Path, workers: int, repeats: int) -> tuple[dict[str, float], Any]:
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
    finally:
        ray.shutdown()
    return sec, res


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
    out["kcenter_radius_ratio"] = float(kd.radius) / covering_radius(X, kc.indices)
    out["greedi_objective_ratio"] = facility_objective(G, gd.indices) / float(fl.objective)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--embeddings", type=int, default=20_000, help="rows for selection (0: skip)")
    ap.add_argument("--repeats", type=int, default=2, help="runs per session (1 cold, rest warm)")
    ap.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = ap.parse_args()
    if not SHARED.is_dir():
        print(f"shared data folder {SHARED} is absent", file=sys.stderr)
        return 2
    report: dict[str, Any] = {"samples": args.samples}
    with tempfile.TemporaryDirectory(prefix="tritondiv-bench-ray-") as tmp:
        folder = Path(tmp)
        build_pool(args.samples, folder)
        sec, counts, stats = run_local(folder)
        report["local"] = sec
        print(
            f"local engine ({args.samples} samples): "
            + ", ".join(f"{k} {v:.2f}s" for k, v in sec.items())
        )
        for w in (int(x) for x in args.workers.split(",")):
            rsec, res = run_ray(folder, w, args.repeats)
            assert np.array_equal(res.counts, counts.counts) and np.array_equal(res.df, counts.df)
            assert np.array_equal(res.incidence.offsets, stats.incidence.offsets)
            assert np.array_equal(res.incidence.types, stats.incidence.types)
            assert res.token_stats() == stats
            report[f"ray_{w}"] = rsec
            print(f"ray, {w} worker(s): " + ", ".join(f"{k} {v:.2f}s" for k, v in rsec.items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    n = args.samples
    print("\nper-sample cost (microseconds; one machine, 2 shared cores):")
    print(
        f"  local: tokenize {1e6 * report['local']['tokenize'] / n:.1f}, "
        f"load {1e6 * report['local']['load_pool'] / n:.1f}, "
        f"stats {1e6 * report['local']['token_stats'] / n:.1f}"
    )
    for key in [k for k in report if k.startswith("ray_")]:
        r = report[key]
        w = int(key.split("_")[1])
        for label in ("cold", "warm"):
            if f"{label}_total" not in r:
                continue
            tok = r[f"{label}_texts_tokenize"]
            print(
                f"  {key} {label}: texts+tokenize {1e6 * tok / n:.1f}, "
                f"count {1e6 * r[f'{label}_count'] / n:.1f}, "
                f"band {1e6 * r[f'{label}_band'] / n:.1f}, "
                f"gather {1e6 * r[f'{label}_gather'] / n:.1f}; "
                f"worker-us/sample (x{w}) {1e6 * tok * w / n:.1f}"
            )
    if args.embeddings:
        sel = run_selection(args.embeddings, max(int(x) for x in args.workers.split(",")))
        report["selection"] = sel
        print(
            "\nselection on",
            args.embeddings,
            "rows:",
            ", ".join(f"{k} {v:.3f}" for k, v in sel.items()),
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
