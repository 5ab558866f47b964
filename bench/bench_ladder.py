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

    .venv/bin/python -P bench/bench_ladder.py [--size 10000] [--write-results]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
SECTION = "## End to end (ladder)"


def _records(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        if path.name.endswith(".jsonl.gz"):
            return [json.loads(line) for line in fh]
        return json.load(fh)


def build_tagged_pool(folder: Path) -> list[str]:
    """Write the six files with a ``tags`` list field; return their paths in order."""
    paths = []
    for name in FILES:
        recs = _records(SHARED / name)
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
        help="rows per component for the keyphrase tagger timing",
    )
    ap.add_argument("--bleu-sample", type=int, default=1000)
    ap.add_argument("--out", default=None, help="work folder (default: a temporary one, removed)")
    ap.add_argument("--skip-b", action="store_true", help="only run A (featurization excluded)")
    ap.add_argument(
        "--write-results", action="store_true", help="write the section of bench/RESULTS.md"
    )
    args = ap.parse_args()

    from tritondiv.features import KeyphraseTagger, tag_pool
    from tritondiv.ladder import run_ladder
    from tritondiv.pool import load_pool
    from tritondiv.strategies import TYPE_STRATEGIES, FeatureOptions, Features

    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_ladder_"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["TRITONDIV_CACHE"] = str(work / "cache")
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    pool = load_pool(build_tagged_pool(work), allow_empty=True)
    t_pool = time.perf_counter() - t0
    n = len(pool)
    print(f"pool: {n} samples ({t_pool:.1f} s to write the tagged copy and load it)")
    emb = {
        c: str(SHARED / "embeddings" / f"minilm_{c}.f16.npy") for c in ("instruction", "response")
    }
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
    sample = pool.subset(np.arange(0, n, max(1, n // args.tag_sample))[: args.tag_sample])
    for c in ("instruction", "response"):
        t0 = time.perf_counter()
        tag_pool(sample, c, KeyphraseTagger(progress=False), cache=False)
        kp[c] = (time.perf_counter() - t0) / len(sample) * 1000
    print(
        f"keyphrase tagger: {kp['instruction']:.1f} s / 1k instructions, {kp['response']:.1f} s / 1k responses"
    )
    load_after = os.getloadavg()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()

    if args.write_results:
        lines = [
            SECTION,
            "",
            "Command: `.venv/bin/python -P bench/bench_ladder.py --write-results` "
            f"(size {args.size}, {args.levels} levels, the six type strategies, tagger `{args.tagger}`, "
            f"self-BLEU sample {args.bleu_sample}, one run each — a full ladder is too long to repeat here).",
            f"Pool: the 78,806-sample shared pool ({n} rows), precomputed MiniLM embeddings. "
            f"Load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} (`{uptime}`)"
            + (
                "; other jobs shared the 2 cores during this run, so times are upper bounds."
                if max(load_before[0], load_after[0]) > 2.5
                else " (about this run alone on the 2 cores)."
            ),
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
            f"{len(sample)} evenly spaced rows — the dominant featurization cost at this scale.",
            "",
        ]
        res = HERE / "RESULTS.md"
        text = res.read_text(encoding="utf-8")
        start = text.index(SECTION)
        nxt = text.find("\n## ", start + len(SECTION))
        end = len(text) if nxt < 0 else nxt + 1
        res.write_text(text[:start] + "\n".join(lines) + "\n" + text[end:], encoding="utf-8")
        print(f"wrote {res}")
    if not args.out:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
