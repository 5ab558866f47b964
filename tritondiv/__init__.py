"""tritondiv: SFT datasets with a controlled amount of diversity, fast.

Data flows one way: pool -> features -> types (a sample->type incidence) -> C++ selection
-> datasets + manifest -> metrics/report -> SFT. The public API is listed in ``__all__``;
names are imported lazily so ``import tritondiv`` stays cheap (no torch import).

The high-level entry points are ``tritondiv.select(data, strategy, level=..., size=...)``
and ``tritondiv.ladder(data, strategy, levels=..., size=...)`` (also named
:func:`select_from` / :func:`ladder_from`): the submodules :mod:`tritondiv.select` and
:mod:`tritondiv.ladder` are modules that can be called.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# library modules log through logging.getLogger(__name__); silent unless configured
logging.getLogger(__name__).addHandler(logging.NullHandler())

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    # runtime
    "openmp_enabled": "tritondiv._runtime",
    "num_threads": "tritondiv._runtime",
    "set_num_threads": "tritondiv._runtime",
    "env_info": "tritondiv._runtime",
    # pools
    "Pool": "tritondiv.pool",
    "PoolError": "tritondiv.pool",
    "load_pool": "tritondiv.pool",
    "default_pool": "tritondiv.pool",
    "record_texts": "tritondiv.pool",
    # the dataset folder
    "read_dataset": "tritondiv.dataset",
    "read_ladder": "tritondiv.dataset",
    # tokens and token statistics
    "TokenCSR": "tritondiv.tokens",
    "load_tokenizer": "tritondiv.tokens",
    "tokenize": "tritondiv.tokens",
    "tokenizer_identity": "tritondiv.tokens",
    "TokenStats": "tritondiv.stats",
    "token_counts": "tritondiv.stats",
    "band_incidence": "tritondiv.stats",
    "distinct_n": "tritondiv.stats",
    "token_entropy": "tritondiv.stats",
    "token_stats": "tritondiv.stats",
    # selection engine
    "Incidence": "tritondiv.incidence",
    "PruneResult": "tritondiv.select",
    "SelectionResult": "tritondiv.select",
    "prune_types": "tritondiv.select",
    "balanced_greedy": "tritondiv.select",
    "select_types": "tritondiv.select",
    "select_types_ladder": "tritondiv.select",
    "kcenter_greedy": "tritondiv.select",
    "facility_location": "tritondiv.select",
    "threshold_filter": "tritondiv.select",
    "random_select": "tritondiv.select",
    "uniform_types": "tritondiv.select",
    "uniform_types_ladder": "tritondiv.select",
    # dissimilarity kernels
    "nearest": "tritondiv.kernels",
    "topk": "tritondiv.kernels",
    "mean_dissimilarity": "tritondiv.kernels",
    "knn_graph": "tritondiv.kernels",
    "kmeans": "tritondiv.kernels",
    # the high-level entry point
    "select_from": "tritondiv.api",
    "ladder_from": "tritondiv.api",
}

#: callable submodules: ``tritondiv.select(...)`` is ``select_from``, ``ladder(...)`` ``ladder_from``
_CALLABLE_MODULES = ("ladder", "select")

__all__ = ["__version__", *sorted([*_EXPORTS, *_CALLABLE_MODULES])]


def __getattr__(name: str) -> Any:
    if name in _CALLABLE_MODULES:  # the submodule (importing it binds the attribute)
        return importlib.import_module(f"tritondiv.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tritondiv' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from tritondiv._runtime import env_info, num_threads, openmp_enabled, set_num_threads
    from tritondiv.api import ladder_from, select_from
    from tritondiv.ladder import CallableLadder
    from tritondiv.select import CallableSelect

    #: the callable submodules, typed as such (their members: ``from tritondiv.select import``)
    select: CallableSelect
    ladder: CallableLadder
    from tritondiv.dataset import read_dataset, read_ladder
    from tritondiv.incidence import Incidence
    from tritondiv.kernels import knn_graph, mean_dissimilarity, nearest, topk
    from tritondiv.kernels.kmeans import kmeans
    from tritondiv.pool import Pool, PoolError, default_pool, load_pool, record_texts
    from tritondiv.select import (
        PruneResult,
        SelectionResult,
        balanced_greedy,
        facility_location,
        kcenter_greedy,
        prune_types,
        random_select,
        select_types,
        select_types_ladder,
        threshold_filter,
        uniform_types,
        uniform_types_ladder,
    )
    from tritondiv.stats import (
        TokenStats,
        band_incidence,
        distinct_n,
        token_counts,
        token_entropy,
        token_stats,
    )
    from tritondiv.tokens import TokenCSR, load_tokenizer, tokenize, tokenizer_identity
