"""``tritondiv experiment LADDER_DIR --model PATH --eval EVALSET --out DIR``: fine-tune on
every dataset of a ladder, score each model, regress score on diversity level."""

from __future__ import annotations

import argparse
import logging

from tritondiv.commands.sft import add_train_options, config_from_args


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "experiment",
        help="fine-tune on every ladder dataset, score, and fit score vs diversity level per strategy",
    )
    p.add_argument("ladder", help="ladder folder (written by `tritondiv ladder`)")
    p.add_argument(
        "--eval",
        required=True,
        dest="eval_set",
        help="evaluation set: a held-out split (instruction/response) or a .jsonl of "
        "instruction records with an optional reference output",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--judge",
        default=None,
        help="pairwise judge hook 'module:function' (win rate vs the reference answers); "
        "default: held-out loss",
    )
    p.add_argument(
        "--judge-model",
        default=None,
        help="local causal LM folder as the pairwise judge (both orders, win/tie/loss, LC win rate)",
    )
    p.add_argument(
        "--score",
        choices=("auto", "loss", "win_rate", "lc_win_rate"),
        default="auto",
        help="the score regressed on level (auto: win_rate with a judge, else loss)",
    )
    p.add_argument(
        "--allow-tokenizer-mismatch",
        action="store_true",
        help="do not refuse a ladder measured with a tokenizer other than the model's",
    )
    p.add_argument(
        "--max-new-tokens", type=int, default=128, help="generation length for the judge"
    )
    p.add_argument("--eval-batch-size", type=int, default=8)
    p.add_argument("--eval-limit", type=int, default=None, help="first N evaluation samples only")
    p.add_argument(
        "--strategies", default=None, help="comma-separated subset of the ladder's strategies"
    )
    p.add_argument(
        "--allow-overlap", action="store_true", help="do not refuse eval samples seen in the ladder"
    )
    p.add_argument("--no-plot", action="store_true")
    add_train_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tritondiv._log import progress_enabled
    from tritondiv.sft.experiment import run_experiment, summary_table

    result = run_experiment(
        args.ladder,
        args.model,
        args.eval_set,
        args.out,
        config_from_args(args),
        gguf_file=args.gguf_file,
        judge=args.judge,
        judge_model=args.judge_model,
        score=args.score,
        allow_tokenizer_mismatch=args.allow_tokenizer_mismatch,
        max_new_tokens=args.max_new_tokens,
        eval_batch_size=args.eval_batch_size,
        eval_limit=args.eval_limit,
        strategies=[s for s in args.strategies.split(",") if s] if args.strategies else None,
        allow_overlap=args.allow_overlap,
        plot=not args.no_plot,
        progress=progress_enabled(not args.no_progress),
        log=logging.getLogger(__name__).info,
    )
    print(summary_table(result), end="")
    print(
        f"wrote {args.out}/experiment.json, summary.md"
        + (", score_vs_level.png" if result.get("plot") else "")
    )
    return 0
