"""The pipeline past one machine, on Ray (optional: ``pip install 'ray[data]'``).

* :func:`token_stats_ray` — sharded tokenization and exact token counts, document
  frequencies and band incidence (bit for bit the local engine's), on Ray Data.
* :func:`kcenter_greedy_distributed` — composable k-center: Gonzalez per partition, then
  on the union of the partition centers.
* :func:`facility_location_greedi` — GreeDi: facility location per partition, then on the
  union, against the full objective.
* :func:`embed_ray` — embeddings on Ray Data (equal to the local ones to float32 rounding).
* :func:`keyphrase_tags_ray` — keyphrase tags in two passes (global phrase document
  frequencies, then tagging), equal to the local tags.
* :func:`select_types_ladder_ray` — the type ladder on the gathered incidence (driver side).

Ray is imported only when one of these runs; ``import tritondiv.distributed`` works without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "RayTags": "tritondiv.distributed.features",
    "embed_ray": "tritondiv.distributed.features",
    "keyphrase_tags_ray": "tritondiv.distributed.features",
    "shared_phrases": "tritondiv.distributed.features",
    "RayFeatures": "tritondiv.distributed.engine",
    "RayTokenStats": "tritondiv.distributed.token_stats",
    "token_stats_ray": "tritondiv.distributed.token_stats",
    "PartitionedSelection": "tritondiv.distributed.selection",
    "covering_radius": "tritondiv.distributed.selection",
    "facility_objective": "tritondiv.distributed.selection",
    "facility_location_greedi": "tritondiv.distributed.selection",
    "kcenter_greedy_distributed": "tritondiv.distributed.selection",
    "select_types_ladder_ray": "tritondiv.distributed.selection",
    "partition_rows": "tritondiv.distributed.selection",
    "ray_available": "tritondiv.distributed._ray",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tritondiv.distributed' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers only (names re-exported lazily)
    from tritondiv.distributed._ray import ray_available  # noqa: F401
    from tritondiv.distributed.engine import RayFeatures  # noqa: F401
    from tritondiv.distributed.features import (  # noqa: F401
        RayTags,
        embed_ray,
        keyphrase_tags_ray,
        shared_phrases,
    )
    from tritondiv.distributed.selection import (  # noqa: F401
        PartitionedSelection,
        covering_radius,
        facility_location_greedi,
        facility_objective,
        kcenter_greedy_distributed,
        partition_rows,
        select_types_ladder_ray,
    )
    from tritondiv.distributed.token_stats import RayTokenStats, token_stats_ray  # noqa: F401
