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
bench/RESULTS.md; ``--no-write`` to only print).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("TRITONDIV_SHARED_DATA", HERE.parent.parent / "shared" / "data"))

SHAPES = [(49_152, 576), (32_000, 2_048)]


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
    times = []
    for _ in range(repeats):
        hh.grad = None
        w.grad = None
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {
        "method": method,
        "vocab": vocab,
        "hidden": hidden,
        "tokens": batch * seq,
        "response_fraction": frac,
        "chunk_rows": default_chunk_size(vocab) if method == "chunked" else None,
        "loss": loss,
        "peak_mib": (peak - base) / 2**20,
        # what is left once the gradients every method must return are subtracted
        "working_mib": (peak - base - 4 * (vocab * hidden + batch * seq * hidden)) / 2**20,
        "first_s": first,
        "median_s": statistics.median(times),
        "tokens_per_s": batch * seq / statistics.median(times),
    }


def run_loss(args: argparse.Namespace) -> list[dict]:
    rows = []
    for vocab, hidden in SHAPES:
        for frac in (0.5, 1.0):
            for method in ("plain", "chunked"):
                cmd = [
                    sys.executable,
                    "-P",
                    __file__,
                    "--child",
                    method,
                    str(vocab),
                    str(hidden),
                    str(args.batch),
                    str(args.seq),
                    str(frac),
                    str(args.repeats),
                ]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                row = json.loads(out.strip().splitlines()[-1])
                rows.append(row)
                print(
                    f"  {method:8s} V={vocab} d={hidden} frac={frac}: peak {row['peak_mib']:.0f} MiB, "
                    f"{row['tokens_per_s']:.0f} tok/s, loss {row['loss']:.4f}",
                    flush=True,
                )
    return rows


def loss_table(rows: list[dict]) -> str:
    lines = [
        "| vocab | hidden | response tokens | plain peak MiB | chunked peak MiB | plain loss memory MiB | chunked loss memory MiB | loss memory ratio | plain tok/s | chunked tok/s | speed ratio | loss (plain / chunked) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    by = {(r["vocab"], r["response_fraction"], r["method"]): r for r in rows}
    for vocab, hidden in SHAPES:
        for frac in (0.5, 1.0):
            p, c = by[(vocab, frac, "plain")], by[(vocab, frac, "chunked")]
            lines.append(
                f"| {vocab:,} | {hidden:,} | {int(frac * 100)}% | {p['peak_mib']:.0f} | {c['peak_mib']:.0f} | "
                f"{p['working_mib']:.0f} | {c['working_mib']:.0f} | "
                f"{p['working_mib'] / max(c['working_mib'], 1e-9):.1f}x | {p['tokens_per_s']:,.0f} | "
                f"{c['tokens_per_s']:,.0f} | {c['tokens_per_s'] / p['tokens_per_s']:.2f}x | "
                f"{p['loss']:.4f} / {c['loss']:.4f} |"
            )
    return "\n".join(lines)


def write_section(text: str) -> None:
    from tritondiv._io import atomic_write

    path = HERE / "RESULTS.md"
    src = path.read_text(encoding="utf-8")
    head = "## SFT"
    start = src.index(head)
    m = re.search(r"^## ", src[start + len(head) :], flags=re.M)
    end = start + len(head) + m.start() if m else len(src)
    new = src[:start] + head + "\n\n" + text.strip() + "\n\n" + src[end:]
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(new.rstrip("\n") + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs=7, help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=2, help="sequences per step (default 2)")
    ap.add_argument("--seq", type=int, default=512, help="tokens per sequence (default 512)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = ap.parse_args()
    if args.child:
        m, v, d, b, s, f, r = args.child
        print(json.dumps(child(m, int(v), int(d), int(b), int(s), float(f), int(r))))
        return 0
    load = os.getloadavg()
    print(
        f"loss head, batch {args.batch} x seq {args.seq}, {args.repeats} repeats; load {load}",
        flush=True,
    )
    rows = run_loss(args)
    table = loss_table(rows)
    print(table)
    import torch

    text = f"""### Chunked response-only loss vs the plain transformers loss (CPU)

Command: `.venv/bin/python -P bench/bench_sft.py` (batch {args.batch} x sequence {args.seq} =
{args.batch * args.seq} tokens, float32, torch {torch.__version__}, {torch.get_num_threads()} threads; load average
at start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}). Forward + backward of the loss head only
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
        write_section(text)
        print("wrote the SFT section of bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
