"""The whole pipeline on real-text pools of 100k / 300k / 1M samples, stage by stage, with
its peers side by side: faiss IVF / HNSW for the kNN graph, faiss.Kmeans, and HF
tokenizers' ``encode_batch`` alone (the tokenizing floor).

Pools: :func:`bench_pool.build_pool` (recombined instructions and responses of the six
shared files, alpaca records). Embeddings: the shared MiniLM ``.npy`` files tiled to N rows
with Gaussian noise (:func:`bench_ivf.load`, noise 0.01 per coordinate, rows renormalized),
saved as float16 ``.npy`` (one file per component and size). They carry no meaning for the
recombined rows: they give the embedding stages real-shaped data of the right size.

Parts (``--parts``), each measurement in a fresh child process (``PYTHONPATH`` = this
checkout, so the code measured is the working tree's):

* ``ladder``: ``tritondiv ladder POOL --strategies response-micro --levels 7 --size 10000``
  with metrics (the default) and the tiled embeddings, cold: ``TRITONDIV_CACHE`` points to a
  new empty folder (the OS page cache is not dropped: the pool file was just written). The
  child runs the real ``tritondiv.cli.main`` with observation hooks only: a stage starts
  when the ladder's stage bar, a feature computation (``Features._timed``), the pool load
  or the report starts, and ends when the next one starts (nested feature computations are
  their own stages, exclusive times). At every stage boundary the child reads ``VmHWM`` and
  resets it (``/proc/self/clear_refs`` = 5), so the peak RSS of a stage is the true peak of
  the process while that stage ran (what earlier stages left resident included).
* ``fl``: ``tritondiv select POOL --strategy facility-location --level 1 --size 10000
  --embeddings-response E.npy --knn-method ivf --no-metrics`` (the same hooks).
* ``tokfloor``: the pool's instruction and response texts through the packaged SmolLM2
  ``tokenizers.Tokenizer`` ``encode_batch_fast`` (what ``tokenize`` calls) in batches of
  2,048, nothing else (texts loaded before the clock starts).
* ``ann``: the kNN graph (k = 20, cosine, self excluded) on the tiled response embeddings:
  tritondiv ``ivf_topk`` per nprobe (quantizer training included in every run), faiss
  ``IndexIVFFlat`` (same n_lists, train + add + search) per nprobe, faiss ``IndexHNSWFlat``
  (M 32, efConstruction 40, build + search) per efSearch; tie-aware recall@20 on 2,000
  seeded rows (:func:`bench_ivf.reference` / :func:`bench_ivf.recall`). The HNSW build is
  added in chunks and stopped at ``--hnsw-limit`` seconds (then its rate is extrapolated,
  labelled so). Times exclude dropping the self match from faiss's k + 1 results.
* ``kmeans``: :func:`bench_kernels.bench_kmeans` (tritondiv.kmeans vs faiss.Kmeans,
  1,000 clusters, 10 iterations, spherical) on the tiled N x 384 set and on the real
  78,806 x 384 embeddings (``--sizes`` 78806).

Results go to ``bench/out/pipeline/result_<part>_<n>.json`` (one record per part and size, with
``uptime`` and the available memory before it); every run rewrites the
``## Pipeline at scale`` section of bench/RESULTS.md from all records there (``--report``
only rewrites it).

    .venv/bin/python -P bench/bench_pipeline.py --sizes 100000 300000
    .venv/bin/python -P bench/bench_pipeline.py --sizes 1000000 --parts ladder fl tokfloor
    .venv/bin/python -P bench/bench_pipeline.py --sizes 78806 --parts kmeans
    .venv/bin/python -P bench/bench_pipeline.py --report
    .venv/bin/python -P bench/bench_pipeline.py --quick        # 5,000 samples, no write
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_ivf
from _common import OUT, REPO, SHARED, LoadProbe, add_common_arguments, uptime, write_section
from bench_pool import build_pool

SECTION = "## Pipeline at scale"
WORK = OUT / "pipeline"
RESULTS_JSON = WORK / "results.json"
REAL_N = 78_806
NOISE = 0.01
PARTS = ("ladder", "fl", "tokfloor", "ann", "kmeans")
STAGES = ("load", "tokenize", "statistics", "types", "embeddings", "selection", "metrics",
          "write", "report")  # fmt: skip

# ---- the observed CLI run (child) ----------------------------------------------------------

_CLI_CHILD = r"""
import json, os, sys, time
T0 = time.perf_counter()


