"""The commands' Ray engine (``--engine ray``): token work on the cluster, selection here.

* :func:`pool_token_stats` — the token statistics of one component of a loaded pool, on
  Ray: the pool's files are read and tokenized on the cluster when they can be (the
  same loader options), else the in-memory pool is shipped (the embedded default pool,
  or a ``limit``-ed one, whose first rows only are used).
* :func:`set_micro_incidences` — the micro incidences of some type families computed on
  Ray and handed to :meth:`tritondiv.feature_store.Features.set_incidence`, so that the
  type strategies then select on the driver exactly as the local engine does.
* :func:`check_strategies` — refuses the strategies that have no Ray path from the
  commands yet (the embedding baselines ``kcenter`` and ``facility-location``).

Every result equals the local engine's bit for bit (see
:func:`~tritondiv.distributed.token_stats_ray`), so a dataset selected with ``--engine ray``
is the one ``--engine local`` writes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from tritondiv.distributed.token_stats import RayTokenStats, token_stats_ray

__all__ = ["NOT_ON_RAY", "check_strategies", "pool_token_stats", "set_micro_incidences"]

#: Strategies the commands do not run with ``--engine ray`` yet.
NOT_ON_RAY: tuple[str, ...] = ("kcenter", "facility-location")

_LOAD_KEYS = ("format", "first_turn_only", "skip_bad", "allow_empty")


def check_strategies(names: Iterable[str]) -> None:
    """``ValueError`` naming the strategies of ``names`` that are not on Ray yet."""
    refused = [n for n in names if n in NOT_ON_RAY]
    if refused:
        raise ValueError(
            f"strategy {', '.join(refused)}: not on Ray yet (only the incidences of the micro "
            "strategies are computed there); run it with --engine local"
        )


_MAPPING_KEYS = ("instruction_field", "response_field", "id_field")


def pool_token_stats(
    pool: Any,
    component: str,
    *,
    source: Any = None,
    load: dict[str, Any] | None = None,
    tokenizer: Any = None,
    lo: Any = 10,
    hi: Any = 500,
    address: str | None = None,
) -> RayTokenStats:
    """Token statistics of ``pool``'s ``component`` computed on Ray.

    Parameters
    ----------
    pool : Pool
        The pool as loaded here (its size is checked against the cluster's count).
    component : {"instruction", "response"}
    source : path or sequence of paths, optional
        Where ``pool`` was read from, with the loader options ``load`` (``format``,
        ``first_turn_only``, ``skip_bad``, ``allow_empty``; ``limit`` or a field mapping
        set means the pool is shipped instead). ``None``: the in-memory pool is shipped to the cluster.
    tokenizer, lo, hi
        As in :func:`~tritondiv.distributed.token_stats_ray`.
    address : str, optional
        Ray cluster to join (default: the running session, else a new local one).
    """
    load = dict(load or {})
    limit = load.pop("limit", None)
    # A field mapping is applied where the pool was loaded: the loaded pool is shipped.
    mapped = any(load.pop(k, None) is not None for k in _MAPPING_KEYS)
    kwargs = {k: load[k] for k in _LOAD_KEYS if k in load}
    unknown = sorted(set(load) - set(_LOAD_KEYS))
    if unknown:
        raise ValueError(f"load: unknown loader options {unknown}; expected {_LOAD_KEYS}")
    if source is None or limit is not None or mapped:
        res = token_stats_ray(pool, component, tokenizer, lo=lo, hi=hi, address=address)
    else:
        res = token_stats_ray(source, component, tokenizer, lo=lo, hi=hi, address=address, **kwargs)
    if res.n_samples != len(pool):
        raise ValueError(
            f"{source}: the cluster read {res.n_samples} samples, this process {len(pool)}; "
            "are the pool files the same on every node?"
        )
    return res


def set_micro_incidences(
    features: Any,
    families: Iterable[str],
    *,
    source: Any = None,
    load: dict[str, Any] | None = None,
    address: str | None = None,
) -> dict[str, RayTokenStats]:
    """Compute the micro incidences among ``families`` on Ray and set them on ``features``.

    Families that are not micro, or whose incidence ``features`` holds already, are left
    alone (the local engine computes them when needed). The band is
    ``features.options.lo``/``hi`` and the tokenizer ``features.options.tokenizer``, as the
    local engine's. Each family's seconds are added to ``features.timings`` under
    ``types-<family>`` (as the local stage is).

    Returns
    -------
    dict of str to RayTokenStats
        The cluster's statistics per family set.
    """
    from tritondiv.families import parse_family

    done: dict[str, RayTokenStats] = {}
    computed = set(features.computed_families())
    for family in sorted(set(families)):
        component, level = parse_family(family)
        if level != "micro" or family in computed:
            continue
        if features.on_stage is not None:
            features.on_stage(f"types {family} on Ray")
        t0 = time.perf_counter()
        res = pool_token_stats(
            features.pool,
            component,
            source=source,
            load=load,
            tokenizer=features.options.tokenizer,
            lo=features.options.lo,
            hi=features.options.hi,
            address=address,
        )
        features.set_incidence(family, res.incidence)
        stage = f"types-{family}"
        features.timings[stage] = features.timings.get(stage, 0.0) + time.perf_counter() - t0
        done[family] = res
    return done
