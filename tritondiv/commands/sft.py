"""``tritondiv sft DATASET --model PATH --out DIR``: fine-tune a causal LM on a dataset."""

from __future__ import annotations

import argparse
import json


def add_train_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``sft`` and ``experiment``."""
    p.add_argument(
        "--model", required=True, help="local transformers model folder, or a .gguf file"
    )
    p.add_argument("--gguf-file", default=None, help="GGUF file name inside the --model folder")
    p.add_argument("--steps", type=int, default=100, help="optimizer steps (default 100)")
    p.add_argument("--batch-size", type=int, default=8, help="samples per micro-batch (default 8)")
    p.add_argument("--grad-accum", type=int, default=1, help="micro-batches per step (default 1)")
    p.add_argument("--lr", type=float, default=2e-5, help="peak learning rate (default 2e-5)")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--schedule", choices=("cosine", "linear", "constant"), default="cosine")
    p.add_argument("--max-length", type=int, default=512, help="tokens per sample (default 512)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--save-every", type=int, default=0, help="checkpoint every N steps (0: last only)"
    )
    p.add_argument(
        "--keep-checkpoints",
        type=int,
        default=2,
        help="newest checkpoints kept (0: delete them once the run has finished)",
    )
    p.add_argument(
        "--kernels",
        choices=("auto", "triton", "torch"),
        default="auto",
        help="fused Triton kernels (auto: on CUDA) or the chunked plain-torch loss",
    )
    p.add_argument(
        "--chunk-size", type=int, default=None, help="rows per loss chunk (default: by vocab)"
    )
    p.add_argument(
        "--template", choices=("auto", "chat", "plain"), default="auto", help="prompt format"
    )
    p.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default="auto")
    p.add_argument(
        "--no-resume", action="store_true", help="start over instead of resuming from --out"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace):  # -> TrainConfig
    from tritondiv.sft.train import TrainConfig

    return TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps,
        schedule=args.schedule,
        max_length=args.max_length,
        seed=args.seed,
        save_every=args.save_every,
        keep_checkpoints=args.keep_checkpoints,
        kernels=args.kernels,
        chunk_size=args.chunk_size,
        template=args.template,
        dtype=args.dtype,
    )


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "sft",
        help="fine-tune a causal LM on a dataset (response-only loss; fused Triton kernels on CUDA)",
    )
    p.add_argument("dataset", help="dataset file or folder (e.g. a ladder level folder)")
    p.add_argument("--out", required=True, help="output folder (model, checkpoints, manifest)")
    add_train_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tritondiv.sft.train import train

    man = train(
        args.model,
        args.dataset,
        args.out,
        config_from_args(args),
        gguf_file=args.gguf_file,
        resume=not args.no_resume,
        progress=not args.no_progress,
        log=print,
    )
    summary = {k: man[k] for k in ("status", "step", "tokens", "seconds", "tokens_per_second")}
    summary["final_loss"] = man["losses"][-1] if man["losses"] else None
    print(json.dumps(summary))
    return 0
