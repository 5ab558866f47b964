"""``tritondiv ladder``: datasets at every diversity level for several strategies, resumable.

Layout: ``OUT/ladder.json`` (the index), ``OUT/<strategy>/level-<i>/{data.jsonl,
manifest.json}`` (``--output-format``: another data file), then ``OUT/report.html`` with
its PNG plots. Rerunning the same command skips every finished level whose manifest
verifies and redoes a partial one. ``--json OUT|-`` also writes the ladder's index
(``ladder.json``) as JSON (``-``: on stdout, the summary on stderr).
"""

from __future__ import annotations

import argparse
from typing import Any

from tritondiv.commands._options import EngineArgs, PoolArgs, RunArgs, add_arguments, from_args


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from tritondiv.commands.select import add_feature_arguments, add_json_argument

    p = sub.add_parser(
        "ladder",
        help="datasets at every diversity level per strategy, then the report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p, PoolArgs)
    p.add_argument("--size", type=int, required=True, help="samples per dataset")
    p.add_argument(
        "--levels",
        default="7",
        help="number of levels 0..1 (default 7: 0, 1/6, ..., 1) or a comma list of levels",
    )
    p.add_argument(
        "--strategies",
        default="all",
        help="all (the six type strategies), baselines, everything, or a comma list of names",
    )
    p.add_argument("--out", required=True, help="ladder directory")
    p.add_argument("--no-report", action="store_true", help="do not write report.html")
    add_json_argument(p, "the ladder's index (ladder.json)")
    add_feature_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, pool: Any = None, pool_info: dict[str, Any] | None = None) -> int:
    from tritondiv._io import json_output_stream, write_json_output
    from tritondiv.commands._needs import check_run
    from tritondiv.commands._options import pool_from_args
    from tritondiv.dataset import check_output_dir
    from tritondiv.feature_store import FeatureOptions
    from tritondiv.ladder import run_ladder
    from tritondiv.strategies import parse_levels, parse_strategies

    check_output_dir(args.out, ladder=True)
    levels = parse_levels(args.levels)
    strategies = parse_strategies(args.strategies)
    options = from_args(FeatureOptions, args)
    run_args = from_args(RunArgs, args)
    check_run(
        "tritondiv ladder",
        strategies,
        options,
        metrics=run_args.metrics,
        report=not args.no_report,
        default_pool=args.source is None,
    )
    engine = from_args(EngineArgs, args)
    engine.check(strategies)
    if pool is None:  # a recipe (tritondiv.recipe) passes the pool it loaded once
        pool, pool_info = pool_from_args(args)
    features = engine.features(pool, from_args(PoolArgs, args), options, run_args.seed, strategies)
    index = run_ladder(
        pool,
        args.size,
        args.out,
        levels=levels,
        strategies=strategies,
        options=options,
        seed=run_args.seed,
        pool_info=pool_info,
        metrics=run_args.metrics,
        bleu_sample=run_args.bleu_sample,
        report=not args.no_report,
        features=features,
        output_format=run_args.output_format,
    )
    human = json_output_stream(args.json)
    print(f"{args.out}: {len(index['datasets'])} datasets in {index['seconds']:.1f} s", file=human)
    if not args.no_report:
        print(f"report: {args.out}/report.html", file=human)
    if args.json:
        write_json_output(args.json, index)
    return 0
