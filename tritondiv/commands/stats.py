"""``tritondiv stats``: token statistics of a pool's components.

Tokenizes the instruction and/or response texts (cached), then prints one table with a
column per component: samples, tokens, vocabulary used, frequency bands, mean mid-band
types per sample, distinct-1/2, entropy and lengths. ``--json OUT`` writes the same
figures (plus the pool fingerprint and tokenizer hash) atomically; ``--json -`` prints them
on stdout instead (the table then goes to stderr).

Band thresholds: ``--lo``/``--hi`` take an occurrence count (``--lo 10``) or a count
relative to the pool size, a number followed by ``x`` that multiplies the number of
samples (``--hi 0.00427x`` is 500 occurrences on a 117k-sample pool). See
:mod:`tritondiv.stats`.

``--engine ray`` reads and tokenizes the POOL files and counts on a Ray cluster
(``--ray-address``, default: the running session or a new local one) and prints and writes
the same figures; with ``--limit`` (or the default pool) the loaded samples are shipped to
the cluster instead of its reading the files.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

from tritondiv.commands._options import EngineArgs, PoolArgs, add_arguments, from_args
from tritondiv.feature_store import FeatureOptions

_log = logging.getLogger(__name__)

# the options of FeatureOptions that `stats` shares with select and ladder
_SHARED = ("tokenizer", "lo", "hi", "cache", "progress")
# stats selects nothing: no --partitions
_ENGINE = ("engine", "ray_address")

_ROWS: tuple[tuple[str, str, str], ...] = (
    # (key in TokenStats.to_dict(), label, format)
    ("n_samples", "samples", "{:,}"),
    ("n_tokens", "tokens", "{:,}"),
    ("vocab_size", "tokenizer vocabulary", "{:,}"),
    ("vocab_used", "vocabulary used", "{:,}"),
    ("n_below", "tokens below lo", "{:,}"),
    ("n_mid", "mid-band tokens (types)", "{:,}"),
    ("n_above", "tokens above hi", "{:,}"),
    ("mid_tokens", "mid-band occurrences", "{:,}"),
    ("mean_mid_types", "mean mid-band types/sample", "{:.2f}"),
    ("samples_without_types", "samples with no type", "{:,}"),
    ("distinct_1", "distinct-1", "{:.4f}"),
    ("distinct_2", "distinct-2", "{:.4f}"),
    ("entropy_nats", "entropy (nats)", "{:.4f}"),
    ("entropy_bits", "entropy (bits)", "{:.4f}"),
    ("mean_length", "mean length (tokens)", "{:.1f}"),
    ("median_length", "median length (tokens)", "{:.1f}"),
    ("max_length", "max length (tokens)", "{:,}"),
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "stats",
        help="token statistics of a pool (bands, distinct-n, entropy, lengths)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        epilog="Relative thresholds scale with the pool: --lo 8.5e-5x --hi 4.27e-3x are the "
        "paper's 10 and 500 at 117k samples (a relative lo rounds up, hi rounds down). "
        "Example: tritondiv stats pool.jsonl --component both --json out/stats.json",
    )
    add_arguments(p, PoolArgs)
    p.add_argument(
        "--component",
        choices=("instruction", "response", "both"),
        default="response",
        help="which text of each sample (default: response)",
    )
    # the same --tokenizer, --lo, --hi, --no-cache, --no-progress as select and ladder
    add_arguments(p, FeatureOptions, only=_SHARED)
    p.add_argument(
        "--json",
        default=None,
        metavar="OUT",
        help="also write the figures as JSON to OUT (-: to stdout, the table to stderr)",
    )
    add_arguments(p.add_argument_group("engine"), EngineArgs, only=_ENGINE)
    p.set_defaults(func=run)


def _fmt(value: Any, spec: str) -> str:
    if value is None:
        return "-"
    return spec.format(value)


def format_table(results: dict[str, dict[str, Any]]) -> str:
    """Render ``{component: TokenStats.to_dict()}`` as an aligned text table."""
    names = list(results)
    flat = {name: {**d, **d.get("distinct", {})} for name, d in results.items()}
    label_w = max(len(label) for _, label, _ in _ROWS)
    cells = [[_fmt(flat[n].get(key), spec) for n in names] for key, _, spec in _ROWS]
    col_w = [max(len(n), *(len(row[j]) for row in cells)) for j, n in enumerate(names)]
    lines = ["".ljust(label_w) + "".join(f"  {n:>{w}}" for n, w in zip(names, col_w, strict=True))]
    for (_, label, _), row in zip(_ROWS, cells, strict=True):
        lines.append(
            label.ljust(label_w) + "".join(f"  {c:>{w}}" for c, w in zip(row, col_w, strict=True))
        )
    return "\n".join(lines)


def _ray_stats(
    pool: Any, component: str, pool_args: PoolArgs, options: FeatureOptions, engine: EngineArgs
) -> Any:
    """The component's TokenStats computed on Ray: the POOL files are read on the cluster
    (``--limit`` and the default pool: the loaded samples are shipped instead)."""
    from dataclasses import asdict

    from tritondiv.distributed.engine import pool_token_stats

    load = asdict(pool_args)
    source = load.pop("source")
    res = pool_token_stats(
        pool,
        component,
        source=source,
        load=load,
        tokenizer=options.tokenizer,
        lo=options.lo,
        hi=options.hi,
        address=engine.ray_address,
    )
    return res.token_stats()


def run(args: argparse.Namespace, pool: Any = None) -> int:
    from tritondiv._io import json_output_stream, write_json_output
    from tritondiv.stats import token_stats
    from tritondiv.tokens import load_tokenizer, tokenize_pool, tokenizer_hash

    t0 = time.perf_counter()
    options = from_args(FeatureOptions, args, only=_SHARED)
    engine = from_args(EngineArgs, args, only=_ENGINE)
    pool_args = from_args(PoolArgs, args)
    if pool is None:  # a recipe (tritondiv.recipe) passes the pool it loaded once
        pool = pool_args.load(cache=options.cache)
    tokenizer = load_tokenizer(options.tokenizer)
    components = ("instruction", "response") if args.component == "both" else (args.component,)
    results: dict[str, dict[str, Any]] = {}
    for comp in components:
        _log.info("token statistics of the %s texts: %s samples", comp, f"{len(pool):,}")
        if engine.on_ray:
            results[comp] = _ray_stats(pool, comp, pool_args, options, engine).to_dict()
            continue
        tokens = tokenize_pool(
            pool, comp, tokenizer, cache=options.cache, progress=options.progress is not False
        )
        results[comp] = token_stats(tokens, lo=options.lo, hi=options.hi).to_dict()
    elapsed = time.perf_counter() - t0

    lo = {c: r["lo"] for c, r in results.items()}
    hi = {c: r["hi"] for c, r in results.items()}
    human = json_output_stream(args.json)
    print(f"pool: {pool!r}  fingerprint {pool.fingerprint[:12]}", file=human)
    print(
        f"band: lo={options.lo} -> {lo}, hi={options.hi} -> {hi} occurrences (lo <= count <= hi)",
        file=human,
    )
    print(format_table(results), file=human)
    if args.json:
        where = write_json_output(
            args.json,
            {
                "pool": {
                    "source": pool_args.source,
                    "n_samples": len(pool),
                    "fingerprint": pool.fingerprint,
                },
                "tokenizer": {
                    "path": options.tokenizer,
                    "sha256": tokenizer_hash(tokenizer),
                    "vocab_size": int(tokenizer.get_vocab_size(with_added_tokens=True)),
                },
                "thresholds": {"lo": options.lo, "hi": options.hi},
                "components": results,
                "seconds": round(elapsed, 3),
            },
        )
        _log.info("wrote %s", where)
    return 0