def hwm():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:")) / 1024


def reset():
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def cat(text):
    t = text.replace("-", " ")
    if t.startswith("load tokenizer") or t.startswith("tokenize"):
        return "tokenize"
    first = t.split()[0] if t.split() else t
    return {"token": "statistics", "types": "types", "embed": "embeddings", "select": "selection",
            "prune": "selection", "knn": "selection", "metrics": "metrics", "write": "write",
            "report": "report", "tag": "tags", "pool": "load"}.get(first, first)


class Rec:
    def __init__(self):
        self.stack, self.t, self.wall, self.peak = ["import"], T0, {}, {}
        self.c, self.cpu = 0.0, {}
        self.can_reset = reset()

    def close(self):
        now, st, h = time.perf_counter(), self.stack[-1], hwm()
        self.wall[st] = self.wall.get(st, 0.0) + now - self.t
        self.peak[st] = max(self.peak.get(st, 0.0), h)
        c = time.process_time()
        self.cpu[st] = self.cpu.get(st, 0.0) + c - self.c
        reset()
        self.c, self.t = time.process_time(), time.perf_counter()
        with open(sys.argv[1] + ".partial", "w") as fh:  # what a stopped run got to
            json.dump({"stage_now": self.stack[-1], "wall": self.wall, "peak": self.peak,
                       "cpu": self.cpu, "elapsed": self.t - T0}, fh)

    def push(self, name):
        self.close()
        self.stack.append(name)

    def pop(self):
        self.close()
        self.stack.pop()

    def base(self, name):
        if len(self.stack) == 1:
            self.close()
            self.stack[0] = name


R = Rec()
import tritondiv
import tritondiv.cli as cli
import tritondiv.ladder as lad
import tritondiv.report as rep
from tritondiv.commands import _options as opts
from tritondiv.feature_store import Features

R.base("setup")
_timed = Features._timed


def timed(self, store, key, stage, fn):
    if key in store:
        return _timed(self, store, key, stage, fn)
    R.push(cat(stage))
    try:
        return _timed(self, store, key, stage, fn)
    finally:
        R.pop()


Features._timed = timed
_stage = lad._StageBar.stage


def stage(self, text, *args, **kwargs):
    R.base(cat(text))
    return _stage(self, text, *args, **kwargs)


lad._StageBar.stage = stage


def wrap(owner, name, label, after):
    orig = getattr(owner, name)

    def f(*a, **k):
        R.push(label)
        try:
            return orig(*a, **k)
        finally:
            R.pop()
            R.base(after)

    setattr(owner, name, f)


wrap(opts.PoolArgs, "load", "load", "setup")
wrap(rep, "write_report", "report", "setup")
rc = cli.main(sys.argv[2:])
R.close()
with open(sys.argv[1], "w") as fh:
    json.dump({"rc": rc, "wall": R.wall, "peak": R.peak, "cpu": R.cpu, "clear_refs": R.can_reset,
               "module": tritondiv.__file__, "child_seconds": time.perf_counter() - T0}, fh)
"""

_TOK_CHILD = r"""
import json, sys, time
from tritondiv.pool import load_pool
from tritondiv.tokens import load_tokenizer


def hwm():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:")) / 1024


pool = load_pool(sys.argv[1])
tok = load_tokenizer(None)
enc = getattr(tok, "encode_batch_fast", None) or tok.encode_batch
out = {"api": enc.__name__}
for comp in ("instruction", "response"):
    texts = list(getattr(pool, comp))
    t, c, n_tok = time.perf_counter(), time.process_time(), 0
    for s in range(0, len(texts), 2048):
        n_tok += sum(len(e.ids) for e in enc(texts[s : s + 2048], add_special_tokens=False))
    out[comp] = {"seconds": time.perf_counter() - t, "cpu": time.process_time() - c,
                 "tokens": n_tok}
out["peak_mib"] = hwm()
print(json.dumps(out))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _mem_available_gib() -> float:
    with open("/proc/meminfo", encoding="utf-8") as fh:
        return next(int(x.split()[1]) for x in fh if x.startswith("MemAvailable:")) / 2**20


