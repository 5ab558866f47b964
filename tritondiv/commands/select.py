"""``tritondiv select``: one dataset of a strategy at one diversity level.

Writes ``OUT/data.jsonl`` (the selected records, original fields, selection order) and
``OUT/manifest.json`` (pool fingerprint, strategy and every option, seed, ids, k, k_min,
k_max, coverage, sha256 of data.jsonl, metrics, versions).
"""

from __future__ import annotations

import argparse
from typing import Any


def add_feature_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by ``select`` and ``ladder``: features, types and selection."""
    from tritondiv.strategies import COMPONENTS

    g = p.add_argument_group("features and types")
    g.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    g.add_argument(
        "--component",
        choices=COMPONENTS,
        default="response",
        help="component of the embedding baselines kcenter/facility-location/threshold/random "
        "(default response)",
    )
    g.add_argument(
        "--embeddings-instruction",
        metavar="NPY",
        help="precomputed instruction embeddings (.npy, one row per pool sample)",
    )
    g.add_argument(
        "--embeddings-response",
        metavar="NPY",
        help="precomputed response embeddings (.npy, one row per pool sample)",
    )
    g.add_argument(
        "--embedding-model",
        metavar="DIR",
        help="local sentence-transformers model directory (default: the packaged all-MiniLM-L6-v2)",
    )
    g.add_argument(
        "--tagger",
        default="keyphrase",
        help="meso tagger: keyphrase (offline default), column:FIELD (a list field of the pool) "
        "or llm:PATH (a local causal LM directory or .gguf file)",
    )
    g.add_argument(
        "--tag-max-words",
        type=int,
        metavar="N",
        help="keyphrase tagger: candidate phrases from the first N words of each text "
        "(default 128; smaller is faster)",
    )
    g.add_argument(
        "--tokenizer",
        metavar="PATH",
        help="tokenizer of the model to be fine-tuned (tokenizer.json or its directory; default: the project default)",
    )
    g.add_argument(
        "--lo",
        default="10",
        help="micro band: drop tokens seen fewer than LO times over the pool's component: an "
        "occurrence count, or 'Fx' = F times the number of samples, as in `tritondiv stats` "
        "(default 10)",
    )
    g.add_argument(
        "--hi",
        default="500",
        help="micro band: drop tokens seen more than HI times; same syntax as --lo (default 500)",
    )
    g.add_argument(
        "--topics", type=int, metavar="K", help="macro topics K (default round(sqrt(N)))"
    )
    g.add_argument(
        "--topic-method",
        choices=("kmeans", "hdbscan"),
        default="kmeans",
        help="macro clustering: spherical k-means (default) or HDBSCAN (small pools)",
    )
    g.add_argument(
        "--knn", type=int, default=20, help="neighbours of the facility-location graph (default 20)"
    )
    g.add_argument(
        "--tau",
        type=float,
        default=0.9,
        help="cosine threshold of the threshold baseline (default 0.9)",
    )
    g.add_argument(
        "--bleu-sample", type=int, default=1000, help="self-BLEU sample size (default 1000)"
    )
    g.add_argument(
        "--no-metrics", action="store_true", help="skip the diversity metrics in the manifests"
    )
    g.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    g.add_argument("--no-progress", action="store_true", help="hide progress bars")


def options_from_args(args: argparse.Namespace) -> Any:
    from tritondiv.strategies import FeatureOptions
    from tritondiv.types import resolve_band

    if args.topics is not None and args.topics < 1:
        raise ValueError(f"--topics must be >= 1, got {args.topics}")
    if args.tag_max_words is not None and args.tag_max_words < 1:
        raise ValueError(f"--tag-max-words must be >= 1, got {args.tag_max_words}")
    resolve_band(args.lo, args.hi, 1_000_000)  # syntax check before any featurization
    return FeatureOptions(
        embeddings_instruction=args.embeddings_instruction,
        embeddings_response=args.embeddings_response,
        embedding_model=args.embedding_model,
        tokenizer=args.tokenizer,
        tagger=args.tagger,
        tag_max_words=args.tag_max_words,
        lo=args.lo,
        hi=args.hi,
        topics=args.topics,
        topic_method=args.topic_method,
        component=args.component,
        knn=args.knn,
        tau=args.tau,
        cache=not args.no_cache,
        progress=not args.no_progress,
    )


def pool_info_from_args(pool: Any, args: argparse.Namespace) -> dict[str, Any]:
    from tritondiv.ladder import pool_meta

    loader = {
        k: getattr(args, k)
        for k in ("pool", "format", "first_turn_only", "skip_bad", "allow_empty", "limit")
        if hasattr(args, k)
    }
    loader["source"] = loader.pop("pool", None)
    return pool_meta(pool, **loader)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from tritondiv.pool import add_pool_arguments
    from tritondiv.strategies import STRATEGIES

    p = sub.add_parser(
        "select",
        help="select one dataset of a strategy at one diversity level",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_pool_arguments(p)
    p.add_argument("--strategy", required=True, choices=STRATEGIES, help="selection strategy")
    p.add_argument("--level", type=float, required=True, help="diversity level p in [0, 1]")
    p.add_argument("--size", type=int, required=True, help="number of samples to select")
    p.add_argument("--out", required=True, help="output directory (data.jsonl + manifest.json)")
    add_feature_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tritondiv.ladder import select_dataset
    from tritondiv.pool import pool_from_args

    if not 0.0 <= args.level <= 1.0:
        raise ValueError(f"--level must lie in [0, 1], got {args.level}")
    options = options_from_args(args)
    pool = pool_from_args(args)
    man = select_dataset(
        pool,
        args.strategy,
        args.level,
        args.size,
        args.out,
        options=options,
        seed=args.seed,
        pool_info=pool_info_from_args(pool, args),
        metrics=not args.no_metrics,
        bleu_sample=args.bleu_sample,
    )
    print(
        f"{args.out}: {man['data']['records']} samples, strategy {man['strategy']} level "
        f"{man['level']:g}: k={man['k']} (k_min={man['k_min']}, k_max={man['k_max']}), "
        f"coverage {man['coverage']}/{man['n_types']}"
    )
    return 0
