"""Pool loading: ``tritondiv.load_pool`` against ``datasets.load_dataset("json")`` and
``pandas.read_json(lines=True)`` on the same real-text ``.jsonl`` file; wall time of the
load call and peak RSS of the process (``VmHWM`` of /proc/self/status: ``ru_maxrss`` is
carried over ``exec`` from the parent on Linux), each measurement in a fresh subprocess.

The pools: every sample of the six shared files (../shared/data, loaded with
``skip_bad=True``: codealpaca's two empty outputs are left out) is a (file, instruction, response); a pool of N samples pairs, for
each of N draws (numpy ``default_rng(seed)``, with replacement), the instruction of a
uniformly drawn sample with the response of a uniformly drawn sample of one of the *other*
five files (also uniformly drawn), written as alpaca records ``{"id", "instruction",
"output"}``, one per line. ``datasets`` gets a fresh ``cache_dir`` per run (so it parses
instead of reusing a cache); its time includes writing the Arrow cache, its RSS is low
because it memory-maps that cache.

tritondiv is measured cold (an empty ``TRITONDIV_CACHE``: the file is parsed, checked and
spilled to its memory-mapped Arrow cache) and warm (the same cache folder again: the cache
is mapped). ``pandas`` runs only while ``MemAvailable`` exceeds ``--pandas-max-gib`` plus
its expected need (about 15 GiB at 1M samples), and is otherwise written as skipped. Last,
``tritondiv stats --component both`` runs once on the largest pool, in a fresh process
with a fresh cache folder (pool and token caches cold); its wall time and peak RSS.

    .venv/bin/python -P bench/bench_pool.py                       # 100k, 300k, 1M, stats
    .venv/bin/python -P bench/bench_pool.py --sizes 300000 --no-stats --no-write
    .venv/bin/python -P bench/bench_pool.py --quick               # 20k, one repeat
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    OUT,
    POOL_FILES,
    SHARED,
    LoadProbe,
    add_common_arguments,
    write_section,
)

# Each loader runs in its own interpreter: imports first (their RSS is reported apart;
# for tritondiv pyarrow and the pandas it loads on first use, as importing datasets
# does), then the timed load; VmHWM is the peak of the whole process.
_CHILD = r"""
import json, sys, time


def hwm_mib():  # VmHWM: this process's peak RSS (ru_maxrss would carry the parent's over exec)
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:")) / 1024


loader, path, tmp = sys.argv[1], sys.argv[2], sys.argv[3]
if loader.startswith("tritondiv"):
    import pyarrow as pa  # what datasets' own import loads: pyarrow and its pandas shim
    pa.array([0])
    from tritondiv.pool import load_pool
elif loader == "datasets":
    import datasets
    datasets.disable_progress_bars()
else:
    import pandas as pd
base = hwm_mib()
cpu0 = time.process_time()
t0 = time.perf_counter()
if loader.startswith("tritondiv"):
    n = len(load_pool(path))
elif loader == "datasets":
    n = len(datasets.load_dataset("json", data_files=path, split="train", cache_dir=tmp))
else:
    n = len(pd.read_json(path, lines=True))
seconds = time.perf_counter() - t0
cpu = time.process_time() - cpu0  # user + system time of the load, all threads
print(json.dumps({"n": n, "seconds": seconds, "peak_mib": hwm_mib(), "import_mib": base,
                  "cpu_s": cpu}))
"""

LOADERS = ("tritondiv cold", "tritondiv warm", "datasets", "pandas")
#: pandas' peak RSS per sample, measured (4,499 MiB at 300k): its need is this times n.
_PANDAS_MIB_PER_SAMPLE = 4499 / 300_000

# `tritondiv stats` in-process, reporting its own wall time and VmHWM at the end.
_STATS_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from tritondiv.cli import main
rc = main(sys.argv[1:])
with open("/proc/self/status") as fh:
    hwm = next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:")) / 1024
print(json.dumps({"rc": rc, "seconds": time.perf_counter() - t0, "peak_mib": hwm}))
"""


def mem_available_gib() -> float:
    with open("/proc/meminfo") as fh:
        kib = next(int(line.split()[1]) for line in fh if line.startswith("MemAvailable:"))
    return kib / 2**20


def build_pool(n: int, path: Path, seed: int) -> None:
    """Write the recombined pool of ``n`` samples (see the module docstring)."""
    from tritondiv.pool import load_pool

    ins: list[str] = []
    res: list[str] = []
    starts = [0]
    for name in POOL_FILES:
        p = load_pool(SHARED / name, skip_bad=True)  # (two empty outputs skipped)
        ins.extend(p.instruction)
        res.extend(p.response)
        starts.append(len(ins))
    bounds = np.asarray(starts, dtype=np.int64)
    sizes = np.diff(bounds)
    files = len(POOL_FILES)
    rng = np.random.default_rng(seed)
    i = rng.integers(0, bounds[-1], n)
    f_i = np.searchsorted(bounds, i, side="right") - 1
    f_r = (f_i + rng.integers(1, files, n)) % files
    j = bounds[f_r] + (rng.random(n) * sizes[f_r]).astype(np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for k, (a, b) in enumerate(zip(i.tolist(), j.tolist(), strict=True)):
            rec = {"id": f"s{k}", "instruction": ins[a], "output": res[b]}
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
    tmp.replace(path)


def _env(cache: str) -> dict[str, str]:
    env = {**os.environ, "TRITONDIV_CACHE": cache}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH")) if p
    )
    return env