def _wait_memory(n: int, need_gib: float = 10.0, wait_s: float = 600.0) -> float:
    """Before a 1M run: wait (polling) until more than ``need_gib`` GiB are available."""
    avail = _mem_available_gib()
    if n < 1_000_000:
        return avail
    t = time.time()
    while avail <= need_gib and time.time() - t < wait_s:
        print(f"only {avail:.1f} GiB available, waiting", flush=True)
        time.sleep(20)
        avail = _mem_available_gib()
    return avail


# ---- inputs --------------------------------------------------------------------------------


def pool_path(n: int) -> Path:
    path = OUT / "pool" / f"pool_{n}_seed0.jsonl"  # bench_pool.py's name: built once for both
    if not path.is_file():
        t = time.perf_counter()
        build_pool(n, path, 0)
        print(f"built {path} in {time.perf_counter() - t:.0f} s", flush=True)
    return path


def tiled(n: int, component: str) -> np.ndarray:
    """float32 (n, 384) normalized: the shared embeddings of ``component`` tiled with noise."""
    bench_ivf.EMB = str(SHARED / "embeddings" / f"minilm_{component}.f16.npy")
    tile = max(1, math.ceil(n / REAL_N))
    return bench_ivf.load(
        n, tile, NOISE if tile > 1 else 0.0, seed=0 if component == "response" else 1
    )


def emb_path(n: int, component: str) -> Path:
    path = WORK / f"emb_{component}_{n}.f16.npy"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npy")
        np.save(tmp, tiled(n, component).astype(np.float16))
        tmp.replace(path)
    return path


# ---- the parts -----------------------------------------------------------------------------


def observed_cli(argv: list[str], cache: Path) -> dict[str, Any]:
    """Run ``tritondiv <argv>`` in a fresh observed child; stage walls and peaks."""
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    rec = WORK / f"child_{os.getpid()}_{int(time.time())}.json"
    env = {**_env(), "TRITONDIV_CACHE": str(cache)}
    t = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CLI_CHILD, str(rec), *argv],
        env=env, cwd=WORK, capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - t
    if done.returncode:
        raise SystemExit(f"tritondiv {' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    out = json.loads(rec.read_text())
    out["seconds"] = wall
    out["peak_mib"] = max(out["peak"].values())
    out["command"] = "tritondiv " + " ".join(argv)
    out["stderr_tail"] = done.stderr[-600:]
    shutil.rmtree(cache, ignore_errors=True)
    return out


def part_ladder(n: int, size: int) -> dict[str, Any]:
    pool = pool_path(n)
    ei, er = emb_path(n, "instruction"), emb_path(n, "response")
    out = WORK / f"ladder_{n}"
    shutil.rmtree(out, ignore_errors=True)
    argv = ["ladder", str(pool), "--strategies", "response-micro", "--levels", "7",
            "--size", str(size), "--out", str(out), "--embeddings-instruction", str(ei),
            "--embeddings-response", str(er), "--no-progress"]  # fmt: skip
    r = observed_cli(argv, WORK / f"cache_{n}")
    index = json.loads((out / "ladder.json").read_text())
    r["ladder_timings"] = index.get("timings")
    r["ladder_seconds"] = index.get("seconds")
    shutil.rmtree(out, ignore_errors=True)
    return r


def part_fl(n: int, size: int) -> dict[str, Any]:
    pool = pool_path(n)
    er = emb_path(n, "response")
    out = WORK / f"fl_{n}"
    shutil.rmtree(out, ignore_errors=True)
    argv = ["select", str(pool), "--strategy", "facility-location", "--level", "1",
            "--size", str(size), "--out", str(out), "--embeddings-response", str(er),
            "--knn-method", "ivf", "--no-metrics", "--no-progress"]  # fmt: skip
    r = observed_cli(argv, WORK / f"cache_fl_{n}")
    man = json.loads((out / "manifest.json").read_text())
    r["manifest_timings"] = man.get("timings")
    shutil.rmtree(out, ignore_errors=True)
    return r


def part_tokfloor(n: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _TOK_CHILD, str(pool_path(n))],
        env=_env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"tokenizer floor failed:\n{done.stderr[-3000:]}")
    r = json.loads(done.stdout.strip().splitlines()[-1])
    r["seconds"] = r["instruction"]["seconds"] + r["response"]["seconds"]
    return r


