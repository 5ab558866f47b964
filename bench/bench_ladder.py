"""End to end: a full 6-strategy x 7-level ladder on the 78,806-sample shared pool.

Pool: the six files of ../shared/data in the order of the precomputed embeddings (t0_50k,
gpteacher codegen/roleplay/toolformer, codealpaca_2k, gsm8k), read with ``allow_empty``
(codealpaca has two empty outputs) so that pool rows = embedding rows. Embeddings: the
precomputed MiniLM ``.npy`` files (float16). Tokens: the default tokenizer.

Meso tags: ``--tagger`` (default ``column:tags``). The shared files carry no tag lists, so
by default each record gets a ``tags`` list made from what it does carry: its T0
``template`` name and that name's first word (t0 rows) or its file name (other rows). The
offline keyphrase tagger's cost is measured separately on ``--tag-sample`` rows of each
component and reported per 1,000 samples (running it on all 157,612 texts does not fit a
benchmark run on this machine).

Run A, featurization excluded: features (embeddings loaded, tokens, tags, the type
incidences, kNN graph) are computed first and timed per stage; then the ladder (pruning,
balanced greedy, baselines, metrics, writes, report) is timed on those warm features.
Run B, featurization included: the same ladder from scratch (no feature cache) into a
new directory. Both print the stage-by-stage breakdown.

    .venv/bin/python -P bench/bench_ladder.py [--size 10000] [--limit N] [--no-write]
    .venv/bin/python -P bench/bench_ladder.py --quick     # smoke run on 2,000 rows

Writes the "## End to end (ladder)" section of bench/RESULTS.md unless ``--no-write``
(``--quick`` never writes).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    OUT,
    POOL_FILES,
    LoadProbe,
    add_common_arguments,
    require_shared,
    write_section,
)

SECTION = "## End to end (ladder)"


def _records(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        if path.name.endswith(".jsonl.gz"):
            return [json.loads(line) for line in fh]
        return json.load(fh)


def build_tagged_pool(folder: Path, limit: int | None = None) -> list[str]:
    """Write the six files with a ``tags`` list field (their first ``limit`` records in
    all); return the paths of those written, in order."""
    paths: list[str] = []
    left = limit
    for name in POOL_FILES:
        if left is not None and left <= 0:
            break
        recs = _records(require_shared(name))
        if left is not None:
            recs, left = recs[:left], left - len(recs[:left])
        stem = name.split(".")[0]
        out = folder / f"{len(paths)}_{stem}.jsonl"
        with open(out, "w", encoding="utf-8") as fh:
            for r in recs:
                if "template" in r:
                    tags = [r["template"], r["template"].split("_")[0]]
                else:
                    tags = [stem]
                fh.write(json.dumps({**r, "tags": tags}, ensure_ascii=False) + "\n")
        paths.append(str(out))
    return paths


def fmt_table(rows: list[tuple[str, float]]) -> str:
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{w}}  {v:9.2f} s" for k, v in rows)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--levels", type=int, default=7)
    ap.add_argument("--tagger", default="column:tags")
    ap.add_argument(
        "--tag-sample",
        type=int,
        default=200,
        help="rows per component for the keyphrase tagger timing (0: not measured)",
    )
    ap.add_argument("--bleu-sample", type=int, default=1000)
    ap.add_argument("--limit", type=int, default=None, help="only the first N pool rows")
    ap.add_argument(
        "--out",
        default=None,
        help="work folder (default: a temporary one under bench/out, removed)",
    )
    ap.add_argument("--skip-b", action="store_true", help="only run A (featurization excluded)")
    # the section is written by default now; the old flag is accepted and does nothing
    ap.add_argument("--write-results", action="store_true", help=argparse.SUPPRESS)
    add_common_arguments(ap)
    args = ap.parse_args()
    if args.quick:
        args.limit = min(args.limit or 2_000, 2_000)
        args.size, args.levels = min(args.size, 100), min(args.levels, 3)
        args.tag_sample, args.bleu_sample = 0, min(args.bleu_sample, 100)
        args.skip_b = args.no_write = True

    from tritondiv.features import KeyphraseTagger, tag_pool
    from tritondiv.ladder import run_ladder
    from tritondiv.pool import load_pool
    from tritondiv.strategies import TYPE_STRATEGIES, FeatureOptions, Features

    if args.out:
        work = Path(args.out)
    else:
        OUT.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="bench_ladder_", dir=OUT))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["TRITONDIV_CACHE"] = str(work / "cache")
    probe = LoadProbe()
    t0 = time.perf_counter()
    pool = load_pool(build_tagged_pool(work, args.limit), allow_empty=True)
    emb = {
        c: str(require_shared("embeddings", f"minilm_{c}.f16.npy"))
        for c in ("instruction", "response")
    }
    if args.limit is not None:
        for c, path in emb.items():  # the same first rows of the precomputed embeddings
            emb[c] = str(work / f"minilm_{c}_{args.limit}.f16.npy")
            np.save(emb[c], np.asarray(np.load(path, mmap_mode="r")[: len(pool)]))
    t_pool = time.perf_counter() - t0
    n = len(pool)
    print(f"pool: {n} samples ({t_pool:.1f} s to write the tagged copy and load it)")
    opts = FeatureOptions(
        embeddings_instruction=emb["instruction"],
        embeddings_response=emb["response"],
        tagger=args.tagger,
        cache=False,
        progress=False,
    )

    # --- A: featurization excluded -------------------------------------------------------
    feats = Features(pool, opts, seed=0)
    t0 = time.perf_counter()
    for c in ("instruction", "response"):
        feats.embeddings(c)
        feats.tokens(c)
    for fam in TYPE_STRATEGIES:
        feats.incidence(fam)
    t_feat_a = time.perf_counter() - t0
    feat_stages = dict(feats.timings)
    print(f"A: features {t_feat_a:.1f} s")
    t0 = time.perf_counter()
    index_a = run_ladder(
        pool, args.size, work / "ladder_a", levels=args.levels, options=opts, seed=0,
        bleu_sample=args.bleu_sample, features=feats,
    )  # fmt: skip
    t_ladder_a = time.perf_counter() - t0
    stages_a = {k: v for k, v in index_a["timings"].items() if k not in feat_stages}
    print(f"A: ladder on warm features {t_ladder_a:.1f} s")
    print(fmt_table(sorted(stages_a.items(), key=lambda kv: -kv[1])))

    # --- B: featurization included ---------------------------------------------------------
    t_ladder_b = None
    stages_b: dict[str, float] = {}
    if not args.skip_b:
        shutil.rmtree(work / "cache", ignore_errors=True)
        t0 = time.perf_counter()
        index_b = run_ladder(
            pool, args.size, work / "ladder_b", levels=args.levels, options=opts, seed=0,
            bleu_sample=args.bleu_sample,
        )  # fmt: skip
        t_ladder_b = time.perf_counter() - t0
        stages_b = index_b["timings"]
        print(f"B: ladder from scratch {t_ladder_b:.1f} s")
        print(fmt_table(sorted(stages_b.items(), key=lambda kv: -kv[1])))
        same = all(
            json.loads((work / "ladder_a" / e["path"] / "manifest.json").read_text())["ids"]
            == json.loads((work / "ladder_b" / e["path"] / "manifest.json").read_text())["ids"]
            for e in index_a["datasets"]
        )
        print(f"A and B selected the same ids in every dataset: {same}")

    # --- keyphrase tagger cost on a sample ------------------------------------------------------
    kp: dict[str, float] = {}
    sample = pool.subset(np.arange(0, n, max(1, n // max(1, args.tag_sample)))[: args.tag_sample])
    for c in ("instruction", "response") if len(sample) else ():
        t0 = time.perf_counter()
        tag_pool(sample, c, KeyphraseTagger(progress=False), cache=False)
        kp[c] = (time.perf_counter() - t0) / len(sample) * 1000
    if kp:
        print(
            f"keyphrase tagger: {kp['instruction']:.1f} s / 1k instructions, {kp['response']:.1f} s / 1k responses"
        )
    print(probe.stop().describe())

    if not args.no_write:
        lines = [
            f"Size {args.size}, {args.levels} levels, the six type strategies, tagger `{args.tagger}`, "
            f"self-BLEU sample {args.bleu_sample}, one run each — a full ladder is too long to repeat here.",
            f"Pool: the shared pool ({n:,} rows"
            + (f", its first {args.limit:,}" if args.limit is not None else "")
            + "), precomputed MiniLM embeddings.",
            "",
            "| run | seconds |",
            "|---|---:|",
            f"| A: features (embeddings loaded, tokens, tags, incidences) | {t_feat_a:.1f} |",
            f"| A: ladder on warm features (featurization excluded) | {t_ladder_a:.1f} |",
        ]
        if t_ladder_b is not None:
            lines.append(f"| B: ladder from scratch (featurization included) | {t_ladder_b:.1f} |")
        lines += [
            "",
            "Stage breakdown (B when run, else A; seconds):",
            "",
            "| stage | seconds |",
            "|---|---:|",
        ]
        stages = stages_b or {**feat_stages, **stages_a}
        lines += [f"| {k} | {v:.2f} |" for k, v in sorted(stages.items(), key=lambda kv: -kv[1])]
        lines += [
            "",
            f"Keyphrase tagger (the offline default, not in the runs above): {kp['instruction']:.1f} s per "
            f"1,000 instructions and {kp['response']:.1f} s per 1,000 responses, measured on "
            f"{len(sample)} evenly spaced rows — the dominant featurization cost at this scale."
            if kp
            else "Keyphrase tagger: not measured (--tag-sample 0).",
        ]
        write_section(SECTION, "\n".join(lines), load=probe)
        print(f"wrote the {SECTION[3:]} section of bench/RESULTS.md")
    if not args.out:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
