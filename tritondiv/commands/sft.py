"""``tritondiv sft DATASET --model PATH --out DIR``: fine-tune a causal LM on a dataset."""

from __future__ import annotations

import argparse
import json
import logging


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
        "--trainer",
        choices=("trl", "own"),
        default="trl",
        help="TRL's SFTTrainer (default) or tritondiv's own training loop",
    )
    p.add_argument(
        "--kernels",
        choices=("auto", "torch", "liger", "tritondiv", "triton"),
        default="auto",
        help="auto: Liger-Kernel on CUDA, else plain torch; tritondiv (= triton): the "
        "project's own Triton kernels",
    )
    p.add_argument(
        "--gather-response",
        action="store_true",
        help="gather the response rows before the output head and the fused cross-entropy "
        "(trl trainer)",
    )
    p.add_argument(
        "--lora-r", type=int, default=0, help="LoRA rank through peft (0: full fine-tuning)"
    )
    p.add_argument("--lora-alpha", type=int, default=None, help="LoRA alpha (default 2 x r)")
    p.add_argument("--lora-dropout", type=float, default=0.0)
    p.add_argument(
        "--lora-targets",
        default=None,
        help="comma-separated module names for LoRA (default: all linear layers)",
    )
    p.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="rows per loss chunk of the own trainer (default: by vocab)",
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
        trainer=args.trainer,
        extra=extra_from_args(args),
    )


def extra_from_args(args: argparse.Namespace) -> dict[str, object]:
    """The TRL trainer's options (``TrainConfig.extra``); defaults are left out, so a
    configuration without them keeps its resume key."""
    if args.lora_r < 0:
        raise ValueError(f"--lora-r must be >= 0; got {args.lora_r}")
    if args.trainer == "own" and (args.lora_r or args.gather_response):
        raise ValueError("--lora-r and --gather-response need --trainer trl")
    extra: dict[str, object] = {}
    if args.gather_response:
        extra["gather_response"] = True
    if args.lora_r:
        extra["lora_r"] = args.lora_r
        extra["lora_alpha"] = args.lora_alpha or 2 * args.lora_r
        extra["lora_dropout"] = args.lora_dropout
        if args.lora_targets:
            extra["lora_targets"] = [t for t in args.lora_targets.split(",") if t]
    return extra


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "sft",
        help="fine-tune a causal LM on a dataset (TRL SFTTrainer, response-only loss; Liger on CUDA)",
    )
    p.add_argument("dataset", help="dataset file or folder (e.g. a ladder level folder)")
    p.add_argument("--out", required=True, help="output folder (model, checkpoints, manifest)")
    add_train_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tritondiv._log import progress_enabled
    from tritondiv.sft.train import train

    man = train(
        args.model,
        args.dataset,
        args.out,
        config_from_args(args),
        gguf_file=args.gguf_file,
        resume=not args.no_resume,
        progress=progress_enabled(not args.no_progress),
        log=logging.getLogger(__name__).info,
    )
    summary = {k: man[k] for k in ("status", "step", "tokens", "seconds", "tokens_per_second")}
    summary["final_loss"] = man["losses"][-1] if man["losses"] else None
    print(json.dumps(summary))
    return 0