_ANN_CHILD = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
import bench_ivf

tool, emb, ref, knobs, limit = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], float(sys.argv[6])
knobs = [int(v) for v in knobs.split(",")]


def hwm():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:")) / 1024


x = np.load(emb).astype(np.float32)
x /= np.linalg.norm(x, axis=1, keepdims=True)
n, d = x.shape
z = np.load(ref)
rows_q, kth = z["rows"], z["kth"]
k = 20
from tritondiv.kernels.ivf import TRAIN_ITERS, default_n_lists, ivf_topk, train_sample_size
L = default_n_lists(n)


C0 = time.process_time()


def emit(**kw):  # cpu: process CPU seconds since the data was loaded (build + searches so far)
    print(json.dumps({"tool": tool, "n": n, "n_lists": L, "peak_mib": hwm(),
                      "cpu_total": time.process_time() - C0, **kw}), flush=True)


def recall_of(ids):
    return bench_ivf.recall(x, rows_q, kth, ids)


def drop_self_rows(fi):  # only the sampled rows: the recall needs no more
    ids = np.full((n, k), -1, dtype=np.int64)
    ids[rows_q] = _drop(fi[rows_q], rows_q)
    return ids


def _drop(f, rows):
    out = np.empty((rows.size, k), dtype=np.int64)
    for a, (r, i) in enumerate(zip(f, rows)):
        r = r[r != i]
        out[a] = r[:k] if r.size >= k else np.pad(r, (0, k - r.size), constant_values=-1)
    return out


if tool == "tritondiv-ivf":
    for p in knobs:
        t, c = time.perf_counter(), time.process_time()
        _, idx, info = ivf_topk(x, k, "cosine", n_lists=L, nprobe=p, device="cpu")
        emit(knob=p, seconds=time.perf_counter() - t, cpu=time.process_time() - c,
             recall=recall_of(idx))
