"""``tritondiv select``: one dataset of a strategy at one diversity level.

Writes ``OUT/data.jsonl`` (the selected records, original fields, selection order) and
``OUT/manifest.json`` (pool fingerprint, strategy and every option, seed, ids, k, k_min,
k_max, coverage, sha256 of data.jsonl, metrics, versions). ``--output-format`` writes
``data.parquet``, TRL's ``messages`` or ``prompt-completion`` records instead;
``--json OUT|-`` also writes the manifest as JSON (``-``: on stdout, the summary on stderr).
"""

from __future__ import annotations

import argparse
from typing import Any

from tritondiv.commands._options import EngineArgs, PoolArgs, RunArgs, add_arguments, from_args


def add_feature_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by ``select`` and ``ladder``: features, types and selection."""
    from tritondiv.feature_store import FeatureOptions

    g = p.add_argument_group("features, types and selection")
    add_arguments(g, RunArgs)
    add_arguments(g, FeatureOptions)
    add_arguments(p.add_argument_group("engine"), EngineArgs)


def add_json_argument(p: argparse.ArgumentParser, what: str) -> None:
    """``--json OUT|-`` of ``select`` and ``ladder``: ``what`` as JSON to OUT or stdout."""
    p.add_argument(
        "--json",
        default=None,
        metavar="OUT",
        help=f"also write {what} as JSON to OUT (-: to stdout, the summary to stderr)",
    )


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from tritondiv.strategies import STRATEGIES

    p = sub.add_parser(
        "select",
        help="select one dataset of a strategy at one diversity level",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p, PoolArgs)
    p.add_argument("--strategy", required=True, choices=STRATEGIES, help="selection strategy")
    p.add_argument("--level", type=float, required=True, help="diversity level p in [0, 1]")
    p.add_argument("--size", type=int, required=True, help="number of samples to select")
    p.add_argument("--out", required=True, help="output directory (data.jsonl + manifest.json)")
    add_json_argument(p, "the manifest")
    add_feature_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, pool: Any = None, pool_info: dict[str, Any] | None = None) -> int:
    from tritondiv._io import json_output_stream, write_json_output
    from tritondiv.commands._options import pool_from_args
    from tritondiv.dataset import check_output_dir
    from tritondiv.feature_store import FeatureOptions
    from tritondiv.ladder import select_dataset

    if not 0.0 <= args.level <= 1.0:
        raise ValueError(f"--level must lie in [0, 1], got {args.level}")
    from tritondiv.commands._needs import check_run

    check_output_dir(args.out)
    options = from_args(FeatureOptions, args)
    run_args = from_args(RunArgs, args)
    check_run(
        "tritondiv select",
        [args.strategy],
        options,
        metrics=run_args.metrics,
        default_pool=args.source is None,
    )
    engine = from_args(EngineArgs, args)
    engine.check([args.strategy])
    if pool is None:  # a recipe (tritondiv.recipe) passes the pool it loaded once
        pool, pool_info = pool_from_args(args)
    features = engine.features(
        pool, from_args(PoolArgs, args), options, run_args.seed, [args.strategy]
    )
    man = select_dataset(
        pool,
        args.strategy,
        args.level,
        args.size,
        args.out,
        options=options,
        seed=run_args.seed,
        pool_info=pool_info,
        metrics=run_args.metrics,
        bleu_sample=run_args.bleu_sample,
        features=features,
        output_format=run_args.output_format,
    )
    print(
        f"{args.out}: {man['data']['records']} samples, strategy {man['strategy']} level "
        f"{man['level']:g}: k={man['k']} (k_min={man['k_min']}, k_max={man['k_max']}), "
        f"coverage {man['coverage']}/{man['n_types']}",
        file=json_output_stream(args.json),
    )
    if args.json:
        write_json_output(args.json, man)
    return 0
