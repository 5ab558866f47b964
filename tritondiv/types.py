"""Re-export of :mod:`tritondiv.families` (the old home of the type families)."""

from __future__ import annotations

from tritondiv.families import (
    COMPONENTS,
    LEVELS,
    TOPIC_METHODS,
    TYPE_FAMILIES,
    coverage,
    default_topics,
    macro_types,
    meso_types,
    micro_types,
    parse_band_value,
    parse_family,
    resolve_band,
)

__all__ = [
    "COMPONENTS",
    "LEVELS",
    "TOPIC_METHODS",
    "TYPE_FAMILIES",
    "coverage",
    "default_topics",
    "macro_types",
    "meso_types",
    "micro_types",
    "parse_band_value",
    "parse_family",
    "resolve_band",
]