elif tool == "faiss-ivf":
    import faiss
    m = train_sample_size(n, L)
    t, c = time.perf_counter(), time.process_time()
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, L, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = TRAIN_ITERS
    index.cp.max_points_per_centroid = max(1, m // L)
    index.train(x[np.sort(np.random.default_rng(0).choice(n, size=m, replace=False))])
    index.add(x)
    build, build_cpu = time.perf_counter() - t, time.process_time() - c
    for p in knobs:
        index.nprobe = p
        t, c = time.perf_counter(), time.process_time()
        _, fi = index.search(x, k + 1)
        s, sc = time.perf_counter() - t, time.process_time() - c
        emit(knob=p, seconds=build + s, cpu=build_cpu + sc, build=build,
             recall=recall_of(drop_self_rows(fi)))
else:
    import faiss
    h = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
    h.hnsw.efConstruction = 40
    t, c = time.perf_counter(), time.process_time()
    step = max(10_000, n // 20)
    for s in range(0, n, step):
        h.add(x[s : s + step])
        el = time.perf_counter() - t
        done = min(n, s + step)
        if el > limit and done < n:
            emit(knob=0, partial=True, added=done, build_elapsed=el,
                 build_extrapolated=el * n / done)
            sys.exit(0)
    build, build_cpu = time.perf_counter() - t, time.process_time() - c
    for ef in knobs:
        h.hnsw.efSearch = ef
        t, c = time.perf_counter(), time.process_time()
        _, fi = h.search(x, k + 1)
        s, sc = time.perf_counter() - t, time.process_time() - c
        emit(knob=ef, seconds=build + s, cpu=build_cpu + sc, build=build,
             recall=recall_of(drop_self_rows(fi)))
"""


def part_ann(
    n: int, hnsw_limit: float, quick: bool, knobs_given: dict[str, str] | None = None
) -> dict[str, Any]:
    emb = emb_path(n, "response")
    ref = WORK / f"ann_ref_{n}.npz"
    if not ref.is_file():
        x = tiled(n, "response")
        rows = np.sort(np.random.default_rng(1).choice(n, size=min(2000, n), replace=False))
        np.savez(ref, rows=rows, kth=bench_ivf.reference(x, rows, 20))
        del x
    knobs = {
        "tritondiv-ivf": "4,8,16" if quick else "8,16,32",
        "faiss-ivf": "4,8,16,32",
        "faiss-hnsw": "32,64,128",
    }
    knobs.update({k: v for k, v in (knobs_given or {}).items() if v})
    rows_out: list[dict[str, Any]] = []
    for tool, kn in knobs.items():
        done = subprocess.run(
            [sys.executable, "-c", _ANN_CHILD, str(Path(__file__).parent), tool, str(emb),
             str(ref), kn, str(hnsw_limit)],
            env=_env(), capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode:
            raise SystemExit(f"{tool} failed:\n{done.stderr[-3000:]}")
        for line in done.stdout.strip().splitlines():
            rec = json.loads(line)
            rec["uptime"] = uptime()
            rows_out.append(rec)
            print(json.dumps(rec), flush=True)
    return {"rows": rows_out}


def part_kmeans(n: int) -> dict[str, Any]:
    code = """
import json, sys
sys.path.insert(0, sys.argv[1])
import bench_kernels, bench_pipeline
n = int(sys.argv[2])
x = bench_pipeline.tiled(n, "response")
cpus = []
med = bench_kernels.median_time


def timeit(fn, repeats):  # bench_kernels' timer, keeping the CPU seconds too
    r = med(fn, repeats)
    cpus.append(r.cpu)
    return r.wall, r.out


bench_kernels.timeit = timeit
rows = bench_kernels.bench_kmeans(x, 1000, 10, 3 if n <= 100000 else 1)
for r, c in zip(rows, cpus):
    r["cpu"] = c
print(json.dumps(rows))
"""
    done = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), str(n)],
        env=_env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"kmeans failed:\n{done.stderr[-3000:]}")
    return {"rows": json.loads(done.stdout.strip().splitlines()[-1])}


# ---- the record and the report -------------------------------------------------------------


def load_results() -> dict[str, Any]:
    """Every record: ``results.json`` (older runs) and one file per part and size."""
    allr = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.is_file() else {}
    for f in sorted(WORK.glob("result_*.json")):
        part, n = f.stem.split("_")[1:3]
        if f"{part}:{n}" in allr:  # an earlier run of results.json: kept as "<part>-first"
            allr[f"{part}-first:{n}"] = allr[f"{part}:{n}"]
        allr[f"{part}:{n}"] = json.loads(f.read_text())
    return allr


def save_result(key: str, rec: dict[str, Any]) -> None:
    """One file per record (runs of several sizes may go on side by side)."""
    part, n = key.split(":")
    path = WORK / f"result_{part}_{n}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rec, indent=1))
    tmp.replace(path)


def _load(r: dict[str, Any]) -> str:
    return f"`{r['uptime_before'].split('load average:')[-1].strip()}` / {r['mem_gib']:.0f} GiB"


def _exp(a: float, b: float, na: int, nb: int) -> str:
    if a <= 0 or b <= 0:
        return ""
    return f"{math.log(b / a) / math.log(nb / na):.2f}"


def report(allr: dict[str, Any]) -> str:
    out: list[str] = []
    lad = {int(k.split(":")[1]): v for k, v in allr.items() if k.startswith("ladder:")}
    if lad:
        sizes = sorted(lad)
        out += [
            "**End to end, cold**: `tritondiv ladder POOL.jsonl --strategies response-micro "
            "--levels 7 --size 10000` with metrics and the tiled embeddings "
            "(`--embeddings-instruction/--embeddings-response`), `TRITONDIV_CACHE` a new empty "
            "folder, one fresh process per size. Per stage: wall s / peak RSS MiB of the "
            "process while that stage ran (VmHWM reset at every stage boundary, see the "
            "script's docstring); cpu = process CPU seconds (all threads), less sensitive to the other jobs than the wall; growth exponent = log(t₂/t₁)/log(N₂/N₁) between the "
            "smallest and the largest size measured.",
            "",
            "| stage | " + " | ".join(f"{n:,}" for n in sizes) + " | exponent |",
            "|---|" + "---:|" * (len(sizes) + 1),
        ]
        names = [s for s in ("import", "setup", *STAGES) if any(s in lad[n]["wall"] for n in sizes)]
        names += sorted({s for n in sizes for s in lad[n]["wall"]} - set(names))
        for s in names:
            cells = []
            for n in sizes:
                w, p = lad[n]["wall"].get(s), lad[n]["peak"].get(s)
                c = lad[n].get("cpu", {}).get(s)
                cs = f" (cpu {c:.1f})" if c is not None else ""
                cells.append(f"{w:.1f} s{cs} / {p:,.0f}" if w is not None else "")
            a, b = lad[sizes[0]]["wall"].get(s, 0), lad[sizes[-1]]["wall"].get(s, 0)
            ex = _exp(a, b, sizes[0], sizes[-1]) if len(sizes) > 1 and a > 0.5 else ""
            ca = lad[sizes[0]].get("cpu", {}).get(s, 0)
            cb = lad[sizes[-1]].get("cpu", {}).get(s, 0)
            if len(sizes) > 1 and ca > 0.5 and cb > 0:
                ex += f" (cpu {_exp(ca, cb, sizes[0], sizes[-1])})"
            out.append(f"| {s} | " + " | ".join(cells) + f" | {ex} |")
        tot = [lad[n]["seconds"] for n in sizes]
        cpus = [sum(lad[n].get("cpu", {}).values()) for n in sizes]
        out.append(
            "| **total (process wall / peak)** | "
            + " | ".join(
                f"**{lad[n]['seconds']:.1f} s / {lad[n]['peak_mib']:,.0f}**" for n in sizes
            )
            + f" | {_exp(tot[0], tot[-1], sizes[0], sizes[-1]) if len(sizes) > 1 else ''}"
            + (f" (cpu {_exp(cpus[0], cpus[-1], sizes[0], sizes[-1])})" if min(cpus) > 0 else "")
            + " |"
        )
        if min(cpus) > 0:
            out.append(
                "| total cpu s (all stages) | " + " | ".join(f"{c:.0f}" for c in cpus) + " | |"
            )
        dom = []
        for n in sizes:
            w = {k: v for k, v in lad[n]["wall"].items()}
            top = max(w, key=w.__getitem__)
            dom.append(f"{n:,}: **{top}** ({100 * w[top] / lad[n]['seconds']:.0f}%)")
        out += ["", "Dominant stage: " + "; ".join(dom) + ".",
                "Load (1/5/15 min) and memory available before each: "
                + "; ".join(f"{n:,}: {_load(lad[n])}" for n in sizes) + "."]  # fmt: skip
        out.append(
            "ladder.json `timings` (s): "
            + "; ".join(
                f"{n:,}: "
                + ", ".join(f"{k} {v:.1f}" for k, v in (lad[n]["ladder_timings"] or {}).items())
                for n in sizes
            )
            + "."
        )
    first = {int(k.split(":")[1]): v for k, v in allr.items() if k.startswith("ladder-first:")}
    if first:
        out += ["", "Earlier runs of the same command (no CPU split recorded): " + "; ".join(
            f"{n:,}: {r['seconds']:.1f} s wall, tokenize {r['wall'].get('tokenize', 0):.1f} s, "
            f"metrics {r['wall'].get('metrics', 0):.1f} s, peak {r['peak_mib']:,.0f} MiB, "
            f"load {_load(r)}" for n, r in sorted(first.items())) + "."]  # fmt: skip
    fl = {int(k.split(":")[1]): v for k, v in allr.items() if k.startswith("fl:")}
    if fl:
        out += ["", "**Facility location from the CLI**: `tritondiv select POOL --strategy "
                "facility-location --level 1 --size 10000 --embeddings-response E.npy "
                "--knn-method ivf --no-metrics`, cold, fresh process.", "",
                "| samples | wall s | peak RSS MiB | stages (wall s / peak MiB) | manifest timings s | load / mem avail |",
                "|---:|---:|---:|---|---|---|"]  # fmt: skip
        for n in sorted(fl):
            r = fl[n]
            st = ", ".join(f"{k} {r['wall'][k]:.1f} / {r['peak'][k]:,.0f}" for k in r["wall"])
            mt = ", ".join(f"{k} {v:.1f}" for k, v in (r.get("manifest_timings") or {}).items())
            out.append(
                f"| {n:,} | {r['seconds']:.1f} | {r['peak_mib']:,.0f} | {st} | {mt} | {_load(r)} |"
            )
    tf = {int(k.split(":")[1]): v for k, v in allr.items() if k.startswith("tokfloor:")}
    if tf:
        out += ["", "**Tokenizing floor**: HF tokenizers `encode_batch_fast` alone (SmolLM2 "
                "tokenizer, batches of 2,048, no special tokens), both components, vs the "
                "ladder's tokenize stage.", "",
                "| samples | encode s (instr + resp) | tokens | ladder tokenize s | ladder / floor | peak MiB | load |",
                "|---:|---:|---:|---:|---:|---:|---|"]  # fmt: skip
        for n in sorted(tf):
            r = tf[n]
            lt = lad.get(n, {}).get("wall", {}).get("tokenize")
            ratio = f"{lt / r['seconds']:.2f}x wall" if lt else ""
            lc = lad.get(n, {}).get("cpu", {}).get("tokenize")
            fcpu = [r[k].get("cpu") for k in ("instruction", "response")]
            if lc and None not in fcpu:
                ratio = f"{lc / sum(fcpu):.2f}x cpu"
                lt_s = f"{lt:.1f} (cpu {lc:.1f})"
            else:
                lt_s = f"{lt:.1f}" if lt else ""
            toks = r["instruction"]["tokens"] + r["response"]["tokens"]
            c = [r[k].get("cpu") for k in ("instruction", "response")]
            cpu = f" (cpu {c[0] + c[1]:.1f})" if None not in c else ""
            out.append(
                f"| {n:,} | {r['instruction']['seconds']:.1f} + {r['response']['seconds']:.1f} = "
                f"{r['seconds']:.1f}{cpu} | {toks:,} | {lt_s} | {ratio} "
                f"| {r['peak_mib']:,.0f} | {_load(r)} |"
            )
    ann = {int(k.split(":")[1]): v for k, v in allr.items() if k.startswith("ann:")}
    for n in sorted(ann):
        rows = ann[n]["rows"]
        out += ["", f"**kNN graph, k = 20, cosine, tiled {n:,} × 384** (tie-aware recall@20 on "
                "2,000 rows; time = everything the tool needs: quantizer/index build + search; "
                "each tool in its own process).", "",
                "| tool | n_lists | nprobe / efSearch | time s | cpu s | recall@20 | peak MiB | load |",
                "|---|---:|---:|---:|---:|---:|---:|---|"]  # fmt: skip
        for r in rows:
            ld = r["uptime"].split("load average:")[-1].strip()
            if r.get("partial"):
                out.append(
                    f"| {r['tool']} | | build stopped | ({r['added']:,} rows added in "
                    f"{r['build_elapsed']:.0f} s: build extrapolated {r['build_extrapolated']:.0f} s,"
                    f" a lower bound, insertion slows as the graph grows) | | | {r['peak_mib']:,.0f} | `{ld}` |"
                )
                continue
            out.append(
                f"| {r['tool']} | {r['n_lists']} | {r['knob']} | {r['seconds']:.1f} | "
                f"{r.get('cpu', float('nan')):.1f} | "
                f"{r['recall']:.4f} | {r['peak_mib']:,.0f} | `{ld}` |"
            )
        best = {}
        for r in rows:
            if not r.get("partial") and r["recall"] >= 0.95:
                cost = "cpu" if all("cpu" in q for q in rows if not q.get("partial")) else "seconds"
                if r["tool"] not in best or r[cost] < best[r["tool"]][cost]:
                    best[r["tool"]] = r
        if best:
            line = "Cheapest run (by cpu when recorded) at recall@20 ≥ 0.95: " + "; ".join(
                f"{t} {b['seconds']:.1f} s wall, {b.get('cpu', float('nan')):.1f} s cpu "
                f"(recall {b['recall']:.3f})"
                for t, b in best.items()
            )
            if "tritondiv-ivf" in best and "faiss-ivf" in best:
                a, b = best["tritondiv-ivf"], best["faiss-ivf"]
                line += f"; tritondiv / faiss IVF = {a['seconds'] / b['seconds']:.2f}x wall"
                if "cpu" in a and "cpu" in b:
                    line += f", {a['cpu'] / b['cpu']:.2f}x cpu"
            if "tritondiv-ivf" in best and "faiss-hnsw" in best:
                line += (f"; tritondiv / faiss HNSW = "
                         f"{best['tritondiv-ivf']['seconds'] / best['faiss-hnsw']['seconds']:.2f}x")  # fmt: skip
            out += ["", line + "."]
    km = {int(k.split(":")[1]): v for k, v in allr.items() if k.startswith("kmeans:")}
    for n in sorted(km):
        rows = km[n]["rows"]
        what = "real" if n == REAL_N else "tiled"
        out += ["", f"**Spherical k-means, 1,000 clusters, 10 iterations, {what} {n:,} × 384** "
                f"(`bench_kernels.bench_kmeans`; {'median of 3' if n <= 100_000 else '1 run'}; "
                f"load {_load(km[n])}).", "",
                "| tool | wall s | cpu s | faiss / this (wall) | faiss / this (cpu) | objective (sum of cosine distances) |",
                "|---|---:|---:|---:|---:|---|"]  # fmt: skip
        ft, fc = rows[-1]["time"], rows[-1].get("cpu")
        for r in rows:
            c = r.get("cpu")
            cpu, ratio = (f"{c:.1f}", f"{fc / c:.2f}x") if c and fc else ("", "")
            out.append(
                f"| {r['tool']} | {r['time']:.1f} | {cpu} | {ft / r['time']:.2f}x | {ratio} "
                f"| {r.get('note', '')} |"
            )
    return "\n".join(out)


def _code() -> str:
    """The commit measured (``+ changes`` when the checkout has uncommitted changes)."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + changes" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000])
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    ap.add_argument("--size", type=int, default=10_000, help="samples per dataset")
    ap.add_argument("--hnsw-limit", type=float, default=900.0, help="HNSW build cap, seconds")
    ap.add_argument("--ivf-nprobe", default="", help="ann: tritondiv nprobe list (8,16,32)")
    ap.add_argument("--faiss-nprobe", default="", help="ann: faiss IVF nprobe list (4,8,16,32)")
    ap.add_argument("--ef", default="", help="ann: faiss HNSW efSearch list (32,64,128)")
    ap.add_argument("--report", action="store_true", help="only rewrite the section")
    add_common_arguments(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.size, args.no_write = [5000], 500, True
    probe = LoadProbe()
    if not args.report:
        for n in args.sizes:
            for part in args.parts:
                avail = _wait_memory(n)
                before = uptime()
                print(f"== {part} {n:,}: {before}; {avail:.1f} GiB available", flush=True)
                if part == "ladder":
                    rec = part_ladder(n, args.size)
                elif part == "fl":
                    rec = part_fl(n, args.size)
                elif part == "tokfloor":
                    rec = part_tokfloor(n)
                elif part == "ann":
                    given = {"tritondiv-ivf": args.ivf_nprobe, "faiss-ivf": args.faiss_nprobe,
                             "faiss-hnsw": args.ef}  # fmt: skip
                    rec = part_ann(n, args.hnsw_limit, args.quick, given)
                else:
                    rec = part_kmeans(n)
                rec.update(uptime_before=before, uptime_after=uptime(), mem_gib=avail, code=_code())
                print(json.dumps({k: v for k, v in rec.items() if k != "rows"})[:1500], flush=True)
                if not args.quick:
                    save_result(f"{part}:{n}", rec)
    allr = load_results() if not args.quick else {}
    text = report(allr)
    text += (
        "\n\nCode measured, per record (part:size -> commit; records without one were made "
        "on 8d65a1d, before the Arrow-spill loader and the memory-mapped features): "
        + "; ".join(f"{k} -> {r.get('code', '8d65a1d')}" for k, r in sorted(allr.items()))
        + ". Machine shared with other agents: the load average "
        "beside each figure is `uptime`'s (1/5/15 min) before it; times are upper bounds. "
        "The records come from separate invocations (`--sizes 100000 300000 --parts ladder fl "
        "tokfloor`, `--sizes 1000000 --parts ladder`, `--sizes 1000000 --parts fl`, "
        "`--sizes 1000000 --parts kmeans`, `--sizes 78806 --parts kmeans`, `--sizes 100000 "
        "--parts ann --hnsw-limit 300`, `--sizes 300000 --parts ann --ivf-nprobe 32,64 "
        "--faiss-nprobe 8,16 --ef 64 --hnsw-limit 240`, `--sizes 300000 --parts tokfloor`), "
        "kept in bench/out/pipeline/result_<part>_<n>.json; this section is rebuilt from them."
    )
    print(text)
    if not args.no_write:
        write_section(SECTION, text, load=probe.stop())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
