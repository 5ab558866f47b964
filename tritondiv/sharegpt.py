"""The embedded default pool — moved to :mod:`tritondiv.pool.sharegpt`; this module re-exports
its public names so that ``tritondiv.sharegpt`` keeps working."""

from __future__ import annotations

from tritondiv.pool.sharegpt import (
    DATA_FILENAME,
    EXPECTED_CONVERSATIONS,
    EXPECTED_SAMPLES,
    SOURCE,
    default_pool,
    recover_json_list,
    sharegpt_json_path,
)

__all__ = [
    "DATA_FILENAME",
    "EXPECTED_CONVERSATIONS",
    "EXPECTED_SAMPLES",
    "SOURCE",
    "default_pool",
    "recover_json_list",
    "sharegpt_json_path",
]
