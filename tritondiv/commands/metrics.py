"""``tritondiv metrics DATASET...``: the paper's diversity measures of datasets or pool files.

Per component (instruction, response): distinct-1/2 and token entropy (model tokenizer),
mean pairwise cosine distance of embeddings, mean length, zlib compression ratio,
self-BLEU-4 on a seeded sample (size stated), and type coverage from the manifest.
"""

from __future__ import annotations

import argparse
import logging

from tritondiv.commands._options import RunArgs, add_arguments
from tritondiv.feature_store import FeatureOptions
from tritondiv.metrics import METRIC_NAMES

_log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "metrics",
        help="diversity metrics of dataset directories or pool files",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "datasets",
        nargs="+",
        metavar="DATASET",
        help="dataset directory (data.jsonl [+ manifest.json]) or pool file",
    )
    p.add_argument(
        "--json",
        metavar="OUT",
        help="also write every metric to this JSON file (-: to stdout, the table to stderr)",
    )
    # the same --tokenizer, --embedding-model, --bleu-sample and --seed as select and ladder
    add_arguments(p, FeatureOptions, only=("tokenizer", "embedding_model"))
    p.add_argument(
        "--no-embeddings",
        action="store_true",
        help="skip the mean pairwise embedding distance (no model run)",
    )
    p.add_argument("--limit", type=int, help="read only the first LIMIT samples of each dataset")
    add_arguments(p, RunArgs, only=("bleu_sample", "seed"))
    p.set_defaults(func=run)


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def run(args: argparse.Namespace) -> int:
    import os

    from tritondiv._extras import check_extras
    from tritondiv._io import json_output_stream, write_json_output
    from tritondiv.dataset import jsonable
    from tritondiv.metrics import dataset_file_metrics

    if not args.no_embeddings:
        check_extras("embed", what="the mean pairwise embedding distance")
    for ds in args.datasets:  # all of them, before the first is measured
        if not os.path.exists(ds):
            raise FileNotFoundError(f"{ds} does not exist: pass a dataset folder or a pool file")
    human = json_output_stream(args.json)
    results = []
    for n, ds in enumerate(args.datasets, 1):
        _log.info("metrics of %s (%d of %d)", ds, n, len(args.datasets))
        if not args.no_embeddings and os.path.exists(ds):
            # the one slow step: say so before it starts, and how to skip it
            _log.info(
                "%s: embedding both components with %s for the mean pairwise distance "
                "(--no-embeddings skips it) ...",
                ds,
                args.embedding_model or "the packaged all-MiniLM-L6-v2",
            )
        res = dataset_file_metrics(
            ds,
            tokenizer=args.tokenizer,
            embedding_model=args.embedding_model,
            embed=not args.no_embeddings,
            bleu_sample=args.bleu_sample,
            seed=args.seed,
            limit=args.limit,
        )
        results.append(res)
        print(f"{ds}  ({res['n']} samples)", file=human)
        for comp in ("instruction", "response"):
            m = res[comp]
            cells = "  ".join(f"{k}={_fmt(m[k])}" for k in METRIC_NAMES)
            print(
                f"  {comp:<11}  {cells}  (self-BLEU on {m['self_bleu_sample']} texts)", file=human
            )
        own = (res.get("coverage") or {}).get("own")
        if own:
            print(
                f"  coverage     {own['covered']}/{own['n_types']} {own['family']} types",
                file=human,
            )
    if args.json:
        where = write_json_output(args.json, jsonable({"datasets": results}))
        _log.info("wrote %s", where)
    return 0