def measure(loader: str, path: Path, cache: str, tmp: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, loader, str(path), tmp],
        check=False,
        capture_output=True,
        text=True,
        env=_env(cache),
    )
    if done.returncode:
        raise SystemExit(f"{loader} failed on {path}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_stats(path: Path) -> dict[str, float]:
    """``tritondiv stats POOL --component both`` in a fresh process and cache folder."""
    with tempfile.TemporaryDirectory(prefix="bench_pool_stats_") as cache:
        done = subprocess.run(
            [sys.executable, "-c", _STATS_CHILD, "stats", str(path), "--component", "both"],
            check=False,
            capture_output=True,
            text=True,
            env=_env(cache),
        )
    if done.returncode:
        raise SystemExit(f"tritondiv stats failed on {path}:\n{done.stderr[-3000:]}")
    print(done.stdout)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_round(n: int, path: Path, pandas_margin: float) -> dict[str, dict[str, float]]:
    """One measurement of every loader, side by side: tritondiv cold then warm (one fresh
    cache folder), datasets (a fresh cache folder), pandas (when memory allows)."""
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_pool_") as tmp:
        cache = str(Path(tmp) / "tritondiv-cache")
        for loader in LOADERS:
            if loader == "pandas":
                need = n * _PANDAS_MIB_PER_SAMPLE / 1024
                free = mem_available_gib()
                if free < need + pandas_margin:
                    out[loader] = {"skipped": free, "need": need}
                    print(f"{n:>9,} pandas skipped: {free:.1f} GiB available", flush=True)
                    continue
            out[loader] = measure(loader, path, cache, str(Path(tmp) / f"ds-{loader[:4]}"))
            assert out[loader]["n"] == n, (loader, out[loader])
            print(f"{n:>9,} {loader:>14}: {out[loader]}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    ap.add_argument("--repeats", type=int, default=2, help="fresh processes per measurement")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--pandas-margin-gib",
        type=float,
        default=3.4,
        help="run pandas only while MemAvailable exceeds its expected need by this much "
        "(18 GiB in all at 1M samples)",
    )
    ap.add_argument("--no-stats", action="store_true", help="skip `tritondiv stats`")
    add_common_arguments(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats, args.no_stats = [20_000], 1, True
    probe = LoadProbe()
    rows = []
    for n in args.sizes:
        path = OUT / "pool" / f"pool_{n}_seed{args.seed}.jsonl"
        if not path.is_file():
            build_pool(n, path, args.seed)
        mib = path.stat().st_size / 2**20
        rounds = [measure_round(n, path, args.pandas_margin_gib) for _ in range(args.repeats)]
        results: dict[str, dict[str, float]] = {}
        for loader in LOADERS:
            runs = [r[loader] for r in rounds if "skipped" not in r[loader]]
            if not runs:
                skip = rounds[-1][loader]
                results[loader] = {"skipped": skip["skipped"], "need": skip["need"]}
                continue
            results[loader] = {
                key: statistics.median(r[key] for r in runs)
                for key in ("seconds", "peak_mib", "import_mib", "cpu_s")
            }
            results[loader]["runs"] = len(runs)
        rows.append((n, mib, results))
    stats = None
    if not args.no_stats:
        stats_path = OUT / "pool" / f"pool_{max(args.sizes)}_seed{args.seed}.jsonl"
        t0 = time.perf_counter()
        stats = measure_stats(stats_path)
        stats["outer_seconds"] = time.perf_counter() - t0
        print(f"stats: {stats}", flush=True)
    probe.stop()
    lines = [
        "| samples | file MiB | loader | load s | CPU s | peak RSS MiB | RSS after imports MiB "
        "| time / datasets | CPU / datasets | RSS / datasets | runs |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, mib, results in rows:
        ref = results["datasets"]
        for loader in LOADERS:
            r = results[loader]
            if "skipped" in r:
                lines.append(
                    f"| {n:,} | {mib:,.0f} | {loader} | skipped: {r['skipped']:.1f} GiB "
                    f"available, needs ~{r['need']:.0f} GiB | | | | | | | |"
                )
                continue
            lines.append(
                f"| {n:,} | {mib:,.0f} | {loader} | {r['seconds']:.2f} | {r['cpu_s']:.2f} "
                f"| {r['peak_mib']:,.0f} | {r['import_mib']:,.0f} "
                f"| {r['seconds'] / ref['seconds']:.2f}x | {r['cpu_s'] / ref['cpu_s']:.2f}x "
                f"| {r['peak_mib'] / ref['peak_mib']:.2f}x | {r['runs']:.0f} |"
            )
    if stats is not None:
        lines += [
            "",
            f"`tritondiv stats {max(args.sizes):,}-sample pool --component both` (fresh "
            f"process, empty pool and token caches): {stats['seconds']:.1f} s, peak RSS "
            f"{stats['peak_mib']:,.0f} MiB ({stats['peak_mib'] / 1024:.2f} GiB; the limit is "
            "24 GiB).",
        ]
    text = "\n".join(lines)
    print(text)
    print(probe.describe())
    if not (args.no_write or args.quick):
        write_section("## Pool loading", text, load=probe)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
