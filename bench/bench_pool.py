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

    .venv/bin/python -P bench/bench_pool.py                       # 100k and 300k
    .venv/bin/python -P bench/bench_pool.py --sizes 1000000 --no-write
    .venv/bin/python -P bench/bench_pool.py --quick               # 20k, one repeat
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
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
if loader == "tritondiv":
    import pyarrow as pa  # what datasets' own import loads: pyarrow and its pandas shim
    pa.array([0])
    from tritondiv.pool import load_pool
elif loader == "datasets":
    import datasets
    datasets.disable_progress_bars()
else:
    import pandas as pd
base = hwm_mib()
t0 = time.perf_counter()
if loader == "tritondiv":
    n = len(load_pool(path))
elif loader == "datasets":
    n = len(datasets.load_dataset("json", data_files=path, split="train", cache_dir=tmp))
else:
    n = len(pd.read_json(path, lines=True))
seconds = time.perf_counter() - t0
print(json.dumps({"n": n, "seconds": seconds, "peak_mib": hwm_mib(), "import_mib": base}))
"""

LOADERS = ("tritondiv", "datasets", "pandas")


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


def measure(loader: str, path: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench_pool_") as tmp:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, loader, str(path), tmp],
            check=False,
            capture_output=True,
            text=True,
        )
    if done.returncode:
        raise SystemExit(f"{loader} failed on {path}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000])
    ap.add_argument("--repeats", type=int, default=2, help="fresh processes per measurement")
    ap.add_argument("--seed", type=int, default=0)
    add_common_arguments(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats = [20_000], 1
    probe = LoadProbe()
    rows = []
    for n in args.sizes:
        path = OUT / "pool" / f"pool_{n}_seed{args.seed}.jsonl"
        if not path.is_file():
            build_pool(n, path, args.seed)
        mib = path.stat().st_size / 2**20
        results = {}
        for loader in LOADERS:
            runs = [measure(loader, path) for _ in range(args.repeats)]
            assert all(r["n"] == n for r in runs), (loader, runs)
            results[loader] = {
                "seconds": statistics.median(r["seconds"] for r in runs),
                "peak_mib": statistics.median(r["peak_mib"] for r in runs),
                "import_mib": statistics.median(r["import_mib"] for r in runs),
            }
            print(f"{n:>9,} {loader:>10}: {results[loader]}", flush=True)
        rows.append((n, mib, results))
    probe.stop()
    lines = [
        "| samples | file MiB | loader | load s | peak RSS MiB | RSS after imports MiB "
        "| time / datasets | RSS / datasets |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for n, mib, results in rows:
        ref = results["datasets"]
        for loader in LOADERS:
            r = results[loader]
            lines.append(
                f"| {n:,} | {mib:,.0f} | {loader} | {r['seconds']:.2f} | {r['peak_mib']:,.0f} "
                f"| {r['import_mib']:,.0f} | {r['seconds'] / ref['seconds']:.2f}x "
                f"| {r['peak_mib'] / ref['peak_mib']:.2f}x |"
            )
    text = "\n".join(lines)
    print(text)
    print(probe.describe())
    if not (args.no_write or args.quick):
        write_section("Pool loading", text, load=probe)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
